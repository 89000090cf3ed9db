"""`labmesh status` lists the datasets whose checks need attention, as the portal's status page does.

Pinned here: a dataset whose latest revision failed a check is listed with
its experiment, zone, revision, when it was published, and each failed check
with its problems (a warning marked as one); a dataset whose checks all
passed is not listed; one whose latest revision has no check results is
listed apart, as unknown and never as passed; a dataset fixed by a new
revision whose checks passed drops off; and the CLI, acting as admin, lists
every group's datasets.
"""

from __future__ import annotations

import pytest

from labmesh_dagster import cli
from labmesh_dagster.connectors.catalog.base import Catalog
from labmesh_dagster.core.checks import CheckOutcome
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.ports import Ports
from labmesh_dagster.settings import Settings

CHECKSUMS_DIFFER = CheckOutcome.of("raw_files_match_landing_checksums", ["raw/EXP-1/a.fastq: sha256 differs"])
NOT_INDEXED = CheckOutcome.of("content_indexed", ["raw/EXP-1/b.pdf: unreadable"], warning=True)
CATALOG_MATCHES = CheckOutcome.of("catalog_matches_manifest", [])
LINEAGE_RECORDED = CheckOutcome.of("lineage_recorded", [])


def status(settings: Settings, capsys: pytest.CaptureFixture[str]) -> str:
    assert cli.main(["status"], settings=settings) == 0
    return capsys.readouterr().out


def publish(catalog: Catalog, experiment_id: str, *names: str, group: str = "Genomics") -> int:
    """Register the experiment and publish its raw dataset (as `raw_dataset` does); the revision published."""
    catalog.upsert_experiment(ExperimentRecord(id=experiment_id, title=f"{experiment_id} reads", group=group), {})
    entries = [
        ManifestEntry(key=f"raw/{experiment_id}/{name}", size=4, sha256="ab" * 32, format="fastq", created="2026-12-01")
        for name in names
    ]
    manifest = Manifest.build(experiment_id, "raw", entries)
    return catalog.upsert_dataset(manifest, f"file:///raw/{experiment_id}/").revision


@pytest.fixture
def catalog(settings: Settings) -> Catalog:
    return Ports(settings).registry()


def test_a_dataset_whose_check_failed_is_listed_and_one_whose_checks_passed_is_not(
    settings: Settings, catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = publish(catalog, "EXP-1", "a.fastq", "b.pdf")
    catalog.record_checks("EXP-1", Zone.RAW, failing, [CATALOG_MATCHES, CHECKSUMS_DIFFER, NOT_INDEXED])
    passing = publish(catalog, "EXP-2", "c.fastq", group="Proteomics")
    catalog.record_checks("EXP-2", Zone.RAW, passing, [CATALOG_MATCHES, LINEAGE_RECORDED])
    [published_at] = [
        revision.published_at[:16].replace("T", " ") for revision in catalog.dataset_revisions("EXP-1", Zone.RAW)
    ]

    listed = status(settings, capsys)

    section = listed.split("Datasets whose latest checks failed (1):\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert section == [
        f"  EXP-1 raw, revision 1 (published {published_at} UTC):",
        "    raw_files_match_landing_checksums (failed): raw/EXP-1/a.fastq: sha256 differs",
        "    content_indexed (warning): raw/EXP-1/b.pdf: unreadable",
    ]
    assert "EXP-2 raw" not in listed and "catalog_matches_manifest" not in listed
    assert "without check results" not in listed


def test_a_dataset_without_check_results_is_listed_apart_as_unknown(
    settings: Settings, catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(catalog, "EXP-3", "d.fastq")

    listed = status(settings, capsys)

    assert "Datasets whose latest checks failed" not in listed
    assert "Datasets without check results for their latest revision (1)" in listed
    assert "  EXP-3 raw, revision 1 (published " in listed


def test_a_dataset_fixed_by_a_revision_whose_checks_passed_drops_off(
    settings: Settings, catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    first = publish(catalog, "EXP-1", "a.fastq")
    catalog.record_checks("EXP-1", Zone.RAW, first, [CHECKSUMS_DIFFER])
    assert "raw_files_match_landing_checksums" in status(settings, capsys)

    fixed = publish(catalog, "EXP-1", "a.fastq", "a2.fastq")
    catalog.record_checks("EXP-1", Zone.RAW, fixed, [CATALOG_MATCHES, LINEAGE_RECORDED])

    listed = status(settings, capsys)
    assert "checks failed" not in listed and "without check results" not in listed
    assert "EXP-1" in listed  # still in the table of experiments


def test_an_empty_home_lists_no_checks_and_creates_no_catalog(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = status(settings, capsys)

    assert "checks failed" not in listed and "without check results" not in listed
    assert not settings.catalog_path.exists()
