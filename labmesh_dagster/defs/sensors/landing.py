"""`landing_sensor` and `landing_retry_sensor`: settled landing files become `raw_dataset` runs.

The landing zone is watched by listing it (the local profile, and S3 without
a queue) or by reading its S3 events from SQS. Either way the same rules sort
what is seen (`steps.landing.plan_landing`), and the cursor has one format
(`WatchCursor`). With events, the sensor lists only the folders it remembered
(unregistered experiments once registered or past their grace, files left
for the next tick), and `landing_retry_sensor` lists landing once per retry
period, a slice a tick, for files whose run failed.
"""

from datetime import datetime

import dagster as dg

from labmesh_dagster.connectors.store.base import ObjectInfo, ObjectStore
from labmesh_dagster.core.errors import LabmeshError
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.defs.partitions import partitions_to_add
from labmesh_dagster.defs.resources import (
    CatalogResource,
    ClockResource,
    LandingPolicyResource,
    StoreEventsResource,
    StoreResource,
)
from labmesh_dagster.steps.landing import (
    QUARANTINE_PER_TICK,
    SweepCursor,
    due_folders,
    folders_to_look_at_again,
    landing_run_key,
    list_folder,
    plan_landing,
    quarantine_object,
    retry_sweep,
    stale_batches,
)
from labmesh_dagster.steps.store_event_intake import WatchCursor, drain


def _quarantine(
    context: dg.SensorEvaluationContext, objects: ObjectStore, items: list[tuple[ObjectInfo, str]], now: datetime
) -> list[ObjectInfo]:
    """Quarantine up to the tick's budget; returns what is still in landing, for a later tick."""
    left = [info for info, _ in items[QUARANTINE_PER_TICK:]]
    for info, reason in items[:QUARANTINE_PER_TICK]:
        try:
            target = quarantine_object(objects, info, reason, now=now)
        except (OSError, LabmeshError) as exc:  # a file and a folder of one name, S3 throttling: go on
            context.log.error(f"could not quarantine {info.key} ({reason}): {exc}")
            left.append(info)
            continue
        if target is None:
            context.log.info(f"{info.key} changed while being quarantined; it stays in landing for now")
            left.append(info)
        else:
            context.log.warning(f"quarantined {info.key} -> {target}: {reason}")
    return left


def _run_requests(
    ready: dict[str, list[ObjectInfo]], policy: LandingPolicyResource, now: datetime
) -> list[dg.RunRequest]:
    # The run key is a digest of the files: a repeated tick or a redelivered event starts no second run.
    return [
        dg.RunRequest(
            partition_key=experiment_id,
            run_key=landing_run_key(experiment_id, files, now=now, retry_seconds=policy.retry_seconds),
        )
        for experiment_id, files in sorted(ready.items())
    ]


def landing_sensor(
    context: dg.SensorEvaluationContext,
    store: StoreResource,
    catalog: CatalogResource,
    landing_policy: LandingPolicyResource,
    store_events: StoreEventsResource,
    clock: ClockResource,
) -> dg.SensorResult:
    """Settled files in landing/<experiment_id>/ request `raw_dataset` for their experiment, all of an
    experiment's files in one run; files that cannot belong to a registered experiment are quarantined."""
    objects, now = store.get_store(), clock()
    registered = catalog.get_catalog().experiment_fingerprints()
    cursor = WatchCursor.from_json(context.cursor)
    first_seen = dict(cursor.pending)
    grace = landing_policy.unknown_experiment_grace_seconds
    queue = store_events.queue(Zone.LANDING)
    if queue is None:
        # Listing: promotion empties landing, so what is listed is what is pending.
        candidates = list(objects.list(Zone.LANDING))
    else:
        # Events: what S3 announced since the last tick, plus the remembered folders now worth a look.
        batch = drain(queue, cursor, zone=Zone.LANDING, zone_of=objects.zone_of)
        for problem in batch.problems:
            context.log.error(problem)
        due = set(due_folders(first_seen, registered.__contains__, now=now, grace_seconds=grace)) | set(cursor.again)
        relisted = [info for folder in sorted(due) for info in list_folder(objects, Zone.LANDING, folder)]
        candidates = list({info.key: info for info in batch.created + relisted}.values())
    plan = plan_landing(
        candidates,
        registered.__contains__,
        now=now,
        settle_seconds=0 if objects.complete_when_visible else landing_policy.settle_seconds,
        unknown_grace_seconds=grace,
        unknown_first_seen=first_seen,
    )
    not_quarantined = _quarantine(context, objects, plan.quarantine, now)
    if queue is None:
        # Every tick lists everything again: only when unregistered experiments were first seen is memory.
        cursor.remember(plan.unknown_first_seen, (), bounded=False)
    else:
        # An event comes once: unregistered experiments not looked at this tick keep waiting as they were.
        waiting = {folder: seen for folder, seen in first_seen.items() if folder not in due}
        again = folders_to_look_at_again(plan, not_quarantined)
        forgotten = cursor.remember({**waiting, **plan.unknown_first_seen}, again)
        if forgotten:
            context.log.error(f"{len(forgotten)} landing folder(s) not remembered for lack of room: {forgotten[:10]}")
    run_requests = _run_requests(plan.ready, landing_policy, now)
    if not run_requests:
        waiting_files = f"; {len(plan.waiting)} file(s) waiting" if plan.waiting else ""
        return dg.SensorResult(skip_reason=f"no new landing files ready{waiting_files}", cursor=cursor.to_json())
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=partitions_to_add(context.instance, plan.ready),
        cursor=cursor.to_json(),
    )


def landing_retry_sensor(
    context: dg.SensorEvaluationContext,
    store: StoreResource,
    catalog: CatalogResource,
    landing_policy: LandingPolicyResource,
    clock: ClockResource,
) -> dg.SensorResult:
    """With S3 events, lists landing once per LABMESH_LANDING_RETRY_SECONDS, a slice a tick, so files whose
    `raw_dataset` run failed get another; the event-driven landing_sensor lists only the folders it remembers."""
    objects, now = store.get_store(), clock()
    registered = catalog.get_catalog().experiment_fingerprints()
    state = SweepCursor.from_json(context.cursor)
    swept, state.last_sweep, state.sweep_after = retry_sweep(
        objects,
        last_sweep=state.last_sweep,
        sweep_after=state.sweep_after,
        now=now,
        retry_seconds=landing_policy.retry_seconds,
    )
    stale = stale_batches(swept, registered.__contains__, now=now, retry_seconds=landing_policy.retry_seconds)
    if not stale:
        skip = "no landing file waiting longer than the retry period"
        return dg.SensorResult(skip_reason=skip, cursor=state.to_json())
    return dg.SensorResult(
        run_requests=_run_requests(stale, landing_policy, now),
        dynamic_partitions_requests=partitions_to_add(context.instance, stale),
        cursor=state.to_json(),
    )
