"""HealthOmics workflow runs for tests, held to botocore's ``omics`` model and to the documented behaviour.

moto does not serve HealthOmics, so this fake answers StartRun, GetRun,
CancelRun and GetWorkflow like ``boto3.client("omics")``. Every request and
response goes through `labmesh_dagster_tests.service_model` as in
`fake_omics`: botocore's ``ParamValidator`` (a ``ParamValidationError``, as
boto3 raises), the service-side maxima, enums and patterns (a
``ValidationException``), and the fake's own answers (`ModelViolation`, a bug
in the fake). Errors carry only codes the operation declares.

What it does beyond the model, from the HealthOmics documentation:

- ``requestId`` is "an idempotency token that HealthOmics uses to identify
  duplicate requests and starts the run only once" (Developer Guide, "Start a
  run in HealthOmics"): the same requestId answers the run it started, never a
  second one. The documentation does not say what the same token with other
  parameters gets; the fake refuses it with a ``ConflictException`` (declared),
  the stricter reading.
- A run goes PENDING, STARTING, RUNNING over successive GetRun calls and ends
  COMPLETED, or FAILED with a ``failureReason`` and ``statusMessage``, on poll
  number ``polls_to_finish``; a run scripted ``"NEVER"`` stays RUNNING.
- CancelRun of a running run makes it STOPPING, then CANCELLED; of a run that
  ended, a ``ConflictException``.
- On COMPLETED the run writes its outputs under ``<outputUri>/<runId>/out/``
  (Developer Guide, "HealthOmics run outputs") through an S3 client (moto's
  server), and GetRun's ``runOutputUri`` names ``<outputUri>/<runId>``.
- GetWorkflow answers the workflows the fake holds, by id and type: a
  Ready2Run workflow is not found as PRIVATE, nor the reverse; StartRun of an
  unknown workflow is ``ResourceNotFoundException``.

`lose_next_start_response` makes the next StartRun create its run and then
answer ``InternalServerException``, as when the response is lost on the way
back: the caller cannot know whether the run started.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from labmesh_dagster_tests.omics.fake_omics import SERVICE
from labmesh_dagster_tests.service_model import FakeServiceClient

__all__ = ["FakeOmicsWorkflows", "FakeWorkflow", "Outputs"]

Outputs = Mapping[str, bytes] | Callable[[Mapping[str, Any]], Mapping[str, bytes]]
"""A run's output files by path below ``out/``, or a function of the run's parameters giving them."""

_UUID_NAMESPACE = uuid.UUID("6f1c2b1e-4a8e-4c53-9d0e-2f8b7a1c9e11")


@dataclass(frozen=True)
class FakeWorkflow:
    id: str
    name: str
    type: str = "PRIVATE"
    engine: str = "NEXTFLOW"
    versions: tuple[str, ...] = ()


@dataclass
class _Run:
    id: str
    request_id: str
    request: dict[str, Any]
    outcome: str
    failure_reason: str
    status_message: str
    created: datetime
    polls: int = 0
    cancelled_at_poll: int | None = None
    wrote_outputs: bool = False
    uuid: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class FakeOmicsWorkflows(FakeServiceClient):
    """Workflow runs of one account, answering like ``boto3.client("omics")``.

    ``outcome`` decides how each new run ends (``"COMPLETED"``, ``"FAILED"``
    or ``"NEVER"``) and may be changed between runs; ``outputs`` are what a
    completed run writes, through ``s3`` (without one, nothing is written).
    """

    service_name = SERVICE

    def __init__(
        self,
        *,
        workflows: tuple[FakeWorkflow, ...] = (FakeWorkflow("1234567", "fastq-qc", versions=("1.0",)),),
        region: str = "us-east-1",
        account: str = "123456789012",
        polls_to_finish: int = 4,
        outcome: str = "COMPLETED",
        failure_reason: str = "TaskFailed",
        status_message: str = "Task fastp exited with code 1",
        outputs: Outputs | None = None,
        s3: Any = None,
    ) -> None:
        super().__init__()
        self.workflows = {(workflow.id, workflow.type): workflow for workflow in workflows}
        self.region = region
        self.account = account
        self.polls_to_finish = polls_to_finish
        self.outcome = outcome
        self.failure_reason = failure_reason
        self.status_message = status_message
        self.outputs: Outputs = outputs if outputs is not None else {}
        self.s3 = s3
        self.runs: dict[str, _Run] = {}
        self._by_request: dict[str, str] = {}
        self._lose_start_responses = 0
        self._run_clock = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

    def lose_next_start_response(self, times: int = 1) -> None:
        """The next ``times`` StartRun calls start (or find) their run, then answer InternalServerException."""
        self._lose_start_responses += times

    def _now(self) -> datetime:
        self._run_clock += timedelta(seconds=30)
        return self._run_clock

    def _arn(self, kind: str, resource_id: str) -> str:
        return f"arn:aws:omics:{self.region}:{self.account}:{kind}/{resource_id}"

    @staticmethod
    def _run_folder(run: _Run) -> str:
        return f"{run.request['outputUri'].rstrip('/')}/{run.id}"

    def start_run(self, **params: Any) -> dict[str, Any]:
        operation_name = "StartRun"
        self._receive(operation_name, params)
        workflow_key = (params.get("workflowId", ""), params.get("workflowType", "PRIVATE"))
        workflow = self.workflows.get(workflow_key)
        if workflow is None:
            raise self._error(operation_name, "ResourceNotFoundException", f"workflow {workflow_key[0]} not found")
        version = params.get("workflowVersionName")
        if version is not None and version not in workflow.versions:
            raise self._error(
                operation_name, "ResourceNotFoundException", f"workflow {workflow.id} has no version {version}"
            )
        request_id = params["requestId"]
        request = {key: copy.deepcopy(value) for key, value in params.items() if key != "requestId"}
        if request_id in self._by_request:
            run = self.runs[self._by_request[request_id]]
            if run.request != request:
                raise self._error(
                    operation_name,
                    "ConflictException",
                    f"request id {request_id} already started run {run.id} with other parameters",
                )
        else:
            run_id = str(7_000_000 + len(self.runs))
            run = _Run(
                id=run_id,
                request_id=request_id,
                request=request,
                outcome=self.outcome,
                failure_reason=self.failure_reason,
                status_message=self.status_message,
                created=self._now(),
                uuid=str(uuid.uuid5(_UUID_NAMESPACE, run_id)),
            )
            self.runs[run_id] = run
            self._by_request[request_id] = run_id
        if self._lose_start_responses > 0:
            self._lose_start_responses -= 1
            raise self._error(operation_name, "InternalServerException", "the response was lost")
        response: dict[str, Any] = {
            "arn": self._arn("run", run.id),
            "id": run.id,
            "status": self._status(run),
            "uuid": run.uuid,
            "runOutputUri": self._run_folder(run),
        }
        if run.request.get("tags"):
            response["tags"] = dict(run.request["tags"])
        return self._reply(operation_name, response)

    def _status(self, run: _Run) -> str:
        """The run's status as of the GetRun calls so far."""
        if run.cancelled_at_poll is not None:
            return "STOPPING" if run.polls <= run.cancelled_at_poll + 1 else "CANCELLED"
        if run.polls <= 1:
            return "PENDING"
        if run.polls == 2:
            return "STARTING"
        if run.outcome == "NEVER" or run.polls < self.polls_to_finish:
            return "RUNNING"
        return "FAILED" if run.outcome == "FAILED" else "COMPLETED"

    def _write_outputs(self, run: _Run) -> None:
        if run.wrote_outputs or self.s3 is None:
            return
        run.wrote_outputs = True
        outputs = self.outputs(run.request.get("parameters", {})) if callable(self.outputs) else self.outputs
        bucket, _, prefix = self._run_folder(run)[len("s3://") :].partition("/")
        for name, content in outputs.items():
            key = f"{prefix}/out/{name}" if prefix else f"out/{name}"
            self.s3.put_object(Bucket=bucket, Key=key, Body=content)

    def get_run(self, **params: Any) -> dict[str, Any]:
        operation_name = "GetRun"
        self._receive(operation_name, params)
        run = self.runs.get(params["id"])
        if run is None:
            raise self._missing(operation_name, f"run {params['id']} not found")
        run.polls += 1
        status = self._status(run)
        if status == "COMPLETED":
            self._write_outputs(run)
        request = run.request
        workflow = self.workflows[(request["workflowId"], request.get("workflowType", "PRIVATE"))]
        response: dict[str, Any] = {
            "arn": self._arn("run", run.id),
            "id": run.id,
            "uuid": run.uuid,
            "status": status,
            "workflowId": workflow.id,
            "workflowType": workflow.type,
            "roleArn": request["roleArn"],
            "outputUri": request["outputUri"],
            "runOutputUri": self._run_folder(run),
            "parameters": copy.deepcopy(request.get("parameters", {})),
            "digest": hashlib.sha256(f"{workflow.id}:{request.get('workflowVersionName')}".encode()).hexdigest(),
            "creationTime": run.created,
            "startedBy": f"arn:aws:iam::{self.account}:user/labmesh",
        }
        for member in (
            "name",
            "runGroupId",
            "cacheId",
            "cacheBehavior",
            "priority",
            "storageType",
            "storageCapacity",
            "workflowVersionName",
            "tags",
        ):
            if member in request:
                response[member] = copy.deepcopy(request[member])
        if status not in {"PENDING", "STARTING"}:
            response["startTime"] = run.created + timedelta(minutes=1)
        if status in {"COMPLETED", "FAILED", "CANCELLED"}:
            response["stopTime"] = run.created + timedelta(minutes=run.polls)
        if status == "FAILED":
            response["failureReason"] = run.failure_reason
            response["statusMessage"] = run.status_message
        return self._reply(operation_name, response)

    def cancel_run(self, **params: Any) -> dict[str, Any]:
        operation_name = "CancelRun"
        self._receive(operation_name, params)
        run = self.runs.get(params["id"])
        if run is None:
            raise self._missing(operation_name, f"run {params['id']} not found")
        status = self._status(run)
        if status in {"COMPLETED", "FAILED", "CANCELLED", "DELETED"}:
            raise self._error(operation_name, "ConflictException", f"run {run.id} is {status} and cannot be cancelled")
        if run.cancelled_at_poll is None:
            run.cancelled_at_poll = run.polls
        return self._reply(operation_name, {})

    def get_workflow(self, **params: Any) -> dict[str, Any]:
        operation_name = "GetWorkflow"
        self._receive(operation_name, params)
        workflow = self.workflows.get((params["id"], params.get("type", "PRIVATE")))
        if workflow is None:
            raise self._missing(operation_name, f"workflow {params['id']} not found")
        response = {
            "arn": self._arn("workflow", workflow.id),
            "id": workflow.id,
            "status": "ACTIVE",
            "type": workflow.type,
            "name": workflow.name,
            "engine": workflow.engine,
            "creationTime": datetime(2025, 1, 1, tzinfo=UTC),
        }
        return self._reply(operation_name, response)

    def started_runs(self) -> list[str]:
        """The id of every run the service created, in order: what was actually started."""
        return list(self.runs)
