"""A catalog file from before the access-aware search index is upgraded in place when it is opened.

Pinned here, on a file written the way labmesh wrote catalogs before (its one
``search_index`` table holding the experiment's text in every file row): the
first open rebuilds the index from the experiments, datasets and files it
holds, so every search finds what it found before and access applies to it;
the old table is gone; opening again rebuilds nothing (same doc numbers, same
index); and two processes opening the old file at once both succeed, with the
index built once. A catalog of the layout before dataset rollups (version 3)
gains them in place on its first open, summed from the index rows it already
holds, without rebuilding the rest: its counts stay what they were.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.connectors.catalog import sqlite_index, sqlite_term_sums, sqlite_units, sqlite_value_sums
from labmesh_dagster.connectors.catalog.base import SearchQuery
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.experiment import ExperimentRecord, Sample
from labmesh_dagster.core.manifest import Manifest, ManifestEntry

BEFORE = """
CREATE TABLE experiments (experiment_id TEXT PRIMARY KEY, title TEXT NOT NULL, group_name TEXT, platform TEXT,
    created TEXT, fingerprint TEXT NOT NULL, record TEXT NOT NULL, locations TEXT NOT NULL,
    revision INTEGER NOT NULL, updated_at TEXT NOT NULL, run_id TEXT);
CREATE TABLE archived_experiments (experiment_id TEXT PRIMARY KEY REFERENCES experiments(experiment_id),
    archived_at TEXT NOT NULL);
CREATE TABLE datasets (experiment_id TEXT NOT NULL REFERENCES experiments(experiment_id), dataset TEXT NOT NULL,
    location TEXT NOT NULL, manifest_digest TEXT NOT NULL, file_count INTEGER NOT NULL, total_bytes INTEGER NOT NULL,
    revision INTEGER NOT NULL, updated_at TEXT NOT NULL, run_id TEXT, PRIMARY KEY (experiment_id, dataset));
CREATE TABLE files (experiment_id TEXT NOT NULL, dataset TEXT NOT NULL, key TEXT NOT NULL, entry TEXT NOT NULL,
    PRIMARY KEY (experiment_id, dataset, key),
    FOREIGN KEY (experiment_id, dataset) REFERENCES datasets(experiment_id, dataset));
CREATE VIRTUAL TABLE search_index USING fts5(experiment_id UNINDEXED, dataset UNINDEXED, file_key UNINDEXED,
    created UNINDEXED, experiment, samples, lab_group, platform, file_name, file_format, content,
    tokenize = 'porter unicode61');
"""

SKIN = ExperimentRecord(
    id="EXP-9",
    title="Skin biopsies",
    owner="Ada Lovelace",
    group="Dermatology",
    platform="MiSeq",
    samples=(Sample("S1"),),
    created="2024-03-01",
)
PLANNED = ExperimentRecord(id="EXP-1", title="Planned organoid study", group="Stem cells", created="2024-09-01")
READS = ManifestEntry(
    key="raw/EXP-9/S1_R1.fastq.gz",
    size=100,
    sha256="0" * 64,
    format="fastq.gz",
    created="2024-03-02T10:00:00+00:00",
    sample_ids=("S1",),
)


def write_old_catalog(path: Path) -> None:
    """Two experiments (the later-registered one first in id order) and a dataset, as labmesh wrote them before."""
    with sqlite3.connect(path) as db:
        db.executescript(BEFORE)
        for record in (SKIN, PLANNED):
            db.execute(
                "INSERT INTO experiments VALUES (?, ?, ?, ?, ?, ?, ?, '{}', 1, '2024-01-01T00:00:00+00:00', NULL)",
                (
                    record.id,
                    record.title,
                    record.group,
                    record.platform,
                    record.created,
                    record.fingerprint,
                    json.dumps(record.to_dict()),
                ),
            )
            db.execute(
                "INSERT INTO search_index VALUES (?, NULL, NULL, ?, ?, '', ?, ?, '', '', '')",
                (record.id, record.created, record.title, record.group, record.platform or ""),
            )
        db.execute(
            "INSERT INTO datasets VALUES ('EXP-9', 'raw', 'file:///raw/EXP-9/', 'digest', 1, 100, 1, "
            "'2024-01-01T00:00:00+00:00', NULL)"
        )
        db.execute("INSERT INTO files VALUES ('EXP-9', 'raw', ?, ?)", (READS.key, json.dumps(READS.to_dict())))


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def index_of(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT doc, experiment_id FROM search_docs ORDER BY doc").fetchall()


def test_an_old_catalog_is_searchable_after_its_first_open(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    write_old_catalog(path)

    catalog = SqliteCatalog(path)

    [hit] = catalog.search(SearchQuery(text="biopsies"))
    assert (hit.experiment_id, hit.dataset, [file.name for file in hit.files]) == ("EXP-9", "raw", ["S1_R1.fastq.gz"])
    assert [hit.experiment_id for hit in catalog.search(SearchQuery(sample="s1"))] == ["EXP-9"]
    assert [hit.experiment_id for hit in catalog.search(SearchQuery(group="stem cells"))] == ["EXP-1"]
    assert catalog.search(SearchQuery(viewer=Viewer(name="ada lovelace")))[0].experiment_id == "EXP-9"
    assert catalog.search(SearchQuery(viewer=Viewer(name="someone else"))) == []
    assert catalog.principals("EXP-9") == frozenset({"group:dermatology", "user:ada lovelace"})
    assert "search_index" not in tables(path)
    # Doc numbers follow registration order, so newest-first browsing keeps its meaning.
    assert index_of(path) == [(1, "EXP-9"), (2, "EXP-1")]


def test_opening_an_upgraded_catalog_again_rebuilds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    write_old_catalog(path)
    first = SqliteCatalog(path)
    snapshot, index = first.snapshot(), index_of(path)

    again = SqliteCatalog(path)

    assert again.snapshot() == snapshot and index_of(path) == index
    with sqlite3.connect(path, isolation_level=None) as db:
        assert sqlite_index.index_is_current(db)
        assert sqlite_index.upgrade(db) is False


def test_two_processes_opening_an_old_catalog_at_once_both_succeed(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    write_old_catalog(path)
    start = threading.Barrier(2)
    opened: list[Any] = []

    def open_catalog() -> None:
        start.wait()
        try:
            opened.append(SqliteCatalog(path).search(SearchQuery(text="biopsies")))
        except Exception as exc:  # reported below, on the test's thread
            opened.append(exc)

    threads = [threading.Thread(target=open_catalog) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert [[hit.experiment_id for hit in hits] for hits in opened] == [["EXP-9"], ["EXP-9"]]
    assert index_of(path) == [(1, "EXP-9"), (2, "EXP-1")]


def table(path: Path, name: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT * FROM {name} ORDER BY 1, 2, 3").fetchall()


def skin_lab(path: Path) -> SqliteCatalog:
    """A small current catalog: a skin experiment with its reads, and a planned one with no data yet."""
    catalog = SqliteCatalog(path)
    for record in (SKIN, PLANNED):
        catalog.upsert_experiment(record, {})
    catalog.upsert_dataset(Manifest.build("EXP-9", "raw", [READS]), "file:///raw/EXP-9/")
    return catalog


def as_version(path: Path, version: int, missing: Iterable[str]) -> None:
    """Turn the catalog into one of ``version``'s layout, without the ``missing`` tables, and mark its index rows
    (every file row's size -1) so a test can tell an upgrade in place from a rebuild, which would wipe the mark."""
    with sqlite3.connect(path) as db:
        for name in missing:
            db.execute(f"DROP TABLE {name}")
        db.execute("UPDATE catalog_parts SET version = ? WHERE part = 'search'", (version,))
        db.execute("UPDATE search_rows SET size = -1")


def test_a_catalog_from_before_the_dataset_rollups_gains_them_in_place(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    catalog = skin_lab(path)
    reads = SearchQuery(format="fastq", since="2024-03-02", viewer=Viewer(name="ada lovelace"))
    counts, sums = catalog.facet_counts(reads), table(path, "search_home_units")
    as_version(path, 3, sqlite_units.SCHEMA)  # no rollups

    reopened = SqliteCatalog(path)

    assert table(path, "search_home_units") == sums and sums
    assert {row[4] for row in table(path, "search_rows")} == {-1}  # the rest of the index was kept, not rebuilt
    assert reopened.facet_counts(reads) == counts and counts["zone"] == [("raw", 1)]
    with sqlite3.connect(path, isolation_level=None) as db:
        assert sqlite_index.index_is_current(db)


def test_a_catalog_from_before_the_sums_under_own_values_gains_them_in_place(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    catalog = skin_lab(path)
    by_owner = SearchQuery(owner="Ada Lovelace", viewer=Viewer(name="ada lovelace"))
    counts, sums = catalog.facet_counts(by_owner), table(path, "search_home_value_facets")
    as_version(path, 5, sqlite_value_sums.SCHEMA)  # no sums under own values

    reopened = SqliteCatalog(path)

    assert table(path, "search_home_value_facets") == sums and sums
    assert {row[4] for row in table(path, "search_rows")} == {-1}  # the rest of the index was kept, not rebuilt
    assert reopened.facet_counts(by_owner) == counts and counts["owner"] == [("Ada Lovelace", 1)]


def test_a_catalog_from_before_the_sums_per_word_gains_them_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_term_sums, "SUMMED_FROM", 1)  # this small lab's words are all summed
    path = tmp_path / "catalog.sqlite"
    catalog = skin_lab(path)
    by_word = SearchQuery(text=SKIN.title.split()[0], viewer=Viewer(name="ada lovelace"))
    counts, sums = catalog.facet_counts(by_word), table(path, "search_term_facets")
    as_version(path, 6, sqlite_term_sums.SCHEMA)  # no sums per word

    reopened = SqliteCatalog(path)

    assert table(path, "search_term_facets") == sums and sums
    assert {row[4] for row in table(path, "search_rows")} == {-1}  # the rest of the index was kept, not rebuilt
    assert reopened.facet_counts(by_word) == counts and counts["zone"]
