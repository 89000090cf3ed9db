"""One materialization of one experiment's asset: its lineage run and its pending record, begun together.

The pending record is written before the first side effect and removed after
the last; the lineage run sends START on entry and one COMPLETE or FAIL.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg

from labmesh_dagster.connectors.catalog.base import Catalog
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.clock import Clock
from labmesh_dagster.defs.lineage_runs import lineage_run
from labmesh_dagster.defs.resources import CatalogResource, LineageResource, StoreResource
from labmesh_dagster.steps.lineage_run import LineageRun
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


@dataclass
class Materialization:
    """What an asset works with: the store and catalog, its lineage run to fill in, its pending record to finish."""

    objects: ObjectStore
    registry: Catalog
    run: LineageRun
    work: PendingRun


@contextmanager
def materialization(
    context: dg.AssetExecutionContext,
    asset: str,
    *,
    store: StoreResource,
    catalog: CatalogResource,
    lineage: LineageResource,
    clock: Clock,
) -> Iterator[Materialization]:
    """START sent and pending record written on entry; COMPLETE or FAIL, and the record's fate, on exit.

    The experiment as the catalog knows it names the START (registration replaces it with the ELN's record).
    """
    objects, registry = store.get_store(), catalog.get_catalog()
    known = registry.get_experiment(context.partition_key)
    with (
        lineage_run(context, lineage, asset, clock, experiment=known) as run,
        pending_run(context, objects, asset, clock) as work,
    ):
        yield Materialization(objects, registry, run, work)
