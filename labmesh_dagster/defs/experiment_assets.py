"""The `experiment` asset: one partition per experiment, registered from the ELN."""

import dagster as dg

from labmesh_dagster.core.errors import ExperimentNotFound, RecordError
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.defs.lineage_recording import dataset_ref, lineage_check_spec, lineage_run
from labmesh_dagster.defs.partitions import experiments_partitions
from labmesh_dagster.defs.resources import CatalogResource, ElnResource, LineageResource, StoreResource
from labmesh_dagster.steps.registration import register_experiment

ELN_KNOWS_LOCATION = "eln_knows_data_location"


@dg.asset(
    partitions_def=experiments_partitions,
    group_name="experiments",
    kinds={"eln", "catalog"},
    owners=["team:lab-informatics"],
    description=(
        "An experiment from the ELN or LIMS: its record fetched and normalised, its folder prepared in "
        "every zone, registered in the catalog, and its data locations written back to the ELN entry."
    ),
    check_specs=[
        dg.AssetCheckSpec(
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
) -> dg.MaterializeResult:
    with lineage_run(context, lineage.get_sink(), "experiment") as run:
        source = eln.get_eln()
        try:
            registration = register_experiment(source, store.get_store(), catalog.get_catalog(), context.partition_key)
        except (ExperimentNotFound, RecordError) as exc:
            raise dg.Failure(description=f"cannot register experiment {context.partition_key}: {exc}") from exc
        record = registration.record
        run.experiment = record
        # Registration prepares the experiment's place in the store: its landing folder is the first dataset.
        run.outputs = [dataset_ref(store.get_store(), Zone.LANDING, record.id)]
        read_back = source.read_back(record.id)
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
                "record_fingerprint": record.fingerprint,
                "source": record.source,
                **{f"location_{zone}": dg.MetadataValue.url(uri) for zone, uri in registration.locations.items()},
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=ELN_KNOWS_LOCATION,
                    passed=read_back == registration.locations,
                    metadata={"eln_locations": dg.MetadataValue.json(read_back)},
                ),
                run.check_result(),
            ],
        )
