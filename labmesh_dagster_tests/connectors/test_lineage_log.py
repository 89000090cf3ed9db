"""The lineage log, on SQLite and on PostgreSQL: one row per (run, event type), an experiment's events in order.

Contract, proven by the same tests on both: posting an event again replaces
it (a replay adds nothing); an experiment's events come back oldest first,
START before COMPLETE at one instant, exactly as they were posted; an event
without a run, type, time or job, naming no experiment, or with a time that
is no ISO 8601 date-time is refused with a reason and the rest are kept; a
fan-out keeps the local log whatever the sink after it says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.connectors.lineage.base import FanOutSink, LineageSink
from labmesh_dagster.connectors.lineage.postgres import PostgresLineageLog
from labmesh_dagster.connectors.lineage.sqlite import SqliteLineageLog

Log = SqliteLineageLog | PostgresLineageLog


@pytest.fixture(params=["sqlite", "postgres"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Log:
    if request.param == "sqlite":
        return SqliteLineageLog(tmp_path / "catalog.sqlite")
    return PostgresLineageLog(request.getfixturevalue("postgres_url"))


def event(run: str, kind: str, at: str, experiment: str | None = "EXP-1", job: str = "raw_dataset") -> dict[str, Any]:
    facets = {"labmesh_run": {"experimentId": experiment}} if experiment else {}
    return {"eventType": kind, "eventTime": at, "run": {"runId": run, "facets": facets}, "job": {"name": job}}


def test_events_are_kept_once_per_run_and_type_and_read_back_oldest_first(log: Log) -> None:
    start, complete = (
        event("r1", "START", "2026-11-29T10:00:00.000Z"),
        event("r1", "COMPLETE", "2026-11-29T10:01:00.000Z"),
    )

    assert log.emit([complete, start]) == []
    assert log.emit([start, complete]) == []  # a replay replaces, never adds
    log.emit([event("r2", "START", "2026-11-29T09:00:00.000Z", experiment="EXP-2")])

    assert [e["eventType"] for e in log.events("EXP-1")] == ["START", "COMPLETE"]
    assert log.count() == 3 and [e["run"]["runId"] for e in log.events("EXP-2")] == ["r2"]


def test_at_one_instant_start_comes_before_complete_and_runs_keep_their_time_order(log: Log) -> None:
    at = "2026-11-29T10:00:00.000Z"
    log.emit(
        [event("r2", "COMPLETE", "2026-11-29T10:00:00.001Z"), event("r1", "COMPLETE", at), event("r1", "START", at)]
    )

    assert [(e["run"]["runId"], e["eventType"]) for e in log.events("EXP-1")] == [
        ("r1", "START"),
        ("r1", "COMPLETE"),
        ("r2", "COMPLETE"),
    ]


def test_a_replayed_event_that_changed_replaces_the_one_kept(log: Log) -> None:
    log.emit([event("r1", "COMPLETE", "2026-11-29T10:00:00.000Z", job="raw_dataset")])
    log.emit([event("r1", "COMPLETE", "2026-11-29T10:05:00.000Z", job="processed_dataset")])

    [kept] = log.events("EXP-1")
    assert (kept["job"]["name"], kept["eventTime"]) == ("processed_dataset", "2026-11-29T10:05:00.000Z")


def test_an_event_comes_back_exactly_as_it_was_posted(log: Log) -> None:
    posted = event("r1", "COMPLETE", "2026-11-29T10:00:00.000Z")
    posted["outputs"] = [
        {"namespace": "file://lab", "name": "EXP-1/Ünïcode é 🧪.fastq", "facets": {"size": 12.5, "rows": 10**15}},
        {"namespace": "file://lab", "name": "EXP-1/b", "facets": {"empty": {}, "none": None, "flags": [True, False]}},
    ]

    log.emit([posted])

    assert log.events("EXP-1") == [posted]
    assert log.events("EXP-unknown") == []


def test_events_it_cannot_file_are_refused_with_a_reason_and_the_rest_kept(log: Log) -> None:
    problems = log.emit(
        [
            event("r1", "START", "2026-11-29T10:00:00.000Z", experiment=None),
            {"eventType": "START"},
            event("r3", "START", "yesterday at noon"),
            event("r2", "START", "2026-11-29T10:00:00.000Z"),
        ]
    )

    assert len(problems) == 3 and "names no experiment" in problems[0]
    assert "'yesterday at noon' is not an ISO 8601 date-time" in problems[2]
    assert log.count() == 1


def test_a_batch_of_only_refused_events_records_nothing(log: Log) -> None:
    assert len(log.emit([event("r1", "START", "2026-11-29T10:00:00.000Z", experiment=None)])) == 1
    assert log.emit([]) == [] and log.count() == 0


class Refusing(LineageSink):
    def emit(self, events):  # type: ignore[no-untyped-def]
        return [f"refused {e['run']['runId']}" for e in events]


def test_a_fan_out_keeps_the_local_log_whatever_the_remote_sink_says(log: Log) -> None:
    problems = FanOutSink([log, Refusing()]).emit([event("r1", "START", "2026-11-29T10:00:00.000Z")])

    assert problems == ["refused r1"] and log.count() == 1


def test_two_runs_writing_at_once_each_keep_their_events(postgres_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def run(number: int) -> list[str]:
        log = PostgresLineageLog(postgres_url)
        return log.emit(
            [event(f"r{number}", kind, f"2026-11-29T10:00:{number:02}.000Z") for kind in ("START", "COMPLETE")]
        )

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(run, range(8))) == [[]] * 8

    assert len(PostgresLineageLog(postgres_url).events("EXP-1")) == 16
