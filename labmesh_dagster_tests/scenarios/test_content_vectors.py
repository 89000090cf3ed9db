"""A large delivery is cataloged and searchable by its words at once, and by meaning once the vectors job ran.

Contract: a raw dataset with more new passages than a publish embeds itself
is published without waiting on the model (its words searchable, meaning not
yet); the content_vectors sensor then starts the content_vectors job, whose
run embeds them, after which search by meaning finds the files and the
sensor skips: the index wants nothing more. While a run of the job is queued or running
the sensor starts no second one.
"""

from __future__ import annotations

import dagster as dg

from labmesh_dagster.connectors.search.local import INLINE_VECTORS
from labmesh_dagster.core.passages import SearchMode
from labmesh_dagster.defs.vectors import JOB_NAME
from labmesh_dagster_tests.conftest import Lab

RECORD = {"id": "EXP-V", "title": "Freezer audit", "samples": ["S1"]}
NOTES = INLINE_VECTORS + 8


def delivered(lab: Lab) -> None:
    lab.write_record("exp.yaml", RECORD)
    lab.run_sensor("eln_sensor")
    for number in range(NOTES):
        note = f"Box {number} of the audit was kept at minus eighty degrees Celsius in freezer {number % 4}.\n"
        lab.land("EXP-V", f"notes/box-{number:02}.txt", note.encode())
    assert [run.success for run in lab.run_sensor("landing_sensor")] == [True]


def by_meaning(lab: Lab) -> list[str]:
    hits = lab.ports.content_index().retrieve("how cold was the storage", mode=SearchMode.DENSE, limit=5)
    return [hit.passage.document_id for hit in hits]


def test_a_large_delivery_gets_its_vectors_from_the_vectors_job(lab: Lab) -> None:
    delivered(lab)
    index = lab.ports.content_index()
    assert index.search("freezer")  # cataloged and searchable by words when the run ended
    assert by_meaning(lab) == [] and index.vectors_wanted()

    runs = lab.run_sensor("content_vectors_sensor")

    assert [run.success for run in runs] == [True] and runs[0].dagster_run.job_name == JOB_NAME
    found = by_meaning(lab)
    assert len(found) == 5 and all(key.startswith("raw/EXP-V/notes/box-") for key in found)
    assert not index.vectors_wanted()
    skipped = lab.tick("content_vectors_sensor")
    assert not skipped.run_requests and "every passage has its vector" in str(skipped.skip_reason)


def test_no_second_run_is_started_while_one_is_running(lab: Lab) -> None:
    delivered(lab)
    job = lab.defs.resolve_job_def(JOB_NAME)
    running = lab.instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTED)

    data = lab.tick("content_vectors_sensor")

    assert not data.run_requests and running.run_id in str(data.skip_reason)
