"""Rejected ELN records in PostgreSQL: what `SqliteRejectionStore` keeps, for a deployment of several processes.

The same rows and answers: keyed by source, cleared by container, listed by
source in byte order (``COLLATE "C"``, as SQLite compares text), times kept
to the second, from the injected clock, and given back in UTC. The ELN sensor
writes, `labmesh status` and the portal read; one poll's clearing and
keeping is one transaction, so a reader never sees a file's old rejections
cleared before its new ones are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC

from labmesh_dagster.connectors.postgres import connect, transaction
from labmesh_dagster.connectors.postgres_migrations import Migrations
from labmesh_dagster.connectors.postgres_schema import ensure_migrated
from labmesh_dagster.connectors.rejections import Rejection, RejectionStore, rejected_rows
from labmesh_dagster.core.clock import Clock, utc_now
from labmesh_dagster.core.errors import RecordError

MIGRATIONS = Migrations(
    "eln_rejections",
    (
        """
        CREATE TABLE eln_rejections (
            source TEXT COLLATE "C" PRIMARY KEY,
            container TEXT NOT NULL,
            reason TEXT NOT NULL,
            first_seen TIMESTAMPTZ NOT NULL,
            last_seen TIMESTAMPTZ NOT NULL
        );
        CREATE INDEX eln_rejections_by_container ON eln_rejections (container);
        """,
    ),
)


class PostgresRejectionStore(RejectionStore):
    def __init__(self, url: str, clock: Clock = utc_now) -> None:
        self.url = url
        self.clock = clock
        ensure_migrated(url, MIGRATIONS)

    def record(self, rejected: Iterable[RecordError], read_fine: Iterable[str] = ()) -> None:
        now = self.clock().replace(microsecond=0)
        cleared, kept = rejected_rows(rejected, read_fine)
        with transaction(self.url) as db, db.cursor() as cursor:
            if cleared:
                cursor.execute("DELETE FROM eln_rejections WHERE container = ANY(%s)", (cleared,))
            if kept:
                cursor.executemany(
                    """INSERT INTO eln_rejections (source, container, reason, first_seen, last_seen)
                       VALUES (%s, %s, %s, %s, %s)
                       ON CONFLICT (source) DO UPDATE SET reason = excluded.reason, last_seen = excluded.last_seen""",
                    [(source, name, reason, now, now) for source, name, reason in kept],
                )

    def rejections(self) -> list[Rejection]:
        with connect(self.url) as db:
            rows = db.execute("SELECT * FROM eln_rejections ORDER BY source").fetchall()
        return [
            Rejection(
                source=row["source"],
                reason=row["reason"],
                first_seen=row["first_seen"].astimezone(UTC),
                last_seen=row["last_seen"].astimezone(UTC),
            )
            for row in rows
        ]
