"""Failed sign-ins in PostgreSQL: the twin of `labmesh_dagster.access.throttle.SqliteLoginThrottle`.

The sliding window, the two counts and the refusal are the same functions
(`labmesh_dagster.access.throttle.refusal`); only where the failures are kept
differs. With PostgreSQL every process of a deployment (each portal worker,
the API, the CLI on another machine) counts the same failures, as the
processes sharing one SQLite file do. A subject is kept as PostgreSQL can
store it (`kept_text`): a name holding NUL is still counted.
"""

from __future__ import annotations

from labmesh_dagster.access.postgres_database import kept_text, prepare_access_tables
from labmesh_dagster.access.throttle import LoginLimits, Refusal, failure_subjects, refusal, user_subject
from labmesh_dagster.connectors.postgres import connect, transaction
from labmesh_dagster.core.clock import Clock, utc_now


class PostgresLoginThrottle:
    """The failed sign-ins of every process using the database, and the refusals they lead to."""

    def __init__(self, url: str, limits: LoginLimits = LoginLimits(), *, clock: Clock = utc_now) -> None:
        self.url = url
        self.limits = limits
        self.clock = clock
        prepare_access_tables(url)

    def check(self, user: str, address: str | None) -> Refusal | None:
        """A `Refusal` if this user name or this address has failed too often lately, else None."""
        with connect(self.url) as db:

            def failures(subject: str, since: float) -> list[float]:
                rows = db.execute(
                    "SELECT at FROM access_login_failures WHERE subject = %s AND at > %s", (kept_text(subject), since)
                )
                return [row["at"] for row in rows]

            return refusal(user, address, self.limits, self._now(), failures)

    def record_failure(self, user: str, address: str | None) -> None:
        """Count a failed sign-in against the name and the address; failures out of the window are forgotten."""
        now = self._now()
        with transaction(self.url) as db:
            db.cursor().executemany(
                "INSERT INTO access_login_failures (subject, at) VALUES (%s, %s)",
                [(kept_text(subject), now) for subject in failure_subjects(user, address)],
            )
            db.execute("DELETE FROM access_login_failures WHERE at <= %s", (now - self.limits.window_seconds,))

    def record_success(self, user: str) -> None:
        """Forget the user's failures: they proved the password."""
        with transaction(self.url) as db:
            db.execute("DELETE FROM access_login_failures WHERE subject = %s", (kept_text(user_subject(user)),))

    def _now(self) -> float:
        return self.clock().timestamp()
