"""Pipeline invocations run as an ECS task through PipesECSClient, end to end on moto's CloudWatch Logs.

The ECS client is `FakeEcsClient` (model-bound; it runs the container command
as a local process and sends its output to moto's CloudWatch Logs server over
HTTP); PipesECSClient and its own CloudWatch message reader are dagster-aws's,
unchanged. The container's command is the tool runner's; in these scenarios the
fake's "image" answers it with a small Pipes script that behaves as each
invocation's label says (``ok``, ``crash``, ``hang``), and one scenario runs
the real ``labmesh_dagster.pipelines.tool_runner`` against moto's S3.

- Success: every invocation's result comes back through Pipes, stamped with
  engine ``ecs`` and the task's ARN; the container got the Pipes extras (the
  store config and the invocations) and the task ran with the RunTask shape
  labmesh asked for. Once the task has ended, nothing reads its log any more.
- A failed task: what was reported before the crash is kept; the rest are
  ``failed`` with ECS's stopped reason, the exit code and the log tail.
- A retried start: RunTask's response is lost once; the retry with the same
  clientToken gets the same task back and no second container starts.
- A timeout: the task is stopped (StopTask, with a reason) and the invocations
  it had not finished are ``timed_out``.
- Pipelines with ECS settings the task definition cannot honour (another
  image) fail with the reason before any task starts; the rest still run.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from labmesh_dagster.connectors.aws import make_client
from labmesh_dagster.defs.pipeline_ecs import run_on_ecs
from labmesh_dagster.pipelines.ecs_requests import TOOL_RUNNER_COMMAND
from labmesh_dagster.ports import store_config
from labmesh_dagster_tests.conftest import aws_settings
from labmesh_dagster_tests.fake_ecs import LABMESH_IMAGE as IMAGE
from labmesh_dagster_tests.fake_ecs import FakeEcsClient, local_python, register_pipelines_task_definition

RUNNER_SCRIPT = """
import os, signal, sys, time
from datetime import UTC, datetime

from dagster_pipes import open_dagster_pipes


def stop(signum, frame):
    raise SystemExit(128 + signum)  # as the tool runner does, so Pipes closes on the way out


signal.signal(signal.SIGTERM, stop)
with open_dagster_pipes() as pipes:
    store = pipes.get_extra("store")
    for invocation in pipes.get_extra("invocations"):
        started = datetime.now(UTC).isoformat()
        print(f"running {invocation['invocation_id']} on {store['kind']}", file=sys.stderr, flush=True)
        if invocation["label"] == "crash":
            print("fatal: cannot allocate memory", file=sys.stderr, flush=True)
            sys.exit(3)
        if invocation["label"] == "hang":
            time.sleep(120)
        pipes.report_custom_message({"results": [{
            "invocation_id": invocation["invocation_id"], "status": "succeeded", "engine": "local",
            "engine_run_id": f"pid:{os.getpid()}", "command_line": "true", "tool_versions": {}, "outputs": [],
            "exit_code": 0, "stderr_tail": "", "started": started, "ended": datetime.now(UTC).isoformat(),
            "reason": None,
        }]})
"""


@pytest.fixture
def logs(moto_endpoint: str, aws_environment: None) -> Any:
    return make_client("logs", endpoint_url=moto_endpoint, region_name="us-east-1")


def script_image(script: Path) -> Callable[[Sequence[str]], list[str]]:
    """An "image" whose tool runner is the test's Pipes script."""

    def image(command: Sequence[str]) -> list[str]:
        if tuple(command) == TOOL_RUNNER_COMMAND:
            return [sys.executable, str(script)]
        return local_python(command)

    return image


@pytest.fixture
def ecs(logs: Any, tmp_path: Path, moto_endpoint: str) -> Iterator[FakeEcsClient]:
    script = tmp_path / "runner.py"
    script.write_text(RUNNER_SCRIPT, encoding="utf-8")
    fake = FakeEcsClient(logs=logs, clusters=["labmesh"], image=script_image(script), stop_timeout=5)
    register_pipelines_task_definition(fake, moto_endpoint, f"/labmesh/pipelines-{uuid.uuid4().hex[:8]}")
    yield fake
    fake.close()


def pipeline(name: str = "fastp", **resources: Any) -> dict[str, Any]:
    return {
        "name": name,
        "version": "1",
        "engine": "ecs",
        "command": ["true"],
        "resources": {"cpu": 0.5, "memory_mib": 1024, "timeout_seconds": 3600, **resources},
        "ecs": {
            "image": IMAGE,
            "task_definition": "labmesh-pipelines",
            "cluster": "labmesh",
            "container_name": "labmesh",
            "subnets": ["subnet-0abc"],
            "security_groups": ["sg-0abc"],
            "assign_public_ip": False,
        },
    }


def invocation(label: str, number: int, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    invocation_id = f"fastp-{number:016x}"
    return {
        "invocation_id": invocation_id,
        "pipeline": spec or pipeline(),
        "experiment_id": "EXP-1",
        "label": label,
        "inputs": [],
        "staging_prefix": f"processed/EXP-1/_labmesh/runs/r/{invocation_id}/",
        "publish_prefix": "processed/EXP-1/fastp/fastq/",
    }


STORE = {"kind": "s3", "buckets": {}, "endpoint_url": None, "region_name": "us-east-1"}


def run_in_asset(call: Callable[[dg.AssetExecutionContext], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Run ``call`` inside a materialization, as processed_dataset would, and return its results."""
    captured: list[list[dict[str, Any]]] = []

    @dg.asset
    def processed(context):  # type: ignore[no-untyped-def]  # @asset refuses the string annotation the future import makes
        captured.append(call(context))
        return dg.MaterializeResult()

    dg.materialize([processed], instance=dg.DagsterInstance.ephemeral())
    return captured[0]


def on_ecs(
    ecs: FakeEcsClient,
    logs: Any,
    invocations: list[dict[str, Any]],
    store: dict[str, Any] | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    return run_in_asset(
        lambda context: run_on_ecs(
            context,
            ecs_client=ecs,
            logs_client=logs,
            invocations=invocations,
            store_config=store or STORE,
            poll_seconds=1,
            **options,
        )
    )


@pytest.mark.slow
def test_results_come_back_through_pipes_from_the_ecs_task(ecs: FakeEcsClient, logs: Any) -> None:
    results = on_ecs(ecs, logs, [invocation("ok", 1), invocation("ok", 2)])

    (task,) = ecs.tasks.values()
    assert [(r["invocation_id"], r["status"], r["engine"], r["engine_run_id"]) for r in results] == [
        ("fastp-0000000000000001", "succeeded", "ecs", task.arn),
        ("fastp-0000000000000002", "succeeded", "ecs", task.arn),
    ]
    assert ecs.started == 1
    request = task.request
    assert request["launchType"] == "FARGATE"
    assert (request["overrides"]["cpu"], request["overrides"]["memory"]) == ("512", "1024")
    (override,) = request["overrides"]["containerOverrides"]
    assert override["command"] == list(TOOL_RUNNER_COMMAND)
    assert {item["name"] for item in override["environment"]} >= {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"}
    assert {"key": "labmesh:experiment", "value": "EXP-1"} in request["tags"]
    assert any(tag["key"] == "dagster/run-id" for tag in request["tags"])
    assert task.exit_code == 0 and task.stop_code == "EssentialContainerExited"


@pytest.mark.slow
def test_once_the_task_has_ended_its_log_is_no_longer_read(ecs: FakeEcsClient, logs: Any) -> None:
    before = set(threading.enumerate())

    on_ecs(ecs, logs, [invocation("ok", 1)])

    # dagster-aws's own container log reader would ask GetLogEvents without pause, for ever, from these.
    started = [thread for thread in threading.enumerate() if thread not in before]
    for thread in started:
        thread.join(30)
    assert [thread.name for thread in started if thread.is_alive()] == []


@pytest.mark.slow
def test_a_failed_task_fails_the_unreported_invocations_with_its_reason_and_log_tail(
    ecs: FakeEcsClient, logs: Any
) -> None:
    results = on_ecs(ecs, logs, [invocation("ok", 1), invocation("crash", 2), invocation("ok", 3)])

    assert [(r["invocation_id"], r["status"]) for r in results] == [
        ("fastp-0000000000000001", "succeeded"),
        ("fastp-0000000000000002", "failed"),
        ("fastp-0000000000000003", "failed"),
    ]
    failed = results[1]
    assert failed["exit_code"] == 3
    assert failed["reason"] == "Essential container in task exited; exit code 3"
    assert failed["stderr_tail"].endswith("fatal: cannot allocate memory")
    assert "__dagster_pipes_version" not in failed["stderr_tail"]
    (task,) = ecs.tasks.values()
    assert {r["engine_run_id"] for r in results} == {task.arn}


@pytest.mark.slow
def test_a_retried_start_with_the_same_client_token_does_not_start_a_second_task(ecs: FakeEcsClient, logs: Any) -> None:
    ecs.lose_run_task_responses(1)

    results = on_ecs(ecs, logs, [invocation("ok", 1)])

    assert [r["status"] for r in results] == ["succeeded"]
    run_tasks = [params for operation, params in ecs.calls if operation == "RunTask"]
    assert len(run_tasks) == 2 and run_tasks[0]["clientToken"] == run_tasks[1]["clientToken"]
    assert ecs.started == 1 and len(ecs.tasks) == 1


def test_the_same_client_token_with_other_parameters_is_a_conflict(ecs: FakeEcsClient) -> None:
    params = {
        "cluster": "labmesh",
        "taskDefinition": "labmesh-pipelines",
        "launchType": "FARGATE",
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-0abc"]}},
        "overrides": {"containerOverrides": [{"name": "labmesh", "command": ["python", "-c", "pass"]}]},
        "clientToken": "labmesh-token",
    }
    first = ecs.run_task(**params)
    again = ecs.run_task(**params)

    assert first["tasks"][0]["taskArn"] == again["tasks"][0]["taskArn"] and ecs.started == 1
    with pytest.raises(ecs.exceptions.ConflictException):
        ecs.run_task(**{**params, "startedBy": "someone-else"})


@pytest.mark.slow
def test_a_task_that_outlives_the_timeout_is_stopped_and_timed_out(ecs: FakeEcsClient, logs: Any) -> None:
    results = on_ecs(ecs, logs, [invocation("ok", 1), invocation("hang", 2)], timeout_seconds=2)

    assert [(r["invocation_id"], r["status"]) for r in results] == [
        ("fastp-0000000000000001", "succeeded"),
        ("fastp-0000000000000002", "timed_out"),
    ]
    assert results[1]["reason"] == "ran longer than the pipeline's 2 s limit and was stopped"
    assert results[1]["exit_code"] == 143
    (stop,) = [params for operation, params in ecs.calls if operation == "StopTask"]
    (task,) = ecs.tasks.values()
    assert stop["task"] == task.arn and "2 s limit" in stop["reason"]
    assert task.stop_code == "UserInitiated" and task.last_status == "STOPPED"


@pytest.mark.slow
def test_pipelines_whose_image_the_task_definition_lacks_fail_and_the_others_run(ecs: FakeEcsClient, logs: Any) -> None:
    spec = pipeline()
    spec["ecs"] = {**spec["ecs"], "image": "labmesh:0.9"}

    results = on_ecs(ecs, logs, [invocation("ok", 1, spec), invocation("ok", 2)])

    assert [(r["invocation_id"], r["status"]) for r in results] == [
        ("fastp-0000000000000001", "failed"),
        ("fastp-0000000000000002", "succeeded"),
    ]
    assert "labmesh:1.0' but the pipeline says 'labmesh:0.9'" in results[0]["reason"]
    assert ecs.started == 1


@pytest.mark.slow
def test_the_real_tool_runner_runs_a_pipeline_in_the_task_against_s3(
    logs: Any, tmp_path: Path, moto_endpoint: str, s3_buckets: dict[str, str]
) -> None:
    s3 = make_client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    content = b"@r1\nACGT\n+\nIIII\n"
    s3.put_object(Bucket=s3_buckets["raw"], Key="EXP-1/fastq/S1.fastq", Body=content)
    spec = pipeline(name="count")
    spec.update(
        {
            "per": "file",
            "command": [
                "python",
                "-c",
                "import sys; open(sys.argv[2], 'w').write(str(len(open(sys.argv[1]).read())))",
                "{input}",
                "{output_dir}/{name}.count.txt",
            ],
            "outputs": ["*.count.txt"],
            "versions": {},
        }
    )
    work = invocation("fastq/S1", 1, spec)
    work["inputs"] = [
        {"key": "raw/EXP-1/fastq/S1.fastq", "sha256": hashlib.sha256(content).hexdigest(), "role": "input"}
    ]
    store = dict(store_config(aws_settings(tmp_path / "home", moto_endpoint, s3_buckets)))
    fake = FakeEcsClient(logs=logs, clusters=["labmesh"], stop_timeout=5)
    register_pipelines_task_definition(fake, moto_endpoint, f"/labmesh/pipelines-{uuid.uuid4().hex[:8]}")
    try:
        results = on_ecs(fake, logs, [work], store=store)
    finally:
        fake.close()

    (result,) = results
    assert result["status"] == "succeeded", result["stderr_tail"]
    assert result["engine"] == "ecs" and result["engine_run_id"] == next(iter(fake.tasks))
    (output,) = result["outputs"]
    assert output["name"] == "S1.count.txt" and output["key"].startswith(work["staging_prefix"])
    bucket_key = output["key"].split("/", 1)[1]
    assert s3.get_object(Bucket=s3_buckets["processed"], Key=bucket_key)["Body"].read() == str(len(content)).encode()
