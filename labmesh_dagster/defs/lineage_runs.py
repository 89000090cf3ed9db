"""Each materialization is one OpenLineage run: START on entry, and FAIL when the asset raises before it ended."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from labmesh_dagster.core.clock import Clock
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.defs.resources import LineageResource
from labmesh_dagster.steps.lineage_run import LineageRun, close_abandoned
from labmesh_dagster.steps.unfinished_work import RESUMES_TAG


@contextmanager
def lineage_run(
    context: dg.AssetExecutionContext,
    lineage: LineageResource,
    asset: str,
    clock: Clock,
    *,
    experiment: ExperimentRecord | None = None,
) -> Iterator[LineageRun]:
    """The run for the asset to fill in, its START sent; a failure inside is recorded as its one FAIL.

    A run that resumes the work of a killed one first closes that run's lineage with FAIL.
    """
    sink = lineage.get_sink()
    run = LineageRun(asset=asset, run_id=context.run.run_id, sink=sink, started=clock(), experiment=experiment)
    for problem in run.start(context.partition_key):
        context.log.warning(f"lineage START not recorded: {problem}")
    resumed = context.run.tags.get(RESUMES_TAG)
    if resumed:
        closed = close_abandoned(
            lineage.get_log(),
            sink,
            asset=asset,
            run_id=resumed,
            experiment_id=context.partition_key,
            ended=clock(),
            resumed_by=context.run.run_id,
        )
        for problem in closed:
            context.log.warning(f"lineage of the stopped run {resumed} not closed: {problem}")
    try:
        yield run
    except Exception as exc:
        if not run.recorded:
            failure = f"{type(exc).__name__}: {exc}"
            for problem in run.record(ended=clock(), error=failure, experiment_id=context.partition_key):
                context.log.warning(f"lineage of the failed materialization not recorded: {problem}")
        raise
