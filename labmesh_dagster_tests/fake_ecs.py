"""An ECS client for tests that really runs a task's container command, held to botocore's own ``ecs`` model.

moto serves ECS's API but never runs a container, and a Pipes test needs the
container to run: this fake stands in for ``boto3.client("ecs")`` and starts
each task's container command as a local subprocess. Requests and responses
are checked against the model as `labmesh_dagster_tests.service_model`
describes (botocore's ``ParamValidator``, then the maxima, enums and patterns
the service checks, and every response the fake builds).

What it does beyond the model is what the ECS documentation says the service
does, as far as PipesECSClient and labmesh depend on it:

- RunTask on FARGATE needs an ``awsvpc`` network configuration with subnets,
  task CPU and memory in one of Fargate's pairs, and container overrides that
  name containers of the task definition (``InvalidParameterException``).
- RunTask is idempotent by ``clientToken`` per cluster ("Ensuring
  idempotency"): the same token with the same parameters answers the task it
  already started, with other parameters ``ConflictException``.
- The container runs with the task definition's environment, then the
  override's (PipesECSClient's bootstrap variables), on top of ``host_env``.
  Its command is the override's, else the definition's; ``image`` maps the
  command to what runs here (this checkout's Python for ``python``), the
  way an image's ``PATH`` resolves it.
- The awslogs driver sends every line the container prints (stdout and
  stderr) to CloudWatch Logs (``logs``: a boto3 client, moto's server over
  HTTP) in the stream ``<awslogs-stream-prefix>/<container>/<task id>`` of
  ``awslogs-group``, created at start when ``awslogs-create-group`` is
  ``"true"``; the task shows STOPPED only after its last line is sent.
- A task whose command cannot be started stops with ``stopCode``
  ``TaskFailedToStart`` and a ``CannotStartContainerError`` reason. A task
  whose container exits stops with ``EssentialContainerExited``; StopTask sends
  SIGTERM, then SIGKILL after ``stop_timeout`` seconds, and the task stops with
  ``UserInitiated`` and the caller's reason. A signal's exit code is 128 + the
  signal, as Docker reports it.
- ``get_waiter`` answers botocore's own waiters from the ``ecs`` waiter model,
  driving this fake's DescribeTasks.

``lose_run_task_responses(n)`` makes the next ``n`` RunTask calls start (or
find) their task and then answer ``ServerException``, as when a response is
lost on its way back; ``started`` counts the processes actually started.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import botocore.session
from botocore import xform_name
from botocore.waiter import NormalizedOperationMethod, Waiter, WaiterModel

from labmesh_dagster.pipelines.ecs_requests import FARGATE_SIZES
from labmesh_dagster_tests import service_model
from labmesh_dagster_tests.aws_fakes import FAKE_AWS_ENV
from labmesh_dagster_tests.service_model import FakeServiceClient

SERVICE = "ecs"


def local_python(command: Sequence[str]) -> list[str]:
    """The container command as it runs here: ``python`` is this checkout's interpreter, the image's own."""
    return [sys.executable if part == "python" and index == 0 else part for index, part in enumerate(command)]


def _host_env() -> dict[str, str]:
    return {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}


@dataclass
class _Task:
    arn: str
    cluster_arn: str
    definition: dict[str, Any]
    request: dict[str, Any]
    created: datetime
    container_name: str
    last_status: str = "PROVISIONING"
    desired_status: str = "RUNNING"
    exit_code: int | None = None
    container_reason: str | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    started: datetime | None = None
    stopped: datetime | None = None
    process: subprocess.Popen[str] | None = None
    runtime_id: str = field(default_factory=lambda: uuid.uuid4().hex)


class FakeEcsClient(FakeServiceClient):
    """Fargate tasks of registered task definitions in known clusters, run as local processes."""

    service_name = SERVICE

    def __init__(
        self,
        *,
        logs: Any,
        clusters: Sequence[str] = ("labmesh",),
        region: str = "us-east-1",
        account: str = "123456789012",
        image: Callable[[Sequence[str]], list[str]] = local_python,
        host_env: Mapping[str, str] | None = None,
        stop_timeout: float = 2.0,
    ) -> None:
        super().__init__()
        self.logs = logs
        self.region = region
        self.account = account
        self.clusters = {name: self._arn(f"cluster/{name}") for name in clusters}
        self.image = image
        self.host_env = dict(host_env if host_env is not None else _host_env())
        self.stop_timeout = stop_timeout
        self.definitions: dict[str, list[dict[str, Any]]] = {}
        self.tasks: dict[str, _Task] = {}
        self.started = 0
        self._tokens: dict[tuple[str, str], tuple[dict[str, Any], list[str]]] = {}
        self._lost_responses = 0
        self._lock = threading.RLock()
        self._pumps: list[threading.Thread] = []
        self.meta = SimpleNamespace(region_name=region, service_model=service_model.load_model(SERVICE))

    def _arn(self, resource: str) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account}:{resource}"

    def lose_run_task_responses(self, times: int = 1) -> None:
        self._lost_responses += times

    def close(self) -> None:
        """Kill what still runs and wait for every log to be sent, so a test leaves nothing behind."""
        with self._lock:
            processes = [task.process for task in self.tasks.values() if task.process is not None]
        for process in processes:
            if process.poll() is None:
                process.kill()
        for pump in self._pumps:
            pump.join(timeout=30)

    # Task definitions

    def register_task_definition(self, **params: Any) -> dict[str, Any]:
        operation_name = "RegisterTaskDefinition"
        self._receive(operation_name, params)
        family = params["family"]
        revisions = self.definitions.setdefault(family, [])
        definition = {
            **copy.deepcopy(params),
            "taskDefinitionArn": self._arn(f"task-definition/{family}:{len(revisions) + 1}"),
            "revision": len(revisions) + 1,
            "status": "ACTIVE",
            "registeredAt": datetime.now(UTC),
        }
        definition.pop("tags", None)
        revisions.append(definition)
        return self._reply(operation_name, {"taskDefinition": copy.deepcopy(definition)})

    def _definition(self, operation_name: str, reference: str) -> dict[str, Any]:
        name = reference.rsplit("task-definition/", 1)[-1]
        family, _, revision = name.partition(":")
        revisions = self.definitions.get(family, [])
        if revisions and not revision:
            return revisions[-1]
        if revision.isdigit() and 0 < int(revision) <= len(revisions):
            return revisions[int(revision) - 1]
        raise self._error(operation_name, "ClientException", f"Unable to describe task definition {reference}.")

    def describe_task_definition(self, **params: Any) -> dict[str, Any]:
        operation_name = "DescribeTaskDefinition"
        self._receive(operation_name, params)
        definition = self._definition(operation_name, params["taskDefinition"])
        return self._reply(operation_name, {"taskDefinition": copy.deepcopy(definition)})

    # Tasks

    def _cluster(self, operation_name: str, cluster: str | None) -> str:
        name = (cluster or "default").rsplit("cluster/", 1)[-1]
        if name not in self.clusters:
            raise self._error(operation_name, "ClusterNotFoundException", "Cluster not found.")
        return self.clusters[name]

    def _check_run_task(self, params: Mapping[str, Any], definition: Mapping[str, Any]) -> None:
        operation_name = "RunTask"

        def invalid(message: str) -> Exception:
            return self._error(operation_name, "InvalidParameterException", message)

        containers = {container["name"] for container in definition["containerDefinitions"]}
        overrides = params.get("overrides") or {}
        for override in overrides.get("containerOverrides", []):
            if override.get("name") not in containers:
                raise invalid(
                    f"Override for container named {override.get('name')} is not a container in the TaskDefinition."
                )
        if params.get("launchType", "EC2") == "FARGATE":
            vpc = (params.get("networkConfiguration") or {}).get("awsvpcConfiguration")
            if not vpc or not vpc.get("subnets"):
                raise invalid("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
            cpu = overrides.get("cpu", definition.get("cpu"))
            memory = overrides.get("memory", definition.get("memory"))
            allowed = dict(FARGATE_SIZES)
            if cpu is None or memory is None or int(memory) not in allowed.get(int(cpu), ()):
                raise invalid(f"No Fargate configuration exists for given values: {cpu} CPU, {memory} memory.")
        if params.get("count", 1) > 10:
            raise invalid("count must be at most 10")

    def run_task(self, **params: Any) -> dict[str, Any]:
        operation_name = "RunTask"
        self._receive(operation_name, params)
        cluster_arn = self._cluster(operation_name, params.get("cluster"))
        definition = self._definition(operation_name, params["taskDefinition"])
        self._check_run_task(params, definition)
        request = {key: copy.deepcopy(value) for key, value in params.items() if key != "clientToken"}
        token = params.get("clientToken")
        with self._lock:
            known = self._tokens.get((cluster_arn, token)) if token is not None else None
            if known is not None:
                if known[0] != request:
                    raise self._error(
                        operation_name, "ConflictException", f"The client token {token} was used with other parameters."
                    )
                arns = known[1]
            else:
                arns = [self._start(cluster_arn, definition, request) for _ in range(params.get("count", 1))]
                if token is not None:
                    self._tokens[(cluster_arn, token)] = (request, arns)
            if self._lost_responses:
                self._lost_responses -= 1
                raise self._error(operation_name, "ServerException", "The response was lost on its way back.")
            response = {"tasks": [self._describe(self.tasks[arn]) for arn in arns], "failures": []}
        return self._reply(operation_name, response)

    def _start(self, cluster_arn: str, definition: Mapping[str, Any], request: Mapping[str, Any]) -> str:
        cluster = cluster_arn.rsplit("/", 1)[-1]
        task_id = uuid.uuid4().hex
        container = definition["containerDefinitions"][0]
        task = _Task(
            arn=self._arn(f"task/{cluster}/{task_id}"),
            cluster_arn=cluster_arn,
            definition=dict(definition),
            request=dict(request),
            created=datetime.now(UTC),
            container_name=container["name"],
        )
        self.tasks[task.arn] = task
        override = next(
            (
                o
                for o in (request.get("overrides") or {}).get("containerOverrides", [])
                if o.get("name") == task.container_name
            ),
            {},
        )
        env = dict(self.host_env)
        env.update({item["name"]: item["value"] for item in container.get("environment", [])})
        env.update({item["name"]: item["value"] for item in override.get("environment", [])})
        command = override.get("command") or container.get("command") or []
        try:
            stream = self._open_log_stream(container, task_id)
            task.process = subprocess.Popen(
                self.image(command),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
            )
        except (OSError, ValueError, KeyError) as error:
            task.last_status = task.desired_status = "STOPPED"
            task.stop_code = "TaskFailedToStart"
            task.stopped_reason = f"CannotStartContainerError: {error}"[:255]
            task.container_reason = task.stopped_reason
            task.stopped = datetime.now(UTC)
            return task.arn
        self.started += 1
        task.last_status = "RUNNING"
        task.started = datetime.now(UTC)
        pump = threading.Thread(target=self._pump, args=(task, stream), daemon=True)
        self._pumps.append(pump)
        pump.start()
        return task.arn

    def _open_log_stream(self, container: Mapping[str, Any], task_id: str) -> tuple[str, str] | None:
        config = container.get("logConfiguration") or {}
        if config.get("logDriver") != "awslogs":
            return None
        options = config["options"]
        group = options["awslogs-group"]
        stream = f"{options['awslogs-stream-prefix']}/{container['name']}/{task_id}"
        if options.get("awslogs-create-group") == "true":
            with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
                self.logs.create_log_group(logGroupName=group)
        self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        return group, stream

    def _pump(self, task: _Task, stream: tuple[str, str] | None) -> None:
        """Send the container's lines to its log stream as they come, then mark the task stopped."""
        process = task.process
        assert process is not None and process.stdout is not None
        for line in process.stdout:
            text = line.rstrip("\n")
            if stream is not None and text:
                self.logs.put_log_events(
                    logGroupName=stream[0],
                    logStreamName=stream[1],
                    logEvents=[{"timestamp": int(time.time() * 1000), "message": text}],
                )
        returncode = process.wait()
        with self._lock:
            task.exit_code = returncode if returncode >= 0 else 128 - returncode
            task.last_status = task.desired_status = "STOPPED"
            task.stopped = datetime.now(UTC)
            if task.stop_code is None:
                task.stop_code = "EssentialContainerExited"
                task.stopped_reason = "Essential container in task exited"

    def describe_tasks(self, **params: Any) -> dict[str, Any]:
        operation_name = "DescribeTasks"
        self._receive(operation_name, params)
        cluster_arn = self._cluster(operation_name, params.get("cluster"))
        tasks, failures = [], []
        with self._lock:
            for arn in params["tasks"]:
                task = self.tasks.get(arn) or next((t for t in self.tasks.values() if t.arn.endswith("/" + arn)), None)
                if task is None or task.cluster_arn != cluster_arn:
                    failures.append({"arn": arn, "reason": "MISSING"})
                else:
                    tasks.append(self._describe(task))
        return self._reply(operation_name, {"tasks": tasks, "failures": failures})

    def stop_task(self, **params: Any) -> dict[str, Any]:
        operation_name = "StopTask"
        self._receive(operation_name, params)
        cluster_arn = self._cluster(operation_name, params.get("cluster"))
        with self._lock:
            task = self.tasks.get(params["task"])
            if task is None or task.cluster_arn != cluster_arn:
                raise self._error(operation_name, "InvalidParameterException", "The referenced task was not found.")
            if task.last_status != "STOPPED" and task.desired_status != "STOPPED":
                task.desired_status = "STOPPED"
                task.stop_code = "UserInitiated"
                task.stopped_reason = params.get("reason") or "Task stopped by user"
                if task.process is not None and task.process.poll() is None:
                    task.process.send_signal(signal.SIGTERM)
                    killer = threading.Timer(self.stop_timeout, self._kill, args=(task.process,))
                    killer.daemon = True
                    killer.start()
            response = {"task": self._describe(task)}
        return self._reply(operation_name, response)

    @staticmethod
    def _kill(process: subprocess.Popen[str]) -> None:
        if process.poll() is None:
            process.kill()

    def _describe(self, task: _Task) -> dict[str, Any]:
        overrides = task.request.get("overrides") or {}
        definition = task.definition
        container = next(c for c in definition["containerDefinitions"] if c["name"] == task.container_name)
        described_container: dict[str, Any] = {
            "containerArn": self._arn(
                f"container/{task.arn.rsplit('/', 2)[-2]}/{task.arn.rsplit('/', 1)[-1]}/{task.runtime_id}"
            ),
            "taskArn": task.arn,
            "name": task.container_name,
            "image": container["image"],
            "lastStatus": task.last_status,
        }
        if task.process is not None:
            described_container["runtimeId"] = task.runtime_id
        if task.exit_code is not None:
            described_container["exitCode"] = task.exit_code
        if task.container_reason:
            described_container["reason"] = task.container_reason
        described: dict[str, Any] = {
            "taskArn": task.arn,
            "clusterArn": task.cluster_arn,
            "taskDefinitionArn": definition["taskDefinitionArn"],
            "lastStatus": task.last_status,
            "desiredStatus": task.desired_status,
            "launchType": task.request.get("launchType", "EC2"),
            "cpu": str(overrides.get("cpu", definition.get("cpu", ""))),
            "memory": str(overrides.get("memory", definition.get("memory", ""))),
            "containers": [described_container],
            "overrides": copy.deepcopy(overrides),
            "createdAt": task.created,
            "group": f"family:{definition['family']}",
            "tags": copy.deepcopy(task.request.get("tags", [])),
        }
        if task.request.get("startedBy"):
            described["startedBy"] = task.request["startedBy"]
        if task.started is not None:
            described["startedAt"] = task.started
        if task.stop_code is not None:
            described["stopCode"] = task.stop_code
            described["stoppedReason"] = task.stopped_reason
        if task.stopped is not None:
            described["stoppedAt"] = task.stopped
        return described

    def get_waiter(self, waiter_name: str) -> Waiter:
        """botocore's own waiter from the ``ecs`` waiter model, polling this fake."""
        model: WaiterModel = botocore.session.get_session().get_waiter_model(SERVICE)
        names = {xform_name(name): name for name in model.waiter_names}
        name = names[waiter_name]
        config = model.get_waiter(name)
        return Waiter(name, config, NormalizedOperationMethod(getattr(self, xform_name(config.operation))))


# The image the pipelines' task definition names (the fake runs its command here, whatever the image).
LABMESH_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/labmesh:1.0"


def register_pipelines_task_definition(fake: FakeEcsClient, moto_endpoint: str, log_group: str) -> None:
    """The task definition labmesh's ECS pipelines name (`labmesh-pipelines`, container `labmesh`), its
    container reaching moto's S3 and its output going to ``log_group`` in CloudWatch Logs, as awslogs sends it."""
    environment = {**FAKE_AWS_ENV, "AWS_ENDPOINT_URL": moto_endpoint, "PYTHONUNBUFFERED": "1"}
    fake.register_task_definition(
        family="labmesh-pipelines",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="1024",
        memory="2048",
        containerDefinitions=[
            {
                "name": "labmesh",
                "image": LABMESH_IMAGE,
                "essential": True,
                "environment": [{"name": name, "value": value} for name, value in environment.items()],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": log_group,
                        "awslogs-region": "us-east-1",
                        "awslogs-stream-prefix": "pipelines",
                        "awslogs-create-group": "true",
                    },
                },
            }
        ],
    )
