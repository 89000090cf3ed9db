"""Fixtures for people, tokens and the audit log: a clock moved by hand, a cheap hasher, and the stores on each backend.

The stores' tests are one contract suite: `backend` gives each test the
SQLite stores on a temp home and then the PostgreSQL twins on a schema of the
test's own (`postgres_schema_url`), so the same assertions prove both. A
`Backend` also reads what the stores keep, as someone holding a copy of the
database would, for the tests that pin what is (and is not) stored.
"""

from __future__ import annotations

import sqlite3
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from argon2 import PasswordHasher

from labmesh_dagster.access.audit import AuditLog, SqliteAuditLog
from labmesh_dagster.access.postgres_audit import PostgresAuditLog
from labmesh_dagster.access.postgres_throttle import PostgresLoginThrottle
from labmesh_dagster.access.postgres_tokens import PostgresTokenStore
from labmesh_dagster.access.postgres_users import PostgresUserStore
from labmesh_dagster.access.throttle import LoginLimits, LoginThrottle, SqliteLoginThrottle
from labmesh_dagster.access.tokens import SqliteTokenStore, TokenStore
from labmesh_dagster.access.users import Users, UserStore
from labmesh_dagster.connectors.postgres import close_idle
from labmesh_dagster.core.clock import Clock, utc_now
from labmesh_dagster_tests.postgres_databases import fresh_database

START = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


class ManualClock:
    """A clock that stands still until the test moves it: time-based rules are checked without sleeping."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def cheap_hasher(time_cost: int = 1) -> PasswordHasher:
    """Argon2id with the smallest memory it allows: the same code path, a thousandth of the cost."""
    return PasswordHasher(time_cost=time_cost, memory_cost=8, parallelism=1)


class Backend(ABC):
    """Where the access stores keep things: opens them, and reads their tables directly.

    Tables are named as SQLite names them (``users``, ``api_tokens``,
    ``login_failures``, ``audit_events``); each backend maps them to its own.
    """

    name: str
    refused: type[Exception]
    """What the database raises when it refuses a statement on the audit log."""

    @abstractmethod
    def users(self, *, hasher: PasswordHasher | None = None, clock: Clock = utc_now) -> Users: ...

    @abstractmethod
    def tokens(self, *, clock: Clock = utc_now) -> TokenStore: ...

    @abstractmethod
    def throttle(self, limits: LoginLimits, *, clock: Clock = utc_now) -> LoginThrottle: ...

    @abstractmethod
    def audit(self, *, clock: Clock = utc_now) -> AuditLog: ...

    @abstractmethod
    def rows(self, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
        """Every row of ``table`` as plain tuples, in no particular order."""

    @abstractmethod
    def execute_on_audit(self, statement: str) -> None:
        """Run ``statement`` on the audit log's database, as someone in its shell would."""


class SqliteBackend(Backend):
    name = "sqlite"
    refused = sqlite3.IntegrityError

    def __init__(self, home: Path) -> None:
        self.access_path = home / "access.sqlite"
        self.audit_path = home / "audit.sqlite"

    def users(self, *, hasher: PasswordHasher | None = None, clock: Clock = utc_now) -> Users:
        return UserStore(self.access_path, hasher=hasher or cheap_hasher(), clock=clock)

    def tokens(self, *, clock: Clock = utc_now) -> TokenStore:
        return SqliteTokenStore(self.access_path, clock=clock)

    def throttle(self, limits: LoginLimits, *, clock: Clock = utc_now) -> LoginThrottle:
        return SqliteLoginThrottle(self.access_path, limits, clock=clock)

    def audit(self, *, clock: Clock = utc_now) -> AuditLog:
        return SqliteAuditLog(self.audit_path, clock=clock)

    def rows(self, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
        path = self.audit_path if table == "audit_events" else self.access_path
        with sqlite3.connect(path) as db:
            return [tuple(row) for row in db.execute(f"SELECT {columns} FROM {table}")]

    def execute_on_audit(self, statement: str) -> None:
        with sqlite3.connect(self.audit_path) as db:
            db.execute(statement)


class PostgresBackend(Backend):
    name = "postgres"
    refused = psycopg.errors.RaiseException
    TABLES = {
        "users": "access_users",
        "user_groups": "access_user_groups",
        "api_tokens": "access_api_tokens",
        "login_failures": "access_login_failures",
        "audit_events": "audit_events",
    }

    def __init__(self, url: str) -> None:
        self.url = url

    def users(self, *, hasher: PasswordHasher | None = None, clock: Clock = utc_now) -> Users:
        return PostgresUserStore(self.url, hasher=hasher or cheap_hasher(), clock=clock)

    def tokens(self, *, clock: Clock = utc_now) -> TokenStore:
        return PostgresTokenStore(self.url, clock=clock)

    def throttle(self, limits: LoginLimits, *, clock: Clock = utc_now) -> LoginThrottle:
        return PostgresLoginThrottle(self.url, limits, clock=clock)

    def audit(self, *, clock: Clock = utc_now) -> AuditLog:
        return PostgresAuditLog(self.url, clock=clock)

    def rows(self, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url) as db:
            return [tuple(row) for row in db.execute(f"SELECT {columns} FROM {self.TABLES[table]}")]

    def execute_on_audit(self, statement: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as db:
            db.execute(statement)


@pytest.fixture(scope="session")
def access_database() -> Iterator[str]:
    """One PostgreSQL database for the session's access tests, dropped at the end."""
    with fresh_database("labmesh_access_test") as url:
        yield url


@pytest.fixture
def postgres_schema_url(access_database: str) -> Iterator[str]:
    """A URL whose connections see only a new, empty schema of the test's own (``search_path``).

    As empty as a database of the test's own (the migrations' ledger too is
    made in it), for a fifth of a second where creating and dropping a
    database takes one to three on the project's machine: the access suite
    has some sixty PostgreSQL cases.
    """
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(access_database, autocommit=True) as db:
        db.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{access_database}?options=-csearch_path%3D{schema}"
    try:
        yield url
    finally:
        close_idle(url)  # the stores keep connections per URL: each schema's would stay open until the end
        with psycopg.connect(access_database, autocommit=True) as db:
            db.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each store on SQLite files in a temp home, then on PostgreSQL in a schema of the test's own."""
    if request.param == "sqlite":
        return SqliteBackend(tmp_path / "home")
    return PostgresBackend(request.getfixturevalue("postgres_schema_url"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def access_path(tmp_path: Path) -> Path:
    """The SQLite access file, for the tests of what only a file has (its mode, its bytes)."""
    return tmp_path / "home" / "access.sqlite"


@pytest.fixture
def users(backend: Backend, clock: ManualClock) -> Users:
    return backend.users(clock=clock)


@pytest.fixture
def tokens(backend: Backend, clock: ManualClock) -> TokenStore:
    return backend.tokens(clock=clock)


@pytest.fixture
def throttle(backend: Backend, clock: ManualClock) -> LoginThrottle:
    return backend.throttle(LoginLimits(per_user=3, per_address=5, window_seconds=60), clock=clock)


@pytest.fixture
def audit(backend: Backend, clock: ManualClock) -> AuditLog:
    return backend.audit(clock=clock)
