"""The sensors that drive ingestion (the ELN, the landing zone and the final zone) and keep the index whole.

Each sensor is a module-level function in a module of its own (`eln`,
`landing`, `final`), importable and testable on its own; here they become
Dagster sensors with the interval the settings give. Everything downstream of
them (`processed_dataset`) follows by declarative automation. The sensors only
read, compare and request; the rules they apply live in `labmesh_dagster.steps`.
"""

from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from labmesh_dagster.defs.dataset_assets import final_dataset, raw_dataset
from labmesh_dagster.defs.experiment_assets import experiment
from labmesh_dagster.defs.run_resources import run_tags
from labmesh_dagster.defs.sensors.eln import eln_sensor
from labmesh_dagster.defs.sensors.final import final_sensor
from labmesh_dagster.defs.sensors.landing import landing_retry_sensor, landing_sensor
from labmesh_dagster.defs.sensors.unfinished import unfinished_work_sensor
from labmesh_dagster.defs.sensors.vectors import content_vectors_sensor
from labmesh_dagster.defs.vectors import content_vectors
from labmesh_dagster.settings import Settings

# Listing landing for failed runs happens once per retry period anyway; a tick a minute is plenty.
RETRY_SENSOR_INTERVAL_SECONDS = 60


def _sensor(
    evaluate: Callable[..., Any], target: dg.JobDefinition | UnresolvedAssetJobDefinition, interval: int
) -> dg.SensorDefinition:
    """``evaluate`` as a running sensor named after it, described by the first paragraph of its docstring."""
    description = " ".join((evaluate.__doc__ or "").split("\n\n")[0].split())
    return dg.sensor(
        name=evaluate.__name__,
        target=target,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval,
        description=description,
    )(evaluate)


def _asset_job(
    name: str, assets: Sequence[dg.AssetsDefinition | str], description: str
) -> UnresolvedAssetJobDefinition:
    """The job a sensor starts runs of: its runs carry the size their assets need (`run_resources`).

    An asset is named by its key where it is built with the definitions (`processed_dataset`, from the
    pipelines file)."""
    names = [asset if isinstance(asset, str) else asset.key.to_user_string() for asset in assets]
    return dg.define_asset_job(name, selection=names, run_tags=run_tags(*names), description=description)


def build_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    interval = settings.sensor_interval_seconds
    register = _asset_job("register_experiments", [experiment], "Experiments the ELN announced, registered.")
    promote = _asset_job("promote_to_raw", [raw_dataset], "Landed files promoted to raw, described and published.")
    publish_final = _asset_job("publish_final", [final_dataset], "Files people put in final, published.")
    resume = _asset_job(
        "resume_unfinished_work",
        [experiment, raw_dataset, "processed_dataset", final_dataset],
        "Work a run began and did not finish, started again (each run sized for its own asset).",
    )
    sensors = [
        _sensor(eln_sensor, register, interval),
        _sensor(landing_sensor, promote, interval),
        _sensor(final_sensor, publish_final, interval),
        _sensor(unfinished_work_sensor, resume, interval),
        _sensor(content_vectors_sensor, content_vectors, interval),
    ]
    if settings.aws is not None and settings.aws.landing_queue_url:
        sensors.append(_sensor(landing_retry_sensor, promote, max(interval, RETRY_SENSOR_INTERVAL_SECONDS)))
    automation = dg.AutomationConditionSensorDefinition(
        "labmesh_automation",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=max(interval, 10),
        description=(
            "Declarative automation: `processed_dataset` follows `raw_dataset` eagerly, and a published "
            "`final_dataset` is refreshed when `processed_dataset` changes."
        ),
        # What automation starts is processed_dataset and final_dataset runs: sized for the larger.
        run_tags=run_tags("processed_dataset", "final_dataset"),
    )
    return [*sensors, automation]
