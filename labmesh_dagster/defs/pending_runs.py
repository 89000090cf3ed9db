"""A materialization's pending record: written before its first side effect, removed after its last."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.clock import Clock
from labmesh_dagster.steps.unfinished_work import begin, finish


@dataclass
class PendingRun:
    """Lets an asset end its work early: a run that fails only on input a person must fix leaves nothing to resume."""

    store: ObjectStore
    asset: str
    experiment_id: str
    finished: bool = False

    def finish(self) -> None:
        if not self.finished:
            finish(self.store, self.asset, self.experiment_id)
            self.finished = True


@contextmanager
def pending_run(
    context: dg.AssetExecutionContext, store: ObjectStore, asset: str, clock: Clock
) -> Iterator[PendingRun]:
    """Finished when the body returns; left for `unfinished_work_sensor` to resume when it raises."""
    begin(store, asset, context.partition_key, context.run.run_id, clock())
    run = PendingRun(store, asset, context.partition_key)
    yield run
    run.finish()
