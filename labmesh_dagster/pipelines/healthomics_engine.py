"""Run one pipeline invocation as an AWS HealthOmics workflow run and report it as a pipeline result.

The invocation and the result are the shapes of the pipelines contract
(sections 2 and 3): the pipeline's ``healthomics`` settings name the workflow,
the role, where the run writes, run group and cache, and ``parameters`` whose
placeholders become the inputs' ``s3://`` URIs.

The run is started with a `request_id_for` the experiment and invocation, so a
retry of this function (a lost StartRun response, a restarted process, a
Dagster retry) finds the run already going instead of starting another. Only a
run that already ended without success (FAILED, CANCELLED, DELETED: one that
failed before, or was cancelled when a wait timed out) is followed by the next
attempt's request id, up to ``max_attempts``; the walk over attempts is
deterministic, so a restarted process lands on the same live run.

On COMPLETED every file under the run's ``out/`` folder is copied (streamed,
its SHA-256 and size taken on the way) to the invocation's ``staging_prefix``;
nothing else in the store is written, and ``publish_prefix`` is never touched
(publishing is the Dagster side's). A FAILED or CANCELLED run is ``failed``
with the service's ``failureReason`` and ``statusMessage``; a run still going
at the timeout is cancelled and reported ``timed_out``.

The run is followed by polling GetRun; following EventBridge's "Run Status
Change" events through a queue is not implemented here.
"""

from __future__ import annotations

import hashlib
import json
import math
import string
from collections.abc import Callable, Mapping, Sequence
from typing import Any, BinaryIO

from labmesh_dagster.connectors.omics.workflows import (
    UNSUCCESSFUL_STATUSES,
    HealthOmicsWorkflows,
    RunState,
    WorkflowRunRequest,
    request_id_for,
)
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.clock import Clock, utc_now
from labmesh_dagster.core.keys import ObjectKey
from labmesh_dagster.pipelines.commands import PlaceholderError, expand_value
from labmesh_dagster.pipelines.planning import file_stem, mate_of

ENGINE = "healthomics"
DEFAULT_TIMEOUT_SECONDS = 3600.0
STDERR_TAIL = 4000


class HealthOmicsConfigError(ValueError):
    """An invocation that cannot become a HealthOmics run (no ``healthomics`` settings, inputs not in S3, ...)."""


def _name(invocation: Mapping[str, Any], by_role: Mapping[str, list[str]]) -> str:
    """``{name}``: planning's own when the invocation carries it, else worked out the same way."""
    if invocation.get("name"):
        return str(invocation["name"])
    if invocation["pipeline"].get("per") == "experiment" or not by_role:
        return str(invocation["experiment_id"])
    first = (by_role.get("read1") or by_role.get("input") or next(iter(by_role.values())))[0]
    mate = mate_of(first.rsplit("/", 1)[-1]) if by_role.get("read1") else None
    return mate[0] if mate else file_stem(first)


def placeholder_values(invocation: Mapping[str, Any], uris: Mapping[str, str]) -> dict[str, Any]:
    """What each placeholder becomes for a HealthOmics run: input placeholders are the inputs' ``s3://`` URIs.

    ``uris`` maps each input key to its URI. ``{output_dir}`` is the run's
    output URI (the workflow writes there); ``{input_dir}`` has no meaning for
    a run that reads S3 objects one by one and is refused.
    """
    pipeline = invocation["pipeline"]
    inputs = sorted(invocation["inputs"], key=lambda item: item["key"])
    by_role: dict[str, list[str]] = {}
    for item in inputs:
        by_role.setdefault(item.get("role", "input"), []).append(item["key"])
    values: dict[str, Any] = {
        "experiment_id": invocation["experiment_id"],
        "threads": math.ceil(float(pipeline.get("resources", {}).get("cpu", 1))),
        "output_dir": pipeline["healthomics"]["output_uri"],
        "inputs": [uris[item["key"]] for item in inputs],
    }
    if by_role.get("input"):
        values["input"] = uris[by_role["input"][0]]
    for role in ("read1", "read2"):
        if by_role.get(role):
            values[role] = uris[by_role[role][0]]
    values["name"] = _name(invocation, by_role)
    return values


def expand_parameters(parameters: Any, values: Mapping[str, Any]) -> Any:
    """``parameters`` with every placeholder in its strings filled, recursing through lists and maps.

    Strings are filled by the engines' shared `expand_value` (str.format style,
    ``{{``/``}}`` literal braces). A string that is exactly one placeholder
    takes its value as it is, since HealthOmics parameters are typed JSON:
    ``"{inputs}"`` becomes a list of URIs, ``"{threads}"`` a number. A
    placeholder with no value here is a `HealthOmicsConfigError` naming it.
    """
    if isinstance(parameters, Mapping):
        return {key: expand_parameters(value, values) for key, value in parameters.items()}
    if isinstance(parameters, list):
        return [expand_parameters(value, values) for value in parameters]
    if not isinstance(parameters, str):
        return parameters
    parsed = list(string.Formatter().parse(parameters))
    whole = parsed[0][1] if len(parsed) == 1 and parsed[0][0] == "" else None
    if whole is not None and whole in values:
        return values[whole]
    try:
        return expand_value(parameters, values)
    except PlaceholderError as exc:
        raise HealthOmicsConfigError(f"{exc}; a HealthOmics run knows {', '.join(sorted(values))}") from exc


def run_request(invocation: Mapping[str, Any], parameters: Mapping[str, Any]) -> WorkflowRunRequest:
    """The StartRun request of an invocation: the pipeline's ``healthomics`` settings, expanded parameters, tags."""
    settings = invocation["pipeline"].get("healthomics")
    if not settings:
        raise HealthOmicsConfigError(f"pipeline {invocation['pipeline'].get('name')!r} has no healthomics settings")
    return WorkflowRunRequest(
        workflow_id=str(settings["workflow_id"]),
        workflow_type=settings.get("workflow_type") or "PRIVATE",
        workflow_version_name=settings.get("workflow_version_name"),
        role_arn=settings["role_arn"],
        output_uri=settings["output_uri"],
        parameters=parameters,
        name=f"labmesh {invocation['experiment_id']} {invocation['invocation_id']}",
        run_group_id=settings.get("run_group_id"),
        cache_id=settings.get("cache_id"),
        cache_behavior=settings.get("cache_behavior"),
        storage_type=settings.get("storage_type"),
        storage_capacity=settings.get("storage_capacity"),
        priority=settings.get("priority"),
        tags={
            "labmesh:experiment": invocation["experiment_id"],
            "labmesh:invocation": invocation["invocation_id"],
            "labmesh:pipeline": f"{invocation['pipeline']['name']}@{invocation['pipeline']['version']}",
        },
    )


def command_line(request: WorkflowRunRequest) -> str:
    """What was asked of HealthOmics, as one readable line."""
    parts = [
        "StartRun",
        f"workflow={request.workflow_id}",
        f"type={request.workflow_type}",
        f"version={request.workflow_version_name or 'default'}",
    ]
    if request.run_group_id:
        parts.append(f"run_group={request.run_group_id}")
    if request.cache_id:
        parts.append(f"cache={request.cache_id}" + (f"/{request.cache_behavior}" if request.cache_behavior else ""))
    parts.append("parameters=" + json.dumps(request.parameters, sort_keys=True, separators=(",", ":")))
    return " ".join(parts)


class _HashingReader:
    """A read-only stream that hashes and counts what passes through it (it does not seek, so it is read once)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def _start(
    client: HealthOmicsWorkflows, invocation: Mapping[str, Any], request: WorkflowRunRequest, max_attempts: int
) -> RunState:
    """The run of the first attempt that has not already ended without success (or the last attempt's run)."""
    run: RunState | None = None
    for attempt in range(max_attempts):
        request_id = request_id_for(invocation["experiment_id"], invocation["invocation_id"], attempt)
        run = client.get_run(client.start_run(request, request_id=request_id))
        if run.status not in UNSUCCESSFUL_STATUSES:
            return run
    assert run is not None  # max_attempts >= 1
    return run


def _stage_outputs(
    client: HealthOmicsWorkflows, run: RunState, store: ObjectStore, staging_prefix: str
) -> list[dict[str, Any]]:
    outputs = []
    for output in client.list_outputs(run):
        key = ObjectKey.parse(staging_prefix.rstrip("/") + "/" + output.name)
        with client.open_output(output.uri) as stream:
            reader = _HashingReader(stream)
            store.put(key, reader)  # type: ignore[arg-type]  # a read-once stream is all put needs
        if reader.size != output.size:
            raise OSError(f"{output.uri}: copied {reader.size} bytes of {output.size} to {key}")
        outputs.append({"name": output.name, "key": str(key), "sha256": reader.digest.hexdigest(), "size": output.size})
    return outputs


def _tool_versions(client: HealthOmicsWorkflows, run: RunState, request: WorkflowRunRequest) -> dict[str, str]:
    version = run.workflow_version_name or request.workflow_version_name
    label = " ".join(part for part in (version, f"({run.digest})" if run.digest and version else run.digest) if part)
    if not label:
        return {}
    name = client.workflow_name(request.workflow_id, request.workflow_type) or f"workflow-{request.workflow_id}"
    return {name: label}


def run_invocation_on_healthomics(
    invocation: Mapping[str, Any],
    client: HealthOmicsWorkflows,
    store: ObjectStore,
    *,
    timeout: float | None = None,
    poll: float = 30.0,
    max_poll: float = 300.0,
    max_attempts: int = 3,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
    now: Clock = utc_now,
) -> dict[str, Any]:
    """Run ``invocation`` (contract section 2) on HealthOmics and return its result (contract section 3).

    ``timeout`` defaults to the pipeline's ``resources.timeout_seconds``;
    ``sleep``/``clock`` (seconds) drive the waiting and ``now`` stamps
    ``started``/``ended``. Errors in the invocation itself (no healthomics
    settings, an input that is not in S3, an unknown placeholder) raise
    `HealthOmicsConfigError` before anything is started; what HealthOmics or
    S3 refuse after retries raises `OmicsRunError`.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    pipeline = invocation["pipeline"]
    if timeout is None:
        timeout = float(pipeline.get("resources", {}).get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
    started = now()
    uris = {item["key"]: store.uri(ObjectKey.parse(item["key"])) for item in invocation["inputs"]}
    not_s3 = sorted(uri for uri in uris.values() if not uri.startswith("s3://"))
    if not_s3:
        raise HealthOmicsConfigError(
            f"HealthOmics reads its inputs from S3; not in S3: {', '.join(not_s3)} (use the aws profile's store)"
        )
    settings = pipeline.get("healthomics") or {}
    if not settings:
        raise HealthOmicsConfigError(f"pipeline {pipeline.get('name')!r} has no healthomics settings")
    parameters = expand_parameters(settings.get("parameters") or {}, placeholder_values(invocation, uris))
    request = run_request(invocation, parameters)

    run = _start(client, invocation, request, max_attempts)
    if run.finished:
        outcome_run, timed_out = run, False
    else:
        outcome = client.wait(run.id, timeout=timeout, poll=poll, max_poll=max_poll, sleep=sleep, clock=clock)
        outcome_run, timed_out = outcome.run, outcome.timed_out

    result: dict[str, Any] = {
        "invocation_id": invocation["invocation_id"],
        "status": "succeeded",
        "engine": ENGINE,
        "engine_run_id": outcome_run.id,
        "command_line": command_line(request),
        "tool_versions": {},
        "outputs": [],
        "exit_code": None,
        "stderr_tail": outcome_run.why[-STDERR_TAIL:],
        "started": started.isoformat(),
        "ended": None,
        "reason": None,
    }
    if timed_out:
        result["status"] = "timed_out"
        result["reason"] = (
            f"HealthOmics run {outcome_run.id} had not finished after {timeout:g}s, so it was cancelled "
            f"(now {outcome_run.status})"
        )
    elif outcome_run.status != "COMPLETED":
        result["status"] = "failed"
        why = f": {outcome_run.why}" if outcome_run.why else ""
        result["reason"] = f"HealthOmics run {outcome_run.id} ended {outcome_run.status}{why}"
    else:
        result["tool_versions"] = _tool_versions(client, outcome_run, request)
        result["outputs"] = _stage_outputs(client, outcome_run, store, invocation["staging_prefix"])
        if not result["outputs"]:
            result["status"] = "failed"
            result["reason"] = (
                f"HealthOmics run {outcome_run.id} completed but wrote nothing under {outcome_run.outputs_uri}"
            )
    result["ended"] = now().isoformat()
    return result


def invocation_request_ids(invocation: Mapping[str, Any], max_attempts: int = 3) -> Sequence[str]:
    """The request ids this invocation's runs are started with, in attempt order (for operators and tests)."""
    return [request_id_for(invocation["experiment_id"], invocation["invocation_id"], n) for n in range(max_attempts)]
