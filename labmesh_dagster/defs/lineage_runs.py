"""Each materialization is one OpenLineage run: START on entry, and FAIL when the asset raises before it ended."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from labmesh_dagster.connectors.lineage.base import LineageSink
from labmesh_dagster.core.clock import Clock
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.steps.lineage_run import LineageRun


@contextmanager
def lineage_run(
    context: dg.AssetExecutionContext,
    sink: LineageSink,
    asset: str,
    clock: Clock,
    *,
    experiment: ExperimentRecord | None = None,
) -> Iterator[LineageRun]:
    """The run for the asset to fill in, its START sent; a failure inside is recorded as its one FAIL."""
    run = LineageRun(asset=asset, run_id=context.run.run_id, sink=sink, started=clock(), experiment=experiment)
    for problem in run.start(context.partition_key):
        context.log.warning(f"lineage START not recorded: {problem}")
    try:
        yield run
    except Exception as exc:
        if not run.recorded:
            failure = f"{type(exc).__name__}: {exc}"
            for problem in run.record(ended=clock(), error=failure, experiment_id=context.partition_key):
                context.log.warning(f"lineage of the failed materialization not recorded: {problem}")
        raise
