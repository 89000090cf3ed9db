"""The catalog on PostgreSQL: what a deployment of several processes shares, behind the same port as SQLite.

Every write is one transaction that first takes a transaction-scoped advisory
lock on its experiment, so two runs publishing the same experiment (or one
registering it while another publishes its data) take turns, as SQLite's
``BEGIN IMMEDIATE`` makes them: the second reads what the first committed and
makes a new revision only if its content differs. Writes to different
experiments do not wait on each other. The search tables are rebuilt for the
experiment inside the same transaction (`postgres_index`), so they never
drift from the records; searches and counts (`postgres_search`,
`postgres_facets`) apply the viewer's access inside their queries.

The schema is migrated on first open in each process (`postgres_schema`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from labmesh_dagster.connectors.catalog import postgres_facets, postgres_index, postgres_search
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
from labmesh_dagster.connectors.catalog.postgres_schema import MIGRATIONS
from labmesh_dagster.connectors.catalog.rows import dataset_from_rows, revision_from_row
from labmesh_dagster.connectors.catalog.sqlite import normal_principal
from labmesh_dagster.connectors.postgres import check_url, connect, transaction
from labmesh_dagster.connectors.postgres_schema import ensure_migrated
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.checks import CheckOutcome, failed
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest

EXPERIMENT_LOCKS = 0x1AB3
"""The first key of the advisory locks that serialise writes to one experiment (the second: its id's hash)."""

_migrating = threading.Lock()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _migrate_once(url: str) -> None:
    """Apply the catalog's migrations the first time this process opens ``url``."""
    with _migrating:
        ensure_migrated(url, MIGRATIONS)


def _visible(viewer: Viewer | None, column: str) -> tuple[str, dict[str, Any]]:
    """An ``AND`` clause keeping the experiments ``viewer`` may see (none for an admin or no viewer)."""
    if viewer is None or viewer.admin:
        return "", {}
    sql = (
        f" AND EXISTS (SELECT 1 FROM catalog_search_docs AS v JOIN catalog_search_access AS a ON a.doc = v.doc "
        f"WHERE v.experiment_id = {column} AND a.principal = ANY(%(principals)s))"
    )
    return sql, {"principals": sorted(viewer.principals)}


class PostgresCatalog(Catalog):
    """The catalog in a PostgreSQL database (``postgresql://user@host:5432/name``)."""

    def __init__(self, url: str) -> None:
        self.url = check_url(url)
        _migrate_once(self.url)

    @contextmanager
    def _writing(self, experiment_id: str) -> Iterator[Any]:
        """One transaction holding the experiment's write lock until it commits or rolls back."""
        with transaction(self.url) as db:
            db.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (EXPERIMENT_LOCKS, experiment_id))
            yield db

    def upsert_experiment(
        self, record: ExperimentRecord, locations: dict[str, str], *, run_id: str | None = None
    ) -> CatalogEntry:
        entry_id = f"experiment:{record.id}"
        locations_json = json.dumps(locations, sort_keys=True)
        values = {
            "experiment_id": record.id,
            "title": record.title,
            "group_name": record.group,
            "platform": record.platform,
            "created": record.created,
            "fingerprint": record.fingerprint,
            "record": json.dumps(record.to_dict(), sort_keys=True, default=str),
            "locations": locations_json,
            "updated_at": _now(),
            "run_id": run_id,
        }
        with self._writing(record.id) as db:
            row = db.execute(
                "SELECT fingerprint, locations, revision FROM catalog_experiments WHERE experiment_id = %s",
                (record.id,),
            ).fetchone()
            if row and row["fingerprint"] == record.fingerprint and row["locations"] == locations_json:
                return CatalogEntry(entry_id, row["revision"], changed=False)
            revision = row["revision"] + 1 if row else 1
            if row is None:
                db.execute(
                    """INSERT INTO catalog_experiments (experiment_id, title, group_name, platform, created,
                           fingerprint, record, locations, revision, updated_at, run_id)
                       VALUES (%(experiment_id)s, %(title)s, %(group_name)s, %(platform)s, %(created)s,
                           %(fingerprint)s, %(record)s, %(locations)s, %(revision)s, %(updated_at)s, %(run_id)s)""",
                    {**values, "revision": revision},
                )
            else:
                db.execute(
                    """UPDATE catalog_experiments SET title = %(title)s, group_name = %(group_name)s,
                           platform = %(platform)s, created = %(created)s, fingerprint = %(fingerprint)s,
                           record = %(record)s, locations = %(locations)s, revision = %(revision)s,
                           updated_at = %(updated_at)s, run_id = %(run_id)s
                       WHERE experiment_id = %(experiment_id)s""",
                    {**values, "revision": revision},
                )
            postgres_index.index_experiment(db, record.id)
        return CatalogEntry(entry_id, revision, changed=True)

    def get_experiment(self, experiment_id: str) -> ExperimentRecord | None:
        with connect(self.url) as db:
            row = db.execute(
                "SELECT record FROM catalog_experiments WHERE experiment_id = %s", (experiment_id,)
            ).fetchone()
        return ExperimentRecord.from_dict(json.loads(row["record"])) if row else None

    def experiment_locations(self, experiment_id: str) -> dict[str, str]:
        with connect(self.url) as db:
            row = db.execute(
                "SELECT locations FROM catalog_experiments WHERE experiment_id = %s", (experiment_id,)
            ).fetchone()
        return json.loads(row["locations"]) if row else {}

    def experiment_fingerprints(self) -> dict[str, str]:
        with connect(self.url) as db:
            rows = db.execute("SELECT experiment_id, fingerprint FROM catalog_experiments").fetchall()
        return {row["experiment_id"]: row["fingerprint"] for row in rows}

    def upsert_dataset(self, manifest: Manifest, location: str, *, run_id: str | None = None) -> CatalogEntry:
        experiment_id, zone = manifest.experiment_id, str(manifest.zone)
        entry_id = f"dataset:{experiment_id}/{zone}"
        digest = manifest.digest
        with self._writing(experiment_id) as db:
            registered = db.execute(
                "SELECT 1 FROM catalog_experiments WHERE experiment_id = %s", (experiment_id,)
            ).fetchone()
            if registered is None:
                raise ExperimentNotRegistered(experiment_id)
            row = db.execute(
                "SELECT manifest_digest, location, revision FROM catalog_datasets "
                "WHERE experiment_id = %s AND dataset = %s",
                (experiment_id, zone),
            ).fetchone()
            if row and row["manifest_digest"] == digest and row["location"] == location:
                return CatalogEntry(entry_id, row["revision"], changed=False)
            revision = row["revision"] + 1 if row else 1
            now = _now()
            db.execute(
                """INSERT INTO catalog_datasets (experiment_id, dataset, location, manifest_digest, file_count,
                       total_bytes, revision, updated_at, run_id)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
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
                    now,
                    run_id,
                ),
            )
            db.execute(
                """INSERT INTO catalog_dataset_revisions (experiment_id, dataset, revision, manifest_digest,
                       file_count, total_bytes, published_at, run_id)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (experiment_id, dataset, revision) DO UPDATE SET
                     manifest_digest = excluded.manifest_digest, file_count = excluded.file_count,
                     total_bytes = excluded.total_bytes, published_at = excluded.published_at,
                     run_id = excluded.run_id, checks = NULL, failed_checks = NULL""",
                (experiment_id, zone, revision, digest, manifest.file_count, manifest.total_bytes, now, run_id),
            )
            db.execute("DELETE FROM catalog_files WHERE experiment_id = %s AND dataset = %s", (experiment_id, zone))
            with db.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO catalog_files (experiment_id, dataset, key, entry) VALUES (%s, %s, %s, %s)",
                    [
                        (experiment_id, zone, entry.key, json.dumps(entry.to_dict(), sort_keys=True))
                        for entry in manifest.entries
                    ],
                )
            postgres_index.index_experiment(db, experiment_id)
        return CatalogEntry(entry_id, revision, changed=True)

    def get_dataset(self, experiment_id: str, zone: Zone) -> DatasetRecord | None:
        with connect(self.url) as db:
            row = db.execute(
                "SELECT * FROM catalog_datasets WHERE experiment_id = %s AND dataset = %s", (experiment_id, str(zone))
            ).fetchone()
            if not row:
                return None
            files = db.execute(
                "SELECT entry FROM catalog_files WHERE experiment_id = %s AND dataset = %s ORDER BY key",
                (experiment_id, str(zone)),
            ).fetchall()
        return dataset_from_rows(experiment_id, zone, row, files)

    def record_checks(self, experiment_id: str, zone: Zone, revision: int, outcomes: Sequence[CheckOutcome]) -> None:
        checks = json.dumps([outcome.to_dict() for outcome in outcomes], sort_keys=True)
        with self._writing(experiment_id) as db:
            cursor = db.execute(
                "UPDATE catalog_dataset_revisions SET checks = %s, failed_checks = %s "
                "WHERE experiment_id = %s AND dataset = %s AND revision = %s",
                (checks, len(failed(outcomes)), experiment_id, Zone(zone).value, revision),
            )
            if cursor.rowcount == 0:
                raise RevisionNotFound(experiment_id, Zone(zone).value, revision)

    def dataset_revisions(self, experiment_id: str, zone: Zone, *, limit: int = 20) -> list[DatasetRevision]:
        with connect(self.url) as db:
            rows = db.execute(
                "SELECT * FROM catalog_dataset_revisions WHERE experiment_id = %s AND dataset = %s "
                "ORDER BY revision DESC LIMIT %s",
                # As SQLite reads LIMIT, a negative limit is none.
                (experiment_id, Zone(zone).value, limit if limit >= 0 else None),
            ).fetchall()
        return [revision_from_row(row) for row in rows]

    def checks_needing_attention(self, *, viewer: Viewer | None = None) -> list[DatasetRevision]:
        visible, params = _visible(viewer, "r.experiment_id")
        with connect(self.url) as db:
            rows = db.execute(
                "SELECT r.* FROM catalog_datasets AS d JOIN catalog_dataset_revisions AS r "
                "ON r.experiment_id = d.experiment_id AND r.dataset = d.dataset AND r.revision = d.revision "
                f"WHERE (r.failed_checks IS NULL OR r.failed_checks > 0){visible} ORDER BY r.experiment_id, r.dataset",
                params,
            ).fetchall()
        return [revision_from_row(row) for row in rows]

    def search(self, query: SearchQuery) -> list[SearchHit]:
        with connect(self.url) as db:
            return postgres_search.search(db, query)

    def facet_counts(self, query: SearchQuery, *, top: int = 20) -> FacetCounts:
        with connect(self.url) as db:
            return postgres_facets.facet_counts(db, query, top)

    def grant(self, experiment_id: str, principal: str) -> bool:
        name = normal_principal(principal)
        with self._writing(experiment_id) as db:
            registered = db.execute(
                "SELECT 1 FROM catalog_experiments WHERE experiment_id = %s", (experiment_id,)
            ).fetchone()
            if registered is None:
                raise ExperimentNotRegistered(experiment_id)
            cursor = db.execute(
                "INSERT INTO catalog_grants (experiment_id, principal, granted_at) VALUES (%s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (experiment_id, name, _now()),
            )
            if cursor.rowcount == 1:
                postgres_index.index_experiment(db, experiment_id)
            return bool(cursor.rowcount == 1)

    def revoke(self, experiment_id: str, principal: str) -> bool:
        name = normal_principal(principal)
        with self._writing(experiment_id) as db:
            cursor = db.execute(
                "DELETE FROM catalog_grants WHERE experiment_id = %s AND principal = %s", (experiment_id, name)
            )
            if cursor.rowcount == 1:
                postgres_index.index_experiment(db, experiment_id)
            return bool(cursor.rowcount == 1)

    def principals(self, experiment_id: str) -> frozenset[str]:
        with connect(self.url) as db:
            rows = db.execute(
                "SELECT a.principal FROM catalog_search_docs AS d JOIN catalog_search_access AS a ON a.doc = d.doc "
                "WHERE d.experiment_id = %s",
                (experiment_id,),
            ).fetchall()
        return frozenset(row["principal"] for row in rows)

    def summaries(self, *, viewer: Viewer | None = None) -> list[ExperimentSummary]:
        visible, params = _visible(viewer, "e.experiment_id")
        visible_datasets, _ = _visible(viewer, "d.experiment_id")
        with connect(self.url) as db:
            experiments = db.execute(
                "SELECT e.experiment_id, e.title, e.group_name, e.platform, e.revision, e.run_id, "
                "a.experiment_id IS NOT NULL AS archived FROM catalog_experiments AS e "
                "LEFT JOIN catalog_archived AS a ON a.experiment_id = e.experiment_id "
                f"WHERE TRUE{visible} ORDER BY e.experiment_id",
                params,
            ).fetchall()
            counts: dict[str, dict[str, int]] = {}
            for row in db.execute(
                "SELECT d.experiment_id, d.dataset, d.file_count FROM catalog_datasets AS d "
                f"WHERE TRUE{visible_datasets}",
                params,
            ):
                counts.setdefault(row["experiment_id"], {})[row["dataset"]] = row["file_count"]
        return [
            ExperimentSummary(
                experiment_id=row["experiment_id"],
                title=row["title"],
                group=row["group_name"],
                platform=row["platform"],
                revision=row["revision"],
                datasets=counts.get(row["experiment_id"], {}),
                archived=row["archived"],
                run_id=row["run_id"],
            )
            for row in experiments
        ]

    def set_archived(self, experiment_id: str, archived: bool) -> bool:
        with self._writing(experiment_id) as db:
            if archived:
                registered = db.execute(
                    "SELECT 1 FROM catalog_experiments WHERE experiment_id = %s", (experiment_id,)
                ).fetchone()
                if registered is None:
                    return False  # an experiment labmesh never registered has nothing to archive
                cursor = db.execute(
                    "INSERT INTO catalog_archived (experiment_id, archived_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    (experiment_id, _now()),
                )
            else:
                cursor = db.execute("DELETE FROM catalog_archived WHERE experiment_id = %s", (experiment_id,))
            return bool(cursor.rowcount == 1)

    def archived_experiments(self) -> set[str]:
        with connect(self.url) as db:
            return {row["experiment_id"] for row in db.execute("SELECT experiment_id FROM catalog_archived")}

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every table's content, minus update times: to compare the catalog before and after."""
        queries = {
            "experiments": "SELECT experiment_id, fingerprint, record, locations, revision, run_id "
            "FROM catalog_experiments ORDER BY 1",
            "datasets": "SELECT experiment_id, dataset, location, manifest_digest, file_count, total_bytes, revision, "
            "run_id FROM catalog_datasets ORDER BY 1, 2",
            "files": "SELECT experiment_id, dataset, key, entry FROM catalog_files ORDER BY 1, 2, 3",
            "dataset_revisions": "SELECT experiment_id, dataset, revision, manifest_digest, file_count, total_bytes, "
            "run_id, checks FROM catalog_dataset_revisions ORDER BY 1, 2, 3",
            "search_index": "SELECT d.experiment_id, r.dataset, r.key, r.samples, r.name_text::text, "
            "r.samples_text::text FROM catalog_search_rows AS r JOIN catalog_search_docs AS d ON d.doc = r.doc "
            "ORDER BY d.doc, r.position",
            "experiment_principals": "SELECT d.experiment_id, a.principal FROM catalog_search_access AS a "
            "JOIN catalog_search_docs AS d ON d.doc = a.doc ORDER BY 1, 2",
        }
        with connect(self.url) as db:
            return {name: [tuple(row.values()) for row in db.execute(sql).fetchall()] for name, sql in queries.items()}


def open_postgres_catalog(url: str) -> PostgresCatalog:
    """The catalog in the PostgreSQL database at ``url`` (``LABMESH_DATABASE_URL``), migrated on first open."""
    return PostgresCatalog(url)
