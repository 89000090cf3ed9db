"""`processed_dataset`: every pipeline of the pipelines file that matches the experiment, run on its raw data.

The asset is built from the pipelines file when the code location loads, so:

- its code version is the pipelines' names and versions: bumping a pipeline's
  version marks the processed datasets made before as stale in the Dagster
  UI, and rematerializing them brings them up to date (invocations whose
  pipeline did not change are reused, not run again);
- its pool is named after the engines it uses (``pipelines-local``,
  ``pipelines-ecs``, ``pipelines-healthomics``), so an operator bounds how many
  experiments run on each engine at once with Dagster's own pool limits.

What runs, what is reused and what is published is decided in
`steps.processing`; this module only hands each engine its invocations.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from labmesh_dagster.core.checks import CheckOutcome
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.defs.checks import (
    keep_check_outcomes,
    log_check_results,
    partitioned_check_spec,
    publish_check_specs,
    publish_outcomes,
)
from labmesh_dagster.defs.dataset_assets import dataset_metadata, raw_dataset, registered_experiment, sinks_of
from labmesh_dagster.defs.groups import LAB_GROUP
from labmesh_dagster.defs.locations import location_value
from labmesh_dagster.defs.materialization import materialization
from labmesh_dagster.defs.partitions import experiments_partitions
from labmesh_dagster.defs.pipeline_engines import PipelineEnginesResource
from labmesh_dagster.defs.resources import (
    CatalogResource,
    ClockResource,
    ContentIndexResource,
    ExtractionPolicyResource,
    LineageResource,
    StoreResource,
)
from labmesh_dagster.pipelines.spec import Pipeline, pipelines_code_version
from labmesh_dagster.steps.lineage_run import ASSET_OWNERS, dataset_ref
from labmesh_dagster.steps.manifests import build_manifest, inherit_samples, read_manifest
from labmesh_dagster.steps.pipeline_outputs import clear_staging, provenance_by_key
from labmesh_dagster.steps.processing import ProcessingReport, run_pipelines
from labmesh_dagster.steps.publishing import publish
from labmesh_dagster.steps.qc_verdicts import fastq_qc_failures

PIPELINES_SUCCEEDED = "pipelines_succeeded"
QC_PASSED = "fastq_qc_passed"
MULTIQC_REPORT = "multiqc_report.html"
PIPELINE_TABLE_LIMIT = 200
STDERR_LINES = 12


def pool_name(pipelines: Sequence[Pipeline]) -> str:
    """The Dagster pool of the asset: named after its engine (or engines, for a file mixing them)."""
    engines = sorted({pipeline.engine for pipeline in pipelines}) or ["local"]
    return "pipelines-" + "+".join(engines)


def _pipelines_table(report: ProcessingReport) -> dg.TableMetadataValue:
    rows = [
        dg.TableRecord(
            {
                "pipeline": receipt.made.pipeline,
                "version": receipt.made.version,
                "status": "reused" if receipt.reused else "ran",
                "engine": receipt.made.engine,
                "inputs": ", ".join(receipt.input_keys),
                "tools": ", ".join(f"{tool} {version}" for tool, version in sorted(receipt.made.tool_versions.items())),
            }
        )
        for receipt in report.receipts
    ] + [
        dg.TableRecord(
            {
                "pipeline": failure.pipeline,
                "version": "",
                "status": failure.status,
                "engine": "",
                "inputs": ", ".join(failure.inputs),
                "tools": "",
            }
        )
        for failure in report.failures
    ]
    return dg.MetadataValue.table(
        records=rows[:PIPELINE_TABLE_LIMIT],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn(name, "string")
                for name in ("pipeline", "version", "status", "engine", "inputs", "tools")
            ]
        ),
    )


def _failure_text(report: ProcessingReport) -> str | None:
    if not report.failures:
        return None
    listed = "; ".join(failure.describe() for failure in report.failures[:5])
    more = f" (and {len(report.failures) - 5} more)" if len(report.failures) > 5 else ""
    return f"{len(report.failures)} pipeline run(s) failed: {listed}{more}"


def _stderr_tails(report: ProcessingReport) -> str:
    parts = []
    for failure in report.failures:
        tail = "\n".join(failure.stderr_tail.rstrip().splitlines()[-STDERR_LINES:]) or "(nothing on stderr)"
        parts.append(f"**{failure.describe()}**\n\n```\n{tail}\n```")
    return "\n\n".join(parts)


def _multiqc_reports(report: ProcessingReport) -> list[str]:
    return [output.key for receipt in report.receipts for output in receipt.outputs if output.name == MULTIQC_REPORT]


def build_processed_dataset(pipelines: Sequence[Pipeline]) -> dg.AssetsDefinition:
    """The asset running ``pipelines`` (a loaded pipelines file) on each experiment's raw dataset."""
    pipelines = tuple(pipelines)
    names = ", ".join(pipeline.name for pipeline in pipelines) or "none"

    @dg.asset(
        name="processed_dataset",
        partitions_def=experiments_partitions,
        deps=[raw_dataset],
        group_name=LAB_GROUP,
        kinds={"pipes", *sorted({pipeline.engine for pipeline in pipelines} - {"local"})},
        owners=list(ASSET_OWNERS),
        automation_condition=dg.AutomationCondition.eager(),
        code_version=pipelines_code_version(pipelines),
        pool=pool_name(pipelines),
        description=(
            f"The pipelines of the pipelines file ({names}) run on the raw dataset: each tool's outputs written "
            "to a run's own prefix, published to the processed zone only on success, with lineage to the exact "
            "input files (key and sha256), the pipeline and version, the command line and the tools' versions."
        ),
        check_specs=[
            partitioned_check_spec(
                PIPELINES_SUCCEEDED,
                asset="processed_dataset",
                description="Every pipeline matching the experiment ran to success on each of its inputs.",
            ),
            partitioned_check_spec(
                QC_PASSED,
                asset="processed_dataset",
                description=(
                    "Every FASTQ of the raw dataset could be read to its end and holds reads, by its QC report "
                    "(fastp's, or labmesh's own QC where fastp is missing) and by its extraction."
                ),
            ),
            *publish_check_specs("processed_dataset"),
        ],
    )
    def processed_dataset(
        context: dg.AssetExecutionContext,
        store: StoreResource,
        catalog: CatalogResource,
        pipeline_engines: PipelineEnginesResource,
        lineage: LineageResource,
        content_index: ContentIndexResource,
        extraction: ExtractionPolicyResource,
        clock: ClockResource,
    ) -> dg.MaterializeResult:
        experiment_id = context.partition_key
        with materialization(
            context, "processed_dataset", store=store, catalog=catalog, lineage=lineage, clock=clock
        ) as this:
            objects, registry, run = this.objects, this.registry, this.run
            record = registered_experiment(this, experiment_id)
            raw_manifest = read_manifest(objects, Zone.RAW, experiment_id)
            if raw_manifest is None:
                this.work.finish()  # automation runs this asset again once raw_dataset is materialized
                raise dg.Failure(
                    description=f"experiment {experiment_id} has no raw manifest; materialize `raw_dataset` first"
                )
            run.experiment = record
            run.inputs = [dataset_ref(objects, Zone.RAW, experiment_id, raw_manifest)]
            # Named before the pipelines run, so a failed run's lineage still says what it was to write.
            run.outputs = [dataset_ref(objects, Zone.PROCESSED, experiment_id)]
            clear_staging(objects, experiment_id)  # what a crashed run of this experiment staged

            def execute(invocations: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
                return pipeline_engines.execute(context, store.store_config(), invocations)

            report = run_pipelines(objects, pipelines, record, raw_manifest, run_id=context.run.run_id, execute=execute)
            clear_staging(objects, experiment_id)
            for note in report.fallbacks:
                context.log.warning(note)
            for failure in report.failures:
                context.log.error(f"{failure.describe()}\n{failure.stderr_tail[-2000:]}")
            derived = {output.key: r.input_keys for r in report.receipts for output in r.outputs}
            made = provenance_by_key(report.receipts)
            previous = read_manifest(objects, Zone.PROCESSED, experiment_id)
            manifest = build_manifest(
                objects,
                Zone.PROCESSED,
                experiment_id,
                record.sample_ids,
                previous=previous,
                budget_seconds=extraction.budget,
                lineage=lambda key: derived.get(str(key), ()),
                provenance=lambda key: made.get(str(key)),
            )
            manifest = inherit_samples(manifest, raw_manifest)
            run.pipelines = [receipt.made for receipt in report.receipts]
            failure_text = _failure_text(report)
            report_published = publish(
                manifest,
                sinks_of(objects, registry, content_index),
                run,
                record=record,
                previous=previous,
                ended=clock(),
                failure=failure_text,
            )
            # A tool that failed fails again on the same input: a person looks, rematerializing resumes.
            this.work.finish()
            qc_failures = fastq_qc_failures(objects, raw_manifest, report.receipts, report.failures)
            for source, reason in qc_failures.items():
                context.log.warning(f"QC failed for {source}: {reason}")
            outcomes = [
                CheckOutcome.of(PIPELINES_SUCCEEDED, [failure.describe() for failure in report.failures]),
                CheckOutcome.of(QC_PASSED, [f"{source}: {reason}" for source, reason in qc_failures.items()]),
                *publish_outcomes(report_published),
            ]
            check_results = keep_check_outcomes(registry, experiment_id, Zone.PROCESSED, report_published, outcomes)
            multiqc = _multiqc_reports(report)
            metadata: dict[str, Any] = {
                **dataset_metadata(objects, manifest, report_published),
                "pipelines_ran": len(report.ran),
                "pipelines_reused": len(report.reused),
                "pipelines_failed": len(report.failures),
                "pipelines": _pipelines_table(report),
                "qc_failures": len(qc_failures),
                "qc_failed_inputs": dg.MetadataValue.md(
                    "\n".join(f"- {source}: {reason}" for source, reason in qc_failures.items()) or "none"
                ),
            }
            if multiqc:
                metadata["multiqc_report"] = location_value(objects.uri(ObjectKey.parse(multiqc[0])))
            if failure_text is not None:
                # What succeeded is published and recorded as materialized; the run still fails, with each
                # failed tool's stderr, so a person sees which input and why.
                context.log_event(
                    dg.AssetMaterialization(context.asset_key, partition=experiment_id, metadata=metadata)
                )
                log_check_results(context, experiment_id, check_results)
                raise dg.Failure(
                    description=failure_text, metadata={"stderr": dg.MetadataValue.md(_stderr_tails(report))}
                )
            return dg.MaterializeResult(metadata=metadata, check_results=check_results)

    return processed_dataset
