"""`final_sensor`: files added, changed or removed under final/<experiment_id>/ rematerialize `final_dataset`.

The final zone is watched by listing it, or through its S3 events; events only
say which folders to look at. Either way the looked-at folders are listed and
compared with the catalog by one rule (`steps.final_zone.plan_final`), with
one settle rule and one run key (the files' fingerprint). Folders whose files
are still changing, or whose experiment is not registered yet, are remembered
in the cursor and looked at again.
"""

from datetime import datetime

import dagster as dg

from labmesh_dagster.connectors.store.base import ObjectInfo
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.defs.partitions import partitions_to_add
from labmesh_dagster.defs.resources import (
    CatalogResource,
    ClockResource,
    LandingPolicyResource,
    StoreEventsResource,
    StoreResource,
)
from labmesh_dagster.steps.final_zone import entry_state, final_run_key, plan_final
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
    first_seen = cursor.first_seen()
    queue = store_events.queue(Zone.FINAL)
    listed: list[ObjectInfo]
    still_waiting: dict[str, datetime] = {}
    if queue is None:
        listed = list(objects.list(Zone.FINAL))
        also_check = [s.experiment_id for s in summaries if s.datasets.get(Zone.FINAL)]
    else:
        batch = drain(queue, cursor, zone=Zone.FINAL, zone_of=objects.zone_of)
        for problem in batch.problems:
            context.log.error(problem)
        # labmesh's own manifest writes are events too, of nothing a person did.
        changed_keys = [info.key for info in batch.created] + batch.removed
        touched = {key.first_segment for key in changed_keys if not key.is_labmesh_internal}
        # A folder still settling is looked at again at once; one of an unregistered experiment once it is.
        due = {folder for folder in first_seen if folder in registered} | set(cursor.again)
        still_waiting = {folder: seen for folder, seen in first_seen.items() if folder not in due | touched}
        also_check = sorted(touched | due)
        listed = [info for folder in also_check for info in list_folder(objects, Zone.FINAL, folder)]

    def cataloged_files(experiment_id: str) -> set[tuple[str, int, str]]:
        dataset = registry.get_dataset(experiment_id, Zone.FINAL)
        return {entry_state(entry) for entry in dataset.files} if dataset else set()

    plan = plan_final(
        listed,
        registered=registered,
        also_check=also_check,
        cataloged_files=cataloged_files,
        now=now,
        settle_seconds=0 if objects.complete_when_visible else landing_policy.settle_seconds,
    )
    for experiment_id in sorted(plan.unregistered):
        context.log.warning(f"final/{experiment_id}/ holds files but experiment {experiment_id} is not registered")
    for info in plan.outside_experiments[:20]:
        context.log.warning(f"{info.key} is not inside a valid experiment folder; left in place")
    unregistered = {folder: first_seen.get(folder, now) for folder in plan.unregistered}
    cursor.remember({**still_waiting, **unregistered}, plan.settling if queue is not None else ())
    if not plan.changed:
        return dg.SensorResult(skip_reason="final zone unchanged", cursor=cursor.to_json())
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(partition_key=experiment_id, run_key=final_run_key(experiment_id, files))
            for experiment_id, files in sorted(plan.changed.items())
        ],
        dynamic_partitions_requests=partitions_to_add(context.instance, plan.changed),
        cursor=cursor.to_json(),
    )
