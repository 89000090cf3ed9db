"""The ELN event inbox, on SQLite and on PostgreSQL: one contract, proven by the same tests on both.

Contract: an event is kept once per (source, event id), a redelivery is
answered False, including after it was acted on, until `DONE_KEPT` has
passed; events are handed out oldest first by the time the inbox's clock
gave when they came (ties by source then event id, compared byte-wise), at
most ``max_messages`` at a time, each again after its visibility time unless
acknowledged; receipts unknown or malformed are ignored; an event comes back
exactly as it was put.

PostgreSQL alone is shared by processes, so it also pins: a redelivery racing
its first delivery is kept once; receivers at once are never handed the same
event; ties come in byte order even where the database sorts as English does.
(Migrations and an unreachable server: `test_postgres_stores`.)
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from labmesh_dagster.connectors.eln.base import ElnEvent
from labmesh_dagster.connectors.eln.inbox import DONE_KEPT, SqliteInbox
from labmesh_dagster.connectors.eln.postgres_inbox import PostgresInbox

T0 = datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


Inbox = SqliteInbox | PostgresInbox


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "postgres"])
def inbox(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Inbox:
    if request.param == "sqlite":
        return SqliteInbox(tmp_path / "inbox.sqlite", clock=clock)
    return PostgresInbox(request.getfixturevalue("postgres_url"), clock=clock)


def event(event_id: str, *, source: str = "lims", entry: str = "EXP-1") -> ElnEvent:
    return ElnEvent(source, event_id, entry, "changed", "2026-11-29T10:00:00Z")


def received(inbox: Inbox, *, most: int = 10, visibility: int = 30) -> list[str]:
    return [message.event.event_id for message in inbox.receive(max_messages=most, visibility_seconds=visibility)]


def test_an_event_is_kept_once_and_a_redelivery_is_told_so(inbox: Inbox) -> None:
    assert inbox.put(event("e1")) is True
    assert inbox.put(event("e1")) is False
    assert inbox.put(event("e1", source="elab-relay")) is True  # another sender's id space

    assert inbox.pending() == 2


def test_an_event_comes_back_exactly_as_it_was_put(inbox: Inbox) -> None:
    sent = ElnEvent("benchling", "evt_Ünï\u00e9", "etr_A1b2C3", "archived", "2026-11-29T10:00:00.000001+02:00")
    inbox.put(sent)

    [message] = inbox.receive(max_messages=10, visibility_seconds=30)

    assert message.event == sent


def test_events_come_oldest_first_by_the_inbox_clock_and_ties_by_source_then_id(inbox: Inbox, clock: Clock) -> None:
    clock.advance(10)
    inbox.put(event("late"))
    clock.advance(-10)  # the clock, not the order of arrival, says which is older
    for event_id, source in [("b", "lims"), ("a", "lims"), ("Z", "lims"), ("a", "Benchling")]:
        inbox.put(event(event_id, source=source))

    messages = inbox.receive(max_messages=10, visibility_seconds=30)

    # Byte order, as SQLite compares text: upper case before lower case.
    assert [(m.event.source, m.event.event_id) for m in messages] == [
        ("Benchling", "a"),
        ("lims", "Z"),
        ("lims", "a"),
        ("lims", "b"),
        ("lims", "late"),
    ]


def test_at_most_max_messages_are_handed_out_and_the_rest_wait(inbox: Inbox, clock: Clock) -> None:
    for number in range(5):
        inbox.put(event(f"e{number}"))
        clock.advance(1)

    assert received(inbox, most=2) == ["e0", "e1"]
    assert received(inbox, most=2) == ["e2", "e3"]
    assert received(inbox, most=2) == ["e4"]
    assert received(inbox, most=2) == []


def test_an_event_is_handed_out_again_after_its_visibility_until_acknowledged(inbox: Inbox, clock: Clock) -> None:
    inbox.put(event("e1"))
    [first] = inbox.receive(max_messages=10, visibility_seconds=30)
    clock.advance(29)
    assert received(inbox) == []
    clock.advance(1)
    [again] = inbox.receive(max_messages=10, visibility_seconds=60)

    inbox.acknowledge([again.receipt])
    clock.advance(3600)

    assert first.event == again.event and first.receipt == again.receipt
    assert received(inbox) == [] and inbox.pending() == 0


def test_receipts_unknown_or_malformed_are_ignored(inbox: Inbox) -> None:
    inbox.put(event("e1"))
    [message] = inbox.receive(max_messages=10, visibility_seconds=0)

    inbox.acknowledge([])
    inbox.acknowledge(["not a receipt", "lims\x1fnever-put", message.receipt, message.receipt])

    assert inbox.pending() == 0


def test_an_acted_on_event_is_remembered_for_a_week_then_forgotten(inbox: Inbox, clock: Clock) -> None:
    inbox.put(event("e1"))
    [message] = inbox.receive(max_messages=10, visibility_seconds=30)
    inbox.acknowledge([message.receipt])

    clock.advance(DONE_KEPT.total_seconds() - 1)
    received(inbox)  # a receive is what forgets
    assert inbox.put(event("e1")) is False

    assert received(inbox) == []
    clock.advance(2)
    received(inbox)
    assert inbox.put(event("e1")) is True and received(inbox) == ["e1"]


# PostgreSQL: shared by the portal's webhook intake and the daemon's sensor, in separate processes.


def test_a_redelivery_racing_its_first_delivery_is_kept_once(postgres_url: str) -> None:
    inboxes = [PostgresInbox(postgres_url) for _ in range(4)]
    start = threading.Barrier(len(inboxes))

    def deliver(inbox: PostgresInbox) -> bool:
        start.wait()
        return inbox.put(event("e1"))

    with ThreadPoolExecutor(len(inboxes)) as pool:
        answers = list(pool.map(deliver, inboxes))

    assert sorted(answers) == [False, False, False, True] and inboxes[0].pending() == 1


def test_receivers_at_once_never_take_the_same_event_while_events_arrive(postgres_url: str) -> None:
    intake = PostgresInbox(postgres_url)
    for number in range(20):
        intake.put(event(f"early-{number:02}"))
    start = threading.Barrier(4)

    def receive_all(inbox: PostgresInbox) -> list[str]:
        start.wait()
        taken = []
        while batch := received(inbox, most=3, visibility=600):
            taken += batch
        return taken

    def deliver() -> list[str]:
        start.wait()
        for number in range(10):
            intake.put(event(f"late-{number:02}"))
        return []

    with ThreadPoolExecutor(4) as pool:
        results = [pool.submit(receive_all, PostgresInbox(postgres_url)) for _ in range(3)] + [pool.submit(deliver)]
        taken = [event_id for result in results for event_id in result.result()]
    taken += received(intake, most=100, visibility=600)  # what came after every receiver had stopped

    assert sorted(taken) == sorted([f"early-{n:02}" for n in range(20)] + [f"late-{n:02}" for n in range(10)])


def test_on_a_database_sorting_as_english_does_ties_still_come_in_byte_order(clock: Clock) -> None:
    from labmesh_dagster_tests.connectors.postgres_locales import english_sorted_database

    with english_sorted_database() as url:
        inbox = PostgresInbox(url, clock=clock)
        for event_id in ["b", "B", "a"]:
            inbox.put(event(event_id))

        assert received(inbox) == ["B", "a", "b"]
