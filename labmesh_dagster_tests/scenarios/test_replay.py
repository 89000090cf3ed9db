"""Replaying every event twice changes nothing (aws profile: S3 events through SQS on moto's server).

Contract: after a lab has registered an experiment from a pushed ELN event,
promoted and processed its files from S3 events and published a final
report, every ELN event and every S3 event message it received is delivered
twice more (the ELN events once with their own ids and once with new ones).
The store's bytes, the catalog (revisions included), the content index and
the ELN are exactly as before. The lineage log may only grow by events of new
runs, each of which starts and ends once; no earlier run gains an event.
"""

from __future__ import annotations

import pytest

from labmesh_dagster.connectors.aws import make_client
from labmesh_dagster.connectors.eln.base import ElnEvent
from labmesh_dagster.connectors.eln.inbox import SqliteInbox
from labmesh_dagster_tests.aws_recording import RecordingClients
from labmesh_dagster_tests.conftest import Lab
from labmesh_dagster_tests.scenarios.lab_state import lab_state, lineage_runs, well_formed_runs

EXPERIMENT = "EXP-R"
RECORD = {"id": EXPERIMENT, "title": "Replayed", "samples": ["S1", "S2"], "platform": "MiSeq"}
FILES = {
    "run1/S1_R1.fastq": b"@M1:1:FC:1:1:1:1 1:N:0:1\nACGTACGT\n+\nIIIIIIII\n",
    "run1/S1_R2.fastq": b"@M1:1:FC:1:1:1:1 2:N:0:1\nTTGCAACG\n+\nIIIIIIII\n",
    "S2.csv": b"sample,value\nS2,1.5\n",
}
SENSORS = ("eln_sensor", "landing_sensor", "final_sensor", "unfinished_work_sensor")


@pytest.fixture
def clients() -> RecordingClients:
    """The aws lab's clients, keeping every SQS message it received."""
    return RecordingClients()


def every_sensor_twice(lab: Lab) -> None:
    for _ in range(2):
        for sensor in SENSORS:
            assert all(run.success for run in lab.run_sensor(sensor))


@pytest.mark.slow
def test_every_event_delivered_twice_more_changes_nothing(aws_lab: Lab, moto_endpoint: str) -> None:
    lab = aws_lab
    clients = lab.clients
    assert isinstance(clients, RecordingClients)
    lab.write_record("exp.yaml", RECORD)
    inbox = SqliteInbox(lab.settings.inbox_path)
    pushed = ElnEvent("folder", "evt-1", EXPERIMENT, "changed", "2026-12-04T10:00:00Z")
    inbox.put(pushed)
    every_sensor_twice(lab)  # registration subscribes the buckets to their queues
    for path, content in FILES.items():
        lab.land(EXPERIMENT, path, content)
    every_sensor_twice(lab)
    assert lab.materialize("processed_dataset", partition=EXPERIMENT).success
    lab.put_final(EXPERIMENT, "report.md", b"# Replay report\nS1 and S2 as expected.\n")
    every_sensor_twice(lab)
    before, runs_before = lab_state(lab, EXPERIMENT), lineage_runs(lab, EXPERIMENT)
    first_pass = list(clients.received)
    assert first_pass, "the first pass received S3 events"
    assert before["catalog"]["datasets"] and before["store"]["landing"] == {}

    for replay in range(2):
        inbox.put(pushed)
        inbox.put(ElnEvent("folder", f"evt-1-again-{replay}", EXPERIMENT, "changed", pushed.occurred_at))
        sqs = make_client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
        for queue_url, body in first_pass:
            sqs.send_message(QueueUrl=queue_url, MessageBody=body)
        every_sensor_twice(lab)

    assert lab_state(lab, EXPERIMENT) == before, "store bytes, catalog, content index and ELN unchanged"
    runs_after = lineage_runs(lab, EXPERIMENT)
    # The lineage log may grow, but only by runs the replay started, each with its START and one end.
    assert {run: runs_after[run] for run in runs_before} == runs_before
    well_formed_runs(lab, EXPERIMENT)
    new_runs = set(runs_after) - set(runs_before)
    assert all(runs_after[run][-1] == "COMPLETE" for run in new_runs)
    print(f"replayed {len(first_pass)} S3 event message(s) and 1 ELN event twice: {len(new_runs)} new lineage run(s)")
