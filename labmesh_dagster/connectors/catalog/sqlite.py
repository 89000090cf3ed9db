"""The local catalog: SQLite tables for experiments, datasets and files, and their search index.

Several Dagster run processes publish at once, so every operation opens its own
connection, the database runs in WAL mode, and writers wait on a busy timeout
instead of failing. The search index (`sqlite_index`, queried by
`sqlite_search`) is derived data: it is rebuilt for an experiment whenever that
experiment, one of its datasets or one of its grants changes, in the same
transaction, which keeps it exactly in step with the tables (no duplicates,
nothing stale). Who may see an experiment is kept with it and applied inside
every search and count.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labmesh_dagster.connectors.catalog import sqlite_facets, sqlite_index, sqlite_search
from labmesh_dagster.connectors.catalog.base import (
    Catalog,
    CatalogEntry,
    DatasetRecord,
    DatasetRevision,
    ExperimentNotRegistered,
    ExperimentSummary,
    FacetCounts,
    RevisionNotFound,
    SearchHit,
    SearchQuery,
)
from labmesh_dagster.connectors.catalog.rows import dataset_from_rows, revision_from_row
from labmesh_dagster.connectors.sqlite_files import connect, transaction
from labmesh_dagster.core.access import GROUP, USER, Viewer, group_principal, user_principal
from labmesh_dagster.core.checks import CheckOutcome, failed
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest

SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    experiment_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    group_name TEXT,
    platform TEXT,
    created TEXT,
    fingerprint TEXT NOT NULL,
    record TEXT NOT NULL,
    locations TEXT NOT NULL,
    revision INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    run_id TEXT
);
CREATE TABLE IF NOT EXISTS archived_experiments (
    experiment_id TEXT PRIMARY KEY REFERENCES experiments(experiment_id),
    archived_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    experiment_id TEXT NOT NULL REFERENCES experiments(experiment_id),
    dataset TEXT NOT NULL,
    location TEXT NOT NULL,
    manifest_digest TEXT NOT NULL,
    file_count INTEGER NOT NULL,
    total_bytes INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    run_id TEXT,
    PRIMARY KEY (experiment_id, dataset)
);
CREATE TABLE IF NOT EXISTS files (
    experiment_id TEXT NOT NULL,
    dataset TEXT NOT NULL,
    key TEXT NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (experiment_id, dataset, key),
    FOREIGN KEY (experiment_id, dataset) REFERENCES datasets(experiment_id, dataset)
);
-- Every published revision of a dataset, and what its checks found (checks NULL: not known).
CREATE TABLE IF NOT EXISTS dataset_revisions (
    experiment_id TEXT NOT NULL,
    dataset TEXT NOT NULL,
    revision INTEGER NOT NULL,
    manifest_digest TEXT NOT NULL,
    file_count INTEGER NOT NULL,
    total_bytes INTEGER NOT NULL,
    published_at TEXT NOT NULL,
    run_id TEXT,
    checks TEXT,
    failed_checks INTEGER,
    PRIMARY KEY (experiment_id, dataset, revision)
);
-- Lineage lives in the OpenLineage log; catalogs from before kept a copy of its edges here.
DROP TABLE IF EXISTS lineage;
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def normal_principal(name: str) -> str:
    """``user:NAME`` or ``group:NAME`` as `core.access` spells it (case and spaces normalised)."""
    for kind, normal in ((USER, user_principal), (GROUP, group_principal)):
        if name.startswith(kind) and name[len(kind) :].strip():
            return normal(name[len(kind) :])
    raise ValueError(f"a principal is user:NAME or group:NAME, not {name!r}")


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _visible_to(viewer: Viewer | None, column: str) -> tuple[str, list[str]]:
    """An ``AND`` clause keeping the experiments ``viewer`` may see (none for an admin or no viewer), and its values."""
    if viewer is None or viewer.admin:
        return "", []
    principals = sorted(viewer.principals)
    return (
        f" AND {column} IN (SELECT experiment_id FROM experiment_principals "
        f"WHERE principal IN ({', '.join('?' * len(principals))}))",
        principals,
    )


class SqliteCatalog(Catalog):
    """The catalog in one SQLite file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            had_revisions = _has_table(db, "dataset_revisions")
            db.executescript(SCHEMA + sqlite_index.SCHEMA)
            for table in ("experiments", "datasets"):  # catalogs from before revisions named their run
                if "run_id" not in {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}:
                    with contextlib.suppress(sqlite3.OperationalError):  # another process added it first
                        db.execute(f"ALTER TABLE {table} ADD COLUMN run_id TEXT")
            if not had_revisions:  # a catalog from before revisions were kept: its current ones, checks unknown
                db.execute(
                    "INSERT OR IGNORE INTO dataset_revisions (experiment_id, dataset, revision, manifest_digest, "
                    "file_count, total_bytes, published_at, run_id) SELECT experiment_id, dataset, revision, "
                    "manifest_digest, file_count, total_bytes, updated_at, run_id FROM datasets"
                )
            current = sqlite_index.index_is_current(db)
        if not current:  # a new catalog, or one from before this search index: built once, under the write lock
            with self._transaction() as db:
                sqlite_index.upgrade(db)

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.path, foreign_keys=True)

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.path, foreign_keys=True)

    def upsert_experiment(
        self, record: ExperimentRecord, locations: dict[str, str], *, run_id: str | None = None
    ) -> CatalogEntry:
        entry_id = f"experiment:{record.id}"
        locations_json = json.dumps(locations, sort_keys=True)
        with self._transaction() as db:
            row = db.execute(
                "SELECT fingerprint, locations, revision FROM experiments WHERE experiment_id = ?", (record.id,)
            ).fetchone()
            if row and row["fingerprint"] == record.fingerprint and row["locations"] == locations_json:
                return CatalogEntry(entry_id, row["revision"], changed=False)
            revision = row["revision"] + 1 if row else 1
            db.execute(
                """INSERT INTO experiments
                   (experiment_id, title, group_name, platform, created, fingerprint, record, locations,
                    revision, updated_at, run_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (experiment_id) DO UPDATE SET
                     title = excluded.title, group_name = excluded.group_name, platform = excluded.platform,
                     created = excluded.created, fingerprint = excluded.fingerprint, record = excluded.record,
                     locations = excluded.locations, revision = excluded.revision, updated_at = excluded.updated_at,
                     run_id = excluded.run_id""",
                (
                    record.id,
                    record.title,
                    record.group,
                    record.platform,
                    record.created,
                    record.fingerprint,
                    json.dumps(record.to_dict(), sort_keys=True, default=str),
                    locations_json,
                    revision,
                    _now(),
                    run_id,
                ),
            )
            sqlite_index.index_experiment(db, record.id)
        return CatalogEntry(entry_id, revision, changed=True)

    def get_experiment(self, experiment_id: str) -> ExperimentRecord | None:
        with self._connect() as db:
            row = db.execute("SELECT record FROM experiments WHERE experiment_id = ?", (experiment_id,)).fetchone()
        return ExperimentRecord.from_dict(json.loads(row["record"])) if row else None

    def experiment_locations(self, experiment_id: str) -> dict[str, str]:
        with self._connect() as db:
            row = db.execute("SELECT locations FROM experiments WHERE experiment_id = ?", (experiment_id,)).fetchone()
        return json.loads(row["locations"]) if row else {}

    def experiment_fingerprints(self) -> dict[str, str]:
        with self._connect() as db:
            return {row[0]: row[1] for row in db.execute("SELECT experiment_id, fingerprint FROM experiments")}

    def upsert_dataset(self, manifest: Manifest, location: str, *, run_id: str | None = None) -> CatalogEntry:
        experiment_id, zone = manifest.experiment_id, manifest.zone
        entry_id = f"dataset:{experiment_id}/{zone}"
        digest = manifest.digest
        with self._transaction() as db:
            if not db.execute("SELECT 1 FROM experiments WHERE experiment_id = ?", (experiment_id,)).fetchone():
                raise ExperimentNotRegistered(experiment_id)
            row = db.execute(
                "SELECT manifest_digest, location, revision FROM datasets WHERE experiment_id = ? AND dataset = ?",
                (experiment_id, zone),
            ).fetchone()
            if row and row["manifest_digest"] == digest and row["location"] == location:
                return CatalogEntry(entry_id, row["revision"], changed=False)
            revision = row["revision"] + 1 if row else 1
            db.execute(
                """INSERT INTO datasets
                   (experiment_id, dataset, location, manifest_digest, file_count, total_bytes, revision, updated_at,
                    run_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (experiment_id, dataset) DO UPDATE SET
                     location = excluded.location, manifest_digest = excluded.manifest_digest,
                     file_count = excluded.file_count, total_bytes = excluded.total_bytes,
                     revision = excluded.revision, updated_at = excluded.updated_at, run_id = excluded.run_id""",
                (
                    experiment_id,
                    zone,
                    location,
                    digest,
                    manifest.file_count,
                    manifest.total_bytes,
                    revision,
                    _now(),
                    run_id,
                ),
            )
            db.execute(
                """INSERT INTO dataset_revisions
                   (experiment_id, dataset, revision, manifest_digest, file_count, total_bytes, published_at, run_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (experiment_id, dataset, revision) DO UPDATE SET
                     manifest_digest = excluded.manifest_digest, file_count = excluded.file_count,
                     total_bytes = excluded.total_bytes, published_at = excluded.published_at,
                     run_id = excluded.run_id, checks = NULL, failed_checks = NULL""",
                (experiment_id, zone, revision, digest, manifest.file_count, manifest.total_bytes, _now(), run_id),
            )
            db.execute("DELETE FROM files WHERE experiment_id = ? AND dataset = ?", (experiment_id, zone))
            db.executemany(
                "INSERT INTO files (experiment_id, dataset, key, entry) VALUES (?, ?, ?, ?)",
                [
                    (experiment_id, zone, entry.key, json.dumps(entry.to_dict(), sort_keys=True))
                    for entry in manifest.entries
                ],
            )
            sqlite_index.index_experiment(db, experiment_id)
        return CatalogEntry(entry_id, revision, changed=True)

    def get_dataset(self, experiment_id: str, zone: Zone) -> DatasetRecord | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT * FROM datasets WHERE experiment_id = ? AND dataset = ?", (experiment_id, zone)
            ).fetchone()
            if not row:
                return None
            files = db.execute(
                "SELECT entry FROM files WHERE experiment_id = ? AND dataset = ? ORDER BY key", (experiment_id, zone)
            ).fetchall()
        return dataset_from_rows(experiment_id, zone, row, files)

    def record_checks(self, experiment_id: str, zone: Zone, revision: int, outcomes: Sequence[CheckOutcome]) -> None:
        checks = json.dumps([outcome.to_dict() for outcome in outcomes], sort_keys=True)
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE dataset_revisions SET checks = ?, failed_checks = ? "
                "WHERE experiment_id = ? AND dataset = ? AND revision = ?",
                (checks, len(failed(outcomes)), experiment_id, Zone(zone).value, revision),
            )
            if cursor.rowcount == 0:
                raise RevisionNotFound(experiment_id, Zone(zone).value, revision)

    def dataset_revisions(self, experiment_id: str, zone: Zone, *, limit: int = 20) -> list[DatasetRevision]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM dataset_revisions WHERE experiment_id = ? AND dataset = ? "
                "ORDER BY revision DESC LIMIT ?",
                (experiment_id, Zone(zone).value, limit),
            ).fetchall()
        return [revision_from_row(row) for row in rows]

    def checks_needing_attention(self, *, viewer: Viewer | None = None) -> list[DatasetRevision]:
        visible, principals = _visible_to(viewer, "r.experiment_id")
        with self._connect() as db:
            rows = db.execute(
                "SELECT r.* FROM datasets AS d JOIN dataset_revisions AS r ON r.experiment_id = d.experiment_id "
                "AND r.dataset = d.dataset AND r.revision = d.revision "
                f"WHERE (r.failed_checks IS NULL OR r.failed_checks > 0){visible} ORDER BY r.experiment_id, r.dataset",
                principals,
            ).fetchall()
        return [revision_from_row(row) for row in rows]

    def search(self, query: SearchQuery) -> list[SearchHit]:
        with self._connect() as db:
            return sqlite_search.search(db, query)

    def facet_counts(self, query: SearchQuery, *, top: int = 20) -> FacetCounts:
        with self._connect() as db:
            return sqlite_facets.facet_counts(db, query, top)

    def grant(self, experiment_id: str, principal: str) -> bool:
        name = normal_principal(principal)
        with self._transaction() as db:
            if not db.execute("SELECT 1 FROM experiments WHERE experiment_id = ?", (experiment_id,)).fetchone():
                raise ExperimentNotRegistered(experiment_id)
            cursor = db.execute(
                "INSERT OR IGNORE INTO experiment_grants (experiment_id, principal, granted_at) VALUES (?, ?, ?)",
                (experiment_id, name, _now()),
            )
            if cursor.rowcount == 1:
                sqlite_index.index_experiment(db, experiment_id)
            return cursor.rowcount == 1

    def revoke(self, experiment_id: str, principal: str) -> bool:
        name = normal_principal(principal)
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM experiment_grants WHERE experiment_id = ? AND principal = ?", (experiment_id, name)
            )
            if cursor.rowcount == 1:
                sqlite_index.index_experiment(db, experiment_id)
            return cursor.rowcount == 1

    def principals(self, experiment_id: str) -> frozenset[str]:
        with self._connect() as db:
            sql = "SELECT principal FROM experiment_principals WHERE experiment_id = ?"
            return frozenset(row[0] for row in db.execute(sql, (experiment_id,)))

    def summaries(self, *, viewer: Viewer | None = None) -> list[ExperimentSummary]:
        visible, principals = "", []
        if viewer is not None and not viewer.admin:
            principals = sorted(viewer.principals)
            visible = (
                " WHERE experiment_id IN (SELECT experiment_id FROM experiment_principals "
                f"WHERE principal IN ({', '.join('?' * len(principals))}))"
            )
        with self._connect() as db:
            experiments = db.execute(
                "SELECT experiment_id, title, group_name, platform, revision, run_id FROM experiments"
                f"{visible} ORDER BY experiment_id",
                principals,
            ).fetchall()
            counts: dict[str, dict[str, int]] = {}
            for row in db.execute("SELECT experiment_id, dataset, file_count FROM datasets"):
                counts.setdefault(row["experiment_id"], {})[row["dataset"]] = row["file_count"]
            archived = {row[0] for row in db.execute("SELECT experiment_id FROM archived_experiments")}
        return [
            ExperimentSummary(
                experiment_id=row["experiment_id"],
                title=row["title"],
                group=row["group_name"],
                platform=row["platform"],
                revision=row["revision"],
                datasets=counts.get(row["experiment_id"], {}),
                archived=row["experiment_id"] in archived,
                run_id=row["run_id"],
            )
            for row in experiments
        ]

    def set_archived(self, experiment_id: str, archived: bool) -> bool:
        with self._transaction() as db:
            if archived:
                registered = db.execute(
                    "SELECT 1 FROM experiments WHERE experiment_id = ?", (experiment_id,)
                ).fetchone()
                if registered is None:
                    return False  # an experiment labmesh never registered has nothing to archive
                cursor = db.execute("INSERT OR IGNORE INTO archived_experiments VALUES (?, ?)", (experiment_id, _now()))
            else:
                cursor = db.execute("DELETE FROM archived_experiments WHERE experiment_id = ?", (experiment_id,))
            return cursor.rowcount == 1

    def archived_experiments(self) -> set[str]:
        with self._connect() as db:
            return {row[0] for row in db.execute("SELECT experiment_id FROM archived_experiments")}

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every table's content, minus update times: to compare the catalog before and after."""
        with self._connect() as db:
            return {
                "experiments": [
                    tuple(row)
                    for row in db.execute(
                        "SELECT experiment_id, fingerprint, record, locations, revision, run_id FROM experiments "
                        "ORDER BY 1"
                    )
                ],
                "datasets": [
                    tuple(row)
                    for row in db.execute(
                        "SELECT experiment_id, dataset, location, manifest_digest, file_count, total_bytes, revision, "
                        "run_id FROM datasets ORDER BY 1, 2"
                    )
                ],
                "files": [tuple(row) for row in db.execute("SELECT * FROM files ORDER BY 1, 2, 3")],
                "dataset_revisions": [
                    tuple(row)
                    for row in db.execute(
                        "SELECT experiment_id, dataset, revision, manifest_digest, file_count, total_bytes, run_id, "
                        "checks FROM dataset_revisions ORDER BY 1, 2, 3"
                    )
                ],
                "search_index": [
                    tuple(row)
                    for row in db.execute(
                        "SELECT d.experiment_id, r.dataset, r.key, r.samples, t.file_name, t.samples, t.keys "
                        "FROM search_rows AS r JOIN search_docs AS d ON d.doc = r.row >> 32 "
                        "JOIN search_row_text AS t ON t.rowid = r.row ORDER BY r.row"
                    )
                ],
                "experiment_principals": [
                    tuple(row) for row in db.execute("SELECT * FROM experiment_principals ORDER BY 1, 2")
                ],
            }
