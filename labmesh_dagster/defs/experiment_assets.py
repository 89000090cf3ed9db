"""The `experiment` asset: one partition per experiment, registered from the ELN."""

import dagster as dg

from labmesh_dagster.connectors.search.base import ContentIndexUnavailable
from labmesh_dagster.core.errors import ExperimentNotFound, RecordError
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.defs.checks import LINEAGE_RECORDED, check_result, lineage_check_spec, partitioned_check_spec
from labmesh_dagster.defs.groups import LAB_GROUP
from labmesh_dagster.defs.locations import location_value, see_files
from labmesh_dagster.defs.materialization import materialization
from labmesh_dagster.defs.partitions import experiments_partitions
from labmesh_dagster.defs.resources import (
    CatalogResource,
    ClockResource,
    ContentIndexResource,
    ElnResource,
    LineageResource,
    StoreResource,
)
from labmesh_dagster.steps.content_access import follow_registration
from labmesh_dagster.steps.lineage_run import ASSET_OWNERS, dataset_ref
from labmesh_dagster.steps.registration import register_experiment

ELN_KNOWS_LOCATION = "eln_knows_data_location"
# Where the ELN sensor read the record it requested this run for: the ELN goes to that entry first.
ELN_SOURCE_TAG = "labmesh/eln_source"


@dg.asset(
    partitions_def=experiments_partitions,
    group_name=LAB_GROUP,
    kinds={"eln", "catalog"},
    owners=list(ASSET_OWNERS),
    description=(
        "An experiment from the ELN or LIMS: its record fetched and normalised, its folder prepared in "
        "every zone, registered in the catalog, and its data locations written back to the ELN entry."
    ),
    check_specs=[
        partitioned_check_spec(
            ELN_KNOWS_LOCATION,
            asset="experiment",
            description="Reading the ELN entry back shows the data locations labmesh wrote to it.",
        ),
        lineage_check_spec("experiment"),
    ],
)
def experiment(
    context: dg.AssetExecutionContext,
    eln: ElnResource,
    store: StoreResource,
    catalog: CatalogResource,
    lineage: LineageResource,
    clock: ClockResource,
    content_index: ContentIndexResource,
) -> dg.MaterializeResult:
    with materialization(context, "experiment", store=store, catalog=catalog, lineage=lineage, clock=clock) as this:
        objects, registry, run = this.objects, this.registry, this.run
        access_before = registry.principals(context.partition_key)
        known = registry.get_experiment(context.partition_key)
        source_hint = context.run.tags.get(ELN_SOURCE_TAG) or (known.source if known is not None else None)
        try:
            registration = register_experiment(
                eln.get_eln(), objects, registry, context.partition_key, run_id=run.run_id, source_hint=source_hint
            )
        except (ExperimentNotFound, RecordError) as exc:
            # Only a person can fix the record; the ELN sensor sees their edit, so nothing is left to resume.
            this.work.finish()
            raise dg.Failure(description=f"cannot register experiment {context.partition_key}: {exc}") from exc
        record = registration.record
        run.experiment = record
        try:
            # Who may see the experiment changed in the ELN: its files in the content index follow.
            access = follow_registration(registry, content_index.get_index(), objects, record.id, access_before)
        except ContentIndexUnavailable as exc:
            raise dg.Failure(
                description=f"experiment {record.id} is registered, but its files' access in the content index is "
                f"not updated: {exc}; `labmesh access sync {record.id}` finishes it"
            ) from exc
        # Registration prepares the experiment's place in the store: its landing folder is the first dataset.
        run.outputs = [dataset_ref(objects, Zone.LANDING, record.id)]
        context.log.info(
            f"experiment {record.id} {'registered' if registration.entry.changed else 'unchanged'} "
            f"(catalog revision {registration.entry.revision})"
        )
        return dg.MaterializeResult(
            metadata={
                "title": record.title,
                "owner": record.owner or "",
                "group": record.group or "",
                "project": record.project or "",
                "platform": record.platform or "",
                "protocol": record.protocol or "",
                "sample_ids": ", ".join(record.sample_ids),
                "sample_count": len(record.samples),
                "tags": ", ".join(record.tags),
                "catalog_entry_id": registration.entry.entry_id,
                "catalog_revision": registration.entry.revision,
                "content_access_updated": (
                    "no change"
                    if access is None
                    else f"{len(access.indexed)} file(s)" + (f", {len(access.failed)} failed" if access.failed else "")
                ),
                "record_fingerprint": record.fingerprint,
                "source": record.source,
                **{f"location_{zone}": location_value(uri) for zone, uri in registration.locations.items()},
                **see_files(record.id),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=ELN_KNOWS_LOCATION,
                    passed=registration.eln_locations == registration.locations,
                    metadata={"eln_locations": dg.MetadataValue.json(registration.eln_locations)},
                ),
                check_result(LINEAGE_RECORDED, run.record(ended=clock())),
            ],
        )
