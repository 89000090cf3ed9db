"""The dataset assets: `raw_dataset`, `processed_dataset` and `final_dataset`, one partition per experiment.

Each ends with the same publish step and reports the same metadata, so the
Dagster UI shows every dataset alike: file count, bytes, formats, samples,
catalog entry and paths.
"""

import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from labmesh_dagster.connectors.catalog.base import Catalog
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.defs.experiment_assets import experiment
from labmesh_dagster.defs.lineage_recording import dataset_ref, lineage_check_spec, lineage_run
from labmesh_dagster.defs.partitions import experiments_partitions
from labmesh_dagster.defs.resources import (
    CatalogResource,
    ContentIndexResource,
    ExtractionPolicyResource,
    LandingPolicyResource,
    LineageResource,
    StoreResource,
)
from labmesh_dagster.pipelines.fastq_qc import qc_inputs
from labmesh_dagster.steps.content import index_dataset
from labmesh_dagster.steps.landing import quarantine_object
from labmesh_dagster.steps.manifests import build_manifest, inherit_samples, read_manifest
from labmesh_dagster.steps.promotion import promote_experiment
from labmesh_dagster.steps.publishing import Publication, publish_dataset
from labmesh_dagster.steps.verification import catalog_problems, raw_checksum_problems

OWNERS = ["team:lab-informatics"]
CATALOG_MATCHES_MANIFEST = "catalog_matches_manifest"
RAW_MATCHES_LANDING = "raw_files_match_landing_checksums"
CONTENT_INDEXED = "content_indexed"
FILE_TABLE_LIMIT = 200


def _catalogcheck_result(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        CATALOG_MATCHES_MANIFEST,
        asset=asset,
        description="The catalog entry lists exactly the manifest's files, sizes and checksums.",
    )


def _registered_experiment(catalog: Catalog, experiment_id: str) -> ExperimentRecord:
    record = catalog.get_experiment(experiment_id)
    if record is None:
        raise dg.Failure(
            description=f"experiment {experiment_id} is not registered in the catalog; materialize `experiment` first"
        )
    return record


def check_result(name: str, problems: list[str]) -> dg.AssetCheckResult:
    """A check that passes when nothing is wrong and otherwise lists every problem."""
    return dg.AssetCheckResult(
        check_name=name,
        passed=not problems,
        metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none")},
    )


def catalog_check_result(catalog: Catalog, manifest: Manifest) -> dg.AssetCheckResult:
    """Whether the catalog holds exactly what the manifest lists, for the manifest's dataset."""
    return check_result(
        CATALOG_MATCHES_MANIFEST, catalog_problems(catalog.get_dataset(manifest.experiment_id, manifest.zone), manifest)
    )


def content_check_spec(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        CONTENT_INDEXED,
        asset=asset,
        description="Every searchable file's content reached the content index (Kendra or SQLite FTS5), none failed.",
    )


def index_content(
    content_index: ContentIndexResource,
    store: ObjectStore,
    manifest: Manifest,
    previous: Manifest | None,
    record: ExperimentRecord,
) -> dg.AssetCheckResult:
    """Put the dataset's searchable content in the content index; documents the index refused fail the check."""
    report = index_dataset(
        content_index.get_index(), manifest, previous, record, lambda key: store.uri(ObjectKey.parse(key))
    )
    result = check_result(
        CONTENT_INDEXED, [f"{document}: {reason}" for document, reason in sorted(report.failed.items())]
    )
    return dg.AssetCheckResult(
        check_name=result.check_name,
        passed=result.passed,
        metadata={**result.metadata, "indexed": len(report.indexed), "deleted": len(report.deleted)},
    )


def _files_table(manifest: Manifest) -> dg.TableMetadataValue:
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "key": entry.key,
                    "format": entry.format,
                    "size": entry.size,
                    "samples": ", ".join(entry.sample_ids),
                    "error": entry.error["reason"] if entry.error else "",
                }
            )
            for entry in manifest.entries[:FILE_TABLE_LIMIT]
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("key", "string"),
                dg.TableColumn("format", "string"),
                dg.TableColumn("size", "int"),
                dg.TableColumn("samples", "string"),
                dg.TableColumn("error", "string"),
            ]
        ),
    )


def dataset_metadata(store: ObjectStore, manifest: Manifest, publication: Publication) -> dict[str, Any]:
    return {
        "file_count": manifest.file_count,
        "bytes": manifest.total_bytes,
        "formats": ", ".join(manifest.formats),
        "sample_ids": ", ".join(manifest.sample_ids),
        "extraction_errors": len(manifest.errors),
        "catalog_entry_id": publication.entry.entry_id,
        "catalog_revision": publication.entry.revision,
        "catalog_changed": publication.entry.changed,
        "location": dg.MetadataValue.url(publication.location),
        "manifest": dg.MetadataValue.url(store.uri(publication.manifest_key)),
        "lineage_edges": len(publication.edges),
        "files": _files_table(manifest),
    }


@dg.asset(
    partitions_def=experiments_partitions,
    deps=[experiment],
    group_name="datasets",
    kinds={"storage", "fastq"},
    owners=OWNERS,
    description=(
        "Instrument output promoted from the landing zone to the raw zone: copied, checksum verified, removed "
        "from landing only after verification, its metadata extracted, a manifest written and published."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            RAW_MATCHES_LANDING,
            asset="raw_dataset",
            description=(
                "Every raw file is present, and the sha256 read from it equals the sha256 of the landing object "
                "it was promoted from."
            ),
        ),
        _catalogcheck_result("raw_dataset"),
        content_check_spec("raw_dataset"),
        lineage_check_spec("raw_dataset"),
    ],
)
def raw_dataset(
    context: dg.AssetExecutionContext,
    store: StoreResource,
    catalog: CatalogResource,
    landing_policy: LandingPolicyResource,
    lineage: LineageResource,
    content_index: ContentIndexResource,
    extraction: ExtractionPolicyResource,
) -> dg.MaterializeResult:
    with lineage_run(context, lineage.get_sink(), "raw_dataset") as run:
        experiment_id = context.partition_key
        objects, registry = store.get_store(), catalog.get_catalog()
        record = _registered_experiment(registry, experiment_id)
        run.experiment = record
        run.inputs = [dataset_ref(objects, Zone.LANDING, experiment_id)]
        settle = 0 if objects.complete_when_visible else landing_policy.settle_seconds
        settled_before = datetime.now(UTC) - timedelta(seconds=settle)
        report = promote_experiment(objects, experiment_id, settled_before=settled_before)
        for info, reason in report.conflicts:
            target = quarantine_object(objects, info, reason)
            context.log.warning(f"{info.key}: {reason}; moved to {target or 'quarantine on the next tick'}")
        if report.not_settled:
            context.log.info(f"{len(report.not_settled)} landing file(s) still being written; left for a later run")
        previous = read_manifest(objects, Zone.RAW, experiment_id)
        manifest = build_manifest(
            objects,
            Zone.RAW,
            experiment_id,
            record.sample_ids,
            previous=previous,
            budget_seconds=extraction.budget,
            source_checksums=report.source_checksums(),
            lineage=lambda key: (str(key.in_zone(Zone.LANDING)),),
        )
        publication = publish_dataset(objects, registry, manifest)
        run.outputs = [dataset_ref(objects, Zone.RAW, experiment_id, manifest)]
        indexed = index_content(content_index, objects, manifest, previous, record)
        for entry in manifest.errors:
            context.log.warning(f"{entry.key}: extraction failed ({entry.error}); the file is kept and cataloged")
        metadata = {
            **dataset_metadata(objects, manifest, publication),
            "promoted_now": len(report.promoted),
            "quarantined_conflicts": len(report.conflicts),
        }
        if report.failed:
            # What was verified is published above and recorded as materialized, so what follows
            # (processed_dataset) sees it; the run still fails, naming the files kept in landing.
            context.log_event(dg.AssetMaterialization(context.asset_key, partition=experiment_id, metadata=metadata))
            raise dg.Failure(
                description=f"{len(report.failed)} landing file(s) of {experiment_id} could not be promoted and were "
                f"kept in landing: "
                + "; ".join(f"{failure.source}: {failure.reason}" for failure in report.failed[:5]),
                metadata={"failed": dg.MetadataValue.md("\n".join(f"- {f.source}: {f.reason}" for f in report.failed))},
            )
        return dg.MaterializeResult(
            metadata=metadata,
            check_results=[
                check_result(RAW_MATCHES_LANDING, raw_checksum_problems(objects, manifest)),
                catalog_check_result(registry, manifest),
                indexed,
                run.check_result(),
            ],
        )


def _pipeline_lineage(invocation: dg.PipesClientCompletedInvocation) -> dict[str, tuple[str, ...]]:
    lineage: dict[str, tuple[str, ...]] = {}
    for message in invocation.get_custom_messages():
        if isinstance(message, Mapping):
            for output in message.get("outputs", []):
                lineage[output["key"]] = tuple(output["derived_from"])
    return lineage


@dg.asset(
    partitions_def=experiments_partitions,
    deps=[raw_dataset],
    group_name="datasets",
    kinds={"pipes", "fastq", "json"},
    owners=OWNERS,
    automation_condition=dg.AutomationCondition.eager(),
    description=(
        "The built-in FASTQ QC run on the raw dataset through Dagster Pipes (a subprocess): per-file read "
        "statistics and per-position mean quality as JSON in the processed zone, with file-level lineage."
    ),
    check_specs=[
        _catalogcheck_result("processed_dataset"),
        content_check_spec("processed_dataset"),
        lineage_check_spec("processed_dataset"),
    ],
)
def processed_dataset(
    context: dg.AssetExecutionContext,
    store: StoreResource,
    catalog: CatalogResource,
    pipes_subprocess_client: dg.PipesSubprocessClient,
    lineage: LineageResource,
    content_index: ContentIndexResource,
    extraction: ExtractionPolicyResource,
) -> dg.MaterializeResult:
    with lineage_run(context, lineage.get_sink(), "processed_dataset") as run:
        experiment_id = context.partition_key
        objects, registry = store.get_store(), catalog.get_catalog()
        record = _registered_experiment(registry, experiment_id)
        raw_manifest = read_manifest(objects, Zone.RAW, experiment_id)
        if raw_manifest is None:
            raise dg.Failure(
                description=f"experiment {experiment_id} has no raw manifest; materialize `raw_dataset` first"
            )
        run.experiment = record
        run.inputs = [dataset_ref(objects, Zone.RAW, experiment_id, raw_manifest)]
        inputs = qc_inputs(raw_manifest)
        lineage: dict[str, tuple[str, ...]] = {}
        if inputs:
            invocation = pipes_subprocess_client.run(
                command=[sys.executable, "-m", "labmesh_dagster.pipelines.fastq_qc"],
                context=context,
                extras={"experiment_id": experiment_id, "store": store.store_config(), "inputs": inputs},
            )
            lineage = _pipeline_lineage(invocation)
        else:
            context.log.info(f"experiment {experiment_id} has no FASTQ files in raw; nothing to QC")
        previous = read_manifest(objects, Zone.PROCESSED, experiment_id)
        manifest = build_manifest(
            objects,
            Zone.PROCESSED,
            experiment_id,
            record.sample_ids,
            previous=previous,
            budget_seconds=extraction.budget,
            lineage=lambda key: lineage.get(str(key), ()),
        )
        manifest = inherit_samples(manifest, raw_manifest)
        publication = publish_dataset(objects, registry, manifest)
        run.outputs = [dataset_ref(objects, Zone.PROCESSED, experiment_id, manifest)]
        indexed = index_content(content_index, objects, manifest, previous, record)
        return dg.MaterializeResult(
            metadata={**dataset_metadata(objects, manifest, publication), "qc_inputs": len(inputs)},
            check_results=[catalog_check_result(registry, manifest), indexed, run.check_result()],
        )


@dg.asset(
    partitions_def=experiments_partitions,
    deps=[processed_dataset],
    group_name="datasets",
    kinds={"storage"},
    owners=OWNERS,
    description=(
        "Files people put under final/<experiment_id>/ (reports, figures, curated tables), picked up by "
        "`final_sensor`, described and published with their lineage to the processed dataset."
    ),
    check_specs=[
        _catalogcheck_result("final_dataset"),
        content_check_spec("final_dataset"),
        lineage_check_spec("final_dataset"),
    ],
)
def final_dataset(
    context: dg.AssetExecutionContext,
    store: StoreResource,
    catalog: CatalogResource,
    lineage: LineageResource,
    content_index: ContentIndexResource,
    extraction: ExtractionPolicyResource,
) -> dg.MaterializeResult:
    with lineage_run(context, lineage.get_sink(), "final_dataset") as run:
        experiment_id = context.partition_key
        objects, registry = store.get_store(), catalog.get_catalog()
        record = _registered_experiment(registry, experiment_id)
        run.experiment = record
        run.inputs = [
            dataset_ref(objects, Zone.PROCESSED, experiment_id, read_manifest(objects, Zone.PROCESSED, experiment_id))
        ]
        processed = f"{Zone.PROCESSED.value}/{experiment_id}/"
        previous = read_manifest(objects, Zone.FINAL, experiment_id)
        manifest = build_manifest(
            objects,
            Zone.FINAL,
            experiment_id,
            record.sample_ids,
            previous=previous,
            budget_seconds=extraction.budget,
            lineage=lambda key: (processed,),
        )
        publication = publish_dataset(objects, registry, manifest)
        run.outputs = [dataset_ref(objects, Zone.FINAL, experiment_id, manifest)]
        indexed = index_content(content_index, objects, manifest, previous, record)
        return dg.MaterializeResult(
            metadata=dataset_metadata(objects, manifest, publication),
            check_results=[catalog_check_result(registry, manifest), indexed, run.check_result()],
        )
