"""AWS HealthOmics workflow runs: start one with ``StartRun``, follow it with ``GetRun``, read what it wrote.

A run is asynchronous and outlives the process that started it, so the start
must be safe to repeat. ``StartRun``'s ``requestId`` is the service's
idempotency token ("HealthOmics uses [it] to identify duplicate requests and
starts the run only once", Developer Guide, "Start a run in HealthOmics");
botocore's model marks it required, 1 to 128 printable characters.
`request_id_for` derives it from the experiment and the invocation id (which
already hashes the pipeline's name and version and the inputs' keys and
checksums), so a start retried after a lost response, or by a process that
restarted, finds the run already started instead of starting a second one.
``attempt`` is the one way to ask for a new run of the same invocation: a
caller that wants another try after a run failed or was cancelled moves to
the next attempt, itself deterministic.

The roleArn is required for every run, Ready2Run ones included (botocore's
model; the Ready2Run API page starts one with ``--role-arn``).

``GetRun`` reports one of `RUN_STATUSES`; a run ends in one of
`TERMINAL_STATUSES`. `HealthOmicsWorkflows.wait` polls with a growing interval
up to a ceiling, reads the status once more at the deadline, and when the
deadline passes cancels the run (``CancelRun``) and says it timed out: a run
left going costs compute and would later write outputs no one collects.

What a run writes: HealthOmics puts a run's files under the run's own folder,
``<outputUri>/<runId>/`` (GetRun's ``runOutputUri`` when it is given), with the
workflow's outputs below ``out/`` (Developer Guide, "HealthOmics run
outputs": ``s3://omics-outputs/8886192/out/...``). `list_outputs` lists that
prefix with an S3 client and `open_output` streams one object.

Throttling and 5xx answers from HealthOmics are retried with jittered backoff
(`labmesh_dagster.connectors.aws.PacedCaller`, which also keeps the call rate
under a ceiling); what is left is raised as `OmicsRunError` naming the run or
workflow, with the service's error chained.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from botocore.exceptions import ClientError

from labmesh_dagster.connectors.aws import PacedCaller, clear_failure, error_code
from labmesh_dagster.core.errors import LabmeshError

RUN_STATUSES = ("PENDING", "STARTING", "RUNNING", "STOPPING", "COMPLETED", "DELETED", "CANCELLED", "FAILED")
TERMINAL_STATUSES = frozenset({"COMPLETED", "DELETED", "CANCELLED", "FAILED"})
# A run that ended this way did not produce outputs; another attempt may.
UNSUCCESSFUL_STATUSES = frozenset({"DELETED", "CANCELLED", "FAILED"})
WORKFLOW_TYPES = frozenset({"PRIVATE", "READY2RUN"})
CACHE_BEHAVIORS = frozenset({"CACHE_ON_FAILURE", "CACHE_ALWAYS"})
STORAGE_TYPES = frozenset({"STATIC", "DYNAMIC"})
OUTPUT_FOLDER = "out"
# RunRequestId and RunName: 1 to 128 characters.
MAX_REQUEST_ID = 128
MAX_RUN_NAME = 128
# WorkflowId, RunGroupId and cache ids are digits, at most 18 of them.
_NUMERIC_ID = re.compile(r"[0-9]{1,18}")
_S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/.*)?")
DEFAULT_CALLS_PER_SECOND = 5.0


class OmicsRunError(LabmeshError):
    """HealthOmics refused a run request, or could not be asked (after retries)."""


def request_id_for(experiment_id: str, invocation_id: str, attempt: int = 0) -> str:
    """StartRun's ``requestId`` for one attempt at one invocation: the same arguments give the same id, always.

    Readable (``labmesh/<experiment>/<invocation>[/<attempt>]``) when that fits
    the 128 characters the model allows, else a SHA-256 of the same parts.
    """
    if attempt < 0:
        raise ValueError("attempt must be 0 or more")
    parts = [experiment_id, invocation_id] + ([str(attempt)] if attempt else [])
    readable = "/".join(["labmesh", *parts])
    if len(readable) <= MAX_REQUEST_ID and readable.isprintable():
        return readable
    return "labmesh-" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> (``bucket``, ``some/prefix``); ValueError for anything else."""
    match = _S3_URI.fullmatch(uri)
    if not match:
        raise ValueError(f"{uri!r} is not an s3://bucket/prefix URI")
    return match.group(1), (match.group(2) or "/")[1:]


@dataclass(frozen=True)
class WorkflowRunRequest:
    """What StartRun is asked, apart from its ``requestId``: the workflow, where outputs go, and the run's settings."""

    workflow_id: str
    role_arn: str
    output_uri: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    workflow_type: str = "PRIVATE"
    workflow_version_name: str | None = None
    name: str | None = None
    run_group_id: str | None = None
    cache_id: str | None = None
    cache_behavior: str | None = None
    storage_type: str | None = None
    storage_capacity: int | None = None
    priority: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parameters", dict(self.parameters))
        object.__setattr__(self, "tags", dict(self.tags))
        problems = []
        for label, value in (
            ("workflow id", self.workflow_id),
            ("run group id", self.run_group_id),
            ("cache id", self.cache_id),
        ):
            if value is not None and not _NUMERIC_ID.fullmatch(value):
                problems.append(f"{label} {value!r} must be 1 to 18 digits")
        if self.workflow_type not in WORKFLOW_TYPES:
            problems.append(f"workflow type {self.workflow_type!r} is not one of {', '.join(sorted(WORKFLOW_TYPES))}")
        if not self.role_arn.startswith("arn:"):
            problems.append(f"role {self.role_arn!r} must be an IAM role ARN (every run needs one, Ready2Run too)")
        if not self.output_uri.startswith("s3://"):
            problems.append(f"output URI {self.output_uri!r} must be an s3:// URI")
        if self.cache_behavior is not None and self.cache_behavior not in CACHE_BEHAVIORS:
            problems.append(
                f"cache behavior {self.cache_behavior!r} is not one of {', '.join(sorted(CACHE_BEHAVIORS))}"
            )
        if self.storage_type is not None and self.storage_type not in STORAGE_TYPES:
            problems.append(f"storage type {self.storage_type!r} is not one of {', '.join(sorted(STORAGE_TYPES))}")
        if problems:
            raise ValueError("; ".join(problems))

    def start_run_params(self, request_id: str) -> dict[str, Any]:
        """StartRun's keyword arguments: the optional members only when set, as the model wants no empty strings."""
        params: dict[str, Any] = {
            "workflowId": self.workflow_id,
            "workflowType": self.workflow_type,
            "roleArn": self.role_arn,
            "outputUri": self.output_uri,
            "parameters": dict(self.parameters),
            "requestId": request_id,
        }
        optional = {
            "workflowVersionName": self.workflow_version_name,
            "name": self.name[:MAX_RUN_NAME] if self.name else None,
            "runGroupId": self.run_group_id,
            "cacheId": self.cache_id,
            "cacheBehavior": self.cache_behavior,
            "storageType": self.storage_type,
            "storageCapacity": self.storage_capacity,
            "priority": self.priority,
            "tags": dict(self.tags) or None,
        }
        params.update({key: value for key, value in optional.items() if value is not None})
        return params


@dataclass(frozen=True)
class RunState:
    """A run as GetRun last reported it."""

    id: str
    status: str
    output_uri: str
    uuid: str | None = None
    workflow_id: str | None = None
    workflow_type: str | None = None
    workflow_version_name: str | None = None
    digest: str | None = None
    status_message: str = ""
    failure_reason: str = ""
    run_group_id: str | None = None
    cache_id: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def outputs_uri(self) -> str:
        """Where the workflow's outputs are: ``<run folder>/out/``."""
        folder = self.output_uri.rstrip("/")
        if folder.endswith("/" + OUTPUT_FOLDER):
            return folder + "/"
        return f"{folder}/{OUTPUT_FOLDER}/"

    @property
    def why(self) -> str:
        """The service's own words for how the run ended: failure reason and status message, as given."""
        return ": ".join(part for part in (self.failure_reason, self.status_message) if part)

    @classmethod
    def from_get_run(cls, response: Mapping[str, Any]) -> RunState:
        run_id = str(response["id"])
        folder = response.get("runOutputUri") or f"{str(response.get('outputUri', '')).rstrip('/')}/{run_id}"
        return cls(
            id=run_id,
            status=str(response["status"]),
            output_uri=str(folder),
            uuid=response.get("uuid"),
            workflow_id=response.get("workflowId"),
            workflow_type=response.get("workflowType"),
            workflow_version_name=response.get("workflowVersionName"),
            digest=response.get("digest"),
            status_message=str(response.get("statusMessage", "")),
            failure_reason=str(response.get("failureReason", "")),
            run_group_id=response.get("runGroupId"),
            cache_id=response.get("cacheId"),
        )


@dataclass(frozen=True)
class RunOutcome:
    """How waiting for a run ended: the run's last state, and whether the wait gave up (and cancelled it)."""

    run: RunState
    timed_out: bool = False


@dataclass(frozen=True)
class RunOutput:
    """One file a run wrote: its path below the run's ``out/`` folder, where it is, and its size."""

    name: str
    uri: str
    size: int


class HealthOmicsWorkflows:
    """Workflow runs in one account and Region, through an ``omics`` client (and an ``s3`` one to read outputs).

    ``sleep`` and ``clock`` are what waiting and retrying use; tests pass ones that only move when slept on.
    """

    def __init__(
        self,
        client: Any,
        *,
        s3_client: Any = None,
        max_per_second: float = DEFAULT_CALLS_PER_SECOND,
        attempts: int = 8,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.s3_client = s3_client
        self.sleep = sleep
        self.clock = clock
        self._call = PacedCaller(client, max_per_second=max_per_second, attempts=attempts, sleep=sleep, clock=clock)

    def _failure(self, action: str) -> contextlib.AbstractContextManager[None]:
        return clear_failure("HealthOmics", action, OmicsRunError)

    def start_run(self, request: WorkflowRunRequest, *, request_id: str) -> str:
        """Start a run (or find the one this ``request_id`` already started) and return its id."""
        if not 1 <= len(request_id) <= MAX_REQUEST_ID:
            raise ValueError(f"request id must be 1 to {MAX_REQUEST_ID} characters, got {len(request_id)}")
        with self._failure(f"start a run of workflow {request.workflow_id} (request {request_id})"):
            response = self._call("start_run", **request.start_run_params(request_id))
        return str(response["id"])

    def get_run(self, run_id: str) -> RunState:
        with self._failure(f"report run {run_id}"):
            return RunState.from_get_run(self._call("get_run", id=run_id))

    def cancel_run(self, run_id: str) -> None:
        """Ask the service to stop a run; a run that already ended (ConflictException) is left as it is."""
        try:
            with clear_failure(
                "HealthOmics", f"cancel run {run_id}", OmicsRunError, passthrough=frozenset({"ConflictException"})
            ):
                self._call("cancel_run", id=run_id)
        except ClientError as exc:
            if error_code(exc) != "ConflictException":
                raise

    def workflow_name(self, workflow_id: str, workflow_type: str = "PRIVATE") -> str | None:
        """The workflow's name (GetWorkflow), or None when it has none or may not be read (a shared workflow)."""
        try:
            response = self._call("get_workflow", id=workflow_id, type=workflow_type)
        except ClientError as exc:
            if error_code(exc) in {"AccessDeniedException", "ResourceNotFoundException"}:
                return None
            raise OmicsRunError(f"HealthOmics failed to describe workflow {workflow_id}: {exc}") from exc
        name = response.get("name")
        return str(name) if name else None

    def wait(
        self,
        run_id: str,
        *,
        timeout: float,
        poll: float = 30.0,
        max_poll: float = 300.0,
        backoff: float = 1.5,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> RunOutcome:
        """Poll ``run_id`` until it ends; past ``timeout`` seconds cancel it and report it timed out.

        The interval starts at ``poll`` and grows by ``backoff`` up to
        ``max_poll``: a run takes minutes to hours, and GetRun is a quota'd
        call shared by every run of the account. The status is read once more
        at the deadline, so a run that ends during the last sleep is returned
        as it ended rather than cancelled.
        """
        if poll <= 0 or timeout < 0:
            raise ValueError("poll must be positive and timeout not negative")
        sleep = sleep or self.sleep
        clock = clock or self.clock
        deadline = clock() + timeout
        interval = poll
        while True:
            run = self.get_run(run_id)
            if run.finished:
                return RunOutcome(run)
            remaining = deadline - clock()
            if remaining <= 0:
                self.cancel_run(run_id)
                return RunOutcome(self.get_run(run_id), timed_out=True)
            sleep(min(interval, remaining))
            interval = min(max_poll, interval * backoff)

    def list_outputs(self, run: RunState) -> list[RunOutput]:
        """Every object below the run's ``out/`` folder, in key order, named by its path below that folder."""
        if self.s3_client is None:
            raise OmicsRunError(f"no S3 client to read the outputs of run {run.id} at {run.outputs_uri}")
        bucket, prefix = split_s3_uri(run.outputs_uri)
        outputs = []
        with self._failure_s3(f"list the outputs of run {run.id} at {run.outputs_uri}"):
            for page in self.s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    key = str(item["Key"])
                    name = key[len(prefix) :]
                    if not name or name.endswith("/"):
                        continue  # a folder marker, not a file
                    outputs.append(RunOutput(name=name, uri=f"s3://{bucket}/{key}", size=int(item["Size"])))
        return outputs

    @contextlib.contextmanager
    def open_output(self, uri: str) -> Iterator[BinaryIO]:
        """A streaming reader of one output object."""
        if self.s3_client is None:
            raise OmicsRunError(f"no S3 client to read {uri}")
        bucket, key = split_s3_uri(uri)
        with self._failure_s3(f"read {uri}"):
            body = self.s3_client.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            yield body
        finally:
            body.close()

    @staticmethod
    def _failure_s3(action: str) -> contextlib.AbstractContextManager[None]:
        return clear_failure("S3", action, OmicsRunError)
