"""Failed sign-ins, counted per user name and per client address in a sliding window, to slow guessing.

Two counts, because they stop different attacks: many passwords tried on one
name (the per-user count, which follows the name from any address), and one
address trying many names (the per-address count, set higher since a lab's
people may share one address behind NAT). A sign-in is refused while either
count has reached its limit within the last ``window_seconds``; the answer says
how many seconds until the oldest counted failure leaves the window and a try
is allowed again.

The window slides, unlike a fixed per-minute bucket that lets twice the limit
through around the bucket's edge. The decision itself is `retry_after`, a pure
function of the failure times and "now"; the failures are kept in the access
file, so the portal's workers and the CLI count the same failures. A success
clears its user's failures, not its address's: signing in to one's own
account must not reset an address that is guessing at others.

Checking and recording are separate steps around a password check that takes
a tenth of a second, so a burst of simultaneous attempts can pass the limit by
at most the number of attempts in flight; each is still counted.

`LoginThrottle` is what callers hold: `SqliteLoginThrottle` counts in the
SQLite access file, `labmesh_dagster.access.postgres_throttle.PostgresLoginThrottle`
in PostgreSQL, where every process of a deployment counts the same failures.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from labmesh_dagster.access.database import prepare_access_file
from labmesh_dagster.connectors.sqlite_files import connect, transaction
from labmesh_dagster.core.clock import Clock, utc_now


@dataclass(frozen=True)
class LoginLimits:
    """How many failed sign-ins are allowed within the window, per user name and per client address."""

    per_user: int = 5
    per_address: int = 20
    window_seconds: float = 300.0


def retry_after(failures: Sequence[float], *, limit: int, window_seconds: float, now: float) -> float | None:
    """Seconds until another try is allowed, or None if one is allowed now.

    ``failures`` are moments in seconds, in any order; those older than the
    window no longer count. At ``limit`` or more counted failures, a try is
    allowed once enough of the oldest have left the window to bring the
    count below the limit.
    """
    counted = sorted(moment for moment in failures if now - window_seconds < moment <= now)
    if len(counted) < limit:
        return None
    leaving = counted[len(counted) - limit]  # the last one that must leave the window
    return leaving + window_seconds - now


@dataclass(frozen=True)
class Refusal:
    """A sign-in refused for too many recent failures, and when to come back."""

    retry_after_seconds: int

    @property
    def message(self) -> str:
        return f"too many failed sign-ins; try again in {self.retry_after_seconds} s"


class LoginThrottle(Protocol):
    """The failed sign-ins of every process sharing the store, and the refusals they lead to."""

    limits: LoginLimits

    def check(self, user: str, address: str | None) -> Refusal | None:
        """A `Refusal` if this user name or this address has failed too often lately, else None."""
        ...

    def record_failure(self, user: str, address: str | None) -> None:
        """Count a failed sign-in against the name and the address; failures out of the window are forgotten."""
        ...

    def record_success(self, user: str) -> None:
        """Forget the user's failures: they proved the password."""
        ...


def refusal(
    user: str, address: str | None, limits: LoginLimits, now: float, failures: Callable[[str, float], Sequence[float]]
) -> Refusal | None:
    """The refusal for a sign-in by ``user`` from ``address``, given each subject's failures since a moment."""
    subjects = [(user_subject(user), limits.per_user)]
    if address:
        subjects.append((address_subject(address), limits.per_address))
    waits = []
    for subject, limit in subjects:
        times = failures(subject, now - limits.window_seconds)
        wait = retry_after(times, limit=limit, window_seconds=limits.window_seconds, now=now)
        if wait is not None:
            waits.append(wait)
    return Refusal(max(1, math.ceil(max(waits)))) if waits else None


def failure_subjects(user: str, address: str | None) -> list[str]:
    """What one failed sign-in counts against: the name, and the address when there is one."""
    return [user_subject(user)] + ([address_subject(address)] if address else [])


def user_subject(name: str) -> str:
    # Names are unique ignoring case, so "Ada" and "ada" share one count.
    return "user:" + name.casefold()


def address_subject(address: str) -> str:
    return "address:" + address


class SqliteLoginThrottle:
    """The failed sign-ins of every process using the SQLite access file, and the refusals they lead to."""

    def __init__(
        self, path: str | os.PathLike[str], limits: LoginLimits = LoginLimits(), *, clock: Clock = utc_now
    ) -> None:
        self.path = Path(path)
        self.limits = limits
        self.clock = clock
        prepare_access_file(self.path)

    def check(self, user: str, address: str | None) -> Refusal | None:
        """A `Refusal` if this user name or this address has failed too often lately, else None."""
        with connect(self.path) as db:

            def failures(subject: str, since: float) -> list[float]:
                rows = db.execute("SELECT at FROM login_failures WHERE subject = ? AND at > ?", (subject, since))
                return [row[0] for row in rows]

            return refusal(user, address, self.limits, self._now(), failures)

    def record_failure(self, user: str, address: str | None) -> None:
        """Count a failed sign-in against the name and the address; failures out of the window are forgotten."""
        now = self._now()
        subjects = failure_subjects(user, address)
        with transaction(self.path) as db:
            db.executemany("INSERT INTO login_failures (subject, at) VALUES (?, ?)", [(s, now) for s in subjects])
            db.execute("DELETE FROM login_failures WHERE at <= ?", (now - self.limits.window_seconds,))

    def record_success(self, user: str) -> None:
        """Forget the user's failures: they proved the password."""
        with transaction(self.path) as db:
            db.execute("DELETE FROM login_failures WHERE subject = ?", (user_subject(user),))

    def _now(self) -> float:
        return self.clock().timestamp()
