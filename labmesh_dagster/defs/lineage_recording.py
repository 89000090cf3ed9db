"""Recording each materialization as an OpenLineage run: START and COMPLETE, or START and FAIL.

Both events are sent when the materialization ends, when its outputs'
manifests (their versions and file lists) are known. A failure is recorded as
FAIL and then raised as it was; a sink that refuses events never fails the
materialization (its data is already published) but fails the
``lineage_recorded`` check, naming what was refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import dagster as dg

from labmesh_dagster.connectors.lineage.base import LineageSink
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest

if TYPE_CHECKING:
    # openlineage-python costs a second to import; code servers and sensor ticks never need it,
    # so it is imported by the runs that record lineage, when they do.
    from labmesh_dagster.lineage.events import DatasetRef

LINEAGE_RECORDED = "lineage_recorded"
ASSET_OWNERS = ("team:lab-informatics",)


def lineage_check_spec(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        LINEAGE_RECORDED,
        asset=asset,
        description="The materialization's OpenLineage events (START, COMPLETE) were accepted by every lineage sink.",
    )


def dataset_ref(store: ObjectStore, zone: Zone, experiment_id: str, manifest: Manifest | None = None) -> DatasetRef:
    from labmesh_dagster.lineage.events import DatasetRef

    return DatasetRef(store.location(zone, experiment_id), zone, manifest)


@dataclass
class LineageRun:
    """What one materialization read and wrote; the asset fills it in as it learns."""

    asset: str
    run_id: str
    sink: LineageSink
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    experiment: ExperimentRecord | None = None
    inputs: list[DatasetRef] = field(default_factory=list)
    outputs: list[DatasetRef] = field(default_factory=list)

    def record(self, error: str | None = None) -> list[str]:
        """Send START and COMPLETE (or FAIL); the problems the sinks report, if any."""
        if self.experiment is None:
            return [f"{self.asset}: no registered experiment, so no lineage to record"]
        from labmesh_dagster.lineage.events import event_to_dict, materialization_events

        try:
            events = materialization_events(
                asset=self.asset,
                run_id=self.run_id,
                experiment=self.experiment,
                inputs=self.inputs,
                outputs=self.outputs,
                started=self.started,
                ended=datetime.now(UTC),
                error=error,
                job_owners=ASSET_OWNERS,
            )
        except ValueError as exc:
            return [f"{self.asset}: lineage events could not be built: {exc}"]
        return self.sink.emit([event_to_dict(event) for event in events])

    def check_result(self) -> dg.AssetCheckResult:
        problems = self.record()
        return dg.AssetCheckResult(
            check_name=LINEAGE_RECORDED,
            passed=not problems,
            metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none")},
        )


@contextmanager
def lineage_run(context: dg.AssetExecutionContext, sink: LineageSink, asset: str) -> Iterator[LineageRun]:
    """The run to fill in; a failure inside is recorded as FAIL (when the experiment is known) and re-raised."""
    run = LineageRun(asset=asset, run_id=context.run.run_id, sink=sink)
    try:
        yield run
    except Exception as exc:
        problems = run.record(error=f"{type(exc).__name__}: {exc}") if run.experiment is not None else []
        for problem in problems:
            context.log.warning(f"lineage of the failed materialization not recorded: {problem}")
        raise
