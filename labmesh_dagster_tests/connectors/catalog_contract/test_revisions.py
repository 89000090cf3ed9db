"""Every catalog keeps each published revision of a dataset, with what its checks found.

Pinned here: each new revision is kept (newest first) with its digest, file
count, bytes and run, and an unchanged publish adds none; check outcomes are
kept with the revision they checked, recorded again idempotently, and refused
for a revision never published; a new revision's checks are unknown until
recorded; `checks_needing_attention` lists the datasets whose *current*
revision failed a check or has none recorded, only of experiments the viewer
may see. SQLite and PostgreSQL run each test; the DataZone catalog answers
all of it from its registry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from labmesh_dagster.connectors.catalog.base import Catalog, RevisionNotFound
from labmesh_dagster.connectors.catalog.datazone import DataZoneCatalog
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.checks import CheckOutcome
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster_tests.connectors.catalog_contract.conftest import AnyCatalog
from labmesh_dagster_tests.connectors.test_datazone_catalog import Clock, make_catalog
from labmesh_dagster_tests.fake_datazone import FakeDataZoneClient

PASSED = (CheckOutcome.of("catalog_matches_manifest", []), CheckOutcome.of("lineage_recorded", []))
FAILED = (CheckOutcome.of("catalog_matches_manifest", []), CheckOutcome.of("content_indexed", ["a.pdf: unreadable"]))


def reads(name: str, size: int, experiment_id: str = "EXP-1") -> ManifestEntry:
    return ManifestEntry(
        key=f"raw/{experiment_id}/{name}", size=size, sha256="ab" * 32, format="fastq", created="2024-03-01"
    )


def publish(catalog: Catalog, experiment_id: str, *entries: ManifestEntry, run_id: str = "run-1") -> int:
    manifest = Manifest.build(experiment_id, "raw", entries)
    return catalog.upsert_dataset(manifest, f"file:///raw/{experiment_id}/", run_id=run_id).revision


@pytest.fixture
def catalog(open_catalog: Callable[[], AnyCatalog]) -> AnyCatalog:
    catalog = open_catalog()
    catalog.upsert_experiment(ExperimentRecord(id="EXP-1", title="Liver", group="Genomics"), {})
    catalog.upsert_experiment(ExperimentRecord(id="EXP-2", title="Kidney", group="Proteomics"), {})
    return catalog


def test_every_revision_is_kept_newest_first_and_an_unchanged_publish_adds_none(catalog: AnyCatalog) -> None:
    publish(catalog, "EXP-1", reads("a.fastq", 10), run_id="run-1")
    publish(catalog, "EXP-1", reads("a.fastq", 10), run_id="run-again")
    publish(catalog, "EXP-1", reads("a.fastq", 10), reads("b.fastq", 5), run_id="run-2")

    history = catalog.dataset_revisions("EXP-1", Zone.RAW)

    assert [(r.revision, r.file_count, r.total_bytes, r.run_id) for r in history] == [
        (2, 2, 15, "run-2"),
        (1, 1, 10, "run-1"),
    ]
    assert history[0].manifest_digest != history[1].manifest_digest
    assert catalog.dataset_revisions("EXP-1", Zone.PROCESSED) == []
    assert [r.revision for r in catalog.dataset_revisions("EXP-1", Zone.RAW, limit=1)] == [2]


def test_check_outcomes_are_kept_with_the_revision_they_checked(catalog: AnyCatalog) -> None:
    first = publish(catalog, "EXP-1", reads("a.fastq", 10))
    catalog.record_checks("EXP-1", Zone.RAW, first, FAILED)
    second = publish(catalog, "EXP-1", reads("a.fastq", 11))

    newest, oldest = catalog.dataset_revisions("EXP-1", Zone.RAW)
    before = catalog.snapshot()
    catalog.record_checks("EXP-1", Zone.RAW, first, FAILED)

    assert newest.revision == second and newest.checks is None  # not recorded yet: unknown, not passed
    assert oldest.checks == FAILED and oldest.checks[1].problems == ("a.pdf: unreadable",)
    assert catalog.snapshot() == before
    with pytest.raises(RevisionNotFound, match="revision 7 of the raw dataset of experiment EXP-1"):
        catalog.record_checks("EXP-1", Zone.RAW, 7, PASSED)


def test_datasets_whose_current_checks_failed_or_are_unknown_need_attention(catalog: AnyCatalog) -> None:
    failing = publish(catalog, "EXP-1", reads("a.fastq", 10))
    catalog.record_checks("EXP-1", Zone.RAW, failing, FAILED)
    fixed = publish(catalog, "EXP-2", reads("b.fastq", 10, "EXP-2"))
    catalog.record_checks("EXP-2", Zone.RAW, fixed, FAILED)
    catalog.record_checks("EXP-2", Zone.RAW, publish(catalog, "EXP-2", reads("b.fastq", 12, "EXP-2")), PASSED)
    catalog.upsert_dataset(Manifest.build("EXP-2", "processed", ()), "file:///processed/EXP-2/")

    everyone = catalog.checks_needing_attention()
    genomics = catalog.checks_needing_attention(viewer=Viewer("ada", frozenset({"Genomics"})))
    proteomics = catalog.checks_needing_attention(viewer=Viewer("bob", frozenset({"Proteomics"})))

    assert [(r.experiment_id, r.zone, r.revision) for r in everyone] == [
        ("EXP-1", Zone.RAW, 1),
        ("EXP-2", Zone.PROCESSED, 1),
    ]
    assert [r.experiment_id for r in genomics] == ["EXP-1"] and genomics[0].checks == FAILED
    assert [(r.zone, r.checks) for r in proteomics] == [(Zone.PROCESSED, None)]
    assert catalog.checks_needing_attention(viewer=Viewer("eve")) == []


def test_the_datazone_catalog_keeps_revisions_and_checks_in_its_registry(tmp_path: Path) -> None:
    clock = Clock()
    datazone = make_catalog(FakeDataZoneClient(clock=clock), tmp_path, clock)
    datazone.bootstrap()
    datazone.upsert_experiment(ExperimentRecord(id="EXP-1", title="Liver", group="Genomics"), {})
    revision = publish(datazone, "EXP-1", reads("a.fastq", 10))

    datazone.record_checks("EXP-1", Zone.RAW, revision, FAILED)

    assert isinstance(datazone, DataZoneCatalog)
    assert datazone.registry.dataset_revisions("EXP-1", Zone.RAW)[0].checks == FAILED
    assert datazone.dataset_revisions("EXP-1", Zone.RAW) == datazone.registry.dataset_revisions("EXP-1", Zone.RAW)
    assert [
        r.experiment_id for r in datazone.checks_needing_attention(viewer=Viewer("ada", frozenset({"Genomics"})))
    ] == ["EXP-1"]
