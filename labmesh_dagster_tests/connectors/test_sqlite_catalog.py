"""What only the SQLite catalog does: its full-text expressions, and upgrading a catalog file from before.

The behaviour both catalogs share is pinned in ``catalog_contract/``. Pinned
here: each term and file facet becomes a quoted FTS5 phrase, so no user input
is read as FTS syntax; a catalog file from before run ids gains the column and
drops its old copy of the lineage; one from before revisions were kept gains
its current revisions, checks unknown.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from labmesh_dagster.connectors.catalog.base import SearchQuery
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.catalog.sqlite_search import fts_expression
from labmesh_dagster.core.keys import Zone
from labmesh_dagster_tests.connectors.catalog_contract.test_registration_and_search import LOCATIONS, experiment
from labmesh_dagster_tests.connectors.catalog_contract.test_revisions import PASSED
from labmesh_dagster_tests.connectors.test_sqlite_catalog_upgrade import write_old_catalog


def test_the_fts_expression_quotes_each_term_and_facet() -> None:
    query = SearchQuery(text='skin a"b OR', sample="S-001", format="fastq")

    words = "{title experiment lab_group platform files}"
    assert fts_expression(query) == (
        f'{words} : "skin" AND {words} : "a""b" AND {words} : "OR"'
        # The file facets pick experiments with such a file; which files match is decided per file after.
        ' AND files : "fastq" AND files : "S-001"'
    )
    assert fts_expression(SearchQuery()) is None
    assert fts_expression(SearchQuery(text='" ""')) is None


def test_a_catalog_from_before_run_ids_gains_them_and_drops_its_lineage_copy(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(
            """CREATE TABLE experiments (experiment_id TEXT PRIMARY KEY, title TEXT NOT NULL, group_name TEXT,
                 platform TEXT, created TEXT, fingerprint TEXT NOT NULL, record TEXT NOT NULL,
                 locations TEXT NOT NULL, revision INTEGER NOT NULL, updated_at TEXT NOT NULL);
               CREATE TABLE datasets (experiment_id TEXT NOT NULL, dataset TEXT NOT NULL, location TEXT NOT NULL,
                 manifest_digest TEXT NOT NULL, file_count INTEGER NOT NULL, total_bytes INTEGER NOT NULL,
                 revision INTEGER NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (experiment_id, dataset));
               CREATE TABLE lineage (experiment_id TEXT, dataset TEXT, source TEXT, target TEXT, activity TEXT);"""
        )

    catalog = SqliteCatalog(path)
    catalog.upsert_experiment(experiment(), LOCATIONS, run_id="run-1")

    assert [summary.run_id for summary in catalog.summaries()] == ["run-1"]
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "lineage" not in tables


def test_an_older_catalog_keeps_its_current_revisions_with_checks_unknown(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    write_old_catalog(path)

    catalog = SqliteCatalog(path)
    SqliteCatalog(path)  # opening again adds nothing

    [kept] = catalog.dataset_revisions("EXP-9", Zone.RAW)
    assert (kept.revision, kept.manifest_digest, kept.file_count, kept.checks) == (1, "digest", 1, None)
    catalog.record_checks("EXP-9", Zone.RAW, 1, PASSED)
    assert catalog.dataset_revisions("EXP-9", Zone.RAW)[0].checks == PASSED
