"""Recording one materialization as an OpenLineage run: START when it starts, then COMPLETE or FAIL.

START is sent before the first side effect, so a run that crashes still
shows in lineage; the end event follows when the outputs' manifests (their
versions and file lists) are known, exactly once. A sink that refuses events
never fails the materialization (its data is already published): what it
refused is returned, for the ``lineage_recorded`` check to name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from labmesh_dagster.connectors.lineage.base import LineageLog, LineageSink
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest, Provenance
from labmesh_dagster.lineage.pipelines import PipelineRef, pipelines_of

if TYPE_CHECKING:
    # openlineage-python costs a second to import; sensor ticks and the CLI never need it,
    # so it is imported by the runs that record lineage, when they do.
    from labmesh_dagster.lineage.events import DatasetRef, Materialization

ASSET_OWNERS = ("team:lab-informatics",)


def dataset_ref(store: ObjectStore, zone: Zone, experiment_id: str, manifest: Manifest | None = None) -> DatasetRef:
    """An experiment's folder in one zone as lineage names it, with its manifest where one is known."""
    from labmesh_dagster.lineage.events import DatasetRef

    return DatasetRef(store.location(zone, experiment_id), zone, manifest)


@dataclass
class LineageRun:
    """What one materialization read and wrote; the asset fills it in as it learns, then records it once.

    ``pipelines`` are the pipelines it ran, as the `Provenance` of each invocation (one per receipt) or as
    `PipelineRef` (`lineage.pipelines.pipeline_refs` makes them from the invocations and results); they become
    the events' ``labmesh_pipelines`` job facet, one item per pipeline and version.
    """

    asset: str
    run_id: str
    sink: LineageSink
    started: datetime
    experiment: ExperimentRecord | None = None
    inputs: list[DatasetRef] = field(default_factory=list)
    outputs: list[DatasetRef] = field(default_factory=list)
    pipelines: list[PipelineRef | Provenance] = field(default_factory=list)
    recorded: bool = False
    start_problems: list[str] = field(default_factory=list)

    def _materialization(self, experiment_id: str) -> Materialization:
        from labmesh_dagster.lineage.events import Materialization

        # Before the ELN record is read (registration), the experiment is known by its id alone.
        experiment = self.experiment or ExperimentRecord(id=experiment_id, title=experiment_id)
        return Materialization(
            asset=self.asset,
            run_id=self.run_id,
            experiment=experiment,
            started=self.started,
            inputs=tuple(self.inputs),
            outputs=tuple(self.outputs),
            job_owners=ASSET_OWNERS,
            pipelines=pipelines_of(self.pipelines),
        )

    def start(self, experiment_id: str) -> list[str]:
        """Send START, with what the run knows so far; the problems the sinks report are kept for the end."""
        from labmesh_dagster.lineage.events import event_to_dict, start_event

        try:
            event = start_event(self._materialization(experiment_id))
        except ValueError as exc:
            self.start_problems = [f"{self.asset}: the START event could not be built: {exc}"]
        else:
            self.start_problems = self.sink.emit([event_to_dict(event)])
        return self.start_problems

    def record(self, *, ended: datetime, error: str | None = None, experiment_id: str | None = None) -> list[str]:
        """Send COMPLETE (or FAIL, given ``error``) once; the problems the sinks reported, START's included."""
        if self.recorded:
            return []
        self.recorded = True
        from labmesh_dagster.lineage.events import end_event, event_to_dict

        identifier = self.experiment.id if self.experiment else experiment_id
        if identifier is None:
            return [f"{self.asset}: no experiment, so no lineage to record"]
        try:
            event = end_event(self._materialization(identifier), ended=ended, error=error)
        except ValueError as exc:
            return [*self.start_problems, f"{self.asset}: the end event could not be built: {exc}"]
        return [*self.start_problems, *self.sink.emit([event_to_dict(event)])]


ENDED = frozenset({"COMPLETE", "FAIL", "ABORT"})


def close_abandoned(
    log: LineageLog, sink: LineageSink, *, asset: str, run_id: str, experiment_id: str, ended: datetime, resumed_by: str
) -> list[str]:
    """Record FAIL for a run that was stopped with no chance to say so (a SIGKILL), once its work is resumed.

    A run that raised recorded its own FAIL; one killed by the kernel left its
    START alone, which a lineage reader would show as running forever. Only a
    run the local log shows started and not ended is closed, so this is
    idempotent and never gives a run two endings.
    """
    from labmesh_dagster.lineage.events import openlineage_run_id

    wanted = openlineage_run_id(run_id, asset, experiment_id)
    events = [event for event in log.events(experiment_id) if event["run"]["runId"] == wanted]
    if not events or any(event["eventType"] in ENDED for event in events):
        return []
    started = datetime.fromisoformat(str(events[0]["eventTime"]).replace("Z", "+00:00"))
    abandoned = LineageRun(asset=asset, run_id=run_id, sink=sink, started=min(started, ended))
    return abandoned.record(
        ended=ended,
        error=f"the run stopped without finishing (its process was killed); run {resumed_by} resumed its work",
        experiment_id=experiment_id,
    )
