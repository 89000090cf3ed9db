"""The sensors that drive ingestion: the ELN, the landing zone and the final zone.

Everything downstream of them (`processed_dataset`) follows by declarative
automation. Sensors are built from the settings because their intervals and
patience (settle time, grace for unknown experiments) are the lab's to tune.
"""

from collections import defaultdict
from datetime import UTC, datetime

import dagster as dg

from labmesh_dagster.connectors.store.base import ObjectInfo
from labmesh_dagster.core.errors import InvalidExperimentId
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.defs.dataset_assets import final_dataset, raw_dataset
from labmesh_dagster.defs.experiment_assets import experiment
from labmesh_dagster.defs.partitions import experiments_partitions
from labmesh_dagster.defs.resources import CatalogResource, ElnResource, StoreResource
from labmesh_dagster.settings import Settings
from labmesh_dagster.steps.intake import experiments_to_register
from labmesh_dagster.steps.landing import batch_fingerprint, plan_landing, quarantine_object


def build_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    interval = settings.sensor_interval_seconds

    @dg.sensor(
        name="eln_sensor",
        target=[experiment],
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval,
        description="New or changed ELN records add their experiment partition and (re)materialize `experiment`.",
    )
    def eln_sensor(context: dg.SensorEvaluationContext, eln: ElnResource, catalog: CatalogResource) -> dg.SensorResult:
        poll = eln.get_eln().poll(context.cursor)
        for error in poll.errors:
            context.log.error(f"skipped ELN record {error.source}: {error.reason}")
        if poll.unchanged:
            return dg.SensorResult(skip_reason="no ELN record changed", cursor=poll.cursor)
        requests = experiments_to_register(poll, catalog.get_catalog().experiment_fingerprints())
        new_ids = [
            request.record.id
            for request in requests
            if not context.instance.has_dynamic_partition(experiments_partitions.name, request.record.id)
        ]
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(partition_key=request.record.id, run_key=request.run_key) for request in requests
            ],
            dynamic_partitions_requests=[experiments_partitions.build_add_request(new_ids)] if new_ids else [],
            cursor=poll.cursor,
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
        context: dg.SensorEvaluationContext, store: StoreResource, catalog: CatalogResource
    ) -> dg.SensorResult:
        # No cursor is needed: promotion empties landing, so what is listed is what is pending,
        # and the run key (a digest of the files) keeps a repeated tick from starting a second run.
        objects = store.get_store()
        registered = catalog.get_catalog().experiment_fingerprints()
        plan = plan_landing(
            objects.list(Zone.LANDING),
            registered.__contains__,
            now=datetime.now(UTC),
            settle_seconds=settings.landing_settle_seconds,
            unknown_grace_seconds=settings.unknown_experiment_grace_seconds,
        )
        for info, reason in plan.quarantine:
            target = quarantine_object(objects, info, reason)
            if target is None:
                context.log.info(f"{info.key} changed while being quarantined; it stays in landing until the next tick")
            else:
                context.log.warning(f"quarantined {info.key} -> {target}: {reason}")
        run_requests = [
            dg.RunRequest(partition_key=experiment_id, run_key=f"raw:{experiment_id}:{batch_fingerprint(files)}")
            for experiment_id, files in sorted(plan.ready.items())
        ]
        if not run_requests:
            waiting = f"; {len(plan.waiting)} file(s) waiting" if plan.waiting else ""
            return dg.SensorResult(skip_reason=f"no settled landing files{waiting}")
        return dg.SensorResult(run_requests=run_requests)

    @dg.sensor(
        name="final_sensor",
        target=[final_dataset],
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval,
        description="Files added, changed or removed under final/<experiment_id>/ rematerialize `final_dataset`.",
    )
    def final_sensor(
        context: dg.SensorEvaluationContext, store: StoreResource, catalog: CatalogResource
    ) -> dg.SensorResult:
        objects, registry = store.get_store(), catalog.get_catalog()
        now = datetime.now(UTC)
        listed: dict[str, list[ObjectInfo]] = defaultdict(list)
        settling: set[str] = set()
        for info in objects.list(Zone.FINAL):
            if info.key.is_labmesh_internal:
                continue
            try:
                experiment_id = info.key.experiment_id
            except InvalidExperimentId:
                context.log.warning(f"{info.key} is not inside a valid experiment folder; left in place")
                continue
            if (now - info.modified).total_seconds() < settings.landing_settle_seconds:
                settling.add(experiment_id)
            listed[experiment_id].append(info)
        registered = {summary.experiment_id: summary for summary in registry.summaries()}
        # Experiments with files now, and those whose cataloged final dataset had files (they may be gone).
        candidates = set(listed) | {e for e, summary in registered.items() if summary.datasets.get(Zone.FINAL.value)}
        run_requests = []
        for experiment_id in sorted(candidates - settling):
            if experiment_id not in registered:
                context.log.warning(
                    f"final/{experiment_id}/ holds files but experiment {experiment_id} is not registered"
                )
                continue
            files = listed.get(experiment_id, [])
            cataloged = registry.get_dataset(experiment_id, Zone.FINAL.value)
            known = {(entry.key, entry.size, entry.created) for entry in cataloged.files} if cataloged else set()
            if {(str(info.key), info.size, info.modified.isoformat()) for info in files} == known:
                continue
            run_key = f"final:{experiment_id}:{batch_fingerprint(files)}"
            run_requests.append(dg.RunRequest(partition_key=experiment_id, run_key=run_key))
        if not run_requests:
            return dg.SensorResult(skip_reason="final zone unchanged")
        return dg.SensorResult(run_requests=run_requests)

    automation = dg.AutomationConditionSensorDefinition(
        "labmesh_automation",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=max(interval, 10),
        description="Declarative automation: `processed_dataset` follows `raw_dataset` eagerly.",
    )
    return [eln_sensor, landing_sensor, final_sensor, automation]
