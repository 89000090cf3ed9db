"""Reading store events for the sensors: what is new since the last tick, with nothing listed.

The sensor's cursor carries three things between ticks: the receipts of the
messages the previous tick acted on (acknowledged at the start of the next tick,
once Dagster has recorded that tick's run requests, so a crash in between only
redelivers them), the identities of recent events (so a redelivered duplicate is
recognised), and the landing objects still waiting for their experiment to be
registered (an event comes once; the object must not be forgotten).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from labmesh_dagster.connectors.events.base import QueueMessage
from labmesh_dagster.connectors.store.base import ObjectInfo
from labmesh_dagster.core.errors import InvalidObjectKey
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.store_events import StoreEvent, latest_per_key, parse_s3_notification

# Bounds that keep a tick far below Dagster's 60 s sensor timeout however deep the queue is:
# at most this many messages per tick (10 per SQS call), the rest on the following ticks.
EVENTS_PER_TICK = 500
# Long enough that messages acted on in one tick are acknowledged by the next before reappearing.
EVENT_VISIBILITY_SECONDS = 300
RECENT_EVENTS_KEPT = 5000


@dataclass
class EventCursor:
    pending_receipts: list[str] = field(default_factory=list)
    recent: list[str] = field(default_factory=list)
    waiting: list[dict[str, Any]] = field(default_factory=list)
    unknown_first_seen: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str | None) -> EventCursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(
                pending_receipts=list(data.get("pending_receipts", [])),
                recent=list(data.get("recent", [])),
                waiting=list(data.get("waiting", [])),
                unknown_first_seen=dict(data.get("unknown_first_seen", {})),
            )
        except (ValueError, AttributeError, TypeError):
            return cls()  # unreadable: duplicates may start a run again, which is harmless

    def to_json(self) -> str:
        return json.dumps(
            {
                "pending_receipts": self.pending_receipts,
                "recent": self.recent[-RECENT_EVENTS_KEPT:],
                "waiting": self.waiting,
                "unknown_first_seen": self.unknown_first_seen,
            },
            sort_keys=True,
        )

    def first_seen(self) -> dict[str, datetime]:
        return {key: datetime.fromisoformat(value) for key, value in self.unknown_first_seen.items()}

    def waiting_objects(self, zone: Zone) -> list[ObjectInfo]:
        return [
            ObjectInfo(
                ObjectKey(zone, item["key"]), int(item["size"]), datetime.fromisoformat(item["modified"]), item["etag"]
            )
            for item in self.waiting
        ]


def describe_waiting(objects: Iterable[ObjectInfo]) -> list[dict[str, Any]]:
    return [
        {"key": info.key.key, "size": info.size, "modified": info.modified.isoformat(), "etag": info.etag}
        for info in objects
    ]


@dataclass
class EventBatch:
    """The fresh events of one zone in a batch of messages."""

    created: list[ObjectInfo] = field(default_factory=list)
    removed: list[ObjectKey] = field(default_factory=list)
    identities: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_events(
    messages: Iterable[QueueMessage], *, zone_of: Callable[[str], Zone | None], zone: Zone, seen: set[str]
) -> EventBatch:
    """Parse, keep ``zone``'s events, drop duplicates and stale events, and say what could not be read."""
    batch = EventBatch()
    events: list[StoreEvent] = []
    for message in messages:
        try:
            events.extend(parse_s3_notification(message.body))
        except Exception as exc:  # a poison message is reported and acknowledged; it never stalls the queue
            batch.problems.append(f"message {message.message_id} is not an S3 event notification: {exc}")
    for event in latest_per_key(events):
        if zone_of(event.bucket) != zone or event.identity in seen:
            continue
        batch.identities.append(event.identity)
        if event.key.endswith("/"):
            continue  # a folder marker
        try:
            key = ObjectKey(zone, event.key)
        except InvalidObjectKey as exc:
            batch.problems.append(f"s3://{event.bucket}/{event.key} cannot be taken: {exc}")
            continue
        if event.created:
            batch.created.append(ObjectInfo(key, event.size, event.time, event.etag))
        elif event.removed:
            batch.removed.append(key)
    return batch
