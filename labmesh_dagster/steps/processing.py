"""Running an experiment's pipelines: which invocations run, which are reused, what is published, what failed.

The engines (a local subprocess, an ECS task, a HealthOmics run) are behind
one callable, ``execute(invocations) -> results``, which the Dagster asset
supplies; everything else is decided here, in plain Python:

- pipelines run in stages: those on raw files first, then those that take
  other pipelines' outputs (MultiQC), planned from what the first stage
  published or reused;
- an invocation whose receipt is intact is reused, not run (same pipeline,
  version and input checksums give the same invocation id);
- a pipeline named as another's ``fallback`` runs only in its place, on the
  same inputs, when the other's tool is not installed;
- a succeeded invocation is published at once (each stands on its own), a
  failed one publishes nothing and is reported with the input it failed on;
- what invocations that no longer apply made is removed at the end of a run
  in which every invocation succeeded, so the processed dataset holds what the
  pipelines file makes of the raw data now.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.pipelines.planning import plan_invocations, stages
from labmesh_dagster.pipelines.spec import Pipeline
from labmesh_dagster.steps.pipeline_outputs import Receipt, publish_outputs, retire_obsolete, reusable_receipt

Invocation = dict[str, Any]
Result = dict[str, Any]
Execute = Callable[[Sequence[Invocation]], Sequence[Result]]

# What a runner says when the tool's executable is not there: the cue to run the pipeline's fallback.
TOOL_MISSING = "tool not installed"


@dataclass(frozen=True)
class FailedInvocation:
    """An invocation that made nothing: the pipeline, its inputs, why, and the end of the tool's stderr."""

    invocation_id: str
    pipeline: str
    inputs: tuple[str, ...]
    status: str
    reason: str
    stderr_tail: str = ""

    def describe(self) -> str:
        inputs = ", ".join(self.inputs) or "no input"
        return f"{self.pipeline} on {inputs}: {self.reason}"


@dataclass
class ProcessingReport:
    """What one run of an experiment's pipelines came to."""

    receipts: list[Receipt] = field(default_factory=list)
    failures: list[FailedInvocation] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)

    @property
    def ran(self) -> list[Receipt]:
        return [receipt for receipt in self.receipts if not receipt.reused]

    @property
    def reused(self) -> list[Receipt]:
        return [receipt for receipt in self.receipts if receipt.reused]


def _failure(invocation: Mapping[str, Any], result: Mapping[str, Any] | None) -> FailedInvocation:
    if result is None:
        status, reason, tail = "failed", "the engine reported no result for it (its runner stopped early)", ""
    else:
        status = str(result.get("status") or "failed")
        reason = str(result.get("reason") or status)
        tail = str(result.get("stderr_tail") or "")
    return FailedInvocation(
        invocation_id=str(invocation["invocation_id"]),
        pipeline=str(invocation["pipeline"]["name"]),
        inputs=tuple(str(item["key"]) for item in invocation["inputs"]),
        status=status,
        reason=reason,
        stderr_tail=tail,
    )


def _tool_missing(result: Mapping[str, Any] | None) -> bool:
    return result is not None and str(result.get("reason") or "").startswith(TOOL_MISSING)


class _Processing:
    def __init__(
        self,
        store: ObjectStore,
        pipelines: Sequence[Pipeline],
        record: ExperimentRecord,
        raw_manifest: Manifest,
        run_id: str,
        execute: Execute,
    ) -> None:
        self.store, self.record, self.raw_manifest = store, record, raw_manifest
        self.run_id, self.execute = run_id, execute
        self.by_name = {pipeline.name: pipeline for pipeline in pipelines}
        self.report = ProcessingReport()
        # Published outputs of each pipeline (or of the fallback standing in for it), for later stages.
        self.outputs: dict[str, list[dict[str, str]]] = {}

    def plan(self, pipelines: Sequence[Pipeline]) -> list[Invocation]:
        return plan_invocations(
            pipelines, self.record, self.raw_manifest, run_id=self.run_id, outputs_by_pipeline=self.outputs
        )

    def keep(self, receipt: Receipt, stands_for: str) -> None:
        self.report.receipts.append(receipt)
        self.outputs.setdefault(stands_for, []).extend(
            {"key": output.key, "sha256": output.sha256} for output in receipt.outputs
        )

    def run(self, invocations: Sequence[Invocation], stands_for: Mapping[str, str]) -> list[Invocation]:
        """Run what has no intact receipt; returns the invocations whose tool was missing (for their fallback)."""
        to_run: list[Invocation] = []
        for invocation in invocations:
            receipt = reusable_receipt(self.store, invocation)
            if receipt is not None:
                self.keep(receipt, stands_for[invocation["invocation_id"]])
            else:
                to_run.append(invocation)
        if not to_run:
            return []
        results = {str(result.get("invocation_id")): result for result in self.execute(to_run)}
        missing_tool: list[Invocation] = []
        for invocation in to_run:
            result = results.get(invocation["invocation_id"])
            if result is not None and result.get("status") == "succeeded":
                receipt = publish_outputs(self.store, invocation, result, run_id=self.run_id)
                self.keep(receipt, stands_for[invocation["invocation_id"]])
            elif _tool_missing(result) and invocation["pipeline"].get("fallback"):
                missing_tool.append(invocation)
            else:
                self.report.failures.append(_failure(invocation, result))
        return missing_tool

    def fall_back(self, missing_tool: Sequence[Invocation]) -> None:
        """Run each fallback on exactly the inputs its pipeline could not be run on."""
        for invocation in missing_tool:
            pipeline = invocation["pipeline"]
            fallback = self.by_name[pipeline["fallback"]]
            wanted = {item["key"] for item in invocation["inputs"]}
            planned = [
                candidate
                for candidate in self.plan([fallback])
                if {item["key"] for item in candidate["inputs"]} <= wanted
            ]
            self.report.fallbacks.append(
                f"{pipeline['name']}: tool not installed; {fallback.name} ran instead on {', '.join(sorted(wanted))}"
            )
            if not planned:
                self.report.failures.append(_failure(invocation, {"status": "failed", "reason": TOOL_MISSING}))
                continue
            still_missing = self.run(planned, {item["invocation_id"]: pipeline["name"] for item in planned})
            for item in still_missing:
                self.report.failures.append(_failure(item, {"status": "failed", "reason": TOOL_MISSING}))


def run_pipelines(
    store: ObjectStore,
    pipelines: Sequence[Pipeline],
    record: ExperimentRecord,
    raw_manifest: Manifest,
    *,
    run_id: str,
    execute: Execute,
) -> ProcessingReport:
    """Run, reuse and publish every pipeline matching the experiment, stage by stage."""
    fallbacks = {pipeline.fallback for pipeline in pipelines if pipeline.fallback}
    processing = _Processing(store, pipelines, record, raw_manifest, run_id, execute)
    for stage in stages([pipeline for pipeline in pipelines if pipeline.name not in fallbacks]):
        invocations = processing.plan(stage)
        missing_tool = processing.run(
            invocations, {item["invocation_id"]: item["pipeline"]["name"] for item in invocations}
        )
        processing.fall_back(missing_tool)
    if not processing.report.failures:
        # Only after a run that made everything: a failure (perhaps passing) never costs the last good outputs.
        processing.report.retired = retire_obsolete(store, record.id, processing.report.receipts)
    return processing.report
