"""`eln_sensor`: new or changed ELN records add their experiment partition and (re)materialize `experiment`."""

import dagster as dg

from labmesh_dagster.connectors.eln.base import ElnPoll
from labmesh_dagster.defs.experiment_assets import ELN_SOURCE_TAG
from labmesh_dagster.defs.partitions import EXPERIMENTS, experiments_partitions, partitions_to_add
from labmesh_dagster.defs.resources import CatalogResource, ElnInboxResource, ElnResource
from labmesh_dagster.steps.intake import (
    ELN_EVENTS_PER_TICK,
    ONE_BY_ONE_LOOKUPS,
    ElnCursor,
    archive_changes,
    experiments_to_register,
    merge_polls,
    registered_fingerprints,
)
from labmesh_dagster.steps.store_event_intake import EVENT_VISIBILITY_SECONDS


def new_partitions(instance: dg.DagsterInstance, experiment_ids: list[str]) -> list[dg.AddDynamicPartitionsRequest]:
    """The experiments Dagster lacks: asked one by one for a tick's few changes, in one read for a whole ELN."""
    if len(experiment_ids) <= ONE_BY_ONE_LOOKUPS:
        return partitions_to_add(instance, experiment_ids)
    missing = sorted(set(experiment_ids) - set(instance.get_dynamic_partitions(EXPERIMENTS)))
    return [experiments_partitions.build_add_request(missing)] if missing else []


def eln_sensor(
    context: dg.SensorEvaluationContext, eln: ElnResource, catalog: CatalogResource, eln_inbox: ElnInboxResource
) -> dg.SensorResult:
    """New or changed ELN records add their experiment partition and (re)materialize `experiment`.

    Events pushed to `labmesh api` come first, since they name what changed
    now; the poll follows as the backfill that misses nothing.
    """
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
    pushed = source.resolve(mine) if mine else ElnPoll()
    poll = merge_polls(pushed, source.poll(cursor.poll))
    cursor = ElnCursor(poll=poll.cursor, receipts=[message.receipt for message in messages])
    for error in poll.errors:
        context.log.error(f"skipped ELN record {error.source}: {error.reason}")
    if poll.errors or poll.records:
        # Kept until the record reads fine, so `labmesh status` lists it after this tick's log is forgotten.
        catalog.get_eln_rejections().record(poll.errors, read_fine=[record.source for record in poll.records])
    if poll.unchanged:
        return dg.SensorResult(skip_reason="no ELN record changed", cursor=cursor.to_json())
    registry = catalog.get_catalog()
    for experiment_id in archive_changes(poll, registry):
        context.log.info(f"experiment {experiment_id}: archive state follows the ELN; its data stays where it is")
    # Only the experiments this tick read are looked up, in the catalog and in Dagster: a tick costs what changed.
    requests = experiments_to_register(poll, registered_fingerprints(registry, [r.id for r in poll.records]))
    return dg.SensorResult(
        run_requests=[
            # The ELN's modification time in the key: a replayed event or poll starts nothing new. Sources
            # without one use the poll cursor, so a later poll that finds the catalog still behind (an
            # earlier run failed) tries again.
            dg.RunRequest(
                partition_key=request.record.id,
                run_key=f"{request.run_key}@{request.record.modified or poll.cursor}",
                # Where the record was read: the run goes straight to that entry rather than searching the ELN.
                tags={ELN_SOURCE_TAG: request.record.source} if request.record.source else {},
            )
            for request in requests
        ],
        dynamic_partitions_requests=new_partitions(context.instance, [record.id for record in poll.records]),
        cursor=cursor.to_json(),
    )
