"""The local lineage log keeps one row per (run, event type) and gives an experiment's events back in order."""

from __future__ import annotations

from pathlib import Path

from labmesh_dagster.connectors.lineage.base import FanOutSink, LineageSink
from labmesh_dagster.connectors.lineage.sqlite import SqliteLineageLog


def event(run: str, kind: str, at: str, experiment: str | None = "EXP-1", job: str = "raw_dataset") -> dict:
    facets = {"labmesh_run": {"experimentId": experiment}} if experiment else {}
    return {"eventType": kind, "eventTime": at, "run": {"runId": run, "facets": facets}, "job": {"name": job}}


def test_events_are_kept_once_per_run_and_type_and_read_back_oldest_first(tmp_path: Path) -> None:
    log = SqliteLineageLog(tmp_path / "catalog.sqlite")
    start, complete = event("r1", "START", "2026-11-29T10:00:00Z"), event("r1", "COMPLETE", "2026-11-29T10:01:00Z")

    assert log.emit([complete, start]) == []
    assert log.emit([start, complete]) == []  # a replay replaces, never adds
    log.emit([event("r2", "START", "2026-11-29T09:00:00Z", experiment="EXP-2")])

    assert [e["eventType"] for e in log.events("EXP-1")] == ["START", "COMPLETE"]
    assert log.count() == 3 and [e["run"]["runId"] for e in log.events("EXP-2")] == ["r2"]


def test_events_it_cannot_file_are_refused_with_a_reason_and_the_rest_kept(tmp_path: Path) -> None:
    log = SqliteLineageLog(tmp_path / "catalog.sqlite")

    problems = log.emit(
        [
            event("r1", "START", "2026-11-29T10:00:00Z", experiment=None),
            {"eventType": "START"},
            event("r2", "START", "2026-11-29T10:00:00Z"),
        ]
    )

    assert len(problems) == 2 and "names no experiment" in problems[0]
    assert log.count() == 1


class Refusing(LineageSink):
    def emit(self, events):  # type: ignore[no-untyped-def]
        return [f"refused {e['run']['runId']}" for e in events]


def test_a_fan_out_keeps_the_local_log_whatever_the_remote_sink_says(tmp_path: Path) -> None:
    log = SqliteLineageLog(tmp_path / "catalog.sqlite")

    problems = FanOutSink([log, Refusing()]).emit([event("r1", "START", "2026-11-29T10:00:00Z")])

    assert problems == ["refused r1"] and log.count() == 1
