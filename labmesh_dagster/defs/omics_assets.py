"""`sequence_read_sets`: the raw sequencing files of an experiment, imported into AWS HealthOmics.

Present only when a sequence store is configured. It follows `raw_dataset`
eagerly, imports the files not yet imported (R1/R2 paired, samples and subjects
from the experiment), waits for the import job, and records each file's read-set
id in the raw manifest and the catalog. An experiment takes part when its
platform is one of ``LABMESH_OMICS_PLATFORMS`` (all, if none are listed) or
its record says ``healthomics: true``.
"""

from typing import Any

import dagster as dg
from pydantic import Field

from labmesh_dagster.connectors.omics.base import MAX_SOURCES_PER_JOB, SequenceStore
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.defs.dataset_assets import OWNERS, check_result, raw_dataset
from labmesh_dagster.defs.partitions import experiments_partitions
from labmesh_dagster.defs.resources import CatalogResource, StoreResource
from labmesh_dagster.steps.manifests import read_manifest
from labmesh_dagster.steps.publishing import publish_dataset
from labmesh_dagster.steps.read_set_import import import_read_sets, plan_read_sets, read_set_metadata

READ_SET_METADATA = "healthomics_read_set_id"
ALL_IMPORTED = "every_sequencing_file_imported"


class SequenceStoreResource(dg.ConfigurableResource):
    """An AWS HealthOmics sequence store that raw sequencing files are imported into."""

    sequence_store_id: str = Field(description="HealthOmics sequence store id.")
    role_arn: str = Field(description="IAM role HealthOmics assumes to read the raw bucket.")
    reference_arn: str | None = Field(
        default=None, description="Reference for BAM/CRAM imports (else they are skipped)."
    )
    platforms: list[str] = Field(
        default_factory=list, description="Platforms whose experiments are imported (all if empty)."
    )
    timeout_seconds: float = Field(default=6 * 3600, description="How long to wait for an import job.")
    poll_seconds: float = Field(default=30, description="How often to ask for the import job's status.")
    endpoint_url: str | None = Field(default=None, description="HealthOmics endpoint; None for AWS itself.")
    region_name: str | None = Field(default=None, description="AWS region of the sequence store.")

    def get_sequence_store(self) -> SequenceStore:
        from labmesh_dagster.connectors.aws import make_client
        from labmesh_dagster.connectors.omics.healthomics import HealthOmicsSequenceStore

        client = make_client("omics", endpoint_url=self.endpoint_url, region_name=self.region_name)
        return HealthOmicsSequenceStore(client, sequence_store_id=self.sequence_store_id, role_arn=self.role_arn)

    def takes_part(self, record: ExperimentRecord) -> bool:
        if str(record.custom.get("healthomics", "")).lower() in {"true", "1", "yes"}:
            return True
        if not self.platforms:
            return True
        platform = (record.platform or "").lower()
        return any(wanted.lower() in platform for wanted in self.platforms)


def _with_read_sets(manifest: Manifest, read_sets: dict[str, str]) -> Manifest:
    from dataclasses import replace

    entries = [
        replace(entry, metadata={**entry.metadata, READ_SET_METADATA: read_sets[entry.key]})
        if entry.key in read_sets
        else entry
        for entry in manifest.entries
    ]
    return Manifest.build(manifest.experiment_id, manifest.zone, entries)


@dg.asset(
    partitions_def=experiments_partitions,
    deps=[raw_dataset],
    group_name="datasets",
    kinds={"healthomics", "fastq"},
    owners=OWNERS,
    automation_condition=dg.AutomationCondition.eager(),
    description=(
        "Raw sequencing files imported into the AWS HealthOmics sequence store as read sets "
        "(R1/R2 paired, subject and sample from the experiment), read-set ids recorded in the raw manifest."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            ALL_IMPORTED, asset="sequence_read_sets", description="Every sequencing file of raw has a read set."
        )
    ],
)
def sequence_read_sets(
    context: dg.AssetExecutionContext,
    store: StoreResource,
    catalog: CatalogResource,
    sequence_store: SequenceStoreResource,
) -> dg.MaterializeResult:
    experiment_id = context.partition_key
    objects, registry = store.get_store(), catalog.get_catalog()
    record = registry.get_experiment(experiment_id)
    manifest = read_manifest(objects, Zone.RAW, experiment_id)
    if record is None or manifest is None:
        raise dg.Failure(description=f"experiment {experiment_id} has no registered raw dataset yet")
    if not sequence_store.takes_part(record):
        return dg.MaterializeResult(
            metadata={"skipped": f"platform {record.platform!r} is not imported"},
            check_results=[check_result(ALL_IMPORTED, [])],
        )
    pending = Manifest.build(
        experiment_id, manifest.zone, [e for e in manifest.entries if READ_SET_METADATA not in e.metadata]
    )
    uri_to_key = {objects.uri(ObjectKey.parse(entry.key)): entry.key for entry in manifest.entries}
    sources = plan_read_sets(
        pending, record, lambda key: objects.uri(ObjectKey.parse(key)), reference_arn=sequence_store.reference_arn
    )
    problems: list[str] = []
    imported: dict[str, str] = {}
    job_ids = []
    omics = sequence_store.get_sequence_store()
    # A job takes at most 100 sources: a full plate goes in several jobs, each with its own token.
    for start in range(0, len(sources), MAX_SOURCES_PER_JOB):
        chunk = sources[start : start + MAX_SOURCES_PER_JOB]
        result = import_read_sets(
            omics,
            experiment_id,
            chunk,
            wait=lambda job_id: omics.wait_for_import(
                job_id, timeout_seconds=sequence_store.timeout_seconds, poll_seconds=sequence_store.poll_seconds
            ),
        )
        job_ids.append(result.job_id)
        context.log.info(f"HealthOmics import job {result.job_id}: {len(chunk)} source(s), {result.status}")
        imported.update(read_set_metadata(result, key_of=uri_to_key.__getitem__))
        problems += [
            f"{', '.join(rs.files)}: {rs.status} {rs.message}" for rs in result.read_sets if not rs.read_set_id
        ]
    if imported:
        # Read again now: the import may have taken hours, and raw may have grown meanwhile.
        current = read_manifest(objects, Zone.RAW, experiment_id) or manifest
        publish_dataset(objects, registry, _with_read_sets(current, imported))
    metadata: dict[str, Any] = {
        "import_job_ids": ", ".join(job_ids),
        "imported_now": len(imported),
        "read_sets": dg.MetadataValue.json(imported),
    }
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[check_result(ALL_IMPORTED, problems)],
    )
