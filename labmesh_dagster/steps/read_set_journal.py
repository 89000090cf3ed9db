"""The read set import jobs an experiment started, kept durably in the raw zone until their read sets are recorded.

An import job runs inside HealthOmics for as long as it takes, whatever becomes
of the run that started it, and the read set ids it makes reach the raw
manifest only when that run publishes. A run that dies in between (killed,
out of time waiting, a failed publish) would leave the next run knowing nothing
of the job, and the next run would import every file again, those already
imported included. So each job is written here the moment
``StartReadSetImportJob`` returns its id, before any waiting; the next run asks
``GetReadSetImportJob`` for the outcome of every job that concerns its files
(the job reports each source's files, status and ``readSetId``), keeps the read
sets made, and sends only what is left.

The job is written after it is started, so a run could still die between the
two. The client token covers that moment: it is derived from the files and from
this journal, both unchanged by a run that died there, so the next start sends
the same token and the service answers with the job already started.

One small object per job (``_labmesh/healthomics-jobs/<store>-<job>.json``)
means no run ever rewrites another's record; a job is forgotten once every
read set it made is in the manifest and it has nothing left to tell.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.errors import LabmeshError, ObjectNotFound
from labmesh_dagster.core.keys import LABMESH_DIR, ObjectKey, Zone, experiment_prefix

JOURNAL_DIR = f"{LABMESH_DIR}/healthomics-jobs"


class JournalError(LabmeshError):
    """A journal object that cannot be read: importing anyway could import its files twice."""


@dataclass(frozen=True)
class JournaledJob:
    """One import job: the store it runs in, its id and token, its place among the experiment's jobs, its sources."""

    sequence_store_id: str
    job_id: str
    client_token: str
    attempt: int
    files: tuple[tuple[str, ...], ...]

    def concerns(self, files: Iterable[tuple[str, ...]]) -> bool:
        return not set(self.files).isdisjoint(files)

    def to_json(self) -> bytes:
        data = {
            "sequence_store_id": self.sequence_store_id,
            "job_id": self.job_id,
            "client_token": self.client_token,
            "attempt": self.attempt,
            "files": [list(files) for files in self.files],
        }
        return json.dumps(data, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> JournaledJob:
        entry = json.loads(data)
        return cls(
            sequence_store_id=str(entry["sequence_store_id"]),
            job_id=str(entry["job_id"]),
            client_token=str(entry["client_token"]),
            attempt=int(entry["attempt"]),
            files=tuple(tuple(str(uri) for uri in files) for files in entry["files"]),
        )


class ImportJournal:
    """The jobs of one experiment in one sequence store, as objects under its raw folder."""

    def __init__(self, store: ObjectStore, experiment_id: str, sequence_store_id: str) -> None:
        self.store = store
        self.experiment_id = experiment_id
        self.sequence_store_id = sequence_store_id

    def _key(self, job_id: str) -> ObjectKey:
        name = f"{JOURNAL_DIR}/{self.sequence_store_id}-{job_id}.json"
        return ObjectKey.for_experiment(Zone.RAW, self.experiment_id, name)

    def jobs(self) -> list[JournaledJob]:
        """This store's jobs in the order they were started (another store's are not this one's to ask about)."""
        jobs = []
        prefix = experiment_prefix(self.experiment_id) + JOURNAL_DIR + "/" + self.sequence_store_id + "-"
        for info in self.store.list(Zone.RAW, prefix):
            try:
                job = JournaledJob.from_json(self.store.read_bytes(info.key))
            except ObjectNotFound:
                continue  # forgotten by a run that finished meanwhile
            except (ValueError, KeyError, TypeError) as exc:
                raise JournalError(
                    f"{info.key}: unreadable record of a HealthOmics import job ({exc}); no import is started "
                    "until it is repaired or removed, since its files might otherwise be imported twice"
                ) from exc
            if job.sequence_store_id == self.sequence_store_id:
                jobs.append(job)
        return sorted(jobs, key=lambda job: (job.attempt, job.job_id))

    def record(self, job: JournaledJob) -> None:
        self.store.put(self._key(job.job_id), job.to_json())

    def forget(self, job_ids: Iterable[str]) -> int:
        forgotten = 0
        for job_id in job_ids:
            self.store.delete(self._key(job_id))
            forgotten += 1
        return forgotten
