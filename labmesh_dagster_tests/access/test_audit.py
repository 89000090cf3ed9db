"""The audit log: every sign-in, search, page, preview and download, kept as written and read back by filter.

Contract: `record` stamps an event with the log's clock and `read` returns it
as written, newest first; filters by user (ignoring case), kind, experiment
and time range combine, with ``since`` inclusive, ``until`` exclusive and
``limit`` keeping the newest; the database itself refuses to change or remove
an entry, whoever asks (an UPDATE or DELETE in the database's own shell
fails), and the class offers no way to; text that the database cannot keep is
still logged. Pinned on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from labmesh_dagster.access.audit import AuditEvent, AuditFilter, AuditKind, AuditLog, SqliteAuditLog
from labmesh_dagster.access.postgres_audit import PostgresAuditLog
from labmesh_dagster_tests.access.conftest import START, Backend, ManualClock


@pytest.fixture
def a_morning(audit: AuditLog, clock: ManualClock) -> AuditLog:
    """Ada signs in, searches and downloads; Grace fails to sign in, then opens another experiment."""
    for event in (
        AuditEvent(AuditKind.LOGIN, "ada", address="10.0.0.1", detail="password"),
        AuditEvent(AuditKind.SEARCH, "ada", query="fibrosis --platform MiSeq", address="10.0.0.1"),
        AuditEvent(AuditKind.VIEW, "ada", experiment_id="EXP-42", address="10.0.0.1"),
        AuditEvent(AuditKind.DOWNLOAD, "ada", experiment_id="EXP-42", file_key="raw/EXP-42/run1/S-001_R1.fastq.gz"),
        AuditEvent(AuditKind.LOGIN_FAILED, "grace", address="10.0.0.2", detail="wrong user name or password"),
        AuditEvent(AuditKind.LOGIN, "grace", address="10.0.0.2", detail="password"),
        AuditEvent(AuditKind.PREVIEW, "grace", experiment_id="EXP-7", file_key="raw/EXP-7/plate.csv"),
    ):
        audit.record(event)
        clock.advance(600)  # one event every ten minutes, from 09:00
    return audit


def test_an_event_is_read_back_as_written_with_the_time_it_was_recorded(audit: AuditLog) -> None:
    event = AuditEvent(AuditKind.PREVIEW, "ada", "EXP-42", "raw/EXP-42/a.fastq", None, "10.0.0.1", "first reads")

    written = audit.record(event)

    assert audit.read() == [written]
    assert written.at == START and written.event == event


def test_entries_come_newest_first_and_the_limit_keeps_the_newest(a_morning: AuditLog) -> None:
    entries = a_morning.read(AuditFilter(limit=2))

    assert [entry.event.kind for entry in entries] == [AuditKind.PREVIEW, AuditKind.LOGIN]
    assert len(a_morning.read(AuditFilter(limit=None))) == 7


def test_filters_by_user_kind_and_experiment_combine(a_morning: AuditLog) -> None:
    def kinds(filters: AuditFilter) -> list[str]:
        return [entry.event.kind.value for entry in a_morning.read(filters)]

    assert kinds(AuditFilter(user="ADA")) == ["download", "view", "search", "login"]
    assert kinds(AuditFilter(kinds=frozenset({AuditKind.LOGIN, AuditKind.LOGIN_FAILED}))) == [
        "login",
        "login_failed",
        "login",
    ]
    assert kinds(AuditFilter(experiment_id="EXP-42")) == ["download", "view"]
    assert kinds(AuditFilter(user="grace", experiment_id="EXP-42")) == []
    assert kinds(AuditFilter(user="grace", kinds=frozenset({AuditKind.LOGIN_FAILED}))) == ["login_failed"]


def test_since_is_inclusive_and_until_exclusive(a_morning: AuditLog) -> None:
    from_0920_to_0940 = AuditFilter(since=START + timedelta(minutes=20), until=START + timedelta(minutes=40))

    # 09:20 the view, 09:30 the download; the failed sign-in at 09:40 is left out.
    assert [entry.event.kind for entry in a_morning.read(from_0920_to_0940)] == [AuditKind.DOWNLOAD, AuditKind.VIEW]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET user_name = 'someone else'",
        "UPDATE audit_events SET kind = 'login' WHERE kind = 'login_failed'",
        "DELETE FROM audit_events",
        "DELETE FROM audit_events WHERE user_name = 'grace'",
    ],
)
def test_the_database_refuses_to_change_or_remove_an_entry(
    a_morning: AuditLog, backend: Backend, statement: str
) -> None:
    before = a_morning.read(AuditFilter(limit=None))

    with pytest.raises(backend.refused, match="append-only"):
        backend.execute_on_audit(statement)

    assert a_morning.read(AuditFilter(limit=None)) == before


@pytest.mark.parametrize("log", [AuditLog, SqliteAuditLog, PostgresAuditLog])
def test_the_class_offers_no_way_to_change_or_remove_entries(log: type) -> None:
    public = {name for name in vars(log) if not name.startswith("_")}

    assert public == {"record", "read"}


def test_a_name_that_is_not_valid_text_is_still_logged(audit: AuditLog) -> None:
    audit.record(AuditEvent(AuditKind.LOGIN_FAILED, "ad\udcffa", address="10.0.0.1"))

    assert audit.read()[0].event.user == "ad\ufffda"
