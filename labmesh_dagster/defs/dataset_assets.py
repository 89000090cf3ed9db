"""The dataset assets `raw_dataset` and `final_dataset`, one partition per experiment (`processed_dataset`, built
from the pipelines file, is in `processed_assets`).

Each builds its manifest its own way, then ends with the one publish step
(`steps.publishing.publish`), and turns its report into the same metadata and
check results, so the Dagster UI shows every dataset alike: file count,
bytes, formats, samples, catalog entry, paths to copy and the command that
lists every file (`defs.locations`).
"""

from datetime import timedelta
from typing import Any

import dagster as dg

from labmesh_dagster.connectors.catalog.base import Catalog
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.checks import CheckOutcome
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.defs.checks import (
    RAW_MATCHES_LANDING,
    keep_check_outcomes,
    log_check_results,
    partitioned_check_spec,
    publish_check_specs,
    publish_outcomes,
)
from labmesh_dagster.defs.experiment_assets import experiment
from labmesh_dagster.defs.groups import LAB_GROUP
from labmesh_dagster.defs.locations import location_value, see_files, where_to_see_files
from labmesh_dagster.defs.materialization import Materialization, materialization
from labmesh_dagster.defs.partitions import experiments_partitions
from labmesh_dagster.defs.resources import (
    CatalogResource,
    ClockResource,
    ContentIndexResource,
    ExtractionPolicyResource,
    LandingPolicyResource,
    LineageResource,
    StoreResource,
)
from labmesh_dagster.steps.landing import quarantine_object
from labmesh_dagster.steps.landing_folders import remove_emptied_folders
from labmesh_dagster.steps.lineage_run import ASSET_OWNERS, dataset_ref
from labmesh_dagster.steps.manifests import build_manifest, read_manifest
from labmesh_dagster.steps.promotion import promote_experiment
from labmesh_dagster.steps.promotion_journal import forget_recorded, journaled_checksums
from labmesh_dagster.steps.publishing import PublishReport, Sinks, publish
from labmesh_dagster.steps.verification import raw_checksum_problems

FILE_TABLE_LIMIT = 200


def registered_experiment(this: Materialization, experiment_id: str) -> ExperimentRecord:
    """The experiment's record; a run for an unregistered one fails with nothing left to resume (registering it is
    the ELN sensor's work, and its data waits in landing until then)."""
    record = this.registry.get_experiment(experiment_id)
    if record is None:
        this.work.finish()
        raise dg.Failure(
            description=f"experiment {experiment_id} is not registered in the catalog; materialize `experiment` first"
        )
    return record


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


def files_shown(manifest: Manifest, manifest_location: str) -> str:
    """What the file table holds of the dataset: all of it, or the first rows and where the rest is."""
    shown = min(manifest.file_count, FILE_TABLE_LIMIT)
    if shown == manifest.file_count:
        return f"all {manifest.file_count:,} file{'' if manifest.file_count == 1 else 's'}"
    every_file = where_to_see_files(manifest.experiment_id, manifest.zone)
    return (
        f"{shown:,} of {manifest.file_count:,} files; every file: {every_file} "
        f"(the manifest, {manifest_location}, describes each)"
    )


def dataset_metadata(store: ObjectStore, manifest: Manifest, report: PublishReport) -> dict[str, Any]:
    manifest_location = location_value(store.uri(report.manifest_key))
    return {
        "file_count": manifest.file_count,
        "bytes": manifest.total_bytes,
        "formats": ", ".join(manifest.formats),
        "sample_ids": ", ".join(manifest.sample_ids),
        "extraction_errors": len(manifest.errors),
        "catalog_entry_id": report.entry.entry_id,
        "catalog_revision": report.entry.revision,
        "catalog_changed": report.entry.changed,
        "location": location_value(report.location),
        "manifest": manifest_location,
        **see_files(manifest.experiment_id, manifest.zone),
        "lineage_edges": sum(len(entry.derived_from) for entry in manifest.entries),
        "files_shown": files_shown(manifest, manifest_location.path),
        "files": _files_table(manifest),
    }


def sinks_of(store: ObjectStore, catalog: Catalog, content_index: ContentIndexResource) -> Sinks:
    return Sinks(store=store, catalog=catalog, content_index=content_index.get_index())


@dg.asset(
    partitions_def=experiments_partitions,
    deps=[experiment],
    group_name=LAB_GROUP,
    kinds={"storage"},
    owners=list(ASSET_OWNERS),
    description=(
        "Instrument output promoted from the landing zone to the raw zone: copied, checksum verified, removed "
        "from landing only after verification, its metadata extracted, a manifest written and published."
    ),
    check_specs=[
        partitioned_check_spec(
            RAW_MATCHES_LANDING,
            asset="raw_dataset",
            description=(
                "Every raw file is present, and the sha256 read from it equals the sha256 of the landing object "
                "it was promoted from."
            ),
        ),
        *publish_check_specs("raw_dataset"),
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
    clock: ClockResource,
) -> dg.MaterializeResult:
    experiment_id = context.partition_key
    with materialization(context, "raw_dataset", store=store, catalog=catalog, lineage=lineage, clock=clock) as this:
        objects, registry, run = this.objects, this.registry, this.run
        record = registered_experiment(this, experiment_id)
        run.experiment = record
        run.inputs = [dataset_ref(objects, Zone.LANDING, experiment_id)]
        run.outputs = [dataset_ref(objects, Zone.RAW, experiment_id)]
        settle = 0 if objects.complete_when_visible else landing_policy.settle_seconds
        promotion = promote_experiment(objects, experiment_id, settled_before=clock() - timedelta(seconds=settle))
        for info, reason in promotion.conflicts:
            target = quarantine_object(objects, info, reason, now=clock())
            context.log.warning(f"{info.key}: {reason}; moved to {target or 'quarantine on the next tick'}")
        if promotion.not_settled:
            context.log.info(f"{len(promotion.not_settled)} landing file(s) still being written; left for a later run")
        previous = read_manifest(objects, Zone.RAW, experiment_id)
        # This run's promotions, and those of runs stopped before their manifest was written.
        landing_checksums = {**journaled_checksums(objects, experiment_id), **promotion.source_checksums()}
        # Before publishing, so a run stopped before its end leaves the journal that has the next run finish this.
        folders = remove_emptied_folders(
            objects, experiment_id, (ObjectKey.parse(raw).in_zone(Zone.LANDING) for raw in landing_checksums)
        )
        if folders.removed:
            context.log.info(f"removed {len(folders.removed)} emptied landing folder(s): {', '.join(folders.removed)}")
        for problem in folders.problems:
            context.log.warning(f"an emptied landing folder was kept: {problem}")
        manifest = build_manifest(
            objects,
            Zone.RAW,
            experiment_id,
            record.sample_ids,
            previous=previous,
            budget_seconds=extraction.budget,
            source_checksums=landing_checksums,
            lineage=lambda key: (str(key.in_zone(Zone.LANDING)),),
        )
        failure = (
            f"{len(promotion.failed)} landing file(s) of {experiment_id} could not be promoted and were kept in "
            "landing: " + "; ".join(f"{failure.source}: {failure.reason}" for failure in promotion.failed[:5])
            if promotion.failed
            else None
        )
        # Everything that can still fail happens before publishing, which records the run's lineage last.
        checksum_problems = raw_checksum_problems(objects, manifest)
        sinks = sinks_of(objects, registry, content_index)
        report = publish(manifest, sinks, run, record=record, previous=previous, ended=clock(), failure=failure)
        forget_recorded(objects, manifest, landing_checksums)
        # Files kept in landing are the landing sensor's to retry; what this run took on is done.
        this.work.finish()
        for entry in manifest.errors:
            context.log.warning(f"{entry.key}: extraction failed ({entry.error}); the file is kept and cataloged")
        metadata = {
            **dataset_metadata(objects, manifest, report),
            "promoted_now": len(promotion.promoted),
            "quarantined_conflicts": len(promotion.conflicts),
            "landing_folders_removed": len(folders.removed),
        }
        outcomes = [CheckOutcome.of(RAW_MATCHES_LANDING, checksum_problems), *publish_outcomes(report)]
        check_results = keep_check_outcomes(registry, experiment_id, Zone.RAW, report, outcomes)
        if failure is not None:
            # What was verified is published, checked and recorded as materialized, so what follows
            # (processed_dataset) sees it; the run still fails, naming the files kept in landing.
            context.log_event(dg.AssetMaterialization(context.asset_key, partition=experiment_id, metadata=metadata))
            log_check_results(context, experiment_id, check_results)
            raise dg.Failure(
                description=failure,
                metadata={
                    "failed": dg.MetadataValue.md("\n".join(f"- {f.source}: {f.reason}" for f in promotion.failed))
                },
            )
        return dg.MaterializeResult(metadata=metadata, check_results=check_results)


# Final files are published when people add them (`final_sensor`); once published, their lineage is
# brought up to date whenever the processed dataset they come from changes.
REFRESH_WHEN_PROCESSED_CHANGES = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("published, and processed changed")


@dg.asset(
    partitions_def=experiments_partitions,
    deps=["processed_dataset"],
    group_name=LAB_GROUP,
    kinds={"storage"},
    owners=list(ASSET_OWNERS),
    automation_condition=REFRESH_WHEN_PROCESSED_CHANGES,
    description=(
        "Files people put under final/<experiment_id>/ (reports, figures, curated tables), picked up by "
        "`final_sensor`, described and published with their lineage to the processed dataset."
    ),
    check_specs=publish_check_specs("final_dataset"),
)
def final_dataset(
    context: dg.AssetExecutionContext,
    store: StoreResource,
    catalog: CatalogResource,
    lineage: LineageResource,
    content_index: ContentIndexResource,
    extraction: ExtractionPolicyResource,
    clock: ClockResource,
) -> dg.MaterializeResult:
    experiment_id = context.partition_key
    with materialization(context, "final_dataset", store=store, catalog=catalog, lineage=lineage, clock=clock) as this:
        objects, registry, run = this.objects, this.registry, this.run
        record = registered_experiment(this, experiment_id)
        run.experiment = record
        processed = read_manifest(objects, Zone.PROCESSED, experiment_id)
        # Final files come from the processed dataset as it is now, by its version; where there is none
        # yet they come from nothing labmesh made, and when it is made this asset is refreshed.
        run.inputs = [dataset_ref(objects, Zone.PROCESSED, experiment_id, processed)] if processed else []
        run.outputs = [dataset_ref(objects, Zone.FINAL, experiment_id)]
        processed_folder = (f"{Zone.PROCESSED.value}/{experiment_id}/",) if processed else ()
        previous = read_manifest(objects, Zone.FINAL, experiment_id)
        manifest = build_manifest(
            objects,
            Zone.FINAL,
            experiment_id,
            record.sample_ids,
            previous=previous,
            budget_seconds=extraction.budget,
            lineage=lambda key: processed_folder,
        )
        sinks = sinks_of(objects, registry, content_index)
        report = publish(manifest, sinks, run, record=record, previous=previous, ended=clock())
        check_results = keep_check_outcomes(registry, experiment_id, Zone.FINAL, report, publish_outcomes(report))
        return dg.MaterializeResult(metadata=dataset_metadata(objects, manifest, report), check_results=check_results)
