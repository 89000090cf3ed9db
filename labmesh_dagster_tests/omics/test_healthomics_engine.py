"""A pipeline invocation runs as one HealthOmics workflow run, and its outputs arrive staged with checksums.

Pinned here, with S3 served by moto (the zone buckets and the run's output
bucket) and HealthOmics by the model-bound fake: the pipeline's parameters
become the inputs' ``s3://`` URIs; a completed run's files under
``<outputUri>/<runId>/out/`` are copied below the invocation's staging prefix
with their SHA-256 and size, and nothing is written to the publish prefix;
the result names the run, the StartRun line and the workflow's version; a
failed run is ``failed`` with the service's reason and message and stages
nothing; a start whose response was lost, or a process that restarted in the
middle of waiting and calls again, finds the same run and never starts a
second; a run still going at the timeout is cancelled and ``timed_out``, and
the next materialization starts the next attempt; Ready2Run, run group and
cache settings reach StartRun as written; inputs outside S3 and unknown
placeholders are refused before anything starts.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.connectors.aws import make_client
from labmesh_dagster.connectors.omics.workflows import HealthOmicsWorkflows, request_id_for
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.connectors.store.s3 import S3ObjectStore
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.pipelines.healthomics_engine import HealthOmicsConfigError, run_invocation_on_healthomics
from labmesh_dagster_tests.omics.fake_omics_workflows import FakeOmicsWorkflows, FakeWorkflow

ROLE = "arn:aws:iam::123456789012:role/labmesh-omics-runs"
WORKFLOW = "1234567"
READY2RUN = "9876543"
R1 = b"@r1\nACGT\n+\nIIII\n"
R2 = b"@r1\nTGCA\n+\nIIII\n"


class Moment:
    """A UTC clock for ``started``/``ended`` and a seconds clock for waiting, both moved only by sleeping."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.seconds += seconds

    def clock(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return datetime(2026, 12, 6, 6, 0, tzinfo=UTC) + timedelta(seconds=self.seconds)


def qc_outputs(parameters: Mapping[str, Any]) -> dict[str, bytes]:
    sample = parameters["sample_name"]
    return {
        f"{sample}.fastp.json": b'{"summary": {"before_filtering": {"total_reads": 1}}}',
        f"multiqc_data/{sample}_stats.txt": b"reads\t1\n",
    }


@pytest.fixture
def s3(moto_endpoint: str, aws_environment: None) -> Any:
    return make_client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def output_bucket(s3: Any) -> str:
    name = f"lm-omics-out-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def store(s3: Any, s3_buckets: dict[str, str]) -> S3ObjectStore:
    store = S3ObjectStore(s3, s3_buckets)
    store.put(ObjectKey(Zone.RAW, "EXP-1/fastq/S1_R1.fastq.gz"), R1)
    store.put(ObjectKey(Zone.RAW, "EXP-1/fastq/S1_R2.fastq.gz"), R2)
    return store


def invocation(output_bucket: str, **healthomics: Any) -> dict[str, Any]:
    settings = {
        "workflow_id": WORKFLOW,
        "workflow_type": "PRIVATE",
        "workflow_version_name": "1.0",
        "role_arn": ROLE,
        "output_uri": f"s3://{output_bucket}/runs/",
        "parameters": {"fastq_r1": "{read1}", "fastq_r2": "{read2}", "sample_name": "{name}", "cpus": "{threads}"},
        "run_group_id": None,
        "cache_id": None,
        "cache_behavior": None,
        "storage_type": None,
        "storage_capacity": None,
        "priority": None,
    }
    settings.update(healthomics)
    return {
        "invocation_id": "fastq-qc-3f2a9c1e0b7d4a55",
        "pipeline": {
            "name": "fastq-qc",
            "version": "1",
            "engine": "healthomics",
            "per": "pair",
            "resources": {"cpu": 2, "memory_mib": 2048, "timeout_seconds": 3600},
            "healthomics": settings,
        },
        "experiment_id": "EXP-1",
        "label": "fastq/S1",
        "inputs": [
            {"key": "raw/EXP-1/fastq/S1_R1.fastq.gz", "sha256": hashlib.sha256(R1).hexdigest(), "role": "read1"},
            {"key": "raw/EXP-1/fastq/S1_R2.fastq.gz", "sha256": hashlib.sha256(R2).hexdigest(), "role": "read2"},
        ],
        "staging_prefix": "processed/EXP-1/_labmesh/runs/dagster-run-1/fastq-qc-3f2a9c1e0b7d4a55/",
        "publish_prefix": "processed/EXP-1/fastq-qc/fastq/",
    }


def omics(s3: Any, **options: Any) -> FakeOmicsWorkflows:
    workflows = (
        FakeWorkflow(WORKFLOW, "fastq-qc", versions=("1.0",)),
        FakeWorkflow(READY2RUN, "GATK-BP germline", type="READY2RUN", engine="WDL", versions=("3.0.0",)),
    )
    options.setdefault("outputs", qc_outputs)
    return FakeOmicsWorkflows(workflows=workflows, s3=s3, **options)


def run(
    invocation: dict[str, Any], fake: FakeOmicsWorkflows, store: Any, s3: Any, moment: Moment | None = None, **kw: Any
) -> dict[str, Any]:
    moment = moment or Moment()
    client = HealthOmicsWorkflows(fake, s3_client=s3, max_per_second=1000, sleep=moment.sleep, clock=moment.clock)
    return run_invocation_on_healthomics(invocation, client, store, now=moment.now, **kw)


def test_a_completed_run_has_its_outputs_staged_with_checksums_and_sizes(
    s3: Any, store: S3ObjectStore, output_bucket: str, s3_buckets: dict[str, str]
) -> None:
    fake = omics(s3)
    work = invocation(output_bucket)

    result = run(work, fake, store, s3)

    (run_id,) = fake.started_runs()
    start = fake.calls[0][1]
    assert start["parameters"] == {
        "fastq_r1": f"s3://{s3_buckets['raw']}/EXP-1/fastq/S1_R1.fastq.gz",
        "fastq_r2": f"s3://{s3_buckets['raw']}/EXP-1/fastq/S1_R2.fastq.gz",
        "sample_name": "S1",
        "cpus": 2,
    }
    assert start["requestId"] == request_id_for("EXP-1", "fastq-qc-3f2a9c1e0b7d4a55")
    assert result["status"] == "succeeded" and result["reason"] is None
    assert result["engine"] == "healthomics" and result["engine_run_id"] == run_id
    assert result["command_line"].startswith(f"StartRun workflow={WORKFLOW} type=PRIVATE version=1.0 parameters=")
    assert f"s3://{s3_buckets['raw']}/EXP-1/fastq/S1_R1.fastq.gz" in result["command_line"]
    digest = fake.get_run(id=run_id)["digest"]
    assert result["tool_versions"] == {"fastq-qc": f"1.0 ({digest})"}
    expected = qc_outputs({"sample_name": "S1"})
    staging = work["staging_prefix"]
    assert result["outputs"] == [
        {"name": name, "key": staging + name, "sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}
        for name, content in sorted(expected.items())
    ]
    for output in result["outputs"]:
        assert store.read_bytes(ObjectKey.parse(output["key"])) == expected[output["name"]]
    assert list(store.list(Zone.PROCESSED, "EXP-1/fastq-qc/")) == []
    assert result["started"] == "2026-12-06T06:00:00+00:00" and result["ended"] > result["started"]


def test_a_failed_run_is_failed_with_the_services_reason_and_stages_nothing(
    s3: Any, store: S3ObjectStore, output_bucket: str
) -> None:
    fake = omics(s3, outcome="FAILED", failure_reason="TaskFailed", status_message="Task fastp exited with code 1")

    result = run(invocation(output_bucket), fake, store, s3)

    assert result["status"] == "failed"
    assert (
        result["reason"]
        == f"HealthOmics run {fake.started_runs()[0]} ended FAILED: TaskFailed: Task fastp exited with code 1"
    )
    assert "exited with code 1" in result["stderr_tail"]
    assert result["outputs"] == []
    assert list(store.list(Zone.PROCESSED, "EXP-1/")) == []


def test_a_start_whose_response_was_lost_starts_one_run_only(s3: Any, store: S3ObjectStore, output_bucket: str) -> None:
    fake = omics(s3)
    fake.lose_next_start_response()

    result = run(invocation(output_bucket), fake, store, s3)

    assert fake.call_counts["StartRun"] == 2
    assert fake.started_runs() == [result["engine_run_id"]]
    assert result["status"] == "succeeded"


class Crash(Exception):
    """The process dies while it waits."""


def test_a_process_restarted_while_waiting_finds_the_same_run_and_never_starts_a_second(
    s3: Any, store: S3ObjectStore, output_bucket: str
) -> None:
    fake = omics(s3, polls_to_finish=6)
    work = invocation(output_bucket)

    class Dying(Moment):
        def sleep(self, seconds: float) -> None:
            if seconds >= 1:
                raise Crash
            super().sleep(seconds)

    with pytest.raises(Crash):
        run(work, fake, store, s3, Dying())
    result = run(work, fake, store, s3)

    assert fake.call_counts["StartRun"] == 2
    assert len(fake.started_runs()) == 1
    assert result["status"] == "succeeded" and result["engine_run_id"] == fake.started_runs()[0]


def test_a_run_still_going_at_the_timeout_is_cancelled_and_the_next_try_starts_a_new_attempt(
    s3: Any, store: S3ObjectStore, output_bucket: str
) -> None:
    fake = omics(s3, outcome="NEVER")
    work = invocation(output_bucket)

    result = run(work, fake, store, s3, timeout=600)

    (stuck,) = fake.started_runs()
    assert result["status"] == "timed_out"
    assert ("CancelRun", {"id": stuck}) in fake.calls
    assert result["reason"].startswith(f"HealthOmics run {stuck} had not finished after 600s, so it was cancelled")
    assert result["outputs"] == []

    fake.outcome = "COMPLETED"
    fake.get_run(id=stuck)  # the service finishes stopping it: CANCELLED
    again = run(work, fake, store, s3)

    assert again["status"] == "succeeded"
    assert fake.started_runs() == [stuck, again["engine_run_id"]]
    request_ids = [params["requestId"] for operation, params in fake.calls if operation == "StartRun"]
    assert request_ids == [
        request_id_for("EXP-1", work["invocation_id"]),
        request_id_for("EXP-1", work["invocation_id"]),
        request_id_for("EXP-1", work["invocation_id"], 1),
    ]


def test_ready2run_run_group_and_cache_reach_start_run_as_written(
    s3: Any, store: S3ObjectStore, output_bucket: str
) -> None:
    fake = omics(s3)
    work = invocation(
        output_bucket,
        workflow_id=READY2RUN,
        workflow_type="READY2RUN",
        workflow_version_name="3.0.0",
        run_group_id="5551234",
        cache_id="4441234",
        cache_behavior="CACHE_ON_FAILURE",
        storage_type="DYNAMIC",
        priority=5,
    )

    result = run(work, fake, store, s3)

    start = fake.calls[0][1]
    assert {key: start[key] for key in ("workflowId", "workflowType", "workflowVersionName", "roleArn")} == {
        "workflowId": READY2RUN,
        "workflowType": "READY2RUN",
        "workflowVersionName": "3.0.0",
        "roleArn": ROLE,
    }
    assert (start["runGroupId"], start["cacheId"], start["cacheBehavior"]) == ("5551234", "4441234", "CACHE_ON_FAILURE")
    assert (start["storageType"], start["priority"]) == ("DYNAMIC", 5)
    assert "storageCapacity" not in start
    assert ("GetWorkflow", {"id": READY2RUN, "type": "READY2RUN"}) in fake.calls
    assert "run_group=5551234 cache=4441234/CACHE_ON_FAILURE" in result["command_line"]
    assert list(result["tool_versions"]) == ["GATK-BP germline"]


def test_inputs_outside_s3_and_unknown_placeholders_are_refused_before_anything_starts(
    s3: Any, store: S3ObjectStore, output_bucket: str, tmp_path: Path
) -> None:
    fake = omics(s3)
    local = LocalObjectStore(tmp_path / "zones")

    with pytest.raises(HealthOmicsConfigError, match="not in S3: file://"):
        run(invocation(output_bucket), fake, local, s3)
    with pytest.raises(HealthOmicsConfigError, match=r"no value for \{input_dir\}"):
        run(invocation(output_bucket, parameters={"reads": "{input_dir}"}), fake, store, s3)
    assert fake.calls == []
