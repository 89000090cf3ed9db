"""ECS and HealthOmics pipelines end to end on the aws profile, through the real Definitions.

A lab on the aws profile (S3 and CloudWatch Logs on moto's server) whose
pipelines file (LABMESH_PIPELINES, written here) has one ``engine: ecs``
pipeline and one ``engine: healthomics`` pipeline, both per FASTQ file. ECS is
`FakeEcsClient`, which runs the container's command (the real
``labmesh_dagster.pipelines.tool_runner``, reading its inputs from and staging
its outputs to moto's S3) as a local process and sends its output to moto's
CloudWatch Logs, where PipesECSClient reads the runner's messages;
HealthOmics is `FakeOmicsWorkflows`, which writes a completed run's outputs to
moto's S3. Both fakes hold every request and response to botocore's models.
Every scenario runs the ELN and landing flow, then ``processed_dataset``.

Pinned:

- Success: each engine's outputs are published in the processed bucket, each
  with ``produced_by`` naming the engine, its run (the task ARN, the
  HealthOmics run id), the pipeline and version, and its input with sha256;
  a receipt per invocation is written, and every check passes. Materializing
  again reuses the receipts: no RunTask, no StartRun.
- A failed run (a tool exiting non-zero in the ECS task; a HealthOmics run
  ending FAILED): the Dagster run fails with the reason, the
  ``pipelines_succeeded`` check fails naming the input, and nothing of the
  failed invocation is published (no output, no receipt, no staging left),
  while what succeeded is.
- A retried start: RunTask's / StartRun's first response is lost; the retry
  (same clientToken / requestId) finds the task / run already started, so
  exactly one task and one run per invocation are started, and they succeed.
- A timeout: a tool that outlives the pipeline's ``timeout_seconds`` is
  stopped by the runner in the task; a task that outlives its own limit is
  stopped with StopTask; a HealthOmics run still going is cancelled with
  CancelRun. Each is ``timed_out`` in the failure, and nothing is published.

Two things are made quick for a test and said here: the ``pipeline_engines``
resource `build_definitions` made is swapped for a copy polling ECS every
second and HealthOmics every 50 ms, and in the task-limit scenario the
startup allowance a task gets on top of its pipelines' limits (300 s, for
Fargate to pull an image) is 2 s.
"""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from labmesh_dagster.connectors.aws import make_client
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.defs.pipeline_engines import PipelineEnginesResource
from labmesh_dagster.pipelines import ecs_requests
from labmesh_dagster.pipelines.ecs_requests import TOOL_RUNNER_COMMAND
from labmesh_dagster.steps.manifests import read_manifest
from labmesh_dagster_tests.aws_fakes import ServiceClients
from labmesh_dagster_tests.conftest import Lab, aws_settings
from labmesh_dagster_tests.fake_ecs import LABMESH_IMAGE as IMAGE
from labmesh_dagster_tests.fake_ecs import FakeEcsClient, local_python, register_pipelines_task_definition
from labmesh_dagster_tests.omics.fake_omics_workflows import FakeOmicsWorkflows, FakeWorkflow

pytestmark = pytest.mark.slow  # each scenario runs the aws flow on moto's server, a Pipes task and workflow runs

WORKFLOW = "1234567"
ROLE = "arn:aws:iam::123456789012:role/labmesh-omics-runs"
RECORD = {
    "id": "EXP-1",
    "title": "Isolate resequencing",
    "platform": "Illumina MiSeq",
    "samples": [{"id": "S1"}, {"id": "S2"}],
}
READS = {
    "S1": b"@r1\nACGTACGT\n+\nIIIIIIII\n@r2\nTTGACCAA\n+\nIIIIIIII\n",
    "S2": b"@r1\nGGGTTTAA\n+\nIIIIIIII\n",
}
RAW_KEYS = {sample: f"raw/EXP-1/fastq/{sample}.fastq" for sample in READS}

# {ecs_command}, {ecs_timeout} and {omics_timeout} are filled per scenario; the rest is the file as written.
PIPELINES = """
version: 1
pipelines:
  - name: reads-copy
    version: "1"
    engine: ecs
    takes: {{formats: [fastq]}}
    command: {ecs_command}
    versions:
      cp: [cp, --version]
    outputs: ["*.copy.fastq"]
    resources: {{cpu: 0.5, memory_mib: 1024, timeout_seconds: {ecs_timeout}}}
    ecs:
      image: "{image}"
      task_definition: labmesh-pipelines
      cluster: labmesh
      container_name: labmesh
      subnets: [subnet-0abc]
      security_groups: [sg-0abc]
  - name: omics-qc
    version: "1"
    engine: healthomics
    takes: {{formats: [fastq]}}
    resources: {{timeout_seconds: {omics_timeout}}}
    healthomics:
      workflow_id: "{workflow}"
      workflow_version_name: "1.0"
      role_arn: {role}
      output_uri: s3://{output_bucket}/runs/
      parameters: {{reads: "{{input}}", sample_name: "{{name}}"}}
"""
COPY = '[cp, "{input}", "{output_dir}/{name}.copy.fastq"]'
# S2's "tool" fails as a real tool does: a message on stderr and a non-zero exit.
FAIL_ON_S2 = (
    '[sh, -c, "case {name} in S2) echo \\"fatal: {name}: truncated read\\" >&2; exit 3;; esac; '
    'cp {input} {output_dir}/{name}.copy.fastq"]'
)
SLEEP = '[sleep, "30"]'


def qc_outputs(parameters: Mapping[str, Any]) -> dict[str, bytes]:
    """What the HealthOmics workflow writes under its run's ``out/``."""
    sample = parameters["sample_name"]
    return {f"{sample}.stats.json": json.dumps({"sample": sample, "reads": parameters["reads"]}).encode()}


class AwsPipelines:
    """A lab on the aws profile whose pipelines run on the fake ECS and HealthOmics, and what it needs."""

    def __init__(
        self, tmp_path: Path, moto_endpoint: str, buckets: dict[str, str], instance: dg.DagsterInstance
    ) -> None:
        self.tmp_path, self.moto_endpoint, self.buckets, self.instance = tmp_path, moto_endpoint, buckets, instance
        self.s3 = make_client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
        self.logs = make_client("logs", endpoint_url=moto_endpoint, region_name="us-east-1")
        self.output_bucket = buckets["processed"].replace("lm-processed-", "lm-omics-out-")
        self.s3.create_bucket(Bucket=self.output_bucket)
        self.ecs: FakeEcsClient | None = None
        self.omics = FakeOmicsWorkflows(
            workflows=(FakeWorkflow(WORKFLOW, "omics-qc", versions=("1.0",)),),
            polls_to_finish=3,
            outputs=qc_outputs,
            s3=self.s3,
        )

    def fake_ecs(self, image: Callable[[Sequence[str]], list[str]] = local_python) -> FakeEcsClient:
        """The ECS fake with the task definition the pipelines name (its container reaches moto's S3)."""
        self.ecs = FakeEcsClient(logs=self.logs, clusters=["labmesh"], image=image, stop_timeout=5)
        register_pipelines_task_definition(self.ecs, self.moto_endpoint, f"/labmesh/{self.output_bucket}")
        return self.ecs

    def lab(
        self,
        *,
        ecs_command: str = COPY,
        ecs_timeout: int = 600,
        omics_timeout: int = 600,
        image: Callable[[Sequence[str]], list[str]] = local_python,
    ) -> Lab:
        """The lab, its experiment registered and its two FASTQ files promoted to raw."""
        pipelines = self.tmp_path / "pipelines.yaml"
        pipelines.write_text(
            textwrap.dedent(
                PIPELINES.format(
                    ecs_command=ecs_command,
                    ecs_timeout=ecs_timeout,
                    omics_timeout=omics_timeout,
                    image=IMAGE,
                    workflow=WORKFLOW,
                    role=ROLE,
                    output_bucket=self.output_bucket,
                )
            ),
            encoding="utf-8",
        )
        settings = aws_settings(
            self.tmp_path / "home", self.moto_endpoint, self.buckets, LABMESH_PIPELINES=str(pipelines)
        )
        clients = ServiceClients({"ecs": self.fake_ecs(image), "omics": self.omics})
        lab = Lab(settings, self.instance, clients)
        use_quick_polls(lab)
        lab.write_record("EXP-1.yaml", RECORD)
        [registered] = lab.run_sensor("eln_sensor")
        assert registered.success
        for sample, content in READS.items():
            lab.land("EXP-1", f"fastq/{sample}.fastq", content)
        [promoted] = lab.run_sensor("landing_sensor")
        assert promoted.success
        return lab


def use_quick_polls(lab: Lab) -> None:
    """The lab's definitions with the pipeline engines polling ECS each second and HealthOmics every 50 ms.

    The resource is the one `build_definitions` made for the settings, with only its poll intervals changed
    (the defaults, 6 s and 30 s, suit real tasks and runs, not a test).
    """
    engines = lab.resources["pipeline_engines"]
    assert isinstance(engines, PipelineEnginesResource) and engines.aws_profile
    fields = {name: getattr(engines, name) for name in PipelineEnginesResource.model_fields}
    quick = PipelineEnginesResource(**{**fields, "ecs_poll_seconds": 1.0, "healthomics_poll_seconds": 0.05})
    defs = lab.defs
    lab.defs = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        sensors=defs.sensors,
        jobs=defs.jobs,
        resources={**(defs.resources or {}), "pipeline_engines": quick},
    )
    lab.resources = lab.defs.resources or {}


@pytest.fixture
def aws(
    tmp_path: Path, moto_endpoint: str, s3_buckets: dict[str, str], instance: dg.DagsterInstance
) -> Iterator[AwsPipelines]:
    setup = AwsPipelines(tmp_path, moto_endpoint, s3_buckets, instance)
    yield setup
    if setup.ecs is not None:
        setup.ecs.close()


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def processed_manifest(lab: Lab) -> Manifest:
    manifest = read_manifest(lab.store, Zone.PROCESSED, "EXP-1")
    assert manifest is not None
    return manifest


def produced(lab: Lab) -> dict[str, Any]:
    """Each published file of the processed dataset -> its ``produced_by``."""
    return {entry.key: entry.produced_by for entry in processed_manifest(lab).entries if entry.produced_by}


def receipts(lab: Lab) -> dict[str, dict[str, Any]]:
    """Each receipt of the experiment, by invocation id."""
    found = {}
    for key in lab.keys(Zone.PROCESSED, "EXP-1"):
        if key.startswith("EXP-1/_labmesh/pipelines/"):
            body = json.loads(lab.store.read_bytes(ObjectKey(Zone.PROCESSED, key)))
            found[body["invocation_id"]] = body
    return found


def recorded(lab: Lab, result: dg.ExecuteInProcessResult, event_type: dg.DagsterEventType) -> list[Any]:
    """The run's events of ``event_type`` as the instance stored them.

    A run that fails logs its materialization and check evaluations before it raises; they are in the
    instance's event log (what the UI shows), not among the in-process result's own events.
    """
    records = lab.instance.get_records_for_run(result.run_id, of_type=event_type).records
    return [record.event_log_entry.get_dagster_event().event_specific_data for record in records]


def check(lab: Lab, result: dg.ExecuteInProcessResult, name: str) -> dg.AssetCheckEvaluation:
    evaluations = recorded(lab, result, dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    [evaluation] = [c for c in evaluations if c.check_name == name]
    return evaluation


def pipeline_rows(lab: Lab, result: dg.ExecuteInProcessResult) -> list[dict[str, Any]]:
    """The ``pipelines`` table of the run's materialization: a row per invocation that ran, was reused or failed."""
    [event] = recorded(lab, result, dg.DagsterEventType.ASSET_MATERIALIZATION)
    return [dict(row.data) for row in event.materialization.metadata["pipelines"].value.records]


def failure_of(result: dg.ExecuteInProcessResult) -> str:
    """What the failed step says: its description (each failed invocation, its input and why)."""
    return str(user_failure(result).description)


def user_failure(result: dg.ExecuteInProcessResult) -> Any:
    [failed] = [event for event in result.all_events if event.is_step_failure]
    data = failed.step_failure_data
    assert data is not None and data.user_failure_data is not None
    return data.user_failure_data


def run_tasks(ecs: FakeEcsClient) -> list[dict[str, Any]]:
    return [params for operation, params in ecs.calls if operation == "RunTask"]


def published_keys(lab: Lab) -> list[str]:
    """What the processed zone holds outside labmesh's own folder (manifests, receipts, staging)."""
    return sorted(key for key in lab.keys(Zone.PROCESSED, "EXP-1") if "/_labmesh/" not in key)


def test_each_engines_outputs_are_published_with_their_provenance_and_reused_the_next_time(
    aws: AwsPipelines,
) -> None:
    lab = aws.lab()
    ecs = aws.ecs
    assert ecs is not None

    result = lab.materialize("processed_dataset", partition="EXP-1")

    assert result.success
    assert [(c.check_name, c.metadata) for c in result.get_asset_check_evaluations() if not c.passed] == []
    (task_arn,) = ecs.tasks
    assert ecs.started == 1  # the two files' invocations share the pipeline's settings: one task
    run_ids = aws.omics.started_runs()
    assert len(run_ids) == 2
    made = produced(lab)
    assert sorted(made) == [
        "processed/EXP-1/omics-qc/fastq/S1.stats.json",
        "processed/EXP-1/omics-qc/fastq/S2.stats.json",
        "processed/EXP-1/reads-copy/fastq/S1.copy.fastq",
        "processed/EXP-1/reads-copy/fastq/S2.copy.fastq",
    ]
    for sample, content in READS.items():
        copy = made[f"processed/EXP-1/reads-copy/fastq/{sample}.copy.fastq"]
        assert (copy.pipeline, copy.version, copy.engine, copy.engine_run_id) == ("reads-copy", "1", "ecs", task_arn)
        assert [(i.key, i.sha256) for i in copy.inputs] == [(RAW_KEYS[sample], sha256(content))]
        assert copy.command_line.startswith("cp ") and "cp" in copy.tool_versions
        assert copy.run_id == result.run_id
        published = ObjectKey.parse(f"processed/EXP-1/reads-copy/fastq/{sample}.copy.fastq")
        assert lab.store.read_bytes(published) == content  # the real cp ran in the task, on the S3 input
        qc = made[f"processed/EXP-1/omics-qc/fastq/{sample}.stats.json"]
        assert (qc.pipeline, qc.engine) == ("omics-qc", "healthomics") and qc.engine_run_id in run_ids
        assert [(i.key, i.sha256) for i in qc.inputs] == [(RAW_KEYS[sample], sha256(content))]
        assert qc.command_line.startswith(f"StartRun workflow={WORKFLOW} type=PRIVATE version=1.0")
        body = json.loads(lab.store.read_bytes(ObjectKey.parse(f"processed/EXP-1/omics-qc/fastq/{sample}.stats.json")))
        assert body["reads"] == f"s3://{aws.buckets['raw']}/EXP-1/fastq/{sample}.fastq"
    kept = receipts(lab)
    assert {(r["pipeline"], r["engine"], r["engine_run_id"]) for r in kept.values()} == {
        ("reads-copy", "ecs", task_arn),
        ("omics-qc", "healthomics", run_ids[0]),
        ("omics-qc", "healthomics", run_ids[1]),
    } and len(kept) == 4
    assert not [key for key in lab.keys(Zone.PROCESSED, "EXP-1") if "/_labmesh/runs/" in key]  # staging cleared

    again = lab.materialize("processed_dataset", partition="EXP-1")

    assert again.success
    assert all(evaluation.passed for evaluation in again.get_asset_check_evaluations())
    assert again.get_asset_materialization_events()[0].materialization.metadata["pipelines_reused"].value == 4
    assert len(run_tasks(ecs)) == 1 and ecs.started == 1
    assert aws.omics.call_counts["StartRun"] == 2 and aws.omics.started_runs() == run_ids
    assert receipts(lab) == kept and sorted(produced(lab)) == sorted(made)


def test_a_tool_failing_in_the_ecs_task_fails_the_run_naming_its_input_and_publishes_nothing_of_it(
    aws: AwsPipelines,
) -> None:
    lab = aws.lab(ecs_command=FAIL_ON_S2)

    result = lab.materialize("processed_dataset", partition="EXP-1", raise_on_error=False)

    assert not result.success
    failed = check(lab, result, "pipelines_succeeded")
    assert not failed.passed
    problems = str(failed.metadata["problems"].value)
    assert f"reads-copy on {RAW_KEYS['S2']}" in problems and RAW_KEYS["S1"] not in problems
    assert failure_of(result) == f"1 pipeline run(s) failed: reads-copy on {RAW_KEYS['S2']}: sh failed with exit code 3"
    assert "fatal: S2: truncated read" in user_failure(result).metadata["stderr"].value  # the tool's stderr tail
    assert published_keys(lab) == [
        "EXP-1/omics-qc/fastq/S1.stats.json",
        "EXP-1/omics-qc/fastq/S2.stats.json",
        "EXP-1/reads-copy/fastq/S1.copy.fastq",
    ]
    assert sorted(r["pipeline"] for r in receipts(lab).values()) == ["omics-qc", "omics-qc", "reads-copy"]
    assert not [key for key in lab.keys(Zone.PROCESSED, "EXP-1") if "/_labmesh/runs/" in key]
    assert aws.ecs is not None and aws.ecs.started == 1


def test_a_failed_healthomics_run_fails_the_run_naming_its_input_and_publishes_nothing_of_it(
    aws: AwsPipelines,
) -> None:
    aws.omics.outcome = "FAILED"
    lab = aws.lab()

    result = lab.materialize("processed_dataset", partition="EXP-1", raise_on_error=False)

    assert not result.success
    failed = check(lab, result, "pipelines_succeeded")
    assert not failed.passed
    problems = str(failed.metadata["problems"].value)
    for sample in READS:
        assert f"omics-qc on {RAW_KEYS[sample]}: HealthOmics run" in problems
    assert "ended FAILED: TaskFailed: Task fastp exited with code 1" in failure_of(result)
    assert published_keys(lab) == [
        "EXP-1/reads-copy/fastq/S1.copy.fastq",
        "EXP-1/reads-copy/fastq/S2.copy.fastq",
    ]
    assert sorted(r["pipeline"] for r in receipts(lab).values()) == ["reads-copy", "reads-copy"]
    assert len(aws.omics.started_runs()) == 2


def test_a_start_whose_response_was_lost_starts_one_task_and_one_run_per_invocation(aws: AwsPipelines) -> None:
    lab = aws.lab()
    ecs = aws.ecs
    assert ecs is not None
    ecs.lose_run_task_responses(1)
    aws.omics.lose_next_start_response(1)

    result = lab.materialize("processed_dataset", partition="EXP-1")

    assert result.success
    first, retried = run_tasks(ecs)
    assert first["clientToken"] == retried["clientToken"]
    assert ecs.started == 1 and len(ecs.tasks) == 1
    assert aws.omics.call_counts["StartRun"] == 3  # two invocations, one of them asked twice
    request_ids = [params["requestId"] for operation, params in aws.omics.calls if operation == "StartRun"]
    assert len(set(request_ids)) == 2
    assert len(aws.omics.started_runs()) == 2
    assert {p.engine_run_id for p in produced(lab).values()} == {*ecs.tasks, *aws.omics.started_runs()}


def test_a_tool_that_outlives_its_time_limit_in_the_ecs_task_is_timed_out_and_publishes_nothing(
    aws: AwsPipelines,
) -> None:
    lab = aws.lab(ecs_command=SLEEP, ecs_timeout=1)

    result = lab.materialize("processed_dataset", partition="EXP-1", raise_on_error=False)

    assert not result.success
    failure = failure_of(result)
    for sample in READS:
        assert f"reads-copy on {RAW_KEYS[sample]}" in failure
    problems = str(check(lab, result, "pipelines_succeeded").metadata["problems"].value)
    assert RAW_KEYS["S1"] in problems and RAW_KEYS["S2"] in problems
    assert sorted(row["status"] for row in pipeline_rows(lab, result) if row["pipeline"] == "reads-copy") == [
        "timed_out",
        "timed_out",
    ]
    assert not [key for key in published_keys(lab) if "/reads-copy/" in key]
    assert not [r for r in receipts(lab).values() if r["pipeline"] == "reads-copy"]


def stuck_container(command: Sequence[str]) -> list[str]:
    """An image whose runner never gets going (stuck before its first message, as on an input that never comes)."""
    if tuple(command) == TOOL_RUNNER_COMMAND:
        return [sys.executable, "-c", "import time; time.sleep(120)"]
    return local_python(command)


def test_a_task_past_its_limit_is_stopped_and_a_run_past_its_limit_cancelled_both_timed_out(
    aws: AwsPipelines, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A task may run its pipelines' limits plus 300 s for Fargate to start; here plus 2 s.
    monkeypatch.setattr(ecs_requests, "STARTUP_ALLOWANCE_SECONDS", 2.0)
    aws.omics.outcome = "NEVER"
    lab = aws.lab(ecs_timeout=1, omics_timeout=1, image=stuck_container)
    ecs = aws.ecs
    assert ecs is not None

    result = lab.materialize("processed_dataset", partition="EXP-1", raise_on_error=False)

    assert not result.success
    (task_arn,) = ecs.tasks
    [stop] = [params for operation, params in ecs.calls if operation == "StopTask"]
    assert stop["task"] == task_arn and "4 s limit" in stop["reason"]
    assert ecs.tasks[task_arn].stop_code == "UserInitiated"
    run_ids = aws.omics.started_runs()
    assert sorted(params["id"] for operation, params in aws.omics.calls if operation == "CancelRun") == sorted(run_ids)
    failure = failure_of(result)
    assert "ran longer than the pipeline's 4 s limit and was stopped" in failure
    for run_id in run_ids:
        assert f"HealthOmics run {run_id} had not finished after 1s, so it was cancelled" in failure
    assert [row["status"] for row in pipeline_rows(lab, result)] == ["timed_out"] * 4
    assert not check(lab, result, "pipelines_succeeded").passed
    assert published_keys(lab) == [] and receipts(lab) == {}
