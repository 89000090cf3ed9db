"""`unfinished_work_sensor`: work a run began and did not finish is started again, with no person involved."""

import dagster as dg
from dagster._core.storage.tags import WILL_RETRY_TAG

from labmesh_dagster.defs.partitions import partitions_to_add
from labmesh_dagster.defs.resources import ClockResource, StoreResource
from labmesh_dagster.defs.run_resources import run_tags
from labmesh_dagster.steps.unfinished_work import RESUMES_TAG, due, list_pending


def unfinished_work_sensor(
    context: dg.SensorEvaluationContext, store: StoreResource, clock: ClockResource
) -> dg.SensorResult:
    """Work a run began and did not finish (a crash, a killed worker, a service that stayed down) is started again.

    Each materialization leaves a pending record until its last side effect is
    done; a record whose run has ended is resumed by a new run of the same
    asset and partition. A run Dagster itself will retry is left to that retry.
    """
    now, requests = clock(), []
    for work in list_pending(store.get_store()):
        run = context.instance.get_run_by_id(work.run_id)
        if run is not None and run.tags.get(WILL_RETRY_TAG) == "true":
            continue
        if not due(work, run.status.value if run is not None else None, now):
            continue
        context.log.info(
            f"{work.asset} of {work.experiment_id} was left unfinished by run {work.run_id} "
            f"(attempt {work.attempts}); starting it again"
        )
        requests.append(
            dg.RunRequest(
                partition_key=work.experiment_id,
                asset_selection=[dg.AssetKey(work.asset)],
                run_key=work.resume_run_key,
                tags={RESUMES_TAG: work.run_id, **run_tags(work.asset)},
            )
        )
    if not requests:
        return dg.SensorResult(skip_reason="no unfinished work is due")
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=partitions_to_add(
            context.instance, [r.partition_key for r in requests if r.partition_key]
        ),
    )
