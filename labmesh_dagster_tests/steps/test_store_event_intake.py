"""Watching a zone between ticks: one cursor format, bounded, and events read once.

Contract: a `WatchCursor` survives its JSON round trip, an unreadable one
starts over and an unreadable time only restarts its folder's wait; a cursor
saved in an earlier format is read into this one without forgetting what it
was waiting for; recent event identities are capped; remembered folders are
capped too (unless the sensor lists everything anyway), keeping those seen
earliest (their grace ends first) and naming the ones left out; `drain`
acknowledges the previous tick's messages before it receives this tick's,
skips duplicates it remembers and reports poison messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from labmesh_dagster.connectors.events.base import EventQueue, QueueMessage
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.steps import store_event_intake
from labmesh_dagster.steps.store_event_intake import RECENT_EVENTS_KEPT, WatchCursor, drain

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def notification(key: str, sequencer: str, bucket: str = "lm-landing") -> str:
    record = {
        "eventName": "ObjectCreated:Put",
        "eventTime": "2026-11-29T10:00:00.000Z",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 4, "eTag": "e", "sequencer": sequencer}},
    }
    return json.dumps({"Records": [record]})


class ListQueue(EventQueue):
    """A queue in memory that records what was acknowledged, and when, relative to what was received."""

    def __init__(self, bodies: list[str]) -> None:
        self.waiting = [QueueMessage(f"m{n}", f"r{n}", body) for n, body in enumerate(bodies)]
        self.log: list[str] = []

    def receive(self, *, max_messages: int, visibility_timeout: int) -> list[QueueMessage]:
        taken, self.waiting = self.waiting[:max_messages], self.waiting[max_messages:]
        self.log.append(f"receive {len(taken)}")
        return taken

    def acknowledge(self, receipts: Iterable[str]) -> None:
        self.log.append(f"acknowledge {sorted(receipts)}")


def zone_of(bucket: str) -> Zone | None:
    return Zone.LANDING if bucket == "lm-landing" else None


def test_a_cursor_survives_its_round_trip_and_an_unreadable_one_starts_over() -> None:
    cursor = WatchCursor(receipts=["r1"], recent=["a", "b"], pending={"EXP-1": T0}, again=["EXP-2"])

    assert WatchCursor.from_json(cursor.to_json()) == cursor
    assert WatchCursor.from_json("{not json") == WatchCursor()
    assert WatchCursor.from_json('["a list"]') == WatchCursor()
    assert WatchCursor.from_json(None) == WatchCursor()


def test_a_time_the_cursor_cannot_read_only_starts_that_folders_wait_over() -> None:
    saved = json.dumps({"pending": {"EXP-1": "yesterday", "EXP-2": "2026-11-01T00:00:00", "EXP-3": T0.isoformat()}})

    assert WatchCursor.from_json(saved).pending == {"EXP-3": T0}


def test_a_cursor_saved_before_the_one_format_forgets_nothing_it_was_waiting_for() -> None:
    events = {
        "pending_receipts": ["r9"],
        "recent": ["e1"],
        "waiting": [{"key": "EXP-7/run1/a.fastq", "size": 4, "modified": T0.isoformat(), "etag": "x"}],
        "unknown_first_seen": {"EXP-LATE": T0.isoformat()},
    }
    listing = {"unknown_first_seen": {"EXP-LATE": T0.isoformat()}}

    assert WatchCursor.from_json(json.dumps(events)) == WatchCursor(
        receipts=["r9"], recent=["e1"], pending={"EXP-LATE": T0}, again=["EXP-7"]
    )
    assert WatchCursor.from_json(json.dumps(listing)) == WatchCursor(pending={"EXP-LATE": T0})


def test_recent_event_identities_are_capped() -> None:
    cursor = WatchCursor(recent=[str(n) for n in range(RECENT_EVENTS_KEPT + 50)])

    kept = WatchCursor.from_json(cursor.to_json()).recent

    assert len(kept) == RECENT_EVENTS_KEPT and kept[-1] == str(RECENT_EVENTS_KEPT + 49)


def test_remembered_folders_are_capped_keeping_the_earliest_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_event_intake, "PENDING_FOLDERS_KEPT", 4)
    cursor = WatchCursor()
    seen = {f"EXP-{n}": T0 + timedelta(minutes=n) for n in (5, 1, 4, 2, 3)}

    left_out = cursor.remember(seen, again=["EXP-9"])

    assert cursor.again == ["EXP-9"]
    assert cursor.pending == {f"EXP-{n}": T0 + timedelta(minutes=n) for n in (1, 2, 3)}
    assert left_out == ["EXP-4", "EXP-5"]
    assert cursor.remember(seen, again=["EXP-9"], bounded=False) == [] and len(cursor.pending) == 5


def test_drain_acknowledges_the_last_ticks_messages_before_receiving_and_skips_known_events() -> None:
    queue = ListQueue(
        [
            notification("EXP-1/a.fastq", "01"),
            notification("EXP-1/b.fastq", "02"),
            notification("EXP-1/a.fastq", "01"),  # redelivered: the same event
            notification("EXP-1/elsewhere.fastq", "03", bucket="someone-elses"),
            "not a notification",
        ]
    )
    cursor = WatchCursor(receipts=["from-the-last-tick"])

    batch = drain(queue, cursor, zone=Zone.LANDING, zone_of=zone_of)
    again = drain(ListQueue([notification("EXP-1/b.fastq", "02")]), cursor, zone=Zone.LANDING, zone_of=zone_of)

    assert queue.log == ["acknowledge ['from-the-last-tick']", "receive 5"]
    assert [info.key.path for info in batch.created] == ["EXP-1/a.fastq", "EXP-1/b.fastq"]
    assert len(batch.problems) == 1 and "m4" in batch.problems[0]
    assert cursor.receipts == ["r0"] and again.created == []
