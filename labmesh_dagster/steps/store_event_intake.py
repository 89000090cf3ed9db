"""Watching a zone between sensor ticks: its events read once, the folders still to deal with remembered.

A zone sensor keeps one cursor, in one format whether the zone is listed or
its S3 events arrive through SQS (`WatchCursor`). It carries:

- the receipts of the messages the previous tick acted on, acknowledged at the
  start of the next tick, once Dagster has recorded that tick's run requests,
  so that a crash in between only redelivers them;
- the identities of recent events, so a redelivered duplicate is recognised;
- the folders (the first segment of a key: an experiment's folder as a rule)
  that still hold files the sensor could not finish with. An event comes once,
  so they are remembered: folders of experiments not registered yet with when
  they were first seen (``pending``, listed again once the experiment is
  registered or its grace is over), and folders holding files still being
  written or left past the tick's quarantine budget (``again``, listed on the
  next tick).

Everything is bounded, so a cursor stays small however much the zone holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from labmesh_dagster.connectors.events.base import EventQueue, QueueMessage
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
# Folders remembered at most; beyond, the folders first seen longest ago are kept (they are due first).
PENDING_FOLDERS_KEPT = 5000


def _moment(value: object) -> datetime | None:
    """A time a cursor holds; None for one that is unreadable or has no timezone (it starts the wait over)."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@dataclass
class WatchCursor:
    """What a zone sensor remembers between ticks (see the module docstring)."""

    receipts: list[str] = field(default_factory=list)
    recent: list[str] = field(default_factory=list)
    pending: dict[str, datetime] = field(default_factory=dict)
    again: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, text: str | None) -> WatchCursor:
        """The cursor a tick saved; an unreadable one starts over, which costs a repeated look, never a file.

        Cursors saved before this format are read into it, so that an upgrade
        forgets nothing a sensor was waiting for: the event cursor's
        ``pending_receipts``, ``unknown_first_seen`` and ``waiting`` objects
        (their folders are looked at again), and the listing cursor's
        ``unknown_first_seen``.
        """
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        waiting = [item.get("key") for item in data.get("waiting") or [] if isinstance(item, dict)]
        again = data.get("again", [str(key).split("/", 1)[0] for key in waiting if key])
        first_seen = {
            str(folder): _moment(seen)
            for folder, seen in dict(data.get("pending", data.get("unknown_first_seen")) or {}).items()
        }
        return cls(
            receipts=[str(receipt) for receipt in data.get("receipts", data.get("pending_receipts")) or []],
            recent=[str(identity) for identity in data.get("recent") or []],
            pending={folder: seen for folder, seen in first_seen.items() if seen is not None},
            again=sorted({str(folder) for folder in again or []}),
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "receipts": self.receipts,
                "recent": self.recent[-RECENT_EVENTS_KEPT:],
                "pending": {folder: seen.isoformat() for folder, seen in self.pending.items()},
                "again": self.again,
            },
            sort_keys=True,
        )

    def remember(self, pending: Mapping[str, datetime], again: Iterable[str], *, bounded: bool = True) -> list[str]:
        """Keep these folders (and only these) for later ticks; returns the folders left out for room.

        Folders to look at again come first; of the pending ones, the earliest
        seen are kept, since their grace periods end first. A sensor that lists
        its whole zone every tick keeps them all (``bounded=False``): it finds
        them all again anyway, and must not forget when it first saw them.
        """
        ordered_again = sorted(set(again))
        by_age = sorted(pending.items(), key=lambda item: (item[1], item[0]))
        room = PENDING_FOLDERS_KEPT if bounded else len(ordered_again) + len(by_age)
        self.again = ordered_again[:room]
        kept = by_age[: max(room - len(self.again), 0)]
        self.pending = dict(sorted(kept))
        return ordered_again[room:] + [folder for folder, _ in by_age[len(kept) :]]


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


def drain(queue: EventQueue, cursor: WatchCursor, *, zone: Zone, zone_of: Callable[[str], Zone | None]) -> EventBatch:
    """Acknowledge what the previous tick acted on, then read this tick's fresh events of ``zone``.

    ``cursor`` is updated in place with this tick's receipts and event
    identities; the caller saves it with the tick's run requests.
    """
    queue.acknowledge(cursor.receipts)
    messages = queue.receive(max_messages=EVENTS_PER_TICK, visibility_timeout=EVENT_VISIBILITY_SECONDS)
    batch = read_events(messages, zone_of=zone_of, zone=zone, seen=set(cursor.recent))
    cursor.receipts = [message.receipt for message in messages]
    cursor.recent += batch.identities
    return batch
