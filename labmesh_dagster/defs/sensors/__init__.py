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

from labmesh_dagster.defs.dataset_assets import final_dataset, processed_dataset, raw_dataset
from labmesh_dagster.defs.experiment_assets import experiment
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
    evaluate: Callable[..., Any], target: Sequence[dg.AssetsDefinition] | dg.JobDefinition, interval: int
) -> dg.SensorDefinition:
    """``evaluate`` as a running sensor named after it, described by the first paragraph of its docstring."""
    description = " ".join((evaluate.__doc__ or "").split("\n\n")[0].split())
    return dg.sensor(
        name=evaluate.__name__,
        target=target if isinstance(target, dg.JobDefinition) else list(target),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval,
        description=description,
    )(evaluate)


def build_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    interval = settings.sensor_interval_seconds
    sensors = [
        _sensor(eln_sensor, [experiment], interval),
        _sensor(landing_sensor, [raw_dataset], interval),
        _sensor(final_sensor, [final_dataset], interval),
        _sensor(unfinished_work_sensor, [experiment, raw_dataset, processed_dataset, final_dataset], interval),
    ]
    sensors.append(_sensor(content_vectors_sensor, content_vectors, interval))
    if settings.aws is not None and settings.aws.landing_queue_url:
        sensors.append(_sensor(landing_retry_sensor, [raw_dataset], max(interval, RETRY_SENSOR_INTERVAL_SECONDS)))
    automation = dg.AutomationConditionSensorDefinition(
        "labmesh_automation",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=max(interval, 10),
        description=(
            "Declarative automation: `processed_dataset` follows `raw_dataset` eagerly, and a published "
            "`final_dataset` is refreshed when `processed_dataset` changes."
        ),
    )
    return [*sensors, automation]
