"""The ELN event inbox: pushed events kept durably between the webhook that accepted them and the sensor.

The webhook answers as soon as the event is stored, so a slow ELN or a busy
Dagster never makes the sender time out and redeliver; the sensor takes
events when it runs and acknowledges them only once their runs are requested,
so a crash in between hands them out again. Events are keyed by (source,
event id): a sender's redelivery of an accepted event is recognised and
dropped, however many times it comes.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from labmesh_dagster.connectors.eln.base import ElnEvent
from labmesh_dagster.connectors.sqlite_files import connect, transaction
from labmesh_dagster.core.clock import Clock, utc_now

SCHEMA = """
CREATE TABLE IF NOT EXISTS eln_inbox (
    source TEXT NOT NULL,
    event_id TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    invisible_until TEXT,
    done_at TEXT,
    PRIMARY KEY (source, event_id)
);
CREATE INDEX IF NOT EXISTS eln_inbox_pending ON eln_inbox (done_at, received_at);
"""
# Acknowledged events are kept this long to recognise late redeliveries, then forgotten.
DONE_KEPT = timedelta(days=7)
_RECEIPT_SEPARATOR = "\x1f"


def receipt_of(source: str, event_id: str) -> str:
    """The receipt of a stored event: its key, which ``acknowledge`` reads back with `keys_of`."""
    return f"{source}{_RECEIPT_SEPARATOR}{event_id}"


def keys_of(receipts: Iterable[str]) -> list[tuple[str, str]]:
    """The (source, event id) of each receipt; what is no receipt of a stored event is left out."""
    keys = []
    for receipt in receipts:
        source, separator, event_id = receipt.partition(_RECEIPT_SEPARATOR)
        if separator:
            keys.append((source, event_id))
    return keys


@dataclass(frozen=True)
class InboxMessage:
    receipt: str
    event: ElnEvent


class EventInbox(ABC):
    @abstractmethod
    def put(self, event: ElnEvent) -> bool:
        """Keep the event; False when this (source, event id) was accepted before (a redelivery)."""

    @abstractmethod
    def receive(self, *, max_messages: int, visibility_seconds: int) -> list[InboxMessage]:
        """Events waiting, oldest first; each is handed out again after ``visibility_seconds`` unless acknowledged."""

    @abstractmethod
    def acknowledge(self, receipts: Iterable[str]) -> None:
        """Mark events as acted on; unknown receipts are not an error."""


class SqliteInbox(EventInbox):
    def __init__(self, path: str | os.PathLike[str], *, clock: Clock = utc_now) -> None:
        self.path = Path(path)
        self.clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with connect(self.path) as db:
            db.executescript(SCHEMA)

    def put(self, event: ElnEvent) -> bool:
        with transaction(self.path) as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO eln_inbox (source, event_id, entry_id, kind, occurred_at, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (event.source, event.event_id, event.entry_id, event.kind, event.occurred_at, self.clock().isoformat()),
            )
            return cursor.rowcount == 1

    def receive(self, *, max_messages: int, visibility_seconds: int) -> list[InboxMessage]:
        now = self.clock()
        with transaction(self.path) as db:
            db.execute(
                "DELETE FROM eln_inbox WHERE done_at IS NOT NULL AND done_at < ?", ((now - DONE_KEPT).isoformat(),)
            )
            rows = db.execute(
                "SELECT source, event_id, entry_id, kind, occurred_at FROM eln_inbox "
                "WHERE done_at IS NULL AND (invisible_until IS NULL OR invisible_until <= ?) "
                "ORDER BY received_at, source, event_id LIMIT ?",
                (now.isoformat(), max_messages),
            ).fetchall()
            hidden_until = (now + timedelta(seconds=visibility_seconds)).isoformat()
            db.executemany(
                "UPDATE eln_inbox SET invisible_until = ? WHERE source = ? AND event_id = ?",
                [(hidden_until, row["source"], row["event_id"]) for row in rows],
            )
        return [
            InboxMessage(
                receipt=receipt_of(row["source"], row["event_id"]),
                event=ElnEvent(row["source"], row["event_id"], row["entry_id"], row["kind"], row["occurred_at"]),
            )
            for row in rows
        ]

    def acknowledge(self, receipts: Iterable[str]) -> None:
        keys = keys_of(receipts)
        if not keys:
            return
        with transaction(self.path) as db:
            db.executemany(
                "UPDATE eln_inbox SET done_at = ? WHERE source = ? AND event_id = ? AND done_at IS NULL",
                [(self.clock().isoformat(), source, event_id) for source, event_id in keys],
            )

    def pending(self) -> int:
        with connect(self.path) as db:
            return int(db.execute("SELECT COUNT(*) FROM eln_inbox WHERE done_at IS NULL").fetchone()[0])
