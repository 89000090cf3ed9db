"""The local catalog: SQLite tables for experiments, datasets and files, FTS5 for search.

Several Dagster run processes publish at once, so every operation opens its own
connection, the database runs in WAL mode, and writers wait on a busy timeout
instead of failing. The search index is derived data: it is rebuilt for an
experiment whenever that experiment or one of its datasets changes, which keeps
it exactly in step with the tables (no duplicates, nothing stale).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labmesh_dagster.connectors.catalog.base import (
    Catalog,
    CatalogEntry,
    DatasetRecord,
    ExperimentNotRegistered,
    ExperimentSummary,
    FileHit,
    SearchHit,
    SearchQuery,
)
from labmesh_dagster.connectors.sqlite_files import connect, transaction
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.core.text import clean_text, words_of

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
-- Lineage lives in the OpenLineage log; catalogs from before kept a copy of its edges here.
DROP TABLE IF EXISTS lineage;
CREATE VIRTUAL TABLE IF NOT EXISTS search_index USING fts5(
    experiment_id UNINDEXED,
    dataset UNINDEXED,
    file_key UNINDEXED,
    created UNINDEXED,
    experiment,
    samples,
    lab_group,
    platform,
    file_name,
    file_format,
    content,
    tokenize = 'porter unicode61'
);
"""

# Facet filters become FTS5 column filters, so they match whole tokens
# case-insensitively. Samples are matched exactly besides (see `search`).
_FACET_COLUMNS = {
    "group": "lab_group",
    "platform": "platform",
    "format": "file_format",
    "file_name": "file_name",
}


# Sample ids are stored between unit separators: the tokenizer treats it as a word break,
# and an exact match can look for "\x1fID\x1f" without tripping over ids that contain spaces.
_SAMPLE_SEPARATOR = "\x1f"


def _sample_list(sample_ids: Iterable[str]) -> str:
    ids = [clean_text(sample_id) for sample_id in sample_ids]
    return _SAMPLE_SEPARATOR + _SAMPLE_SEPARATOR.join(ids) + _SAMPLE_SEPARATOR if ids else ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _phrase(term: str) -> str:
    """An FTS5 phrase for one user term; quoting keeps '-', '.', ':' from being read as syntax."""
    return '"' + term.replace('"', '""') + '"'


def fts_expression(query: SearchQuery) -> str | None:
    """The FTS5 MATCH expression for the text and facets of ``query`` (None: match everything)."""
    # A term without a letter or digit has no tokens; as an empty phrase it would match nothing.
    parts = [_phrase(term) for term in query.text.split() if re.search(r"\w", term)]
    for field, column in _FACET_COLUMNS.items():
        value = getattr(query, field)
        if value:
            parts.append(f"{column} : {_phrase(value)}")
    return " AND ".join(parts) if parts else None


class SqliteCatalog(Catalog):
    """The catalog in one SQLite file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)
            for table in ("experiments", "datasets"):  # catalogs from before revisions named their run
                if "run_id" not in {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}:
                    with contextlib.suppress(sqlite3.OperationalError):  # another process added it first
                        db.execute(f"ALTER TABLE {table} ADD COLUMN run_id TEXT")

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
            self._reindex(db, record.id)
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
            db.execute("DELETE FROM files WHERE experiment_id = ? AND dataset = ?", (experiment_id, zone))
            db.executemany(
                "INSERT INTO files (experiment_id, dataset, key, entry) VALUES (?, ?, ?, ?)",
                [
                    (experiment_id, zone, entry.key, json.dumps(entry.to_dict(), sort_keys=True))
                    for entry in manifest.entries
                ],
            )
            self._reindex(db, experiment_id)
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
        return DatasetRecord(
            entry_id=f"dataset:{experiment_id}/{zone}",
            experiment_id=experiment_id,
            zone=Zone(zone),
            location=row["location"],
            revision=row["revision"],
            manifest_digest=row["manifest_digest"],
            files=tuple(ManifestEntry.from_dict(json.loads(file["entry"])) for file in files),
            run_id=row["run_id"],
        )

    def _reindex(self, db: sqlite3.Connection, experiment_id: str) -> None:
        """Rebuild the experiment's search rows from the tables, inside the caller's transaction."""
        db.execute("DELETE FROM search_index WHERE experiment_id = ?", (experiment_id,))
        row = db.execute("SELECT record FROM experiments WHERE experiment_id = ?", (experiment_id,)).fetchone()
        if not row:
            return
        record = ExperimentRecord.from_dict(json.loads(row["record"]))
        experiment_text = " ".join(
            part
            for part in [
                record.id,
                record.title,
                record.description,
                record.owner,
                record.project,
                record.protocol,
                " ".join(record.tags),
                " ".join(words_of(record.custom)),
            ]
            if part
        )
        experiment_samples = _sample_list(record.sample_ids)
        common = (clean_text(experiment_text), record.group or "", record.platform or "")
        db.execute(
            """INSERT INTO search_index
               (experiment_id, dataset, file_key, created, experiment, samples, lab_group, platform,
                file_name, file_format, content)
               VALUES (?, NULL, NULL, ?, ?, ?, ?, ?, '', '', '')""",
            (record.id, record.created or "", common[0], experiment_samples, common[1], common[2]),
        )
        for file in db.execute(
            "SELECT dataset, entry FROM files WHERE experiment_id = ? ORDER BY dataset, key", (experiment_id,)
        ):
            entry = ManifestEntry.from_dict(json.loads(file["entry"]))
            # A file with no sample of its own (a run summary, say) belongs to
            # the whole experiment, so it is found under each of its samples.
            samples = _sample_list(entry.sample_ids) if entry.sample_ids else experiment_samples
            content = clean_text(" ".join([entry.key, entry.text, " ".join(words_of(entry.metadata))]))
            db.execute(
                """INSERT INTO search_index
                   (experiment_id, dataset, file_key, created, experiment, samples, lab_group, platform,
                    file_name, file_format, content)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    record.id,
                    file["dataset"],
                    entry.key,
                    entry.created,
                    *common[:1],
                    samples,
                    *common[1:],
                    clean_text(entry.name),
                    entry.format,
                    content,
                ),
            )

    def search(self, query: SearchQuery) -> list[SearchHit]:
        expression = fts_expression(query)
        clauses, params = [], []
        if expression:
            clauses.append("search_index MATCH ?")
            params.append(expression)
        if query.experiment:
            clauses.append("s.experiment_id = ?")
            params.append(query.experiment)
        if query.sample:
            # Exact and whole: "LIV-01" must not find "LIV-01-B" (ASCII case-insensitive).
            clauses.append("instr(lower(s.samples), lower(?)) > 0")
            params.append(_sample_list([query.sample]))
        if query.since:
            clauses.append("s.created >= ?")
            params.append(query.since)
        if query.until:
            # A bare date means the whole day.
            clauses.append("s.created <= ?")
            params.append(query.until + "\uffff" if len(query.until) == 10 else query.until)
        where = " AND ".join(clauses) or "1"
        order = "rank" if expression else "s.experiment_id, s.dataset, s.file_key"
        sql = f"""SELECT s.experiment_id, s.dataset, s.file_key, e.title, e.locations, f.entry, d.location
                  FROM search_index AS s
                  JOIN experiments AS e ON e.experiment_id = s.experiment_id
                  LEFT JOIN files AS f
                    ON f.experiment_id = s.experiment_id AND f.dataset = s.dataset AND f.key = s.file_key
                  LEFT JOIN datasets AS d ON d.experiment_id = s.experiment_id AND d.dataset = s.dataset
                  WHERE {where} ORDER BY {order}"""
        with self._connect() as db:
            rows = db.execute(sql, params).fetchall()
        grouped: dict[tuple[str, str | None], list[sqlite3.Row]] = {}
        for row in rows:
            grouped.setdefault((row["experiment_id"], row["dataset"]), []).append(row)
        with_datasets = {experiment for experiment, dataset in grouped if dataset}
        hits: list[SearchHit] = []
        for (experiment_id, dataset), group in grouped.items():
            if dataset is None and experiment_id in with_datasets:
                continue
            files = tuple(
                FileHit(entry.key, entry.name, entry.format, entry.size, entry.sample_ids)
                for entry in (ManifestEntry.from_dict(json.loads(row["entry"])) for row in group if row["entry"])
            )
            hits.append(
                SearchHit(
                    experiment_id=experiment_id,
                    title=group[0]["title"],
                    dataset=dataset,
                    entry_id=f"dataset:{experiment_id}/{dataset}" if dataset else f"experiment:{experiment_id}",
                    location=group[0]["location"],
                    files=files,
                )
            )
            if len(hits) >= query.limit:
                break
        return hits

    def summaries(self) -> list[ExperimentSummary]:
        with self._connect() as db:
            experiments = db.execute(
                "SELECT experiment_id, title, group_name, platform, revision, run_id FROM experiments "
                "ORDER BY experiment_id"
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
                "search_index": [
                    tuple(row)
                    for row in db.execute(
                        "SELECT experiment_id, dataset, file_key, samples, file_name FROM search_index ORDER BY 1, 2, 3"
                    )
                ],
            }
