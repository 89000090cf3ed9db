"""Fixtures for people, tokens and the audit log: a clock moved by hand, a cheap hasher, the stores on a temp home."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from labmesh_dagster.access.audit import AuditLog
from labmesh_dagster.access.throttle import LoginLimits, LoginThrottle
from labmesh_dagster.access.tokens import TokenStore
from labmesh_dagster.access.users import UserStore

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


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def access_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "access.sqlite"


@pytest.fixture
def users(access_path: Path, clock: ManualClock) -> UserStore:
    return UserStore(access_path, hasher=cheap_hasher(), clock=clock)


@pytest.fixture
def tokens(access_path: Path, clock: ManualClock) -> TokenStore:
    return TokenStore(access_path, clock=clock)


@pytest.fixture
def throttle(access_path: Path, clock: ManualClock) -> LoginThrottle:
    return LoginThrottle(access_path, LoginLimits(per_user=3, per_address=5, window_seconds=60), clock=clock)


@pytest.fixture
def audit(tmp_path: Path, clock: ManualClock) -> AuditLog:
    return AuditLog(tmp_path / "home" / "audit.sqlite", clock=clock)
