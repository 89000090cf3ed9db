"""The ELN event inbox in PostgreSQL: what `SqliteInbox` does, for a portal and a daemon in separate processes.

Same contract as the SQLite twin (a redelivered (source, event id) is
dropped; events are handed out oldest first and again after their
visibility time unless acknowledged; acknowledged events are remembered for
`DONE_KEPT`, then forgotten) and the same clock: every time stored is the
injected clock's, never the server's, so tests move time the same way.

What SQLite got from its single writer is made explicit here. A
redelivery racing its first delivery is decided by the primary key
(``ON CONFLICT DO NOTHING``: exactly one of them is told it was new). Two
receivers at once (a second daemon, a sensor tick overlapping the last)
take events with ``FOR UPDATE SKIP LOCKED``, so an event is handed to one
of them, and neither waits for the other. Times are ``TIMESTAMPTZ``;
``occurred_at`` stays the sender's text, handed back as it came. Keys
compare byte-wise (``COLLATE "C"``), as SQLite compares text, so ties in
time are broken in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from labmesh_dagster.connectors.eln.base import ElnEvent
from labmesh_dagster.connectors.eln.inbox import DONE_KEPT, EventInbox, InboxMessage, keys_of, receipt_of
from labmesh_dagster.connectors.postgres import connect, transaction
from labmesh_dagster.connectors.postgres_migrations import Migrations
from labmesh_dagster.connectors.postgres_schema import ensure_migrated
from labmesh_dagster.core.clock import Clock, utc_now

MIGRATIONS = Migrations(
    "eln_inbox",
    (
        """
        CREATE TABLE eln_inbox (
            source TEXT COLLATE "C" NOT NULL,
            event_id TEXT COLLATE "C" NOT NULL,
            entry_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            occurred_at TEXT NOT NULL,
            received_at TIMESTAMPTZ NOT NULL,
            invisible_until TIMESTAMPTZ,
            done_at TIMESTAMPTZ,
            PRIMARY KEY (source, event_id)
        );
        CREATE INDEX eln_inbox_pending ON eln_inbox (received_at, source, event_id) WHERE done_at IS NULL;
        CREATE INDEX eln_inbox_done ON eln_inbox (done_at) WHERE done_at IS NOT NULL;
        """,
    ),
)

_TAKE = """
WITH taken AS (
    SELECT source, event_id FROM eln_inbox
    WHERE done_at IS NULL AND (invisible_until IS NULL OR invisible_until <= %(now)s)
    ORDER BY received_at, source, event_id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE eln_inbox AS inbox SET invisible_until = %(hidden_until)s
FROM taken WHERE inbox.source = taken.source AND inbox.event_id = taken.event_id
RETURNING inbox.source, inbox.event_id, inbox.entry_id, inbox.kind, inbox.occurred_at, inbox.received_at
"""

_FORGET = """
DELETE FROM eln_inbox WHERE (source, event_id) IN (
    SELECT source, event_id FROM eln_inbox WHERE done_at < %s FOR UPDATE SKIP LOCKED
)
"""


class PostgresInbox(EventInbox):
    def __init__(self, url: str, *, clock: Clock = utc_now) -> None:
        self.url = url
        self.clock = clock
        ensure_migrated(url, MIGRATIONS)

    def put(self, event: ElnEvent) -> bool:
        with connect(self.url) as db:
            cursor = db.execute(
                "INSERT INTO eln_inbox (source, event_id, entry_id, kind, occurred_at, received_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (source, event_id) DO NOTHING",
                (event.source, event.event_id, event.entry_id, event.kind, event.occurred_at, self.clock()),
            )
            return bool(cursor.rowcount == 1)

    def receive(self, *, max_messages: int, visibility_seconds: int) -> list[InboxMessage]:
        now = self.clock()
        with transaction(self.url) as db:
            db.execute(_FORGET, (now - DONE_KEPT,))
            rows = db.execute(
                _TAKE,
                {"now": now, "limit": max_messages, "hidden_until": now + timedelta(seconds=visibility_seconds)},
            ).fetchall()
        # RETURNING keeps no order; Python compares str by code point, as "C" compares UTF-8 bytes.
        rows.sort(key=lambda row: (row["received_at"], row["source"], row["event_id"]))
        return [
            InboxMessage(
                receipt=receipt_of(row["source"], row["event_id"]),
                event=ElnEvent(row["source"], row["event_id"], row["entry_id"], row["kind"], row["occurred_at"]),
            )
            for row in rows
        ]

    def acknowledge(self, receipts: Iterable[str]) -> None:
        # Sorted, so two acknowledgers of overlapping batches lock rows in one order and never deadlock.
        keys = sorted(set(keys_of(receipts)))
        if not keys:
            return
        with connect(self.url) as db:
            db.execute(
                "UPDATE eln_inbox AS inbox SET done_at = %s "
                "FROM unnest(%s::text[], %s::text[]) AS acked(source, event_id) "
                "WHERE inbox.source = acked.source AND inbox.event_id = acked.event_id AND inbox.done_at IS NULL",
                (self.clock(), [source for source, _ in keys], [event_id for _, event_id in keys]),
            )

    def pending(self) -> int:
        with connect(self.url) as db:
            row = db.execute("SELECT count(*) AS pending FROM eln_inbox WHERE done_at IS NULL").fetchone()
        return int(row["pending"])
