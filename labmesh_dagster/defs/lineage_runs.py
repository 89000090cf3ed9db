"""Each materialization is one OpenLineage run, recorded FAIL when the asset raises before it was recorded."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from labmesh_dagster.connectors.lineage.base import LineageSink
from labmesh_dagster.core.clock import Clock
from labmesh_dagster.steps.lineage_run import LineageRun


@contextmanager
def lineage_run(context: dg.AssetExecutionContext, sink: LineageSink, asset: str, clock: Clock) -> Iterator[LineageRun]:
    """The run for the asset to fill in; a failure inside is recorded as FAIL (once the experiment is known)."""
    run = LineageRun(asset=asset, run_id=context.run.run_id, sink=sink, started=clock())
    try:
        yield run
    except Exception as exc:
        if run.experiment is not None and not run.recorded:
            for problem in run.record(ended=clock(), error=f"{type(exc).__name__}: {exc}"):
                context.log.warning(f"lineage of the failed materialization not recorded: {problem}")
        raise
