"""The sequence store port: import sequencing files as read sets and follow the import job.

An import is asynchronous: `SequenceStore.start_import` submits one job for up
to `MAX_SOURCES_PER_JOB` sources and returns its id at once; the job then runs
on the service's side, whatever happens to the process that started it. So a
`wait_for_import` that runs out of time raises `OmicsImportTimeout` naming the
job, and the caller polls that job again rather than starting a new one.

A job ends in one of `TERMINAL_STATUSES`. ``COMPLETED_WITH_FAILURES`` is an
ordinary outcome, not an exception: each `ImportedReadSet` carries its own
status and message, so one bad file never hides the read sets that did import.

What a sequence store takes is the HealthOmics Developer Guide's ("Creating a
HealthOmics sequence store"): unaligned reads as FASTQ (gzip-only) or uBAM,
aligned reads as BAM or CRAM, the aligned ones against a reference genome
("Importing read sets into a HealthOmics sequence store": an import with any
aligned read set must include a reference). The same page says the S3 bucket
must be in the sequence store's Region; `SequenceStore.check_sources` asks
before a job is started.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from labmesh_dagster.core.errors import LabmeshError

FILE_TYPES = frozenset({"FASTQ", "BAM", "CRAM", "UBAM"})
# Aligned files are stored against a reference genome; FASTQ and unaligned BAM (uBAM) are not.
ALIGNED_FILE_TYPES = frozenset({"BAM", "CRAM"})
TERMINAL_STATUSES = frozenset({"COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED", "CANCELLED"})
# StartReadSetImportJob accepts 1 to 100 sources per job.
MAX_SOURCES_PER_JOB = 100


class OmicsImportError(LabmeshError):
    """The sequence store refused an import request, or could not be asked (after botocore's retries)."""


class OmicsSourceError(OmicsImportError):
    """The files cannot be imported from where they are (a bucket outside the store's Region): no job is started."""


class OmicsImportTimeout(LabmeshError, TimeoutError):
    """An import job that had not finished when the caller stopped waiting; the job itself keeps running."""

    def __init__(self, job_id: str, status: str, timeout_seconds: float) -> None:
        self.job_id = job_id
        self.status = status
        self.timeout_seconds = timeout_seconds
        super().__init__(
            f"read set import job {job_id} is still {status} after {timeout_seconds:g}s; "
            "it keeps running in the sequence store: wait for the same job again instead of starting a new one"
        )


@dataclass(frozen=True)
class ReadSetSource:
    """What becomes one read set: one file, or the R1 and R2 files of a paired FASTQ run (in that order)."""

    files: tuple[str, ...]
    file_type: str
    subject_id: str
    sample_id: str
    name: str
    description: str = ""
    reference_arn: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(self.files))
        object.__setattr__(self, "tags", dict(self.tags))
        if self.file_type not in FILE_TYPES:
            raise ValueError(f"file type {self.file_type!r} is not one of {', '.join(sorted(FILE_TYPES))}")
        if not 1 <= len(self.files) <= (2 if self.file_type == "FASTQ" else 1):
            raise ValueError(
                f"a {self.file_type} read set is made of {'1 or 2 files' if self.file_type == 'FASTQ' else '1 file'}, "
                f"got {len(self.files)}: {', '.join(self.files)}"
            )
        not_s3 = [uri for uri in self.files if not uri.startswith("s3://")]
        if not_s3:
            raise ValueError(f"read sets are imported from S3; not an s3:// URI: {', '.join(not_s3)}")
        if self.file_type in ALIGNED_FILE_TYPES and not self.reference_arn:
            raise ValueError(
                f"{self.files[0]}: a {self.file_type} file is imported against a reference (reference_arn)"
            )


@dataclass(frozen=True)
class ImportedReadSet:
    """The outcome for one source: its files, the read set id once imported, and the service's status and message."""

    files: tuple[str, ...]
    read_set_id: str | None
    status: str
    message: str = ""


@dataclass(frozen=True)
class ImportResult:
    """An import job as last seen: its status, message and the outcome of each source, in submission order."""

    job_id: str
    status: str
    read_sets: tuple[ImportedReadSet, ...]
    message: str = ""

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def failed(self) -> tuple[ImportedReadSet, ...]:
        return tuple(read_set for read_set in self.read_sets if read_set.read_set_id is None)


@dataclass(frozen=True)
class SourceCheck:
    """What was learnt about the buckets an import reads from, before any job is started.

    ``problems`` make every import from a bucket fail (it is in another Region
    than the store); ``requirements`` are what the service role needs and
    labmesh cannot verify from outside (``kms:Decrypt`` on an SSE-KMS bucket's
    key); ``unchecked`` says what could not be asked, and why.
    """

    problems: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()


class SequenceStore(ABC):
    """A store of read sets that imports sequencing files from object storage."""

    def check_sources(self, uris: Sequence[str]) -> SourceCheck:
        """What stands in the way of importing ``uris`` (``s3://`` URIs), found before a job is started."""
        return SourceCheck()

    @abstractmethod
    def start_import(self, sources: Sequence[ReadSetSource], *, client_token: str) -> str:
        """Submit one import job and return its id.

        ``client_token`` makes the start idempotent: the same token with the
        same sources returns the job already started instead of a second one.
        """

    @abstractmethod
    def import_status(self, job_id: str) -> ImportResult:
        """The job's current status and per-source outcome."""

    def wait_for_import(
        self,
        job_id: str,
        *,
        timeout_seconds: float,
        poll_seconds: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> ImportResult:
        """Poll ``job_id`` until it reaches a terminal status; raise `OmicsImportTimeout` after ``timeout_seconds``.

        The status is read once more at the deadline, so a job that finishes
        during the last sleep is returned rather than reported as timed out.
        """
        if poll_seconds <= 0:
            raise ValueError("poll_seconds must be positive")
        deadline = clock() + timeout_seconds
        while True:
            result = self.import_status(job_id)
            if result.finished:
                return result
            remaining = deadline - clock()
            if remaining <= 0:
                raise OmicsImportTimeout(job_id, result.status, timeout_seconds)
            sleep(min(poll_seconds, remaining))
