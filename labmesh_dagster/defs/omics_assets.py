"""`sequence_read_sets`: the raw sequencing files of an experiment, imported into AWS HealthOmics.

Present only when a sequence store is configured. It follows `raw_dataset`
eagerly, imports the files not yet imported (`steps.read_set_import`), and,
when it imported any, publishes the raw dataset again with each file's
read-set id, through the same publish step every dataset asset ends with.

Its run holds a slot of the Dagster pool `IMPORT_POOL` for as long as it waits
for its jobs, so the pool's limit bounds how many import jobs labmesh has
running at once, across all experiments (HealthOmics limits concurrent jobs
per account and Region). Set the limit with
``dagster instance concurrency set healthomics_import <n>`` or in the UI;
`labmesh dev` writes a default limit for pools into its dagster.yaml.
"""

from datetime import datetime
from typing import Any

import dagster as dg

from labmesh_dagster.core.checks import CheckOutcome
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.defs.checks import (
    CATALOG_MATCHES_MANIFEST,
    CONTENT_INDEXED,
    LINEAGE_RECORDED,
    check_result,
    keep_check_outcomes,
    outcome_result,
    partitioned_check_spec,
    publish_check_specs,
    publish_outcomes,
)
from labmesh_dagster.defs.dataset_assets import raw_dataset
from labmesh_dagster.defs.groups import LAB_GROUP
from labmesh_dagster.defs.lineage_runs import lineage_run
from labmesh_dagster.defs.partitions import experiments_partitions
from labmesh_dagster.defs.resources import (
    CatalogResource,
    ClockResource,
    ContentIndexResource,
    LineageResource,
    SequenceStoreResource,
    StoreResource,
)
from labmesh_dagster.steps.lineage_run import ASSET_OWNERS, LineageRun, dataset_ref
from labmesh_dagster.steps.manifests import read_manifest
from labmesh_dagster.steps.publishing import Sinks, publish
from labmesh_dagster.steps.read_set_import import (
    ImportPolicy,
    ReadSetImport,
    forget_recorded_jobs,
    import_experiment,
    with_read_sets,
)
from labmesh_dagster.steps.read_set_journal import ImportJournal
from labmesh_dagster.steps.verification import catalog_problems

ALL_IMPORTED = "every_sequencing_file_imported"
ALL_IMPORTABLE = "every_sequencing_file_importable"
IMPORT_POOL = "healthomics_import"
"""The Dagster pool every run of `sequence_read_sets` takes a slot of while it imports."""


@dg.asset(
    partitions_def=experiments_partitions,
    deps=[raw_dataset],
    group_name=LAB_GROUP,
    kinds={"healthomics", "fastq"},
    owners=list(ASSET_OWNERS),
    automation_condition=dg.AutomationCondition.eager(),
    pool=IMPORT_POOL,
    description=(
        "Raw sequencing files imported into the AWS HealthOmics sequence store as read sets "
        "(R1/R2 paired, subject and sample from the experiment), read-set ids recorded in the raw manifest."
    ),
    check_specs=[
        partitioned_check_spec(
            ALL_IMPORTED,
            asset="sequence_read_sets",
            description="Every sequencing file sent to HealthOmics has a read set; each that failed is named.",
        ),
        partitioned_check_spec(
            ALL_IMPORTABLE,
            asset="sequence_read_sets",
            description=(
                "Every sequencing file of raw is one HealthOmics takes (gzip FASTQ, uBAM, BAM or CRAM with a "
                "reference) with one sample; each file not sent is named with why (a warning)."
            ),
        ),
        *publish_check_specs("sequence_read_sets"),
    ],
)
def sequence_read_sets(
    context: dg.AssetExecutionContext,
    store: StoreResource,
    catalog: CatalogResource,
    content_index: ContentIndexResource,
    lineage: LineageResource,
    sequence_store: SequenceStoreResource,
    clock: ClockResource,
) -> dg.MaterializeResult:
    with lineage_run(context, lineage, "sequence_read_sets", clock) as run:
        experiment_id = context.partition_key
        objects, registry = store.get_store(), catalog.get_catalog()
        record = registry.get_experiment(experiment_id)
        manifest = read_manifest(objects, Zone.RAW, experiment_id)
        if record is None or manifest is None:
            raise dg.Failure(description=f"experiment {experiment_id} has no registered raw dataset yet")
        policy = ImportPolicy(
            platforms=tuple(sequence_store.platforms),
            reference_arn=sequence_store.reference_arn,
            timeout_seconds=sequence_store.timeout_seconds,
            poll_seconds=sequence_store.poll_seconds,
        )
        run.experiment = record
        run.inputs = [dataset_ref(objects, Zone.RAW, experiment_id, manifest)]
        taking_part = policy.takes_part(record)
        journal = ImportJournal(objects, experiment_id, sequence_store.sequence_store_id)

        def uri_of(key: str) -> str:
            return objects.uri(ObjectKey.parse(key))

        result = (
            import_experiment(
                sequence_store.get_sequence_store(),
                journal,
                manifest,
                record,
                policy,
                uri_of=uri_of,
                on_job=lambda job_id, sources, status: context.log.info(
                    f"HealthOmics import job {job_id}: {sources} source(s), {status}"
                ),
            )
            if taking_part
            else ReadSetImport(job_ids=(), imported={}, problems=())
        )
        metadata: dict[str, Any] = {
            "skipped": "" if taking_part else f"platform {record.platform!r} is not imported",
            "import_job_ids": ", ".join(result.job_ids),
            "imported_now": len(result.imported),
            "read_sets": dg.MetadataValue.json(result.imported),
            "not_imported": dg.MetadataValue.json({file.key: file.reason for file in result.skipped}),
            "role_requirements": dg.MetadataValue.md("\n".join(f"- {r}" for r in result.requirements) or "none"),
            "unchecked": dg.MetadataValue.md("\n".join(f"- {u}" for u in result.unchecked) or "none"),
        }
        for requirement in result.requirements:
            context.log.warning(requirement)
        imported, importable = import_outcomes(result)
        imports = [outcome_result(imported), outcome_result(importable, not_imported=len(result.skipped))]
        if not result.imported:
            catalog_state = catalog_problems(registry.get_dataset(experiment_id, Zone.RAW), manifest)
            unchanged = unchanged_raw(run, catalog_state, clock())
            return dg.MaterializeResult(metadata=metadata, check_results=[*imports, *unchanged])
        # Read again now: the import may have taken hours, and raw may have grown meanwhile.
        current = read_manifest(objects, Zone.RAW, experiment_id) or manifest
        sinks = Sinks(store=objects, catalog=registry, content_index=content_index.get_index())
        published = with_read_sets(current, result.imported)
        report = publish(published, sinks, run, record=record, previous=current, ended=clock())
        # Only now are the read set ids durable in the manifest: the journal's jobs that made them may go.
        forget_recorded_jobs(journal, published, uri_of)
        # The raw dataset's new revision keeps this run's outcomes: the import's and the publication's.
        outcomes = [*import_outcomes(result), *publish_outcomes(report)]
        checks = keep_check_outcomes(registry, experiment_id, Zone.RAW, report, outcomes)
        return dg.MaterializeResult(metadata=metadata, check_results=checks)


def import_outcomes(result: ReadSetImport) -> list[CheckOutcome]:
    """Every file imported, and the files not sent, each with its reason: a warning, as nothing failed, yet a
    person should know."""
    return [
        CheckOutcome.of(ALL_IMPORTED, result.problems),
        CheckOutcome.of(ALL_IMPORTABLE, [f"{file.key}: {file.reason}" for file in result.skipped], warning=True),
    ]


def unchanged_raw(run: LineageRun, catalog_state: list[str], ended: datetime) -> list[dg.AssetCheckResult]:
    """The publish checks of a run that imported nothing, so changed nothing to publish.

    The catalog is still compared with the raw manifest; the content index is
    the raw dataset's own publication's, which its checks report; the lineage
    says this run read raw and wrote nothing.
    """
    return [
        check_result(CATALOG_MATCHES_MANIFEST, catalog_state),
        check_result(CONTENT_INDEXED, [], indexed=0),
        check_result(LINEAGE_RECORDED, run.record(ended=ended)),
    ]
