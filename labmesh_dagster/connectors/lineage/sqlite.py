"""The local lineage log: run events kept in SQLite beside the catalog, one row per (run, event type).

Keyed by the OpenLineage run id and event type, so posting the same
materialization's events again replaces them instead of adding edges; the
experiment id is taken from labmesh's own run facet so an experiment's events
are found without parsing every row.

An event is refused (a problem line, never an exception) when it lacks a run
id, type, time or job, names no experiment, or has an ``eventTime`` that is
not an ISO 8601 date-time: kept, such an event would make every later
reading of its experiment's lineage fail (`build_graph` orders by that time).
`filed` makes those checks for both twins, so SQLite and PostgreSQL refuse alike.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labmesh_dagster.connectors.lineage.base import Event, LineageLog
from labmesh_dagster.connectors.sqlite_files import connect, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS lineage_events (
    run_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_time TEXT NOT NULL,
    experiment_id TEXT NOT NULL,
    job TEXT NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (run_id, event_type)
);
CREATE INDEX IF NOT EXISTS lineage_events_by_experiment ON lineage_events (experiment_id, event_time);
"""
RUN_FACET = "labmesh_run"


def experiment_of(event: Event) -> str | None:
    facet = (event.get("run", {}).get("facets") or {}).get(RUN_FACET) or {}
    value = facet.get("experimentId")
    return str(value) if value else None


@dataclass(frozen=True)
class FiledEvent:
    """One event as the log keeps it: its key, its time (as sent, and as a moment), and its JSON text."""

    run_id: str
    event_type: str
    event_time: str
    moment: datetime
    experiment_id: str
    job: str
    text: str


def filed(events: Sequence[Event]) -> tuple[list[FiledEvent], list[str]]:
    """The events the log can keep, and one problem line for each it cannot."""
    rows: list[FiledEvent] = []
    problems: list[str] = []
    for event in events:
        experiment_id = experiment_of(event)
        try:
            run_id, event_type = str(event["run"]["runId"]), str(event["eventType"])
            event_time, job = str(event["eventTime"]), str(event["job"]["name"])
        except (KeyError, TypeError) as exc:
            problems.append(f"lineage event without {exc}: not recorded")
            continue
        if experiment_id is None:
            problems.append(f"lineage event {run_id}/{event_type} names no experiment: not recorded")
            continue
        try:
            moment = datetime.fromisoformat(event_time)
        except ValueError:
            problems.append(
                f"lineage event {run_id}/{event_type}: eventTime {event_time!r} is not an ISO 8601 date-time:"
                " not recorded"
            )
            continue
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        text = json.dumps(event, sort_keys=True, ensure_ascii=True)
        rows.append(FiledEvent(run_id, event_type, event_time, moment, experiment_id, job, text))
    return rows, problems


class SqliteLineageLog(LineageLog):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with connect(self.path) as db:
            db.executescript(SCHEMA)

    def emit(self, events: Sequence[Event]) -> list[str]:
        rows, problems = filed(events)
        with transaction(self.path) as db:
            db.executemany(
                "INSERT OR REPLACE INTO lineage_events VALUES (?, ?, ?, ?, ?, ?)",
                [(row.run_id, row.event_type, row.event_time, row.experiment_id, row.job, row.text) for row in rows],
            )
        return problems

    def events(self, experiment_id: str) -> list[dict[str, Any]]:
        with connect(self.path) as db:
            rows = db.execute(
                "SELECT event FROM lineage_events WHERE experiment_id = ? ORDER BY event_time, event_type DESC",
                (experiment_id,),
            ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def count(self) -> int:
        with connect(self.path) as db:
            return int(db.execute("SELECT COUNT(*) FROM lineage_events").fetchone()[0])
