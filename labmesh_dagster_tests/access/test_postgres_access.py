"""What only the PostgreSQL access stores have to prove: the server itself keeps the rules, and they are chosen by URL.

Contract: the database refuses a second user name differing only in case even
when written past the store, and so does every lookup (`lower(name)`);
connections racing to add one name end with one account and one `UserExists`
naming it; the access and audit migrations run once however many stores open
the database, together or one after another; text PostgreSQL cannot keep
(NUL) is still counted, logged and refused cleanly; TRUNCATE is refused on the
audit log as UPDATE and DELETE are; `AccessStores.open` picks the PostgreSQL
twins when the settings carry ``LABMESH_DATABASE_URL``, and makes no file.
"""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from labmesh_dagster.access.audit import AuditEvent, AuditFilter, AuditKind
from labmesh_dagster.access.errors import UserExists
from labmesh_dagster.access.postgres_audit import PostgresAuditLog
from labmesh_dagster.access.postgres_database import ACCESS, AUDIT
from labmesh_dagster.access.postgres_throttle import PostgresLoginThrottle
from labmesh_dagster.access.postgres_tokens import PostgresTokenStore
from labmesh_dagster.access.postgres_users import PostgresUserStore
from labmesh_dagster.access.stores import AccessStores
from labmesh_dagster.access.throttle import LoginLimits
from labmesh_dagster_tests.access.conftest import ManualClock, cheap_hasher
from labmesh_dagster_tests.conftest import make_settings


@pytest.fixture
def url(postgres_schema_url: str) -> str:
    """A PostgreSQL schema of the test's own (`labmesh_dagster_tests.access.conftest.postgres_schema_url`)."""
    return postgres_schema_url


def test_the_database_itself_refuses_a_name_differing_only_in_case(url: str) -> None:
    PostgresUserStore(url, hasher=cheap_hasher()).add("Ada", "correct horse")

    with psycopg.connect(url) as db, pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(
            "INSERT INTO access_users (name, password_hash, admin, created_at) VALUES ('ADA', 'x', false, now())"
        )


def test_connections_racing_to_add_one_name_leave_one_account_and_one_clear_refusal(url: str) -> None:
    spellings = ["ada", "ADA", "Ada", "aDa"]
    start = threading.Barrier(len(spellings))
    added: list[str] = []
    refusals: list[str] = []

    def add(name: str) -> None:
        store = PostgresUserStore(url, hasher=cheap_hasher())
        start.wait()
        try:
            added.append(store.add(name, "correct horse").name)
        except UserExists as refusal:
            refusals.append(str(refusal))

    threads = [threading.Thread(target=add, args=(name,)) for name in spellings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(added) == 1 and len(refusals) == 3
    assert sorted(refusals) == sorted(f"user {name!r} exists already" for name in spellings if name not in added)
    assert [user.name for user in PostgresUserStore(url).list_users()] == added


def applied(url: str) -> list[tuple[str, int]]:
    with psycopg.connect(url) as db:
        return list(db.execute("SELECT store, version FROM labmesh_migrations ORDER BY store, version"))


def test_the_migrations_are_applied_once_however_many_stores_open_the_database(tmp_path: Path, url: str) -> None:
    settings = make_settings(tmp_path / "home", LABMESH_DATABASE_URL=url).access

    def open_all() -> None:
        AccessStores.open(settings)

    threads = [threading.Thread(target=open_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    open_all()

    steps = [("access", version) for version in range(1, ACCESS.version + 1)]
    steps += [("audit", version) for version in range(1, AUDIT.version + 1)]
    assert applied(url) == sorted(steps)


def test_text_postgresql_cannot_keep_is_still_counted_logged_and_refused_cleanly(url: str) -> None:
    clock = ManualClock()
    users = PostgresUserStore(url, hasher=cheap_hasher(), clock=clock)
    throttle = PostgresLoginThrottle(url, LoginLimits(per_user=2, window_seconds=60), clock=clock)
    audit = PostgresAuditLog(url, clock=clock)
    users.add("ada", "correct horse")

    assert users.authenticate("ad\x00a", "correct horse") is None
    assert users.get("ad\x00a") is None
    throttle.record_failure("ad\x00a", "10.0.0.1\x00")
    throttle.record_failure("AD\x00A", None)
    assert throttle.check("ad\x00a", None) is not None, "both failures count against the one name"
    audit.record(AuditEvent(AuditKind.LOGIN_FAILED, "ad\x00a\udcff", address="10.0.0.1"))
    assert audit.read(AuditFilter(user="AD\x00A\udcff"))[0].event.user == "ad\ufffda\ufffd"
    assert PostgresTokenStore(url, clock=clock).list_tokens("ad\x00a") == []


def test_truncating_the_audit_log_is_refused_as_well(url: str) -> None:
    audit = PostgresAuditLog(url)
    audit.record(AuditEvent(AuditKind.LOGIN, "ada"))

    with psycopg.connect(url) as db, pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        db.execute("TRUNCATE audit_events")

    assert len(audit.read()) == 1


def test_a_database_url_in_the_settings_opens_the_postgresql_stores_and_makes_no_file(tmp_path: Path, url: str) -> None:
    settings = make_settings(tmp_path / "home", LABMESH_DATABASE_URL=url).access

    stores = AccessStores.open(settings, hasher=cheap_hasher())
    stores.users.add("ada", "correct horse", groups=["genomics"])
    signed_in = stores.sign_in("ada", "correct horse", address="10.0.0.1")
    token = stores.tokens.create("ada").token

    assert signed_in.ok and stores.viewer_for_token(token) == signed_in.viewer
    assert [type(store) for store in (stores.users, stores.tokens, stores.throttle, stores.audit)] == [
        PostgresUserStore,
        PostgresTokenStore,
        PostgresLoginThrottle,
        PostgresAuditLog,
    ]
    assert [entry.event.kind for entry in PostgresAuditLog(url).read()] == [AuditKind.LOGIN]
    assert not settings.access_path.exists() and not settings.audit_path.exists()
