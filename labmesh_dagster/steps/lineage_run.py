"""Recording one materialization as an OpenLineage run: START and COMPLETE, or START and FAIL.

Both events are sent when the materialization ends, when its outputs'
manifests (their versions and file lists) are known. A sink that refuses
events never fails the materialization (its data is already published): what
it refused is returned, for the ``lineage_recorded`` check to name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from labmesh_dagster.connectors.lineage.base import LineageSink
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest

if TYPE_CHECKING:
    # openlineage-python costs a second to import; sensor ticks and the CLI never need it,
    # so it is imported by the runs that record lineage, when they do.
    from labmesh_dagster.lineage.events import DatasetRef

ASSET_OWNERS = ("team:lab-informatics",)


def dataset_ref(store: ObjectStore, zone: Zone, experiment_id: str, manifest: Manifest | None = None) -> DatasetRef:
    """An experiment's folder in one zone as lineage names it, with its manifest where one is known."""
    from labmesh_dagster.lineage.events import DatasetRef

    return DatasetRef(store.location(zone, experiment_id), zone, manifest)


@dataclass
class LineageRun:
    """What one materialization read and wrote; the asset fills it in as it learns, then records it once."""

    asset: str
    run_id: str
    sink: LineageSink
    started: datetime
    experiment: ExperimentRecord | None = None
    inputs: list[DatasetRef] = field(default_factory=list)
    outputs: list[DatasetRef] = field(default_factory=list)
    recorded: bool = False

    def record(self, *, ended: datetime, error: str | None = None) -> list[str]:
        """Send START and COMPLETE (or FAIL, given ``error``); the problems the sinks report, if any."""
        self.recorded = True
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
                ended=ended,
                error=error,
                job_owners=ASSET_OWNERS,
            )
        except ValueError as exc:
            return [f"{self.asset}: lineage events could not be built: {exc}"]
        return self.sink.emit([event_to_dict(event) for event in events])
