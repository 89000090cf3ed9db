"""Publishing never waits long on the model, and the index knows when it wants vectors.

Pinned here: a small dataset's passages are embedded as it is published; a
large one's are all left (words searchable at once) for the content_vectors
job, whose `catch_up_vectors` embeds a bounded number at a time; a dataset
published while the embedder failed is published all the same, not found by
meaning until the catch-up; the index's `vectors_wanted` flag is set while
vectors are missing and cleared once none is; a catch-up whose embedder still
fails is logged, not raised.
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


def test_a_publish_whose_embedder_fails_keeps_the_words_and_the_index_wants_the_vectors(
    lab: tuple[Sinks, FlakyEmbedder], tmp_path: Path
) -> None:
    sinks, embedder = lab
    path = tmp_path / "catalog.sqlite"

    north = published(sinks, NORTH, tmp_path)  # the embedder fails throughout this publish
    assert north.content.indexed == ("final/EXP-1/storage.txt",)
    assert sinks.content_index.search("frozen")  # its words are searchable at once
    left = missing_vectors(path)
    assert left >= 1 and by_meaning(sinks) == []
    assert sinks.content_index.vectors_wanted()

    embedder.failing = False
    assert catch_up_vectors(sinks.content_index) == left and missing_vectors(path) == 0
    assert by_meaning(sinks) == ["final/EXP-1/storage.txt"]
    assert not sinks.content_index.vectors_wanted()


def test_a_small_publish_embeds_its_passages_itself(lab: tuple[Sinks, FlakyEmbedder], tmp_path: Path) -> None:
    sinks, embedder = lab
    embedder.failing = False
    published(sinks, NORTH, tmp_path)
    assert missing_vectors(tmp_path / "catalog.sqlite") == 0
    assert by_meaning(sinks) == ["final/EXP-1/storage.txt"]
    assert not sinks.content_index.vectors_wanted()


def test_a_large_publish_leaves_every_vector_to_the_vectors_job(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    for number in range(6):
        store.put(ObjectKey(Zone.FINAL, f"EXP-1/notes-{number}.txt"), f"Core {number} was frozen at -20 C.\n".encode())
    catalog = SqliteCatalog(tmp_path / "catalog.sqlite")
    catalog.upsert_experiment(NORTH, {})
    embedder = FlakyEmbedder()
    embedder.failing = False
    index = SqliteContentIndex(tmp_path / "catalog.sqlite", embedder=lambda: embedder, inline_vectors=3)
    sinks = Sinks(store=store, catalog=catalog, content_index=index)

    published(sinks, NORTH, tmp_path)

    left = missing_vectors(tmp_path / "catalog.sqlite")
    assert left >= 6 and embedder.calls == 0  # nothing embedded while publishing: more new passages than 3
    assert index.search("frozen") and index.vectors_wanted()
    assert catch_up_vectors(index, limit=left - 1) == left - 1 and index.vectors_wanted()
    assert catch_up_vectors(index) == 1 and not index.vectors_wanted()


def test_a_catch_up_is_bounded_and_one_whose_embedder_fails_is_logged_not_raised(
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
