"""Running pipeline invocations as ECS (Fargate) tasks through Dagster Pipes.

`run_on_ecs` hands `ecs_requests.run_task_params` to
``dagster_aws.pipes.PipesECSClient``, which starts the task with the Pipes
bootstrap environment, waits with the ``tasks_stopped`` waiter, and reads the
runner's messages from the container's awslogs stream in CloudWatch Logs. Its
container log readers are labmesh's (`cloudwatch_logs`): dagster-aws's keep
asking GetLogEvents, without pause, after the task has ended. What
PipesECSClient leaves to its caller is done here, around the ECS client it is
given (`_TrackedEcs`):

- RunTask is retried on throttling, server errors and lost connections with
  the same parameters, hence the same ``clientToken``: ECS answers a repeat
  with the task it already started, so a response lost on the way back never
  starts a second task.
- The ECS waiter gives up once the task's time limit has passed; PipesECSClient
  only stops a task when Dagster itself is interrupted, so the waiter here
  stops it (StopTask) and waits for it to stop before reporting ``timed_out``.
- Invocations whose pipelines name different ``ecs`` settings run as separate
  tasks; settings that cannot work (another image in the task definition, a
  container without awslogs, a size Fargate lacks) fail their invocations
  with a reason instead of failing the step, as an unreachable engine does.
- PipesECSClient raises on a task that stopped badly (non-zero exit, failed to
  start) and its Pipes session is gone with the exception, so the results the
  runner reported before the end are read back from the same log stream, with
  its tail, and every invocation not reported is ``failed`` with ECS's stopped
  reason.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
    WaiterError,
)
from dagster_aws.pipes import PipesECSClient
from dagster_aws.pipes.clients.utils import WaiterConfig

from labmesh_dagster.defs.cloudwatch_logs import ClosingCloudWatchMessageReader
from labmesh_dagster.pipelines.ecs_requests import (
    TOOL_RUNNER_COMMAND,
    EcsSettings,
    EcsSettingsError,
    batch_settings,
    check_task_definition,
    log_stream_name,
    log_tail,
    on_task,
    read_log_lines,
    reported_results,
    results_of,
    run_task_params,
    stop_reason,
    task_timeout_seconds,
    unreported_results,
    waiter_config,
)

RETRIED_RUN_TASK_CODES = frozenset({"ServerException", "ThrottlingException"})
RUN_TASK_ATTEMPTS = 4
# Fargate sends SIGTERM, then SIGKILL after the container's stopTimeout (30 s by default, 120 s at most).
STOP_GRACE_SECONDS = 150.0


class EcsTaskNotStarted(RuntimeError):
    """RunTask answered without a task (its ``failures`` say why: capacity, a missing resource...)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _StoppingWaiter:
    """The ``tasks_stopped`` waiter, which stops the task when it gives up waiting (a timeout)."""

    def __init__(self, waiter: Any, tracked: _TrackedEcs) -> None:
        self._waiter = waiter
        self._tracked = tracked

    def wait(self, **params: Any) -> None:
        try:
            self._waiter.wait(**params)
        except WaiterError as error:
            if "Max attempts exceeded" not in str(error):
                raise
            self._tracked.stop_for_timeout(params)
            raise


class _TrackedEcs:
    """The ECS client PipesECSClient drives: retries RunTask idempotently, remembers the task, stops it on timeout."""

    def __init__(
        self,
        client: Any,
        *,
        timeout_reason: str,
        stop_grace_seconds: float = STOP_GRACE_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._timeout_reason = timeout_reason
        self._stop_grace_seconds = stop_grace_seconds
        self._sleep = sleep
        self.task_arn: str | None = None
        self.cluster: str | None = None
        self.timed_out = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def run_task(self, **params: Any) -> Any:
        self.cluster = params.get("cluster")
        for attempt in range(1, RUN_TASK_ATTEMPTS + 1):
            try:
                response = self._client.run_task(**params)
                break
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in RETRIED_RUN_TASK_CODES:
                    raise
                if attempt == RUN_TASK_ATTEMPTS:
                    raise
            except (ConnectionClosedError, EndpointConnectionError, ReadTimeoutError):
                if attempt == RUN_TASK_ATTEMPTS:
                    raise
            self._sleep(0.5 * 2**attempt)
        tasks = response.get("tasks") or []
        if not tasks:
            failures = "; ".join(
                f"{failure.get('reason', 'unknown')}" + (f" ({failure['detail']})" if failure.get("detail") else "")
                for failure in response.get("failures") or []
            )
            raise EcsTaskNotStarted(f"ECS started no task: {failures or 'no reason given'}")
        self.task_arn = str(tasks[0]["taskArn"])
        return response

    def get_waiter(self, name: str) -> Any:
        waiter = self._client.get_waiter(name)
        return _StoppingWaiter(waiter, self) if name == "tasks_stopped" else waiter

    def describe(self) -> dict[str, Any] | None:
        """The task as ECS describes it now, None before it started."""
        if self.task_arn is None:
            return None
        params: dict[str, Any] = {"tasks": [self.task_arn]}
        if self.cluster:
            params["cluster"] = self.cluster
        tasks = self._client.describe_tasks(**params).get("tasks") or []
        return dict(tasks[0]) if tasks else None

    def stop(self, reason: str) -> None:
        if self.task_arn is None:
            return
        params: dict[str, Any] = {"task": self.task_arn, "reason": reason[:255]}
        if self.cluster:
            params["cluster"] = self.cluster
        self._client.stop_task(**params)

    def stop_for_timeout(self, wait_params: Mapping[str, Any]) -> None:
        """Stop the task and wait (while Pipes still reads its log) until ECS reports it stopped."""
        self.timed_out = True
        self.stop(self._timeout_reason)
        config = dict(wait_params.get("WaiterConfig") or {})
        delay = int(config.get("Delay", 6))
        grace = {"Delay": delay, "MaxAttempts": max(1, int(self._stop_grace_seconds // delay)) + 1}
        # Should it outlast the grace, it is reported timed out all the same; ECS finishes stopping it on its own.
        with contextlib.suppress(WaiterError):
            self._client.get_waiter("tasks_stopped").wait(**{**wait_params, "WaiterConfig": grace})


def run_on_ecs(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    *,
    ecs_client: Any,
    logs_client: Any,
    invocations: Sequence[Mapping[str, Any]],
    store_config: Mapping[str, Any],
    timeout_seconds: float | None = None,
    poll_seconds: float = 6.0,
    stop_grace_seconds: float = STOP_GRACE_SECONDS,
    command: Sequence[str] = TOOL_RUNNER_COMMAND,
) -> list[dict[str, Any]]:
    """Run ``invocations`` on ECS and return one result per invocation (pipelines contract, section 3).

    ``ecs_client`` and ``logs_client`` are boto3 ``ecs`` and ``logs`` clients.
    Invocations whose pipelines share ``ecs`` settings run in one task, one
    task after another. ``timeout_seconds`` bounds each task; it defaults to
    `ecs_requests.task_timeout_seconds` (the runner also holds each tool to
    its own limit inside the task). A task that cannot start, exits non-zero
    or is stopped gives ``failed`` results; one that outlives the timeout is
    stopped and gives ``timed_out``; settings ECS or the task definition cannot
    honour give ``failed`` results naming what to fix, before anything starts.
    """
    groups: dict[EcsSettings | str, list[Mapping[str, Any]]] = {}
    for invocation in invocations:
        try:
            key: EcsSettings | str = EcsSettings.of(invocation["pipeline"])
        except EcsSettingsError as error:
            key = str(error)
        groups.setdefault(key, []).append(invocation)
    results: list[dict[str, Any]] = []
    for key, group in groups.items():
        try:
            if isinstance(key, str):
                raise EcsSettingsError(key)
            results += _run_task(
                context,
                ecs_client=ecs_client,
                logs_client=logs_client,
                invocations=group,
                store_config=store_config,
                timeout_seconds=task_timeout_seconds(group) if timeout_seconds is None else timeout_seconds,
                poll_seconds=poll_seconds,
                stop_grace_seconds=stop_grace_seconds,
                command=command,
            )
        except EcsSettingsError as error:
            context.log.error(f"ECS cannot run {len(group)} invocation(s): {error}")
            now = _now()
            results += on_task(
                unreported_results(
                    group, [], status="failed", reason=str(error), exit_code=None, tail="", started=now, ended=now
                ),
                None,
            )
    return results


def _run_task(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    *,
    ecs_client: Any,
    logs_client: Any,
    invocations: Sequence[Mapping[str, Any]],
    store_config: Mapping[str, Any],
    timeout_seconds: float,
    poll_seconds: float,
    stop_grace_seconds: float,
    command: Sequence[str],
) -> list[dict[str, Any]]:
    """Run invocations that share ``ecs`` settings in one task (see `run_on_ecs`)."""
    settings = batch_settings(invocations)
    definition = ecs_client.describe_task_definition(taskDefinition=settings.task_definition)["taskDefinition"]
    log_group, stream_prefix = check_task_definition(definition, settings)
    params = run_task_params(invocations, run_id=context.run.run_id, attempt=context.retry_number, command=command)
    tracked = _TrackedEcs(
        ecs_client,
        timeout_reason=f"labmesh: the pipeline ran longer than its {timeout_seconds:g} s limit",
        stop_grace_seconds=stop_grace_seconds,
    )
    pipes = PipesECSClient(client=tracked, message_reader=ClosingCloudWatchMessageReader(client=logs_client))
    wait = waiter_config(timeout_seconds, poll_seconds)
    started = _now()
    try:
        completed = pipes.run(
            context=context,
            run_task_params=params,
            extras={"store": dict(store_config), "invocations": [dict(invocation) for invocation in invocations]},
            pipes_container_name=settings.container_name,
            waiter_config=WaiterConfig(Delay=wait["Delay"], MaxAttempts=wait["MaxAttempts"]),
        )
    except Exception as error:
        return _ended_badly(
            context,
            error,
            tracked,
            invocations,
            settings.container_name,
            log_group,
            stream_prefix,
            logs_client,
            started=started,
            timeout_seconds=timeout_seconds,
        )
    reported = results_of(completed.get_custom_messages())
    missing: list[dict[str, Any]] = []
    if {str(result.get("invocation_id")) for result in reported} < {str(i["invocation_id"]) for i in invocations}:
        lines = _log_lines(logs_client, log_group, stream_prefix, settings.container_name, tracked.task_arn)
        missing = unreported_results(
            invocations,
            reported,
            status="failed",
            reason="the tool runner ended without reporting a result for it",
            exit_code=0,
            tail=log_tail(lines),
            started=started,
            ended=_now(),
        )
    context.log.info(f"ECS task {tracked.task_arn} ran {len(invocations)} invocation(s)")
    return on_task([*reported, *missing], tracked.task_arn)


def _log_lines(logs_client: Any, group: str, prefix: str, container: str, task_arn: str | None) -> list[str]:
    if task_arn is None:
        return []
    return read_log_lines(logs_client, group, log_stream_name(prefix, container, task_arn))


def _ended_badly(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    error: Exception,
    tracked: _TrackedEcs,
    invocations: Sequence[Mapping[str, Any]],
    container_name: str,
    log_group: str,
    stream_prefix: str,
    logs_client: Any,
    *,
    started: str,
    timeout_seconds: float,
) -> list[dict[str, Any]]:
    """Results for a task that did not end well, or ``error`` raised again when the task is not what failed."""
    if isinstance(error, EcsTaskNotStarted):
        context.log.error(str(error))
        return on_task(
            unreported_results(
                invocations,
                [],
                status="failed",
                reason=str(error),
                exit_code=None,
                tail="",
                started=started,
                ended=_now(),
            ),
            None,
        )
    task = tracked.describe()
    if task is None:
        raise error
    if task.get("lastStatus") != "STOPPED" and not tracked.timed_out:
        # Something on this side failed while the task runs: stop it rather than leave it running unwatched.
        tracked.stop(f"labmesh: the Dagster step failed ({type(error).__name__})")
        raise error
    lines = _log_lines(logs_client, log_group, stream_prefix, container_name, tracked.task_arn)
    reported = reported_results(lines)
    if tracked.timed_out:
        status, reason = "timed_out", f"ran longer than the pipeline's {timeout_seconds:g} s limit and was stopped"
        exit_code = stop_reason(task, container_name)[1]
    else:
        status = "failed"
        reason, exit_code = stop_reason(task, container_name)
    context.log.error(f"ECS task {tracked.task_arn}: {reason}")
    ended = task.get("stoppedAt")
    rest = unreported_results(
        invocations,
        reported,
        status=status,
        reason=reason,
        exit_code=exit_code,
        tail=log_tail(lines),
        started=started,
        ended=ended.isoformat(timespec="seconds") if isinstance(ended, datetime) else _now(),
    )
    return on_task([*reported, *rest], tracked.task_arn)
