"""The sensors that drive ingestion: the ELN, the landing zone and the final zone.

Everything downstream of them (`processed_dataset`) follows by declarative
automation. Each sensor only lists, compares and requests; the sorting rules
live in `labmesh_dagster.steps`. Every sensor also re-adds the partition of
any registered experiment it requests a run for, so that a Dagster instance
whose storage was reset recovers by itself from what the catalog knows.
"""

import json
from datetime import UTC, datetime

import dagster as dg

from labmesh_dagster.core.keys import Zone
from labmesh_dagster.defs.dataset_assets import final_dataset, raw_dataset
from labmesh_dagster.defs.experiment_assets import experiment
from labmesh_dagster.defs.partitions import experiments_partitions
from labmesh_dagster.defs.resources import CatalogResource, ElnResource, LandingPolicyResource, StoreResource
from labmesh_dagster.settings import Settings
from labmesh_dagster.steps.final_zone import entry_state, plan_final
from labmesh_dagster.steps.intake import experiments_to_register
from labmesh_dagster.steps.landing import QUARANTINE_PER_TICK, batch_fingerprint, plan_landing, quarantine_object


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
        return dg.SensorResult(
            run_requests=[
                # The poll cursor in the key: a replayed poll starts nothing new, while a later
                # poll that finds the catalog still behind (an earlier run failed) tries again.
                dg.RunRequest(partition_key=request.record.id, run_key=f"{request.run_key}@{poll.cursor}")
                for request in requests
            ],
            dynamic_partitions_requests=_missing_partitions(context, [record.id for record in poll.records]),
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
        context: dg.SensorEvaluationContext,
        store: StoreResource,
        catalog: CatalogResource,
        landing_policy: LandingPolicyResource,
    ) -> dg.SensorResult:
        # Promotion empties landing, so what is listed is what is pending; the run key (a digest
        # of the files) keeps a repeated tick from starting a second run for the same files.
        objects = store.get_store()
        registered = catalog.get_catalog().experiment_fingerprints()
        plan = plan_landing(
            objects.list(Zone.LANDING),
            registered.__contains__,
            now=datetime.now(UTC),
            settle_seconds=landing_policy.settle_seconds,
            unknown_grace_seconds=landing_policy.unknown_experiment_grace_seconds,
            unknown_first_seen=_load_first_seen(context.cursor),
        )
        for info, reason in plan.quarantine[:QUARANTINE_PER_TICK]:
            try:
                target = quarantine_object(objects, info, reason)
            except OSError as exc:  # e.g. a file and a folder of the same name: report, go on
                context.log.error(f"could not quarantine {info.key} ({reason}): {exc}")
                continue
            if target is None:
                context.log.info(f"{info.key} changed while being quarantined; it stays in landing for now")
            else:
                context.log.warning(f"quarantined {info.key} -> {target}: {reason}")
        cursor = json.dumps(
            {"unknown_first_seen": {key: value.isoformat() for key, value in sorted(plan.unknown_first_seen.items())}}
        )
        run_requests = [
            dg.RunRequest(partition_key=experiment_id, run_key=f"raw:{experiment_id}:{batch_fingerprint(files)}")
            for experiment_id, files in sorted(plan.ready.items())
        ]
        if not run_requests:
            waiting = f"; {len(plan.waiting)} file(s) waiting" if plan.waiting else ""
            return dg.SensorResult(skip_reason=f"no settled landing files{waiting}", cursor=cursor)
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=_missing_partitions(context, sorted(plan.ready)),
            cursor=cursor,
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
    ) -> dg.SensorResult:
        objects, registry = store.get_store(), catalog.get_catalog()
        summaries = registry.summaries()

        def cataloged_files(experiment_id: str) -> set[tuple[str, int, str]]:
            dataset = registry.get_dataset(experiment_id, Zone.FINAL.value)
            return {entry_state(entry) for entry in dataset.files} if dataset else set()

        plan = plan_final(
            objects.list(Zone.FINAL),
            registered=[summary.experiment_id for summary in summaries],
            with_cataloged_files=[s.experiment_id for s in summaries if s.datasets.get(Zone.FINAL.value)],
            cataloged_files=cataloged_files,
            now=datetime.now(UTC),
            settle_seconds=landing_policy.settle_seconds,
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
    return [eln_sensor, landing_sensor, final_sensor, automation]
