"""Publishing heals the content index: passages an earlier publish kept without vectors get them at the next.

Pinned here: a dataset published while the embedder failed is published all
the same (its words searchable), and not found by meaning; the next publish,
of another dataset, embeds those passages too, a bounded number at a time
(`catch_up_vectors`), and says how many; search by meaning then finds them;
a publish with nothing missing embeds nothing more; a catch-up whose
embedder still fails is logged and publishes all the same.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.lineage.sqlite import SqliteLineageLog
from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.passages import SearchMode
from labmesh_dagster.steps.content import catch_up_vectors
from labmesh_dagster.steps.lineage_run import LineageRun
from labmesh_dagster.steps.manifests import build_manifest
from labmesh_dagster.steps.publishing import PublishReport, Sinks, publish
from labmesh_dagster_tests.flaky_embedder import FlakyEmbedder

NORTH = ExperimentRecord(id="EXP-1", title="Soil survey", description="cores from the north field")
SOUTH = ExperimentRecord(id="EXP-2", title="Soil survey", description="cores from the south field")
ENDED = datetime(2026, 11, 1, 9, 5, tzinfo=UTC)
QUESTION = "how were the specimens preserved"


@pytest.fixture
def lab(tmp_path: Path) -> tuple[Sinks, FlakyEmbedder]:
    store = LocalObjectStore(tmp_path / "store")
    store.put(
        ObjectKey(Zone.FINAL, "EXP-1/storage.txt"), b"The soil cores were frozen at -20 C the day they were taken.\n"
    )
    store.put(ObjectKey(Zone.FINAL, "EXP-2/nutrients.txt"), b"Nitrogen is low in core B; phosphate is normal.\n")
    catalog = SqliteCatalog(tmp_path / "catalog.sqlite")
    for record in (NORTH, SOUTH):
        catalog.upsert_experiment(record, {})
    embedder = FlakyEmbedder()
    index = SqliteContentIndex(tmp_path / "catalog.sqlite", embedder=lambda: embedder)
    return Sinks(store=store, catalog=catalog, content_index=index), embedder


def published(sinks: Sinks, record: ExperimentRecord, tmp_path: Path) -> PublishReport:
    manifest = build_manifest(sinks.store, Zone.FINAL, record.id, [])
    sink = SqliteLineageLog(tmp_path / "catalog.sqlite")
    run = LineageRun(asset="final_dataset", run_id=f"run-{record.id}", sink=sink, started=ENDED, experiment=record)
    return publish(manifest, sinks, run, record=record, previous=None, ended=ENDED)


def missing_vectors(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(
            db.execute(
                """SELECT count(DISTINCT text_hash) FROM content_passages AS p WHERE NOT EXISTS
                   (SELECT 1 FROM content_vectors AS v WHERE v.text_hash = p.text_hash)"""
            ).fetchone()[0]
        )
    finally:
        db.close()


def by_meaning(sinks: Sinks) -> list[str]:
    hits = sinks.content_index.retrieve(QUESTION, mode=SearchMode.DENSE, limit=1)
    return [hit.passage.document_id for hit in hits]


def test_the_next_publish_embeds_what_a_failed_embedding_left_without_vectors(
    lab: tuple[Sinks, FlakyEmbedder], tmp_path: Path
) -> None:
    sinks, embedder = lab
    path = tmp_path / "catalog.sqlite"

    north = published(sinks, NORTH, tmp_path)  # the embedder fails throughout this publish
    assert north.content.indexed == ("final/EXP-1/storage.txt",) and north.vectors_caught_up == 0
    assert sinks.content_index.search("frozen")  # its words are searchable at once
    left = missing_vectors(path)
    assert left >= 1 and by_meaning(sinks) == []

    embedder.failing = False
    south = published(sinks, SOUTH, tmp_path)

    assert south.vectors_caught_up == left and missing_vectors(path) == 0
    assert by_meaning(sinks) == ["final/EXP-1/storage.txt"]
    assert published(sinks, SOUTH, tmp_path).vectors_caught_up == 0


def test_a_catch_up_is_bounded_and_one_whose_embedder_fails_publishes_all_the_same(
    lab: tuple[Sinks, FlakyEmbedder], tmp_path: Path
) -> None:
    sinks, embedder = lab
    path = tmp_path / "catalog.sqlite"
    published(sinks, NORTH, tmp_path)
    published(sinks, SOUTH, tmp_path)
    left = missing_vectors(path)
    assert left >= 2

    assert catch_up_vectors(sinks.content_index, limit=left) == 0  # still failing: logged, not raised
    embedder.failing = False
    assert catch_up_vectors(sinks.content_index, limit=1) == 1 and missing_vectors(path) == left - 1
    assert catch_up_vectors(sinks.content_index) == left - 1 and missing_vectors(path) == 0
