"""What labmesh asks of ECS for a pipeline, held to botocore's ``ecs`` model and Fargate's rules.

- RunTask's parameters pass botocore's own validation and the constraints the
  service checks (`service_model.check_request`): a Fargate launch in the
  pipeline's cluster, subnets and security groups, the tool runner as the
  container's command, task CPU and memory as strings, tags naming the
  experiment, pipeline and invocations, ``startedBy`` and a ``clientToken``.
- Resources are rounded up to the smallest Fargate size covering CPU and memory.
- The client token is at most 64 characters of 33-126, the same for the same
  run, attempt and invocations, and different for a new run or attempt.
- A task definition whose container is missing, runs another image or does
  not log through awslogs is refused with a message naming what to fix.
- What the runner printed is read back: its reported results and a tail
  without the Pipes protocol lines.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from labmesh_dagster.pipelines.ecs_requests import (
    CLIENT_TOKEN_MAX,
    STARTUP_ALLOWANCE_SECONDS,
    EcsSettings,
    EcsSettingsError,
    check_task_definition,
    client_token,
    fargate_size,
    log_stream_name,
    log_tail,
    reported_results,
    run_task_params,
    task_timeout_seconds,
    waiter_config,
)
from labmesh_dagster_tests import service_model

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/labmesh:1.0"


def invocation(invocation_id: str = "fastp-3f2a9c1e0b7d4a55", **resources: Any) -> dict[str, Any]:
    return {
        "invocation_id": invocation_id,
        "pipeline": {
            "name": "fastp",
            "version": "1",
            "engine": "ecs",
            "resources": {"cpu": 1, "memory_mib": 2048, "timeout_seconds": 3600, **resources},
            "ecs": {
                "image": IMAGE,
                "task_definition": "labmesh-pipelines",
                "cluster": "labmesh",
                "container_name": "labmesh",
                "subnets": ["subnet-0abc"],
                "security_groups": ["sg-0abc"],
                "assign_public_ip": False,
            },
        },
        "experiment_id": "EXP-1",
        "label": "fastq/S1_R1",
        "inputs": [{"key": "raw/EXP-1/fastq/S1_R1.fastq.gz", "sha256": "0" * 64, "role": "input"}],
        "staging_prefix": "processed/EXP-1/_labmesh/runs/r/fastp-3f2a9c1e0b7d4a55/",
        "publish_prefix": "processed/EXP-1/fastp/fastq/",
    }


def test_run_task_parameters_are_valid_for_the_ecs_model() -> None:
    params = run_task_params([invocation(), invocation("fastp-0000000000000001")], run_id="run-1", attempt=0)

    service_model.check_request("ecs", "RunTask", params)
    assert params["launchType"] == "FARGATE"
    assert params["cluster"] == "labmesh" and params["taskDefinition"] == "labmesh-pipelines"
    assert params["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": ["subnet-0abc"],
        "securityGroups": ["sg-0abc"],
        "assignPublicIp": "DISABLED",
    }
    assert params["overrides"] == {
        "containerOverrides": [
            {"name": "labmesh", "command": ["python", "-m", "labmesh_dagster.pipelines.tool_runner"]}
        ],
        "cpu": "1024",
        "memory": "2048",
    }
    tags = {tag["key"]: tag["value"] for tag in params["tags"]}
    assert tags == {
        "labmesh:experiment": "EXP-1",
        "labmesh:pipeline": "fastp",
        "labmesh:invocation": "fastp-3f2a9c1e0b7d4a55 fastp-0000000000000001",
    }
    assert params["startedBy"] == "labmesh/fastp"


def test_a_long_batch_lists_the_invocations_that_fit_a_tag_and_counts_the_rest() -> None:
    batch = [invocation(f"fastp-{index:016x}") for index in range(40)]
    params = run_task_params(batch, run_id="run-1")

    service_model.check_request("ecs", "RunTask", params)
    value = next(tag["value"] for tag in params["tags"] if tag["key"] == "labmesh:invocation")
    assert len(value) <= 256 and value.startswith("fastp-0000000000000000 ") and value.endswith(" more")


@pytest.mark.parametrize(
    ("cpu", "memory", "size"),
    [
        (0.25, 512, (256, 512)),
        (1, 2048, (1024, 2048)),
        (1, 1000, (1024, 2048)),
        (1.5, 3000, (2048, 4096)),
        (0.25, 6000, (1024, 6144)),
        (4, 30720, (4096, 30720)),
        (4, 31000, (8192, 32768)),
        (16, 122880, (16384, 122880)),
    ],
)
def test_resources_round_up_to_the_smallest_fargate_size(cpu: float, memory: int, size: tuple[int, int]) -> None:
    assert fargate_size(cpu, memory) == size


def test_resources_beyond_fargate_are_refused_with_the_largest_size_named() -> None:
    with pytest.raises(EcsSettingsError, match="16 vCPU with 120 GiB"):
        fargate_size(32, 4096)


def test_the_client_token_is_stable_per_attempt_and_within_the_service_limits() -> None:
    ids = ["fastp-3f2a9c1e0b7d4a55", "fastp-0000000000000001"]
    token = client_token("run-1", 0, ids)

    assert len(token) <= CLIENT_TOKEN_MAX and all(33 <= ord(char) <= 126 for char in token)
    assert token == client_token("run-1", 0, list(reversed(ids)))
    assert token != client_token("run-1", 1, ids)
    assert token != client_token("run-2", 0, ids)


def test_invocations_with_different_ecs_settings_cannot_share_a_task() -> None:
    other = invocation("other-0000000000000001")
    other["pipeline"] = {**other["pipeline"], "name": "other", "ecs": {**other["pipeline"]["ecs"], "cluster": "gpu"}}

    with pytest.raises(EcsSettingsError, match="fastp, other"):
        run_task_params([invocation(), other], run_id="run-1")


def definition(**container: Any) -> dict[str, Any]:
    return {
        "family": "labmesh-pipelines",
        "containerDefinitions": [
            {
                "name": "labmesh",
                "image": IMAGE,
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {"awslogs-group": "/labmesh/pipelines", "awslogs-stream-prefix": "pipelines"},
                },
                **container,
            }
        ],
    }


def test_the_task_definition_names_the_log_stream_pipes_reads() -> None:
    settings = EcsSettings.of(invocation()["pipeline"])

    group, prefix = check_task_definition(definition(), settings)

    assert (group, prefix) == ("/labmesh/pipelines", "pipelines")
    assert (
        log_stream_name(prefix, "labmesh", "arn:aws:ecs:us-east-1:123456789012:task/labmesh/abc123")
        == "pipelines/labmesh/abc123"
    )


@pytest.mark.parametrize(
    ("container", "message"),
    [
        ({"name": "sidecar"}, "has no container 'labmesh'"),
        ({"image": "labmesh:0.9"}, "runs image 'labmesh:0.9' but the pipeline says"),
        ({"logConfiguration": {"logDriver": "json-file"}}, "awslogs"),
    ],
)
def test_a_task_definition_that_cannot_run_the_pipeline_is_refused(container: dict[str, Any], message: str) -> None:
    with pytest.raises(EcsSettingsError, match=message):
        check_task_definition(definition(**container), EcsSettings.of(invocation()["pipeline"]))


def test_a_task_may_run_its_invocations_one_after_another_plus_the_startup_allowance() -> None:
    batch = [invocation(timeout_seconds=600), invocation("fastp-0000000000000001", timeout_seconds=60)]

    assert task_timeout_seconds(batch) == 660 + STARTUP_ALLOWANCE_SECONDS


def test_the_waiter_gives_up_once_the_timeout_has_passed() -> None:
    assert waiter_config(3600, 6) == {"Delay": 6, "MaxAttempts": 601}
    assert waiter_config(2, 1) == {"Delay": 1, "MaxAttempts": 3}


def test_reported_results_and_the_tail_are_read_back_from_the_log_lines() -> None:
    result = {"invocation_id": "fastp-3f2a9c1e0b7d4a55", "status": "succeeded"}
    message = {
        "__dagster_pipes_version": "0.1",
        "method": "report_custom_message",
        "params": {"payload": {"results": [result]}},
    }
    log = {"__dagster_pipes_version": "0.1", "method": "log", "params": {"message": "hi", "level": "INFO"}}
    lines = ["starting", json.dumps(log), json.dumps(message), "fatal: out of memory"]

    assert reported_results(lines) == [result]
    assert log_tail(lines) == "starting\nfatal: out of memory"
    assert log_tail(lines, limit=12) == "ut of memory"
