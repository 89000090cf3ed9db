"""The lineage log in PostgreSQL: what `SqliteLineageLog` does, for runs in separate processes or containers.

The same rows (one per OpenLineage run id and event type, replaced when the
event comes again), the same refusals, and the same order back: by event
time, then event type descending (START before COMPLETE at one instant).
The event is kept as ``JSONB`` and its time as ``TIMESTAMPTZ``; labmesh's
own events all carry UTC times in one format, for which that order is the
text order the SQLite twin sorts by.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from labmesh_dagster.connectors.lineage.base import Event, LineageLog
from labmesh_dagster.connectors.lineage.sqlite import filed
from labmesh_dagster.connectors.postgres import connect, transaction
from labmesh_dagster.connectors.postgres_migrations import Migrations
from labmesh_dagster.connectors.postgres_schema import ensure_migrated

MIGRATIONS = Migrations(
    "lineage_log",
    (
        """
        CREATE TABLE lineage_events (
            run_id TEXT COLLATE "C" NOT NULL,
            event_type TEXT COLLATE "C" NOT NULL,
            event_time TIMESTAMPTZ NOT NULL,
            experiment_id TEXT NOT NULL,
            job TEXT NOT NULL,
            event JSONB NOT NULL,
            PRIMARY KEY (run_id, event_type)
        );
        CREATE INDEX lineage_events_by_experiment ON lineage_events (experiment_id, event_time);
        """,
    ),
)


class PostgresLineageLog(LineageLog):
    def __init__(self, url: str) -> None:
        self.url = url
        ensure_migrated(url, MIGRATIONS)

    def emit(self, events: Sequence[Event]) -> list[str]:
        rows, problems = filed(events)
        if not rows:
            return problems
        with transaction(self.url) as db, db.cursor() as cursor:
            # One statement per row, as the SQLite twin's executemany: a batch naming one run and type twice
            # keeps the last, where one multi-row INSERT ... ON CONFLICT would refuse the whole batch.
            cursor.executemany(
                """INSERT INTO lineage_events (run_id, event_type, event_time, experiment_id, job, event)
                   VALUES (%s, %s, %s, %s, %s, %s::jsonb)
                   ON CONFLICT (run_id, event_type) DO UPDATE SET event_time = excluded.event_time,
                       experiment_id = excluded.experiment_id, job = excluded.job, event = excluded.event""",
                [(row.run_id, row.event_type, row.moment, row.experiment_id, row.job, row.text) for row in rows],
            )
        return problems

    def events(self, experiment_id: str) -> list[dict[str, Any]]:
        with connect(self.url) as db:
            rows = db.execute(
                "SELECT event FROM lineage_events WHERE experiment_id = %s ORDER BY event_time, event_type DESC",
                (experiment_id,),
            ).fetchall()
        return [row["event"] for row in rows]

    def count(self) -> int:
        with connect(self.url) as db:
            return int(db.execute("SELECT count(*) AS events FROM lineage_events").fetchone()["events"])
