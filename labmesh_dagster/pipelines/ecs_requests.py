"""What labmesh asks of Amazon ECS to run pipeline invocations, and how it reads back what a task left behind.

Plain functions over plain data (no Dagster, no boto3 import): the Dagster
glue in `labmesh_dagster.defs.pipeline_ecs` hands their output to
``dagster_aws.pipes.PipesECSClient``. The shapes follow the ECS API
(botocore's ``ecs`` model) and the Fargate rules:

- A task runs ``python -m labmesh_dagster.pipelines.tool_runner`` in the
  container the pipeline's ``ecs`` settings name; the image is the task
  definition's (RunTask cannot override an image), so it is checked against
  the pipeline's ``ecs.image`` before anything starts.
- Fargate only accepts certain task CPU/memory pairs (`FARGATE_SIZES`);
  `fargate_size` rounds a pipeline's ``resources`` up to the smallest pair
  that covers both its CPU and its memory.
- RunTask is idempotent by ``clientToken`` (up to 64 characters 33-126, kept
  24 hours, per cluster; the same token with other parameters is refused with
  ``ConflictException``). The Pipes context that PipesECSClient injects names
  the Dagster run and its attempt, so the token is derived from those and the
  invocation ids: a retried RunTask of the same attempt gets back the task it
  already started, while a new run or a step retry (whose parameters differ)
  starts its own.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TOOL_RUNNER_COMMAND = ("python", "-m", "labmesh_dagster.pipelines.tool_runner")
STDERR_TAIL_CHARS = 4000
PIPES_VERSION_FIELD = "__dagster_pipes_version"

# Fargate's task sizes (ECS Developer Guide, "Task CPU and memory"): CPU units -> the memory (MiB) it allows.
# 8 and 16 vCPU need Linux platform 1.4.0 or later, which LATEST is.
FARGATE_SIZES: tuple[tuple[int, tuple[int, ...]], ...] = (
    (256, (512, 1024, 2048)),
    (512, tuple(range(1024, 4096 + 1, 1024))),
    (1024, tuple(range(2048, 8192 + 1, 1024))),
    (2048, tuple(range(4096, 16384 + 1, 1024))),
    (4096, tuple(range(8192, 30720 + 1, 1024))),
    (8192, tuple(range(16384, 61440 + 1, 4096))),
    (16384, tuple(range(32768, 122880 + 1, 8192))),
)
CLIENT_TOKEN_MAX = 64
STARTUP_ALLOWANCE_SECONDS = 300.0
# A tag value holds at most 256 characters; ids are listed while they fit.
TAG_VALUE_MAX = 256


class EcsSettingsError(ValueError):
    """A pipeline's ``ecs`` settings or resources that ECS (or its task definition) cannot honour."""


@dataclass(frozen=True)
class EcsSettings:
    """A pipeline's ``ecs`` block as the invocation carries it (``spec.EcsSettings`` dumped), with its defaults."""

    image: str
    task_definition: str
    cluster: str
    container_name: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    assign_public_ip: bool = False

    @classmethod
    def of(cls, pipeline: Mapping[str, Any]) -> EcsSettings:
        ecs = pipeline.get("ecs")
        if not isinstance(ecs, Mapping):
            raise EcsSettingsError(f"pipeline {pipeline.get('name')!r} runs on ECS but has no `ecs` settings")
        try:
            return cls(
                image=str(ecs["image"]),
                task_definition=str(ecs["task_definition"]),
                cluster=str(ecs.get("cluster") or "default"),
                container_name=str(ecs.get("container_name") or "labmesh"),
                subnets=tuple(str(subnet) for subnet in ecs.get("subnets") or ()),
                security_groups=tuple(str(group) for group in ecs.get("security_groups") or ()),
                assign_public_ip=bool(ecs.get("assign_public_ip", False)),
            )
        except KeyError as missing:
            raise EcsSettingsError(f"pipeline {pipeline.get('name')!r}: `ecs` lacks {missing.args[0]}") from None


def fargate_size(cpu: float, memory_mib: int) -> tuple[int, int]:
    """The smallest Fargate (CPU units, memory MiB) pair with at least ``cpu`` vCPUs and ``memory_mib``.

    CPU is rounded up first (1 vCPU = 1024 units) to the smallest size whose
    memory range reaches ``memory_mib``, then memory up to that size's next
    allowed value: 1.5 vCPU and 3000 MiB -> (2048, 4096); 0.25 vCPU and 6000 MiB
    -> (1024, 6144), because a 0.25 or 0.5 vCPU task cannot have 6 GiB.
    """
    if cpu <= 0 or memory_mib <= 0:
        raise EcsSettingsError(f"resources must be positive, got cpu={cpu} memory_mib={memory_mib}")
    units = math.ceil(cpu * 1024)
    for size_units, memories in FARGATE_SIZES:
        if size_units < units or memories[-1] < memory_mib:
            continue
        return size_units, next(memory for memory in memories if memory >= memory_mib)
    raise EcsSettingsError(f"no Fargate task has {cpu} vCPU and {memory_mib} MiB (the largest is 16 vCPU with 120 GiB)")


def client_token(run_id: str, attempt: int, invocation_ids: Iterable[str]) -> str:
    """RunTask's idempotency token for one attempt of one Dagster step at these invocations (see the module)."""
    digest = hashlib.sha256("\n".join([run_id, str(attempt), *sorted(invocation_ids)]).encode("utf-8"))
    token = f"labmesh-{digest.hexdigest()[:48]}"
    assert len(token) <= CLIENT_TOKEN_MAX
    return token


def batch_settings(invocations: Sequence[Mapping[str, Any]]) -> EcsSettings:
    """The one ``ecs`` block the invocations share: one task runs them all, so they must agree."""
    if not invocations:
        raise EcsSettingsError("no invocations to run on ECS")
    settings = {EcsSettings.of(invocation["pipeline"]) for invocation in invocations}
    if len(settings) > 1:
        names = sorted({str(invocation["pipeline"]["name"]) for invocation in invocations})
        raise EcsSettingsError(f"pipelines {', '.join(names)} name different ECS settings; run them as separate tasks")
    return settings.pop()


def task_size(invocations: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """The Fargate size for the most demanding invocation (the runner runs them one after another)."""
    resources = [invocation["pipeline"].get("resources") or {} for invocation in invocations]
    cpu = max(float(resource.get("cpu", 1)) for resource in resources)
    memory = max(int(resource.get("memory_mib", 2048)) for resource in resources)
    return fargate_size(cpu, memory)


def task_timeout_seconds(invocations: Sequence[Mapping[str, Any]]) -> float:
    """How long a task may run: the runner runs its invocations one after another, each within its own
    ``timeout_seconds``, plus `STARTUP_ALLOWANCE_SECONDS` for Fargate to pull the image and for the
    runner to move inputs and outputs through S3. It is a backstop: the runner stops a tool at its own limit.
    """
    limits = [float((i["pipeline"].get("resources") or {}).get("timeout_seconds", 3600)) for i in invocations]
    return sum(limits) + STARTUP_ALLOWANCE_SECONDS


def _tag_value(values: Sequence[str]) -> str:
    """As many of ``values`` as fit one tag value, then how many more there are."""
    shown: list[str] = []
    for index, value in enumerate(values):
        rest = len(values) - index - 1
        candidate = " ".join([*shown, value]) + (f" +{rest} more" if rest else "")
        if len(candidate) > TAG_VALUE_MAX:
            return " ".join(shown) + f" +{len(values) - index} more"
        shown.append(value)
    return " ".join(shown)


def run_task_params(
    invocations: Sequence[Mapping[str, Any]],
    *,
    run_id: str,
    attempt: int = 0,
    command: Sequence[str] = TOOL_RUNNER_COMMAND,
) -> dict[str, Any]:
    """RunTask's parameters for one Fargate task that runs ``invocations`` through the tool runner.

    PipesECSClient adds the Pipes bootstrap environment to the container's
    override and its own Dagster tags; everything else is here.
    """
    settings = batch_settings(invocations)
    cpu, memory = task_size(invocations)
    ids = [str(invocation["invocation_id"]) for invocation in invocations]
    experiments = sorted({str(invocation["experiment_id"]) for invocation in invocations})
    pipelines = sorted({str(invocation["pipeline"]["name"]) for invocation in invocations})
    return {
        "cluster": settings.cluster,
        "taskDefinition": settings.task_definition,
        "launchType": "FARGATE",
        "count": 1,
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(settings.subnets),
                "securityGroups": list(settings.security_groups),
                "assignPublicIp": "ENABLED" if settings.assign_public_ip else "DISABLED",
            }
        },
        "overrides": {
            "containerOverrides": [{"name": settings.container_name, "command": list(command)}],
            "cpu": str(cpu),
            "memory": str(memory),
        },
        "tags": [
            {"key": "labmesh:experiment", "value": _tag_value(experiments)},
            {"key": "labmesh:pipeline", "value": _tag_value(pipelines)},
            {"key": "labmesh:invocation", "value": _tag_value(ids)},
        ],
        # startedBy allows letters, digits, "-", "_" and "/" (128 at most); pipeline names are [a-z0-9_-].
        "startedBy": f"labmesh/{pipelines[0]}"[:128],
        "clientToken": client_token(run_id, attempt, ids),
    }


def check_task_definition(task_definition: Mapping[str, Any], settings: EcsSettings) -> tuple[str, str]:
    """The awslogs (group, stream prefix) of the pipeline's container, after checking it runs the pipeline's image.

    Pipes reads the runner's messages from CloudWatch Logs, so a container
    without the ``awslogs`` driver could never report; and a task definition
    whose image differs from ``ecs.image`` would run other tools than the
    pipeline's version promises.
    """
    containers = {container["name"]: container for container in task_definition.get("containerDefinitions", [])}
    name = settings.task_definition
    container = containers.get(settings.container_name)
    if container is None:
        raise EcsSettingsError(
            f"task definition {name} has no container {settings.container_name!r} "
            f"(it has {', '.join(sorted(containers)) or 'none'})"
        )
    if container.get("image") != settings.image:
        raise EcsSettingsError(
            f"task definition {name} runs image {container.get('image')!r} but the pipeline says {settings.image!r}; "
            "register a revision with the pipeline's image or correct `ecs.image`"
        )
    logs = container.get("logConfiguration") or {}
    options = logs.get("options") or {}
    if logs.get("logDriver") != "awslogs" or "awslogs-group" not in options or "awslogs-stream-prefix" not in options:
        raise EcsSettingsError(
            f"container {settings.container_name!r} of task definition {name} must log through the awslogs driver "
            "with awslogs-group and awslogs-stream-prefix: Pipes reads the runner's messages from CloudWatch Logs"
        )
    return str(options["awslogs-group"]), str(options["awslogs-stream-prefix"])


def log_stream_name(stream_prefix: str, container_name: str, task_arn: str) -> str:
    """The awslogs stream of a container in a task: ``prefix/container/task-id``, as ECS names it."""
    return f"{stream_prefix}/{container_name}/{task_arn.rsplit('/', 1)[-1]}"


def waiter_config(timeout_seconds: float, poll_seconds: float) -> dict[str, int]:
    """botocore waiter settings that give up once ``timeout_seconds`` have passed since the task started.

    The waiter sleeps ``Delay`` between polls and gives up after
    ``MaxAttempts`` polls, so the first poll after the limit is the last.
    """
    delay = max(1, math.ceil(poll_seconds))
    return {"Delay": delay, "MaxAttempts": max(1, math.ceil(timeout_seconds / delay)) + 1}


def read_log_lines(logs: Any, group: str, stream: str) -> list[str]:
    """Every line of a CloudWatch Logs stream, from its head (``logs`` is a boto3 ``logs`` client)."""
    lines: list[str] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token is not None:
            params["nextToken"] = token
        try:
            page = logs.get_log_events(**params)
        except logs.exceptions.ResourceNotFoundException:
            return lines
        lines.extend(str(event.get("message", "")) for event in page.get("events", []))
        # The forward token repeats once the end of the stream is reached.
        if not page.get("events") or page.get("nextForwardToken") in (None, token):
            return lines
        token = page["nextForwardToken"]


def _pipes_message(line: str) -> dict[str, Any] | None:
    if PIPES_VERSION_FIELD not in line:
        return None
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        return None
    return message if isinstance(message, dict) and PIPES_VERSION_FIELD in message else None


def reported_results(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The results the runner reported in custom messages (``{"results": [...]}``), in order."""
    results: list[dict[str, Any]] = []
    for line in lines:
        message = _pipes_message(line)
        if message is None or message.get("method") != "report_custom_message":
            continue
        results.extend(results_of(((message.get("params") or {}).get("payload"),)))
    return results


def results_of(payloads: Iterable[Any]) -> list[dict[str, Any]]:
    """The results inside custom message payloads; payloads of another shape are not results."""
    results: list[dict[str, Any]] = []
    for payload in payloads:
        if isinstance(payload, Mapping) and isinstance(payload.get("results"), list):
            results.extend(dict(result) for result in payload["results"] if isinstance(result, Mapping))
    return results


def log_tail(lines: Iterable[str], limit: int = STDERR_TAIL_CHARS) -> str:
    """The last ``limit`` characters of what the container printed, without the Pipes protocol lines."""
    text = "\n".join(line for line in lines if _pipes_message(line) is None)
    return text[-limit:]


def stop_reason(task: Mapping[str, Any], container_name: str) -> tuple[str, int | None]:
    """One line saying why the task stopped, and its container's exit code (None when it never ran)."""
    container: Mapping[str, Any] = next((c for c in task.get("containers", []) if c.get("name") == container_name), {})
    exit_code = container.get("exitCode")
    parts = [str(task.get("stoppedReason") or task.get("stopCode") or "the ECS task stopped")]
    if container.get("reason"):
        parts.append(str(container["reason"]))
    if exit_code is not None:
        parts.append(f"exit code {exit_code}")
    return "; ".join(parts), exit_code


def unreported_results(
    invocations: Sequence[Mapping[str, Any]],
    reported: Sequence[Mapping[str, Any]],
    *,
    status: str,
    reason: str,
    exit_code: int | None,
    tail: str,
    started: str,
    ended: str,
) -> list[dict[str, Any]]:
    """A ``failed`` or ``timed_out`` result for each invocation the runner did not report before the task ended."""
    done = {str(result.get("invocation_id")) for result in reported}
    return [
        {
            "invocation_id": str(invocation["invocation_id"]),
            "status": status,
            "engine": "ecs",
            "engine_run_id": None,
            "command_line": " ".join(TOOL_RUNNER_COMMAND),
            "tool_versions": {},
            "outputs": [],
            "exit_code": exit_code,
            "stderr_tail": tail,
            "started": started,
            "ended": ended,
            "reason": reason,
        }
        for invocation in invocations
        if str(invocation["invocation_id"]) not in done
    ]


def on_task(results: Iterable[Mapping[str, Any]], task_arn: str | None) -> list[dict[str, Any]]:
    """Results stamped with the engine that ran them and the ECS task (the runner cannot know its task ARN)."""
    return [{**result, "engine": "ecs", "engine_run_id": task_arn} for result in results]
