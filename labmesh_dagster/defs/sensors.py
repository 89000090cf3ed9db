"""The sensors that drive ingestion: the ELN, the landing zone and the final zone.

Everything downstream of them (`processed_dataset`) follows by declarative
automation. Each sensor only lists, compares and requests; the sorting rules
live in `labmesh_dagster.steps`. Every sensor also re-adds the partition of
any registered experiment it requests a run for, so that a Dagster instance
whose storage was reset recovers by itself from what the catalog knows.
"""

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime

import dagster as dg

from labmesh_dagster.connectors.eln.base import ElnPoll
from labmesh_dagster.connectors.events.base import EventQueue
from labmesh_dagster.connectors.store.base import ObjectInfo, ObjectStore
from labmesh_dagster.core.errors import InvalidExperimentId, LabmeshError
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.defs.dataset_assets import final_dataset, raw_dataset
from labmesh_dagster.defs.experiment_assets import experiment
from labmesh_dagster.defs.partitions import experiments_partitions
from labmesh_dagster.defs.resources import (
    CatalogResource,
    ElnInboxResource,
    ElnResource,
    LandingPolicyResource,
    StoreEventsResource,
    StoreResource,
)
from labmesh_dagster.settings import Settings
from labmesh_dagster.steps.final_zone import entry_state, plan_final
from labmesh_dagster.steps.intake import (
    ELN_EVENTS_PER_TICK,
    ElnCursor,
    archive_changes,
    experiments_to_register,
    merge_polls,
)
from labmesh_dagster.steps.landing import (
    QUARANTINE_PER_TICK,
    SweepCursor,
    batch_fingerprint,
    landing_run_key,
    plan_landing,
    quarantine_object,
    retry_sweep,
    stale_batches,
)
from labmesh_dagster.steps.store_event_intake import (
    EVENT_VISIBILITY_SECONDS,
    EVENTS_PER_TICK,
    EventBatch,
    EventCursor,
    describe_waiting,
    read_events,
)


def _missing_partitions(
    context: dg.SensorEvaluationContext, experiment_ids: list[str]
) -> list[dg.AddDynamicPartitionsRequest]:
    missing = sorted(
        {e for e in experiment_ids if not context.instance.has_dynamic_partition(experiments_partitions.name, e)}
    )
    return [experiments_partitions.build_add_request(missing)] if missing else []


def _load_first_seen(cursor: str | None) -> dict[str, datetime]:
    try:
        data = json.loads(cursor) if cursor else {}
        return {key: datetime.fromisoformat(value) for key, value in data.get("unknown_first_seen", {}).items()}
    except (ValueError, AttributeError, TypeError):
        return {}  # an unreadable cursor only restarts the grace periods


def _zone_of(objects: ObjectStore) -> Callable[[str], Zone | None]:
    zone_of = getattr(objects, "zone_of", None)
    if zone_of is None:
        raise dg.Failure(description="store events are configured but the store has no buckets to match them to")
    return zone_of  # type: ignore[no-any-return]


def _quarantine(
    context: dg.SensorEvaluationContext, objects: ObjectStore, items: list[tuple[ObjectInfo, str]]
) -> list[ObjectInfo]:
    """Quarantine up to the tick's budget; returns what is still in landing, for a later tick."""
    left = [info for info, _ in items[QUARANTINE_PER_TICK:]]
    for info, reason in items[:QUARANTINE_PER_TICK]:
        try:
            target = quarantine_object(objects, info, reason)
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


def _drain(
    context: dg.SensorEvaluationContext, objects: ObjectStore, queue: EventQueue, zone: Zone
) -> tuple[EventCursor, EventBatch]:
    """Acknowledge what the previous tick acted on, then read this tick's fresh events of ``zone``.

    The returned cursor already holds this tick's receipts and event identities;
    the caller adds what it must remember and returns it with its run requests.
    """
    cursor = EventCursor.from_json(context.cursor)
    queue.acknowledge(cursor.pending_receipts)
    messages = queue.receive(max_messages=EVENTS_PER_TICK, visibility_timeout=EVENT_VISIBILITY_SECONDS)
    batch = read_events(messages, zone_of=_zone_of(objects), zone=zone, seen=set(cursor.recent))
    for problem in batch.problems:
        context.log.error(problem)
    cursor.pending_receipts = [message.receipt for message in messages]
    cursor.recent += batch.identities
    return cursor, batch


def _final_from_events(
    context: dg.SensorEvaluationContext, objects: ObjectStore, queue: EventQueue, registered: set[str]
) -> dg.SensorResult:
    """Every experiment whose final files were created or removed since the last tick, one run each."""
    cursor, batch = _drain(context, objects, queue, Zone.FINAL)
    touched: dict[str, list[str]] = {}
    for key in [info.key for info in batch.created] + batch.removed:
        if key.is_labmesh_internal:
            continue  # labmesh's own manifest, written by final_dataset itself
        try:
            experiment_id = key.experiment_id
        except InvalidExperimentId:
            context.log.warning(f"{key} is not inside a valid experiment folder; left in place")
            continue
        if experiment_id not in registered:
            context.log.warning(f"final/{experiment_id}/ holds files but experiment {experiment_id} is not registered")
            cursor.unknown_first_seen.setdefault(experiment_id, datetime.now(UTC).isoformat())
            continue
        touched.setdefault(experiment_id, []).append(str(key))
    # Experiments whose final files arrived before their registration are published once registered.
    for experiment_id in sorted(set(cursor.unknown_first_seen) & registered):
        touched.setdefault(experiment_id, []).append("(files that arrived before registration)")
        del cursor.unknown_first_seen[experiment_id]
    run_requests = [
        dg.RunRequest(partition_key=experiment_id, run_key=f"final:{experiment_id}:{_digest(sorted(batch.identities))}")
        for experiment_id in sorted(touched)
    ]
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=_missing_partitions(context, sorted(touched)),
        cursor=cursor.to_json(),
        skip_reason=None if run_requests else "no final files changed",
    )


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def build_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    interval = settings.sensor_interval_seconds

    @dg.sensor(
        name="eln_sensor",
        target=[experiment],
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval,
        description="New or changed ELN records add their experiment partition and (re)materialize `experiment`.",
    )
    def eln_sensor(
        context: dg.SensorEvaluationContext, eln: ElnResource, catalog: CatalogResource, eln_inbox: ElnInboxResource
    ) -> dg.SensorResult:
        source, inbox = eln.get_eln(), eln_inbox.get_inbox()
        cursor = ElnCursor.from_json(context.cursor)
        inbox.acknowledge(cursor.receipts)
        messages = inbox.receive(max_messages=ELN_EVENTS_PER_TICK, visibility_seconds=EVENT_VISIBILITY_SECONDS)
        mine = [message.event for message in messages if message.event.source == source.name]
        for message in messages:
            if message.event.source != source.name:
                context.log.warning(
                    f"ELN event {message.event.event_id} from {message.event.source!r} dropped: labmesh reads "
                    f"experiments from {source.name!r}"
                )
        # Pushed events first (they name what changed now), then the poll as the backfill that misses nothing.
        pushed = source.resolve(mine) if mine else ElnPoll()
        poll = merge_polls(pushed, source.poll(cursor.poll))
        cursor = ElnCursor(poll=poll.cursor, receipts=[message.receipt for message in messages])
        for error in poll.errors:
            context.log.error(f"skipped ELN record {error.source}: {error.reason}")
        registry = catalog.get_catalog()
        for experiment_id in archive_changes(poll, registry):
            context.log.info(f"experiment {experiment_id}: archive state follows the ELN; its data stays where it is")
        if poll.unchanged:
            return dg.SensorResult(skip_reason="no ELN record changed", cursor=cursor.to_json())
        requests = experiments_to_register(poll, registry.experiment_fingerprints())
        return dg.SensorResult(
            run_requests=[
                # The ELN's modification time in the key: a replayed event or poll starts nothing new.
                # Sources without one use the poll cursor, so a later poll that finds the catalog
                # still behind (an earlier run failed) tries again.
                dg.RunRequest(
                    partition_key=request.record.id,
                    run_key=f"{request.run_key}@{request.record.modified or poll.cursor}",
                )
                for request in requests
            ],
            dynamic_partitions_requests=_missing_partitions(context, [record.id for record in poll.records]),
            cursor=cursor.to_json(),
        )

    @dg.sensor(
        name="landing_sensor",
        target=[raw_dataset],
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval,
        description=(
            "Settled files in landing/<experiment_id>/ request `raw_dataset` for their experiment, all of an "
            "experiment's files in one run; files that cannot belong to a registered experiment are quarantined."
        ),
    )
    def landing_sensor(
        context: dg.SensorEvaluationContext,
        store: StoreResource,
        catalog: CatalogResource,
        landing_policy: LandingPolicyResource,
        store_events: StoreEventsResource,
    ) -> dg.SensorResult:
        objects = store.get_store()
        registered = catalog.get_catalog().experiment_fingerprints()
        now = datetime.now(UTC)
        queue = store_events.landing_queue()
        if queue is None:
            # Listing: promotion empties landing, so what is listed is what is pending, and the
            # only memory needed is when unregistered experiments were first seen.
            first_seen = _load_first_seen(context.cursor)
            candidates = list(objects.list(Zone.LANDING))
            event_cursor = None
        else:
            # Events: only what S3 announced since the last tick, plus what still waits; nothing listed
            # (files whose run failed are found by `landing_retry_sensor`).
            event_cursor, batch = _drain(context, objects, queue, Zone.LANDING)
            first_seen = event_cursor.first_seen()
            candidates = batch.created + event_cursor.waiting_objects(Zone.LANDING)
        plan = plan_landing(
            candidates,
            registered.__contains__,
            now=now,
            settle_seconds=0 if objects.complete_when_visible else landing_policy.settle_seconds,
            unknown_grace_seconds=landing_policy.unknown_experiment_grace_seconds,
            unknown_first_seen=first_seen,
        )
        not_quarantined = _quarantine(context, objects, plan.quarantine)
        if event_cursor is None:
            cursor = json.dumps(
                {"unknown_first_seen": {k: v.isoformat() for k, v in sorted(plan.unknown_first_seen.items())}}
            )
        else:
            # An event comes once: whatever is still in landing is remembered until it is dealt with.
            event_cursor.waiting = describe_waiting([info for info, _ in plan.waiting] + not_quarantined)
            event_cursor.unknown_first_seen = {k: v.isoformat() for k, v in sorted(plan.unknown_first_seen.items())}
            cursor = event_cursor.to_json()
        # The run key is a digest of the files: a repeated tick or a redelivered event starts no second run.
        run_requests = [
            dg.RunRequest(
                partition_key=experiment_id,
                run_key=landing_run_key(experiment_id, files, now=now, retry_seconds=landing_policy.retry_seconds),
            )
            for experiment_id, files in sorted(plan.ready.items())
        ]
        if not run_requests:
            waiting = f"; {len(plan.waiting)} file(s) waiting" if plan.waiting else ""
            return dg.SensorResult(skip_reason=f"no new landing files ready{waiting}", cursor=cursor)
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=_missing_partitions(context, sorted(plan.ready)),
            cursor=cursor,
        )

    @dg.sensor(
        name="landing_retry_sensor",
        target=[raw_dataset],
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=max(interval, 60),
        description=(
            "With S3 events, lists landing once per LABMESH_LANDING_RETRY_SECONDS, a slice a tick, so files "
            "whose `raw_dataset` run failed get another; the event-driven landing_sensor never lists."
        ),
    )
    def landing_retry_sensor(
        context: dg.SensorEvaluationContext,
        store: StoreResource,
        catalog: CatalogResource,
        landing_policy: LandingPolicyResource,
    ) -> dg.SensorResult:
        objects, now = store.get_store(), datetime.now(UTC)
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
            return dg.SensorResult(
                skip_reason="no landing file waiting longer than the retry period", cursor=state.to_json()
            )
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    partition_key=experiment_id,
                    run_key=landing_run_key(experiment_id, files, now=now, retry_seconds=landing_policy.retry_seconds),
                )
                for experiment_id, files in sorted(stale.items())
            ],
            cursor=state.to_json(),
        )

    @dg.sensor(
        name="final_sensor",
        target=[final_dataset],
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval,
        description="Files added, changed or removed under final/<experiment_id>/ rematerialize `final_dataset`.",
    )
    def final_sensor(
        context: dg.SensorEvaluationContext,
        store: StoreResource,
        catalog: CatalogResource,
        landing_policy: LandingPolicyResource,
        store_events: StoreEventsResource,
    ) -> dg.SensorResult:
        objects, registry = store.get_store(), catalog.get_catalog()
        summaries = registry.summaries()
        registered = {summary.experiment_id for summary in summaries}
        queue = store_events.final_queue()
        if queue is not None:
            return _final_from_events(context, objects, queue, registered)

        def cataloged_files(experiment_id: str) -> set[tuple[str, int, str]]:
            dataset = registry.get_dataset(experiment_id, Zone.FINAL.value)
            return {entry_state(entry) for entry in dataset.files} if dataset else set()

        plan = plan_final(
            objects.list(Zone.FINAL),
            registered=registered,
            with_cataloged_files=[s.experiment_id for s in summaries if s.datasets.get(Zone.FINAL.value)],
            cataloged_files=cataloged_files,
            now=datetime.now(UTC),
            settle_seconds=0 if objects.complete_when_visible else landing_policy.settle_seconds,
        )
        for experiment_id in sorted(plan.unregistered):
            context.log.warning(f"final/{experiment_id}/ holds files but experiment {experiment_id} is not registered")
        for info in plan.outside_experiments[:20]:
            context.log.warning(f"{info.key} is not inside a valid experiment folder; left in place")
        if not plan.changed:
            return dg.SensorResult(skip_reason="final zone unchanged")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(partition_key=experiment_id, run_key=f"final:{experiment_id}:{batch_fingerprint(files)}")
                for experiment_id, files in sorted(plan.changed.items())
            ],
            dynamic_partitions_requests=_missing_partitions(context, sorted(plan.changed)),
        )

    automation = dg.AutomationConditionSensorDefinition(
        "labmesh_automation",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=max(interval, 10),
        description="Declarative automation: `processed_dataset` follows `raw_dataset` eagerly.",
    )
    retrying = [landing_retry_sensor] if settings.aws and settings.aws.landing_queue_url else []
    return [eln_sensor, landing_sensor, *retrying, final_sensor, automation]
