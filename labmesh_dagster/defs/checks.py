"""The asset checks every dataset asset declares, and how a publish report becomes their results.

Every check is partitioned like its asset, so the Dagster UI shows each
experiment's result on its own rather than one result for the whole asset.
"""

import dagster as dg

from labmesh_dagster.defs.partitions import experiments_partitions
from labmesh_dagster.defs.previews import chosen_previews
from labmesh_dagster.steps.publishing import PublishReport

CATALOG_MATCHES_MANIFEST = "catalog_matches_manifest"
CONTENT_INDEXED = "content_indexed"
LINEAGE_RECORDED = "lineage_recorded"
RAW_MATCHES_LANDING = "raw_files_match_landing_checksums"


def partitioned_check_spec(name: str, *, asset: str, description: str) -> dg.AssetCheckSpec:
    """A check with a result per experiment partition, as its asset has.

    Dagster marks partitioned checks as a preview; labmesh relies on them, so
    the warning is silenced here, once, rather than printed on every start.
    """
    with chosen_previews():
        return dg.AssetCheckSpec(name, asset=asset, partitions_def=experiments_partitions, description=description)


def catalog_check_spec(asset: str) -> dg.AssetCheckSpec:
    return partitioned_check_spec(
        CATALOG_MATCHES_MANIFEST,
        asset=asset,
        description="The catalog entry lists exactly the manifest's files, sizes and checksums.",
    )


def content_check_spec(asset: str) -> dg.AssetCheckSpec:
    return partitioned_check_spec(
        CONTENT_INDEXED,
        asset=asset,
        description="Every searchable file's content reached the content index (Kendra or SQLite FTS5), none failed.",
    )


def lineage_check_spec(asset: str) -> dg.AssetCheckSpec:
    return partitioned_check_spec(
        LINEAGE_RECORDED,
        asset=asset,
        description="The materialization's OpenLineage events (START, COMPLETE) were accepted by every lineage sink.",
    )


def publish_check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    """The checks of everything `steps.publishing.publish` does."""
    return [catalog_check_spec(asset), content_check_spec(asset), lineage_check_spec(asset)]


def check_result(name: str, problems: list[str] | tuple[str, ...], **metadata: int) -> dg.AssetCheckResult:
    """A check that passes when nothing is wrong and otherwise lists every problem."""
    return dg.AssetCheckResult(
        check_name=name,
        passed=not problems,
        metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none"), **metadata},
    )


def publish_check_results(report: PublishReport) -> list[dg.AssetCheckResult]:
    content = report.content
    return [
        check_result(CATALOG_MATCHES_MANIFEST, report.catalog_problems),
        check_result(
            CONTENT_INDEXED,
            [f"{document}: {reason}" for document, reason in sorted(content.failed.items())],
            indexed=len(content.indexed),
            deleted=len(content.deleted),
        ),
        check_result(LINEAGE_RECORDED, report.lineage_problems),
    ]


def log_check_results(context: dg.AssetExecutionContext, partition: str, results: list[dg.AssetCheckResult]) -> None:
    """Record check results on a run that goes on to fail: what was published is still checked, per partition."""
    for result in results:
        context.log_event(
            dg.AssetCheckEvaluation(
                asset_key=context.asset_key,
                check_name=str(result.check_name),
                passed=result.passed,
                metadata=result.metadata,
                partition=partition,
            )
        )
