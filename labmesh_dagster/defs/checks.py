"""The asset checks every dataset asset declares, and how a publish report becomes their results.

Every check is partitioned like its asset, so the Dagster UI shows each
experiment's result on its own rather than one result for the whole asset.
A dataset asset's outcomes are also kept in the catalog with the revision it
published (`keep_check_outcomes`), so the portal shows them without Dagster's
instance.
"""

from collections.abc import Sequence
from typing import Any

import dagster as dg

from labmesh_dagster.connectors.catalog.base import Catalog
from labmesh_dagster.core.checks import CheckOutcome
from labmesh_dagster.core.keys import Zone
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
    return outcome_result(CheckOutcome.of(name, problems), **metadata)


def outcome_result(outcome: CheckOutcome, **metadata: int) -> dg.AssetCheckResult:
    """The Dagster result of a check outcome: every problem listed, a warning's failure at WARN severity."""
    extra: dict[str, Any] = {"severity": dg.AssetCheckSeverity.WARN} if outcome.warning else {}
    return dg.AssetCheckResult(
        check_name=outcome.name,
        passed=outcome.passed,
        metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in outcome.problems) or "none"), **metadata},
        **extra,
    )


def publish_outcomes(report: PublishReport) -> list[CheckOutcome]:
    """What the checks of everything `steps.publishing.publish` does found."""
    return [
        CheckOutcome.of(CATALOG_MATCHES_MANIFEST, report.catalog_problems),
        CheckOutcome.of(
            CONTENT_INDEXED, [f"{document}: {reason}" for document, reason in sorted(report.content.failed.items())]
        ),
        CheckOutcome.of(LINEAGE_RECORDED, report.lineage_problems),
    ]


def check_results_of(outcomes: Sequence[CheckOutcome], report: PublishReport) -> list[dg.AssetCheckResult]:
    """The outcomes as Dagster results; the content check also counts the documents indexed and deleted."""
    counts = {CONTENT_INDEXED: {"indexed": len(report.content.indexed), "deleted": len(report.content.deleted)}}
    return [outcome_result(outcome, **counts.get(outcome.name, {})) for outcome in outcomes]


def publish_check_results(report: PublishReport) -> list[dg.AssetCheckResult]:
    return check_results_of(publish_outcomes(report), report)


def keep_check_outcomes(
    catalog: Catalog, experiment_id: str, zone: Zone, report: PublishReport, outcomes: Sequence[CheckOutcome]
) -> list[dg.AssetCheckResult]:
    """Keep the outcomes in the catalog with the revision ``report`` published, and return them as Dagster results."""
    catalog.record_checks(experiment_id, zone, report.entry.revision, outcomes)
    return check_results_of(outcomes, report)


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
