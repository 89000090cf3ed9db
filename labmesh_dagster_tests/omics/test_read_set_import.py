"""Each file goes into the sequence store once, whatever crashes: the journal of jobs, the tokens, the retries.

Pinned here, against the fake held to the omics model: a job is journaled in
the raw zone as soon as it is started; a run after a crash that followed a
partly failed job (COMPLETED_WITH_FAILURES, the ids never recorded) takes
the read sets the job made and starts a job for the failed sources only; a run
after a crash while waiting waits for the same job; a crash between the start
and the journal finds the job by its client token; a finished job is found
again, not restarted; a failed source is sent again by later runs, each time
in a job of its own, up to three failed jobs, then left with the service's
last message; and a job whose read sets are all in the manifest is forgotten.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from labmesh_dagster.connectors.omics import ImportResult, ReadSetSource
from labmesh_dagster.connectors.omics.healthomics import HealthOmicsSequenceStore
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.experiment import ExperimentRecord, Sample
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.steps.read_set_import import (
    READ_SET_METADATA,
    ImportPolicy,
    forget_recorded_jobs,
    import_client_token,
    import_experiment,
    import_read_sets,
    with_read_sets,
)
from labmesh_dagster.steps.read_set_journal import ImportJournal, JournaledJob
from labmesh_dagster_tests.omics.fake_omics import FakeOmicsClient

STORE_ID = "1234567890"
ROLE = "arn:aws:iam::123456789012:role/labmesh-omics-import"
R1 = "s3://labmesh-raw/EXP-1/run1/S1_R1.fastq.gz"
R2 = "s3://labmesh-raw/EXP-1/run1/S1_R2.fastq.gz"
BAD = "s3://labmesh-raw/EXP-1/run1/S2.fastq.gz"
TAGS = {"experimentId": "EXP-1", "labmesh": "raw"}


def source(files: tuple[str, ...], sample: str) -> ReadSetSource:
    return ReadSetSource(files=files, file_type="FASTQ", subject_id=sample, sample_id=sample, name=sample, tags=TAGS)


SOURCES = [source((R1, R2), "S1"), source((BAD,), "S2")]


class WorkerKilled(Exception):
    """Stands in for the run's process dying: nothing after it happens."""


def store_for(client: FakeOmicsClient) -> HealthOmicsSequenceStore:
    return HealthOmicsSequenceStore(client, sequence_store_id=STORE_ID, role_arn=ROLE)


def waiting(store: HealthOmicsSequenceStore) -> Callable[[str], ImportResult]:
    return lambda job_id: store.wait_for_import(job_id, timeout_seconds=600, poll_seconds=30, sleep=lambda _: None)


def dying_after(wait: Callable[[str], ImportResult]) -> Callable[[str], ImportResult]:
    """A wait that sees the job end, then dies before anyone hears of its read sets."""

    def wait_and_die(job_id: str) -> ImportResult:
        wait(job_id)
        raise WorkerKilled(job_id)

    return wait_and_die


@pytest.fixture
def journal(tmp_path: Path) -> ImportJournal:
    return ImportJournal(LocalObjectStore(tmp_path / "store"), "EXP-1", STORE_ID)


def test_a_crash_after_a_partly_failed_job_reimports_only_the_failed_sources(journal: ImportJournal) -> None:
    client = FakeOmicsClient(polls_to_finish=2, failures={BAD: "Invalid FASTQ header"})
    store = store_for(client)
    with pytest.raises(WorkerKilled):
        import_read_sets(store, journal, "EXP-1", SOURCES, wait=dying_after(waiting(store)))
    [first_job] = client.jobs

    outcome = import_read_sets(store, journal, "EXP-1", SOURCES, wait=waiting(store))

    assert client.started_sources() == [[R1, BAD], [BAD]]
    good, bad = outcome.read_sets
    assert good.files == (R1, R2) and good.read_set_id == client.jobs[first_job].read_set_ids[0]
    assert bad.read_set_id is None and bad.message == "Invalid FASTQ header"
    assert [job.attempt for job in journal.jobs()] == [0, 1]


def test_a_crash_while_waiting_waits_for_the_same_job_next_time(journal: ImportJournal) -> None:
    client = FakeOmicsClient(polls_to_finish=3)
    store = store_for(client)

    def die_waiting(job_id: str) -> ImportResult:
        raise WorkerKilled(job_id)

    with pytest.raises(WorkerKilled):
        import_read_sets(store, journal, "EXP-1", SOURCES, wait=die_waiting)
    outcome = import_read_sets(store, journal, "EXP-1", SOURCES, wait=waiting(store))

    assert len(client.jobs) == 1
    assert all(read_set.read_set_id for read_set in outcome.read_sets)


def test_a_crash_between_the_start_and_the_journal_finds_the_job_by_its_token(journal: ImportJournal) -> None:
    """The token depends on the files and the journal, which the crash left as they were."""
    client = FakeOmicsClient(polls_to_finish=1)
    store = store_for(client)
    record = journal.record

    def die_recording(job: JournaledJob) -> None:
        raise WorkerKilled(job.job_id)

    journal.record = die_recording  # type: ignore[method-assign]
    with pytest.raises(WorkerKilled):
        import_read_sets(store, journal, "EXP-1", SOURCES, wait=waiting(store))
    journal.record = record  # type: ignore[method-assign]

    outcome = import_read_sets(store, journal, "EXP-1", SOURCES, wait=waiting(store))

    starts = [params["clientToken"] for name, params in client.calls if name == "StartReadSetImportJob"]
    assert starts == [import_client_token("EXP-1", SOURCES)] * 2
    assert len(client.jobs) == 1 and all(read_set.read_set_id for read_set in outcome.read_sets)


def test_a_job_that_completed_is_found_again_not_restarted(journal: ImportJournal) -> None:
    client = FakeOmicsClient(polls_to_finish=1)
    store = store_for(client)

    first = import_read_sets(store, journal, "EXP-1", SOURCES, wait=waiting(store))
    again = import_read_sets(store, journal, "EXP-1", SOURCES, wait=waiting(store))

    assert again == first and len(client.jobs) == 1
    assert [name for name, _ in client.calls].count("StartReadSetImportJob") == 1


def test_a_failed_source_is_sent_again_by_later_runs_up_to_three_failed_jobs(journal: ImportJournal) -> None:
    """A failure this run watched is not retried at once; one found over is, in a job under a token of its own."""
    client = FakeOmicsClient(polls_to_finish=1, failures={BAD: "Invalid FASTQ header"})
    store = store_for(client)

    runs = [import_read_sets(store, journal, "EXP-1", SOURCES, wait=waiting(store)) for _ in range(5)]

    assert client.started_sources() == [[R1, BAD], [BAD], [BAD]]
    tokens = [job.token for job in client.jobs.values()]
    assert tokens[0] == import_client_token("EXP-1", SOURCES) and len(set(tokens)) == 3
    assert tokens[1] == import_client_token("EXP-1", SOURCES[1:], attempt=1)
    left = "failed in 3 import jobs, not sent again; last: Invalid FASTQ header"
    assert [run.failed[0].message for run in runs] == ["Invalid FASTQ header"] * 2 + [left] * 3
    assert all(run.read_sets[0].read_set_id == runs[0].read_sets[0].read_set_id for run in runs)


def test_a_failed_job_is_retried_whole_by_the_next_run(journal: ImportJournal) -> None:
    client = FakeOmicsClient(polls_to_finish=2, job_failure="Access denied to s3://labmesh-raw")
    store = store_for(client)

    first = import_read_sets(store, journal, "EXP-1", SOURCES, wait=waiting(store))
    second = import_read_sets(store, journal, "EXP-1", SOURCES, wait=waiting(store))

    assert client.started_sources() == [[R1, BAD], [R1, BAD]]
    assert first.failed[0].message == second.failed[0].message == "Access denied to s3://labmesh-raw"


def entry(path: str) -> ManifestEntry:
    return ManifestEntry(
        key=f"raw/EXP-1/{path}",
        size=100,
        sha256="0" * 64,
        format="fastq.gz",
        created="2025-01-06T09:00:00+00:00",
        sample_ids=(path.split("_", 1)[0].split(".", 1)[0],),
    )


def uri_of(key: str) -> str:
    return "s3://labmesh-raw/" + key.split("/", 1)[1]


def test_an_experiments_import_after_a_crash_records_every_read_set_and_then_forgets_its_jobs(
    journal: ImportJournal,
) -> None:
    manifest = Manifest.build("EXP-1", "raw", [entry("run1/S1_R1.fastq.gz"), entry("run1/S1_R2.fastq.gz")])
    experiment = ExperimentRecord(id="EXP-1", title="Liver", samples=(Sample("S1"),))
    policy = ImportPolicy(platforms=(), reference_arn=None, timeout_seconds=600, poll_seconds=1e-9)
    client = FakeOmicsClient(polls_to_finish=2)
    store = store_for(client)
    dying = store_for(client)
    dying.wait_for_import = lambda job_id, **_: dying_after(waiting(store))(job_id)  # type: ignore[method-assign]
    with pytest.raises(WorkerKilled):
        import_experiment(dying, journal, manifest, experiment, policy, uri_of=uri_of)

    result = import_experiment(store, journal, manifest, experiment, policy, uri_of=uri_of)
    written = with_read_sets(manifest, result.imported)

    assert len(client.jobs) == 1 and result.problems == ()
    assert {entry.metadata[READ_SET_METADATA] for entry in written.entries} == {
        client.jobs["4000000000"].read_set_ids[0]
    }
    assert forget_recorded_jobs(journal, written, uri_of) == 1 and journal.jobs() == []
    again = import_experiment(store, journal, written, experiment, policy, uri_of=uri_of)
    assert again.imported == {} and len(client.jobs) == 1
