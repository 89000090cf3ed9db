"""Importing an experiment's raw sequencing files into a sequence store, each file once, whatever crashes.

Which files go in, and as what, is `read_set_plan`'s. This module runs the
jobs: it checks the source buckets (`SequenceStore.check_sources`: the bucket
must be in the store's Region), starts a job per 100 sources
(StartReadSetImportJob takes 1 to 100), waits for it, and reads each source's
read set id and status from the job (GetReadSetImportJob).

Nothing is imported twice. Every job started is written to the experiment's
`read_set_journal` before it is waited for, and every run first asks about the
journaled jobs that concern its files: a job still running is waited for, not
started again; a job that finished gives its read sets, so a run that follows
a crash after a partly failed job (COMPLETED_WITH_FAILURES, the ids never
recorded) sends only the sources that failed. Client tokens make the start
itself idempotent (see `import_client_token`).

A source that fails is sent again by a later materialization, in a job of its
own, up to `MAX_IMPORT_ATTEMPTS` failed jobs; then it is left for a person,
with the service's last message. A failure this run watched happen is not sent
again by the same run (a bad file fails the same way twice in a row); a
failure found already over (an earlier run's) is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from labmesh_dagster.connectors.omics.base import (
    MAX_SOURCES_PER_JOB,
    ImportedReadSet,
    ImportResult,
    OmicsImportError,
    OmicsSourceError,
    ReadSetSource,
    SequenceStore,
    SourceCheck,
)
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.steps.read_set_journal import ImportJournal, JournaledJob
from labmesh_dagster.steps.read_set_plan import SkippedFile, model_text, plan_read_sets

# ClientToken: 1-127 characters of the model's text pattern.
CLIENT_TOKEN_LIMIT = 127
# Failed import jobs a source is sent in, over all materializations, before a person is asked to look.
MAX_IMPORT_ATTEMPTS = 3
# Words of a failure message that may mean the role could not read the file (the service does not document them).
_ACCESS_WORDS = ("access", "denied", "permission", "forbidden", "kms", "decrypt", "not authorized")


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
    """A client token that is the same whenever the same experiment sends the same sources at the same attempt.

    StartReadSetImportJob's ``clientToken`` "ensure[s] that jobs don't run
    multiple times" (HealthOmics API Reference): a start retried with it, by
    botocore or by a run that died before journaling the job, returns the job
    already started. The sources are hashed in sorted order, so a reordered
    retry keeps the token. ``attempt`` (how many jobs the experiment's journal
    holds) gives a retry after a finished job a token of its own, since the
    old one would only name the old job. The token keeps the experiment id
    readable, clipped, with a digest of everything sent (``-r<attempt>``).
    """
    content = json.dumps([experiment_id, sorted(_canonical(source) for source in sources)], ensure_ascii=True)
    digest = hashlib.sha256(content.encode("utf-8")).hexdigest()[:40]
    suffix = f"-r{attempt}" if attempt else ""
    token = f"labmesh-{model_text(experiment_id, 64)}-{digest}"
    return token[: CLIENT_TOKEN_LIMIT - len(suffix)] + suffix


@dataclass(frozen=True)
class ImportOutcome:
    """Every source's outcome over all the jobs that concern it, in the order the sources were given."""

    job_ids: tuple[str, ...]
    read_sets: tuple[ImportedReadSet, ...]

    @property
    def failed(self) -> tuple[ImportedReadSet, ...]:
        return tuple(read_set for read_set in self.read_sets if read_set.read_set_id is None)


def _failed_in(job: ImportResult, files: tuple[str, ...]) -> ImportedReadSet | None:
    """The source's outcome in a finished job it did not import in (a cancelled job failed nothing)."""
    if job.status == "CANCELLED":
        return None
    return next((item for item in job.read_sets if item.files == files and item.read_set_id is None), None)


def _outcome(
    sources: Sequence[ReadSetSource], jobs: Mapping[str, ImportResult], max_attempts: int
) -> tuple[ImportOutcome, dict[tuple[str, ...], int]]:
    """Each source's read set (from any job that made it) or last failure; and how often each failed."""
    results: list[ImportedReadSet] = []
    failures: dict[tuple[str, ...], int] = {}
    for source in sources:
        made = [item for job in jobs.values() for item in job.read_sets if item.files == source.files]
        imported = next((item for item in made if item.read_set_id is not None), None)
        failed = []
        for job in jobs.values():
            if job.finished and (item := _failed_in(job, source.files)) is not None:
                failed.append(item)
        failures[source.files] = len(failed)
        if imported is not None:
            results.append(imported)
        elif failed and len(failed) >= max_attempts:
            last = failed[-1]
            message = f"failed in {len(failed)} import jobs, not sent again; last: {last.message or last.status}"
            results.append(replace(last, message=message))
        elif made:
            results.append(made[-1])
        else:
            results.append(ImportedReadSet(source.files, None, "NOT_STARTED"))
    return ImportOutcome(tuple(jobs), tuple(results)), failures


def import_read_sets(
    store: SequenceStore,
    journal: ImportJournal,
    experiment_id: str,
    sources: Sequence[ReadSetSource],
    *,
    wait: Callable[[str], ImportResult],
    max_attempts: int = MAX_IMPORT_ATTEMPTS,
    on_job: Callable[[ImportResult], None] = lambda result: None,
) -> ImportOutcome:
    """Import ``sources`` (at most 100) once: learn from the journaled jobs first, then start what is left.

    Each round asks about the journaled jobs that concern these sources (a
    finished one only once), waits for any still running, and starts one job
    for the sources that no job imported, that failed fewer than
    ``max_attempts`` times, and whose failure this run did not see happen (in
    a job it started or waited for). The job is journaled, and the next round
    waits for it. ``on_job`` hears of every job as it is seen finished.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if len(sources) > MAX_SOURCES_PER_JOB:
        raise ValueError(f"at most {MAX_SOURCES_PER_JOB} sources go in one job, got {len(sources)}")
    wanted = [source.files for source in sources]
    jobs: dict[str, ImportResult] = {}
    started: set[str] = set()
    watched: set[tuple[str, ...]] = set()
    while True:
        journaled = journal.jobs()
        for entry in journaled:
            known = jobs.get(entry.job_id)
            if not entry.concerns(wanted) or (known is not None and known.finished):
                continue
            status = store.import_status(entry.job_id)
            if not status.finished:
                status = wait(entry.job_id)
                started.add(entry.job_id)
            if entry.job_id in started:
                watched |= {item.files for item in status.read_sets if item.read_set_id is None}
            jobs[entry.job_id] = status
            on_job(status)
        outcome, failures = _outcome(sources, jobs, max_attempts)
        imported = {item.files for item in outcome.read_sets if item.read_set_id is not None}
        to_send = [
            source
            for source in sources
            if source.files not in imported and source.files not in watched and failures[source.files] < max_attempts
        ]
        if not to_send:
            return outcome
        # Past every journaled attempt, so the token names no job the journal holds: the old token would only
        # answer with its finished job. (A job is forgotten only once all its files are recorded, never resent.)
        attempt = max((entry.attempt for entry in journaled), default=-1) + 1
        token = import_client_token(experiment_id, to_send, attempt=attempt)
        job_id = store.start_import(to_send, client_token=token)
        started.add(job_id)
        if job_id in jobs and jobs[job_id].finished:
            raise OmicsImportError(
                f"StartReadSetImportJob answered token {token} with job {job_id}, which had already finished: "
                "no new job was started for " + ", ".join(uri for source in to_send for uri in source.files)
            )
        journal.record(
            JournaledJob(
                sequence_store_id=journal.sequence_store_id,
                job_id=job_id,
                client_token=token,
                attempt=attempt,
                files=tuple(source.files for source in to_send),
            )
        )


def read_set_metadata(
    result: ImportResult | ImportOutcome, *, key_of: Callable[[str], str] | None = None
) -> dict[str, str]:
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
    max_attempts: int = MAX_IMPORT_ATTEMPTS

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
    """What importing an experiment's raw files did and found.

    ``imported`` maps each file imported by the jobs to its read set id;
    ``problems`` names each source that has none, with the service's status and
    message; ``skipped`` names each sequencing file not sent, with its reason;
    ``requirements`` and ``unchecked`` are the source check's (`SourceCheck`).
    """

    job_ids: tuple[str, ...]
    imported: dict[str, str]
    problems: tuple[str, ...]
    skipped: tuple[SkippedFile, ...] = ()
    requirements: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()


def with_read_sets(manifest: Manifest, read_sets: Mapping[str, str]) -> Manifest:
    """``manifest`` with each imported file's read set id in its metadata."""
    entries = [
        replace(entry, metadata={**entry.metadata, READ_SET_METADATA: read_sets[entry.key]})
        if entry.key in read_sets
        else entry
        for entry in manifest.entries
    ]
    return Manifest.build(manifest.experiment_id, manifest.zone, entries)


def _problem(read_set: ImportedReadSet, check: SourceCheck) -> str:
    """A failed source named with the service's status and message, and the KMS requirement if it may explain it."""
    text = f"{', '.join(read_set.files)}: {read_set.status} {read_set.message}".rstrip()
    if check.requirements and any(word in read_set.message.lower() for word in _ACCESS_WORDS):
        text += " (" + "; ".join(check.requirements) + ")"
    return text


def import_experiment(
    store: SequenceStore,
    journal: ImportJournal,
    manifest: Manifest,
    record: ExperimentRecord,
    policy: ImportPolicy,
    *,
    uri_of: Callable[[str], str],
    on_job: Callable[[str, int, str], None] = lambda job_id, sources, status: None,
) -> ReadSetImport:
    """Import the raw files of ``manifest`` not imported yet, a job per 100 sources, waiting for each.

    Files already carrying a read set id are left out, and the journal gives
    back the read sets of jobs whose run died before recording them, so
    running it again imports nothing twice. A source bucket the store cannot
    import from raises `OmicsSourceError` before any job starts. ``on_job``
    hears of each job as it ends (its id, source count and status).
    """
    pending = Manifest.build(
        manifest.experiment_id, manifest.zone, [e for e in manifest.entries if READ_SET_METADATA not in e.metadata]
    )
    key_of = {uri_of(entry.key): entry.key for entry in manifest.entries}
    plan = plan_read_sets(pending, record, uri_of, reference_arn=policy.reference_arn)
    check = store.check_sources([uri for source in plan.sources for uri in source.files])
    if check.problems:
        raise OmicsSourceError(f"experiment {manifest.experiment_id}: no import started: " + "; ".join(check.problems))
    job_ids: list[str] = []
    imported: dict[str, str] = {}
    problems: list[str] = []
    # A job takes at most 100 sources: a full plate goes in several jobs, each with its own token.
    for start in range(0, len(plan.sources), MAX_SOURCES_PER_JOB):
        chunk = plan.sources[start : start + MAX_SOURCES_PER_JOB]
        outcome = import_read_sets(
            store,
            journal,
            manifest.experiment_id,
            chunk,
            wait=lambda job_id: store.wait_for_import(
                job_id, timeout_seconds=policy.timeout_seconds, poll_seconds=policy.poll_seconds
            ),
            max_attempts=policy.max_attempts,
            on_job=lambda result: on_job(result.job_id, len(result.read_sets), result.status),
        )
        job_ids += [job_id for job_id in outcome.job_ids if job_id not in job_ids]
        imported.update(read_set_metadata(outcome, key_of=key_of.__getitem__))
        problems += [_problem(read_set, check) for read_set in outcome.failed]
    return ReadSetImport(tuple(job_ids), imported, tuple(problems), plan.skipped, check.requirements, check.unchecked)


def forget_recorded_jobs(journal: ImportJournal, manifest: Manifest, uri_of: Callable[[str], str]) -> int:
    """Forget the journaled jobs all of whose files now carry a read set id in the written manifest."""
    recorded = {uri_of(entry.key) for entry in manifest.entries if READ_SET_METADATA in entry.metadata}
    done = [job.job_id for job in journal.jobs() if all(uri in recorded for files in job.files for uri in files)]
    return journal.forget(done)
