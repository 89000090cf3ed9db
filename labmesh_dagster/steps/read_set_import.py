"""Planning the import of an experiment's raw sequencing files into a sequence store as read sets.

Which files become read sets, and how: FASTQ files always, BAM and CRAM files
only when a reference genome is given (HealthOmics stores aligned reads
against a reference); files whose extraction failed are left out, since a
truncated or mislabelled file would only fail inside the import job.

The R1 and R2 files of one paired run become one read set. Mates are found by
name, in the spellings sequencers and archives use: ``_R1``/``_R2`` (Illumina,
with or without the ``_001`` chunk number), ``_1``/``_2`` (SRA and ENA), and
``.R1.``/``.R2.``. Two files pair only when they share a folder, a base name, a
chunk number and a sample; a mate without its partner, or a name that two
files of the same read claim, is imported file by file rather than guessed at.

Every text sent is made valid for the service model (StartReadSetImportJob):
names, subject and sample ids are 1 to 127 characters, a description 1 to 255,
all of letters, marks, separators, symbols, numbers and punctuation, so
control characters are replaced and long values clipped.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from labmesh_dagster.connectors.omics.base import MAX_SOURCES_PER_JOB, ImportResult, ReadSetSource, SequenceStore
from labmesh_dagster.core.experiment import ExperimentRecord, Sample
from labmesh_dagster.core.manifest import Manifest, ManifestEntry

# ReadSetName, SampleId, SubjectId: 1-127 characters; ReadSetDescription: 1-255; ClientToken: 1-127.
NAME_LIMIT = 127
DESCRIPTION_LIMIT = 255
CLIENT_TOKEN_LIMIT = 127
# Failed import jobs retried with fresh tokens, over all materializations, before a person is asked to look.
MAX_IMPORT_ATTEMPTS = 3

RAW_ZONE_TAG = "raw"
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")
_SEQUENCE_SUFFIXES = (".fastq", ".fq", ".bam", ".cram")
# The mate marker is the last one in the stem, optionally followed by an Illumina chunk number.
_MATE = re.compile(r"(?P<base>.+)(?:_R(?P<r>[12])|_(?P<n>[12])|\.R(?P<d>[12]))(?P<chunk>_\d{3})?", re.IGNORECASE)
_DEFAULT_CHUNK = "_001"


def model_text(value: str, limit: int, fallback: str = "unnamed") -> str:
    """``value`` as the model's text pattern allows it: no control, format or unassigned characters, clipped."""
    text = "".join("_" if unicodedata.category(char).startswith("C") else char for char in value).strip()
    return text[:limit].strip() or fallback


def _stem(name: str) -> str:
    """The file name without its compression and sequence format suffixes."""
    lowered = name.lower()
    for suffixes in (_COMPRESSION_SUFFIXES, _SEQUENCE_SUFFIXES):
        for suffix in suffixes:
            if lowered.endswith(suffix) and len(name) > len(suffix):
                name, lowered = name[: -len(suffix)], lowered[: -len(suffix)]
                break
    return name


def _file_type(entry: ManifestEntry, reference_arn: str | None) -> str | None:
    family = entry.format.split(".", 1)[0].lower()
    if family == "fastq":
        return "FASTQ"
    if family in {"bam", "cram"} and reference_arn:
        return family.upper()
    return None


def _known_sample(entry: ManifestEntry, record: ExperimentRecord) -> str | None:
    """The entry's first sample, else the experiment's only sample; None leaves the file name to stand in."""
    if entry.sample_ids:
        return entry.sample_ids[0]
    if len(record.samples) == 1:
        return record.samples[0].id
    return None


def _subject_of(sample_id: str, record: ExperimentRecord) -> str:
    sample = next((item for item in record.samples if item.id == sample_id), Sample(sample_id))
    for attribute in ("subject_id", "subject"):
        value = sample.attributes.get(attribute)
        if value not in (None, ""):
            return str(value)
    return sample_id


@dataclass(frozen=True)
class _File:
    """A sequencing file with what its name says: which read it holds (if any), its base name and chunk."""

    entry: ManifestEntry
    file_type: str
    sample: str | None
    read: int | None
    base: str
    chunk: str

    @classmethod
    def of(cls, entry: ManifestEntry, file_type: str, sample: str | None) -> _File:
        stem = _stem(entry.name)
        match = _MATE.fullmatch(stem) if file_type == "FASTQ" else None
        if match is None:
            return cls(entry, file_type, sample, None, stem, "")
        read = int(match.group("r") or match.group("n") or match.group("d"))
        return cls(entry, file_type, sample, read, match.group("base"), (match.group("chunk") or "").lower())

    @property
    def folder(self) -> str:
        return self.entry.key.rsplit("/", 1)[0] if "/" in self.entry.key else ""

    @property
    def pair_name(self) -> str:
        """What a pair is called: the base name, with the chunk number only when it is not the first."""
        return self.base + ("" if self.chunk in ("", _DEFAULT_CHUNK) else self.chunk)


def _pair_up(files: list[_File]) -> list[tuple[_File, ...]]:
    """One file or an (R1, R2) pair per read set; paired only when each read is claimed by exactly one file."""
    candidates: dict[tuple[str, str, str, str | None], list[_File]] = defaultdict(list)
    groups: list[tuple[_File, ...]] = []
    for file in files:
        if file.read is None:
            groups.append((file,))
        else:
            candidates[(file.folder, file.base, file.chunk, file.sample)].append(file)
    for candidate in candidates.values():
        if sorted(file.read or 0 for file in candidate) == [1, 2]:
            groups.append(tuple(sorted(candidate, key=lambda file: file.read or 0)))
        else:
            groups.extend((file,) for file in candidate)
    return sorted(groups, key=lambda group: group[0].entry.key)


def plan_read_sets(
    manifest: Manifest,
    record: ExperimentRecord,
    uri_of: Callable[[str], str],
    *,
    reference_arn: str | None,
) -> list[ReadSetSource]:
    """The read sets to import from ``manifest``'s files, ordered by the key of their first file.

    ``uri_of`` turns a manifest key into the ``s3://`` URI the service reads.
    """
    files = []
    for entry in manifest.entries:
        file_type = _file_type(entry, reference_arn)
        if file_type is None or entry.error:
            continue
        files.append(_File.of(entry, file_type, _known_sample(entry, record)))
    description = model_text(f"{record.title} (labmesh experiment {record.id})", DESCRIPTION_LIMIT)
    tags = {"experimentId": record.id, "labmesh": RAW_ZONE_TAG}
    sources = []
    for group in _pair_up(files):
        first = group[0]
        name = model_text(first.pair_name if len(group) == 2 else _stem(first.entry.name), NAME_LIMIT)
        sample = model_text(first.sample or name, NAME_LIMIT)
        sources.append(
            ReadSetSource(
                files=tuple(uri_of(file.entry.key) for file in group),
                file_type=first.file_type,
                subject_id=model_text(_subject_of(first.sample or name, record), NAME_LIMIT),
                sample_id=sample,
                name=name,
                description=description,
                reference_arn=reference_arn if first.file_type != "FASTQ" else None,
                tags=tags,
            )
        )
    return sources


def _canonical(source: ReadSetSource) -> str:
    return json.dumps(
        {
            "files": list(source.files),
            "file_type": source.file_type,
            "subject_id": source.subject_id,
            "sample_id": source.sample_id,
            "name": source.name,
            "description": source.description,
            "reference_arn": source.reference_arn,
            "tags": dict(source.tags),
        },
        sort_keys=True,
        ensure_ascii=True,
    )


def import_client_token(experiment_id: str, sources: Sequence[ReadSetSource], attempt: int = 0) -> str:
    """A client token that is the same whenever the same experiment imports the same sources.

    Retrying a start with it returns the job already started instead of
    importing every file twice. The sources are hashed in sorted order, so a
    reordered retry keeps the token, and the service, seeing the same token with
    differently ordered sources, refuses it rather than importing twice. The
    token (at most 127 characters of the model's text pattern) keeps the
    experiment id readable, clipped, and a digest of everything sent; a later
    ``attempt`` after a failed job gets a token of its own (``-r<attempt>``).
    """
    content = json.dumps([experiment_id, sorted(_canonical(source) for source in sources)], ensure_ascii=True)
    digest = hashlib.sha256(content.encode("utf-8")).hexdigest()[:40]
    suffix = f"-r{attempt}" if attempt else ""
    token = f"labmesh-{model_text(experiment_id, 64)}-{digest}"
    return token[: CLIENT_TOKEN_LIMIT - len(suffix)] + suffix


def import_read_sets(
    store: SequenceStore,
    experiment_id: str,
    sources: Sequence[ReadSetSource],
    *,
    wait: Callable[[str], ImportResult],
    max_attempts: int = MAX_IMPORT_ATTEMPTS,
) -> ImportResult:
    """Start the import of ``sources`` (or find it started) and wait for its outcome.

    Tokens make starts idempotent, which has a catch: after a job failed, the
    same token keeps returning that failed job. So a job that is already over
    and failed when it is started is taken for an earlier attempt's, and the
    next attempt's token starts a fresh job; tokens are tried in order, so a
    rerun finds every earlier attempt again instead of starting twice. After
    ``max_attempts`` failed jobs the last outcome is returned for a person to judge.
    """
    for attempt in range(max_attempts):
        job_id = store.start_import(sources, client_token=import_client_token(experiment_id, sources, attempt))
        status = store.import_status(job_id)
        if status.finished and status.failed and attempt + 1 < max_attempts:
            continue
        return status if status.finished else wait(job_id)
    raise ValueError("max_attempts must be at least 1")


def read_set_metadata(result: ImportResult, *, key_of: Callable[[str], str] | None = None) -> dict[str, str]:
    """Each imported file (its URI, or ``key_of(uri)``) mapped to its read set id; failed sources are left out."""
    metadata: dict[str, str] = {}
    for read_set in result.read_sets:
        if read_set.read_set_id is None:
            continue
        for uri in read_set.files:
            metadata[key_of(uri) if key_of else uri] = read_set.read_set_id
    return metadata


READ_SET_METADATA = "healthomics_read_set_id"
"""The manifest metadata key holding a file's read set id once it is imported."""


@dataclass(frozen=True)
class ImportPolicy:
    """Which experiments take part, what BAM/CRAM are aligned to, and how long an import job is waited for."""

    platforms: tuple[str, ...]
    reference_arn: str | None
    timeout_seconds: float
    poll_seconds: float

    def takes_part(self, record: ExperimentRecord) -> bool:
        """An experiment on one of the platforms (all, if none are listed), or whose record says ``healthomics``."""
        if str(record.custom.get("healthomics", "")).lower() in {"true", "1", "yes"}:
            return True
        if not self.platforms:
            return True
        platform = (record.platform or "").lower()
        return any(wanted.lower() in platform for wanted in self.platforms)


@dataclass(frozen=True)
class ReadSetImport:
    """What importing an experiment's raw files did: the jobs, each file's read set, and the files that failed."""

    job_ids: tuple[str, ...]
    imported: dict[str, str]
    problems: tuple[str, ...]


def with_read_sets(manifest: Manifest, read_sets: Mapping[str, str]) -> Manifest:
    """``manifest`` with each imported file's read set id in its metadata."""
    entries = [
        replace(entry, metadata={**entry.metadata, READ_SET_METADATA: read_sets[entry.key]})
        if entry.key in read_sets
        else entry
        for entry in manifest.entries
    ]
    return Manifest.build(manifest.experiment_id, manifest.zone, entries)


def import_experiment(
    store: SequenceStore,
    manifest: Manifest,
    record: ExperimentRecord,
    policy: ImportPolicy,
    *,
    uri_of: Callable[[str], str],
    on_job: Callable[[str, int, str], None] = lambda job_id, sources, status: None,
) -> ReadSetImport:
    """Import the raw files of ``manifest`` not imported yet, a job per 100 sources, waiting for each.

    Files already carrying a read set id are left out, so running it again
    imports nothing twice. ``on_job`` hears of each job as it ends (its id,
    source count and status).
    """
    pending = Manifest.build(
        manifest.experiment_id, manifest.zone, [e for e in manifest.entries if READ_SET_METADATA not in e.metadata]
    )
    key_of = {uri_of(entry.key): entry.key for entry in manifest.entries}
    sources = plan_read_sets(pending, record, uri_of, reference_arn=policy.reference_arn)
    job_ids: list[str] = []
    imported: dict[str, str] = {}
    problems: list[str] = []
    # A job takes at most 100 sources: a full plate goes in several jobs, each with its own token.
    for start in range(0, len(sources), MAX_SOURCES_PER_JOB):
        chunk = sources[start : start + MAX_SOURCES_PER_JOB]
        result = import_read_sets(
            store,
            manifest.experiment_id,
            chunk,
            wait=lambda job_id: store.wait_for_import(
                job_id, timeout_seconds=policy.timeout_seconds, poll_seconds=policy.poll_seconds
            ),
        )
        job_ids.append(result.job_id)
        on_job(result.job_id, len(chunk), result.status)
        imported.update(read_set_metadata(result, key_of=key_of.__getitem__))
        problems += [
            f"{', '.join(rs.files)}: {rs.status} {rs.message}" for rs in result.read_sets if not rs.read_set_id
        ]
    return ReadSetImport(tuple(job_ids), imported, tuple(problems))
