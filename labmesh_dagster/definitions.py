"""The one entry point Dagster loads: every domain's definitions merged, resources picked by profile.

`defs` is a `@dg.definitions` function, so the environment is read when Dagster
loads the code location, not when this module is imported; tests call
`build_definitions` with settings of their own.
"""

import dagster as dg

from labmesh_dagster.defs.dataset_assets import final_dataset, processed_dataset, raw_dataset
from labmesh_dagster.defs.experiment_assets import experiment
from labmesh_dagster.defs.resources import (
    FolderElnResource,
    LandingPolicyResource,
    LocalStoreResource,
    SqliteCatalogResource,
)
from labmesh_dagster.defs.sensors import build_sensors
from labmesh_dagster.settings import Settings


def build_resources(settings: Settings) -> dict[str, object]:
    """The adapters of the settings' profile (only ``local`` exists so far)."""
    return {
        "store": LocalStoreResource(root=str(settings.store_dir)),
        "eln": FolderElnResource(records_dir=str(settings.eln_dir), outbox_dir=str(settings.eln_outbox_dir)),
        "catalog": SqliteCatalogResource(path=str(settings.catalog_path)),
        "landing_policy": LandingPolicyResource(
            settle_seconds=settings.landing_settle_seconds,
            unknown_experiment_grace_seconds=settings.unknown_experiment_grace_seconds,
        ),
        "pipes_subprocess_client": dg.PipesSubprocessClient(),
    }


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions.merge(
        dg.Definitions(assets=[experiment]),
        dg.Definitions(assets=[raw_dataset, processed_dataset, final_dataset]),
        dg.Definitions(sensors=build_sensors(settings)),
        dg.Definitions(resources=build_resources(settings)),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_env())
