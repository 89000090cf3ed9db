"""Local users in PostgreSQL: the twin of `labmesh_dagster.access.users.UserStore` for a shared deployment.

The same accounts, hashes and rules; what differs is how the database keeps
them. Two processes adding one name (in any case) race on the unique index on
``lower(name)``: the second insert waits for the first to commit and then
fails, and is told `UserExists`, as SQLite's writer lock tells the second
writer. Changing a user's groups first locks the user's row, so two changes
at once apply one after the other rather than mixing their groups.

A name that is not a valid user name has no account, so it is answered
without a query: PostgreSQL refuses text holding NUL, which a sign-in form
may be sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from argon2 import PasswordHasher

from labmesh_dagster.access.errors import UnknownUser, UserExists
from labmesh_dagster.access.names import USER_NAME, group_names, user_name
from labmesh_dagster.access.postgres_database import prepare_access_tables, utc
from labmesh_dagster.access.users import Passwords, User
from labmesh_dagster.connectors.postgres import connect, transaction
from labmesh_dagster.core.clock import Clock, utc_now

SELECT_USERS = """
SELECT u.name, u.admin, u.created_at,
       coalesce(array_agg(g.group_name ORDER BY g.position) FILTER (WHERE g.group_name IS NOT NULL),
                ARRAY[]::text[]) AS groups
FROM access_users u LEFT JOIN access_user_groups g ON g.user_name = u.name
"""


class PostgresUserStore:
    """The local accounts in PostgreSQL; each method takes its own connection, so one store serves many threads."""

    def __init__(self, url: str, *, hasher: PasswordHasher | None = None, clock: Clock = utc_now) -> None:
        self.url = url
        self.passwords = Passwords(hasher)
        self.clock = clock
        prepare_access_tables(url)

    def add(self, name: str, password: str, *, groups: Iterable[str] = (), admin: bool = False) -> User:
        """Create an account; `UserExists` if the name (ignoring case) is taken, whoever added it first."""
        name, groups = user_name(name), group_names(groups)
        password_hash = self.passwords.hash(password)
        created_at = self.clock()
        try:
            with transaction(self.url) as db:
                db.execute(
                    "INSERT INTO access_users (name, password_hash, admin, created_at) VALUES (%s, %s, %s, %s)",
                    (name, password_hash, admin, utc(created_at)),
                )
                _insert_groups(db, name, groups)
        except psycopg.errors.UniqueViolation as exc:
            raise UserExists(f"user {name!r} exists already") from exc
        return User(name, groups, admin, created_at)

    def get(self, name: str) -> User | None:
        if not USER_NAME.fullmatch(name):
            return None
        with connect(self.url) as db:
            row = db.execute(f"{SELECT_USERS} WHERE lower(u.name) = lower(%s) GROUP BY u.name", (name,)).fetchone()
        return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        """Every account, by name ignoring case, as SQLite's NOCASE orders them."""
        with connect(self.url) as db:
            rows = db.execute(f"{SELECT_USERS} GROUP BY u.name ORDER BY lower(u.name), u.name").fetchall()
        return [_user(row) for row in rows]

    def remove(self, name: str) -> User:
        """Delete the account with its groups and its API tokens; the audit log keeps what they did."""
        user = self._existing(name)
        with transaction(self.url) as db:
            db.execute("DELETE FROM access_users WHERE name = %s", (user.name,))
        return user

    def set_groups(self, name: str, groups: Iterable[str]) -> User:
        """Replace the user's groups (none is allowed: they then see only their own and shared experiments)."""
        user, groups = self._existing(name), group_names(groups)
        with transaction(self.url) as db:
            locked = db.execute("SELECT name FROM access_users WHERE name = %s FOR UPDATE", (user.name,)).fetchone()
            if locked is None:  # removed since it was read
                raise UnknownUser(f"no user {name!r}; `labmesh users list` shows who there is")
            db.execute("DELETE FROM access_user_groups WHERE user_name = %s", (user.name,))
            _insert_groups(db, user.name, groups)
        return User(user.name, groups, user.admin, user.created_at)

    def set_password(self, name: str, password: str) -> None:
        user = self._existing(name)
        password_hash = self.passwords.hash(password)
        with transaction(self.url) as db:
            db.execute("UPDATE access_users SET password_hash = %s WHERE name = %s", (password_hash, user.name))

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else None; as slow for an unknown name as for a wrong password."""
        row = None
        if USER_NAME.fullmatch(name):
            with connect(self.url) as db:
                row = db.execute(
                    "SELECT name, password_hash FROM access_users WHERE lower(name) = lower(%s)", (name,)
                ).fetchone()
        stored = row["password_hash"] if row else None
        if not self.passwords.verify(stored, password) or row is None:
            return None
        fresh = self.passwords.rehashed(row["password_hash"], password)
        if fresh is not None:
            # Unless the password changed meanwhile: then that one stands.
            with transaction(self.url) as db:
                db.execute(
                    "UPDATE access_users SET password_hash = %s WHERE name = %s AND password_hash = %s",
                    (fresh, row["name"], row["password_hash"]),
                )
        return self.get(row["name"])

    def _existing(self, name: str) -> User:
        user = self.get(name)
        if user is None:
            raise UnknownUser(f"no user {name!r}; `labmesh users list` shows who there is")
        return user


def _insert_groups(db: Any, name: str, groups: tuple[str, ...]) -> None:
    if groups:
        db.cursor().executemany(
            "INSERT INTO access_user_groups (user_name, group_name, position) VALUES (%s, %s, %s)",
            [(name, group, position) for position, group in enumerate(groups)],
        )


def _user(row: dict[str, Any]) -> User:
    return User(name=row["name"], groups=tuple(row["groups"]), admin=row["admin"], created_at=utc(row["created_at"]))
