"""`final_sensor`: files added, changed or removed under final/<experiment_id>/ rematerialize `final_dataset`.

The final zone is watched by listing it, or through its S3 events; events only
say which experiments' folders to look at. Either way the looked-at folders
are listed and compared with the catalog by one rule
(`steps.final_zone.plan_final`), with one settle rule and one run key. On the
event path, folders whose files are still changing or whose run has yet to
bring the catalog in step are looked at again on the next tick, and those of
experiments not registered yet once they are; such a folder is a warning only
once it has waited past the grace period landing gives unknown experiments.
Looking costs a listing of each folder named, not of the zone.
"""

from datetime import datetime

import dagster as dg

from labmesh_dagster.connectors.store.base import ObjectInfo
from labmesh_dagster.core.errors import InvalidExperimentId
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.defs.partitions import partitions_to_add
from labmesh_dagster.defs.resources import (
    CatalogResource,
    ClockResource,
    LandingPolicyResource,
    StoreEventsResource,
    StoreResource,
)
from labmesh_dagster.steps.final_zone import final_run_key, plan_final
from labmesh_dagster.steps.landing import list_folder
from labmesh_dagster.steps.store_event_intake import WatchCursor, drain


def final_sensor(
    context: dg.SensorEvaluationContext,
    store: StoreResource,
    catalog: CatalogResource,
    landing_policy: LandingPolicyResource,
    store_events: StoreEventsResource,
    clock: ClockResource,
) -> dg.SensorResult:
    """Files added, changed or removed under final/<experiment_id>/ rematerialize `final_dataset`."""
    objects, registry, now = store.get_store(), catalog.get_catalog(), clock()
    summaries = registry.summaries()
    registered = {summary.experiment_id for summary in summaries}
    cursor = WatchCursor.from_json(context.cursor)
    queue = store_events.queue(Zone.FINAL)
    listed: list[ObjectInfo]
    waiting: dict[str, datetime] = {}
    if queue is None:
        listed = list(objects.list(Zone.FINAL))
        also_check = [s.experiment_id for s in summaries if s.datasets.get(Zone.FINAL)]
    else:
        batch = drain(queue, cursor, zone=Zone.FINAL, zone_of=objects.zone_of)
        for problem in batch.problems:
            context.log.error(problem)
        touched = _experiments_touched(context, [info.key for info in batch.created] + batch.removed)
        # Folders looked at again: those still settling or whose run is still to make the catalog match,
        # and those of unregistered experiments once they are registered.
        due = {folder for folder in cursor.pending if folder in registered} | set(cursor.again)
        waiting = {folder: seen for folder, seen in cursor.pending.items() if folder not in due | touched}
        also_check = sorted(touched | due)
        listed = [info for folder in also_check for info in list_folder(objects, Zone.FINAL, folder)]
    plan = plan_final(
        listed,
        registered=registered,
        also_check=also_check,
        cataloged=lambda experiment_id: registry.get_dataset(experiment_id, Zone.FINAL),
        now=now,
        settle_seconds=0 if objects.complete_when_visible else landing_policy.settle_seconds,
    )
    grace = landing_policy.unknown_experiment_grace_seconds
    for experiment_id in sorted(plan.unregistered):
        # Files put in final/ while the ELN record is on its way (a quick person, a busy sensor) are usual:
        # they wait quietly, as landing's do, and are a warning once the grace is over.
        waited = (now - cursor.pending.get(experiment_id, now)).total_seconds()
        say = context.log.warning if waited >= grace else context.log.info
        say(
            f"final/{experiment_id}/ holds files but experiment {experiment_id} is not registered "
            f"(waiting {waited:.0f} s of {grace:.0f} s)"
        )
    for info in plan.outside_experiments[:20]:
        context.log.warning(f"{info.key} is not inside a valid experiment folder; left in place")
    unregistered = {folder: cursor.pending.get(folder, now) for folder in plan.unregistered}
    again = plan.settling | set(plan.changed) if queue is not None else set()
    forgotten = cursor.remember({**waiting, **unregistered}, again, bounded=queue is not None)
    if forgotten:
        context.log.error(f"{len(forgotten)} final folder(s) not remembered for lack of room: {forgotten[:10]}")
    if not plan.changed:
        return dg.SensorResult(skip_reason="final zone unchanged", cursor=cursor.to_json())
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                partition_key=experiment_id,
                run_key=final_run_key(
                    experiment_id,
                    files,
                    revision=plan.revisions[experiment_id],
                    now=now,
                    retry_seconds=landing_policy.retry_seconds,
                ),
            )
            for experiment_id, files in sorted(plan.changed.items())
        ],
        dynamic_partitions_requests=partitions_to_add(context.instance, plan.changed),
        cursor=cursor.to_json(),
    )


def _experiments_touched(context: dg.SensorEvaluationContext, keys: list[ObjectKey]) -> set[str]:
    """The experiments whose final folders the events name; labmesh's own manifest writes name none."""
    touched = set()
    for key in keys:
        if key.is_labmesh_internal:
            continue
        try:
            touched.add(key.experiment_id)
        except InvalidExperimentId:
            context.log.warning(f"{key} is not inside a valid experiment folder; left in place")
    return touched
