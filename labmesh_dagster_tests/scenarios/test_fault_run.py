"""A bad night: 208 objects through S3 (moto's server, SQS events) and eLabFTW, both answering with faults.

Contract: with 503, 500, 429, timeouts, lost responses, 409 and spurious 412
from S3, 503/429/500 and timeouts from eLabFTW, every S3 event and ELN event delivered
again out of order, NFD-normalised names and keys of S3's full 1,024 bytes,
the lab left to its sensors (and its clock moved on, as a night would) ends
with every landed object in raw exactly once, byte for byte, cataloged and
checksum-verified: 0 lost and 0 duplicated, counted and printed.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from labmesh_dagster.connectors.aws import make_client
from labmesh_dagster.connectors.eln.base import ElnEvent
from labmesh_dagster.connectors.eln.inbox import SqliteInbox
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.steps.landing import list_quarantine
from labmesh_dagster.steps.unfinished_work import list_pending
from labmesh_dagster_tests.aws_recording import RecordingClients
from labmesh_dagster_tests.conftest import Lab, aws_settings
from labmesh_dagster_tests.eln.elabftw_server import API_KEY, FakeElabFtw
from labmesh_dagster_tests.s3_fault_plan import S3FaultPlan

EXPERIMENTS = [f"FLT-{number:02d}" for number in range(1, 9)]
FILES_PER_EXPERIMENT = 26
SENSORS = ("eln_sensor", "landing_sensor", "landing_retry_sensor", "unfinished_work_sensor")
S3_FAULTS = {
    "503 SlowDown": 8,
    "500 InternalError": 4,
    "429 TooManyRequests": 4,
    "timeout before sending": 4,
    "response lost after the work was done": 6,
    "409 OperationAborted": 6,
    "412 PreconditionFailed": 3,
}


class FaultyClients(RecordingClients):
    """moto's S3 behind a fault plan; SQS kept clean so that events are only ever repeated, never lost."""

    def __init__(self, plan: S3FaultPlan) -> None:
        super().__init__()
        self.plan = plan

    def __call__(self, service: str, connection: object) -> object:
        client = super().__call__(service, connection)
        if service == "s3":
            client.meta.events.register("before-send.s3", self.plan)  # type: ignore[attr-defined]
        return client


def names(experiment_id: str) -> list[str]:
    """Files an instrument run writes, with a decomposed (NFD) name and one key of S3's full 1,024 bytes."""
    files = [f"run1/{experiment_id}_S{n}_L001_R{1 + n % 2}_001.fastq" for n in range(FILES_PER_EXPERIMENT - 2)]
    files.append(unicodedata.normalize("NFD", "notes/échantillon-ß-Å.csv"))
    prefix = f"{experiment_id}/deep/"
    files.append("deep/" + "/".join(["d" * 200] * 4) + "/" + "x" * (1024 - len(prefix) - 4 * 201 - 4) + ".txt")
    assert len((experiment_id + "/" + files[-1]).encode()) == 1024
    return files


def content(experiment_id: str, name: str) -> bytes:
    if name.endswith(".fastq"):
        read = (
            hashlib.sha256(f"{experiment_id}/{name}".encode())
            .hexdigest()[:24]
            .upper()
            .translate(str.maketrans("0123456789ABCDEF", "ACGTACGTACGTACGT"))
        )
        return f"@M1:7:FC:1:1:1:1 1:N:0:1\n{read}\n+\n{'I' * len(read)}\n".encode()
    return f"{experiment_id},{name}\n".encode()


@pytest.mark.slow
def test_a_night_of_faults_loses_nothing_and_duplicates_nothing(
    tmp_path: Path,
    moto_endpoint: str,
    s3_buckets: dict[str, str],
    queues: dict[str, str],
    instance: dg.DagsterInstance,
    elabftw: FakeElabFtw,
) -> None:
    sqs = make_client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    queue = queues["landing"]
    plan = S3FaultPlan(seed=12, rate=0.04, budget=S3_FAULTS)
    settings = aws_settings(
        tmp_path / "home",
        moto_endpoint,
        s3_buckets,
        LABMESH_SQS_LANDING_QUEUE_URL=queue,
        LABMESH_ELN="elabftw",
        LABMESH_ELABFTW_URL=elabftw.url,
        LABMESH_ELABFTW_API_KEY=API_KEY,
        LABMESH_ELN_TIMEOUT_SECONDS="0.5",
    )
    lab = Lab(settings, instance, FaultyClients(plan))
    entries = {
        experiment_id: elabftw.add_experiment(
            f"Night run {experiment_id}",
            extra_fields={
                "Experiment ID": {"type": "text", "value": experiment_id},
                "Samples": {"type": "text", "value": "S1, S2"},
            },
        )
        for experiment_id in EXPERIMENTS
    }
    elabftw.fail(503, times=3)
    elabftw.fail(429, times=2, headers={"Retry-After": "0"})
    elabftw.fail(500, times=1, skip=4)
    elabftw.slow(1.0, times=2)  # past the request's time limit: timed out, and retried
    inbox = SqliteInbox(settings.inbox_path)
    for experiment_id in reversed(EXPERIMENTS):  # out of order, and twice
        for copy in range(2):
            inbox.put(ElnEvent("elabftw", f"evt-{experiment_id}-{copy}", str(entries[experiment_id]), "changed", ""))

    failed_ticks: Counter[str] = Counter()

    def night(rounds: int) -> None:
        for _ in range(rounds):
            for sensor in SENSORS:
                try:
                    lab.run_sensor(sensor, raise_on_error=False)
                except Exception:  # a failed tick, as the daemon records it: its cursor stays, the next tick retries
                    failed_ticks[sensor] += 1
            lab.clock.advance(3700)  # an hour passes: retry periods and pauses end

    night(2)
    assert sorted(summary.experiment_id for summary in lab.catalog.summaries()) == EXPERIMENTS
    landed: dict[str, bytes] = {}
    for experiment_id in EXPERIMENTS:
        for name in names(experiment_id):
            landed[str(lab.land(experiment_id, name, content(experiment_id, name)).in_zone(Zone.RAW))] = content(
                experiment_id, name
            )
    first_deliveries = list(lab.clients.received) if isinstance(lab.clients, RecordingClients) else []
    night(1)
    for queue_url, body in reversed(first_deliveries + list(lab.clients.received)):  # again, out of order
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    night(5)
    plan.enabled = False
    night(1)

    raw = Counter(
        str(info.key) for info in lab.store.list(Zone.RAW) if not info.key.is_labmesh_internal and "/" in info.key.path
    )
    cataloged = Counter(
        file.key
        for experiment_id in EXPERIMENTS
        if (d := lab.catalog.get_dataset(experiment_id, Zone.RAW))
        for file in d.files
    )
    lost = sorted(set(landed) - set(raw))
    duplicated = sorted({key for key, n in raw.items() if n > 1} | (set(raw) - set(landed)))
    uncataloged = sorted(set(landed) - set(cataloged)) + sorted(k for k, n in cataloged.items() if n > 1)
    corrupt = sorted(key for key in landed if key in raw and lab.store.read_bytes(ObjectKey.parse(key)) != landed[key])
    print(
        f"fault run: {len(landed)} objects landed; S3 faults injected {dict(plan.injected)}; "
        f"ELN faults 503x3 429x2 500x1 timeout x2; failed sensor ticks {dict(failed_ticks)}; "
        f"lost {len(lost)}, duplicated {len(duplicated)}, uncataloged {len(uncataloged)}, corrupt {len(corrupt)}"
    )
    assert len(landed) >= 200 and sum(plan.injected.values()) >= 20
    assert all(fault.times == 0 for fault in elabftw.faults), "every ELN fault was met"
    assert (lost, duplicated, uncataloged, corrupt) == ([], [], [], [])
    assert list(lab.store.list(Zone.LANDING)) == [] or all(
        info.key.first_segment.startswith("_") for info in lab.store.list(Zone.LANDING)
    )
    assert list_quarantine(lab.store) == [] and list(list_pending(lab.store)) == []
    for experiment_id in EXPERIMENTS:
        [check] = [
            e
            for e in lab.materialize("raw_dataset", partition=experiment_id).get_asset_check_evaluations()
            if e.check_name == "raw_files_match_landing_checksums"
        ]
        assert check.passed, experiment_id
