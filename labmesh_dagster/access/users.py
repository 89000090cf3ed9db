"""Local users: names, groups, an admin flag, and Argon2id password hashes, in the access file.

Passwords are hashed with argon2-cffi's `PasswordHasher`, whose defaults are
the RFC 9106 low-memory profile (Argon2id, 64 MiB, 3 passes): a stolen access
file costs an attacker that much memory and time per guess. Verification is
Argon2's own, whose final comparison is constant-time. A name that has no
account is checked against a fixed dummy hash all the same, so the time a
sign-in takes does not tell which names exist.

When argon2-cffi's defaults change (a newer release, or a hasher given
stronger parameters), the next successful sign-in stores a new hash with the
current parameters: old accounts grow stronger without anyone resetting a
password.

Hashing happens before a write transaction opens, never inside it, so one
slow hash does not hold the file's write lock against the portal.

`Users` is what callers hold: `UserStore` keeps the accounts in the SQLite
access file, `labmesh_dagster.access.postgres_users.PostgresUserStore` in
PostgreSQL; `labmesh_dagster.access.stores` picks one from the settings.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from labmesh_dagster.access.database import prepare_access_file
from labmesh_dagster.access.errors import UnknownUser, UnusablePassword, UserExists
from labmesh_dagster.access.names import group_names, user_name
from labmesh_dagster.access.times import moment, stamp
from labmesh_dagster.connectors.sqlite_files import connect, transaction
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.clock import Clock, utc_now

PASSWORD_MIN = 8
# Argon2 hashes whatever it is given; a megabyte "password" posted to the sign-in form would cost
# memory and time for nothing, so long ones are refused before hashing.
PASSWORD_MAX = 1024
# Hashed once per store and verified against when a name has no account, so that costs what a wrong password does.
DUMMY_PASSWORD = "labmesh: no such user"


@dataclass(frozen=True)
class User:
    """An account as the portal and the CLI show it; the password hash never leaves the store."""

    name: str
    groups: tuple[str, ...]
    admin: bool
    created_at: datetime

    @property
    def viewer(self) -> Viewer:
        """The user as the access rule sees them: their name, their groups, and whether they see everything."""
        return Viewer(name=self.name, groups=frozenset(self.groups), admin=self.admin)


def usable_password(password: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise UnusablePassword(f"a password needs at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise UnusablePassword(f"a password may have at most {PASSWORD_MAX} characters")
    return password


class Passwords:
    """Argon2id hashing and checking, the same whichever database keeps the hashes."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    def hash(self, password: str) -> str:
        """The hash to store for a new password (`UnusablePassword` if it is too short or too long)."""
        return self.hasher.hash(usable_password(password))

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``; with no stored hash (no such user) False, after as long a check."""
        try:
            self.hasher.verify(stored if stored is not None else self._dummy(), password[: PASSWORD_MAX + 1])
        except (VerificationError, InvalidHashError):
            return False
        return stored is not None

    def rehashed(self, stored: str, password: str) -> str | None:
        """A hash with today's parameters when ``stored`` was made with older ones, else None."""
        return self.hasher.hash(password) if self.hasher.check_needs_rehash(stored) else None

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(DUMMY_PASSWORD)
        return self._dummy_hash


class Users(Protocol):
    """The local accounts, wherever they are kept; every method is safe to call from many threads and processes."""

    def add(self, name: str, password: str, *, groups: Iterable[str] = (), admin: bool = False) -> User:
        """Create an account; `UserExists` if the name (ignoring case) is taken, whoever added it first."""
        ...

    def get(self, name: str) -> User | None:
        """The account whose name is ``name`` ignoring case, or None."""
        ...

    def list_users(self) -> list[User]:
        """Every account, by name ignoring case."""
        ...

    def remove(self, name: str) -> User:
        """Delete the account with its groups and its API tokens; `UnknownUser` if there is none."""
        ...

    def set_groups(self, name: str, groups: Iterable[str]) -> User:
        """Replace the user's groups, kept in the order given."""
        ...

    def set_password(self, name: str, password: str) -> None: ...

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else None; as slow for an unknown name as for a wrong password."""
        ...


class UserStore:
    """The local accounts in the SQLite access file; every method opens its own connection, so one store serves
    many threads."""

    def __init__(
        self, path: str | os.PathLike[str], *, hasher: PasswordHasher | None = None, clock: Clock = utc_now
    ) -> None:
        self.path = Path(path)
        self.passwords = Passwords(hasher)
        self.clock = clock
        prepare_access_file(self.path)

    def add(self, name: str, password: str, *, groups: Iterable[str] = (), admin: bool = False) -> User:
        """Create an account; `UserExists` if the name (ignoring case) is taken, whoever added it first."""
        name, groups = user_name(name), group_names(groups)
        password_hash = self.passwords.hash(password)
        created_at = self.clock()
        try:
            with transaction(self.path, foreign_keys=True) as db:
                db.execute(
                    "INSERT INTO users (name, password_hash, admin, created_at) VALUES (?, ?, ?, ?)",
                    (name, password_hash, int(admin), stamp(created_at)),
                )
                db.executemany("INSERT INTO user_groups VALUES (?, ?)", [(name, group) for group in groups])
        except sqlite3.IntegrityError as exc:
            raise UserExists(f"user {name!r} exists already") from exc
        return User(name, groups, admin, created_at)

    def get(self, name: str) -> User | None:
        users = self._users("WHERE name = ?", (name,))
        return users[0] if users else None

    def list_users(self) -> list[User]:
        """Every account, by name."""
        return self._users("", ())

    def remove(self, name: str) -> User:
        """Delete the account with its groups and its API tokens; the audit log keeps what they did."""
        user = self._existing(name)
        with transaction(self.path, foreign_keys=True) as db:
            db.execute("DELETE FROM users WHERE name = ?", (user.name,))
        return user

    def set_groups(self, name: str, groups: Iterable[str]) -> User:
        """Replace the user's groups (none is allowed: they then see only their own and shared experiments)."""
        user, groups = self._existing(name), group_names(groups)
        with transaction(self.path, foreign_keys=True) as db:
            db.execute("DELETE FROM user_groups WHERE user_name = ?", (user.name,))
            db.executemany("INSERT INTO user_groups VALUES (?, ?)", [(user.name, group) for group in groups])
        return User(user.name, groups, user.admin, user.created_at)

    def set_password(self, name: str, password: str) -> None:
        user = self._existing(name)
        password_hash = self.passwords.hash(password)
        with transaction(self.path) as db:
            db.execute("UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, user.name))

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else None; as slow for an unknown name as for a wrong password."""
        with connect(self.path) as db:
            row = db.execute("SELECT name, password_hash FROM users WHERE name = ?", (name,)).fetchone()
        stored = row["password_hash"] if row else None
        if not self.passwords.verify(stored, password) or row is None:
            return None
        fresh = self.passwords.rehashed(row["password_hash"], password)
        if fresh is not None:
            # Unless the password changed meanwhile: then that one stands.
            with transaction(self.path) as db:
                db.execute(
                    "UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?",
                    (fresh, row["name"], stored),
                )
        return self.get(row["name"])

    def _existing(self, name: str) -> User:
        user = self.get(name)
        if user is None:
            raise UnknownUser(f"no user {name!r}; `labmesh users list` shows who there is")
        return user

    def _users(self, where: str, parameters: tuple[str, ...]) -> list[User]:
        with connect(self.path) as db:
            rows = db.execute(f"SELECT name, admin, created_at FROM users {where} ORDER BY name", parameters).fetchall()
            memberships = db.execute(
                "SELECT user_name, group_name FROM user_groups "
                f"WHERE user_name IN (SELECT name FROM users {where}) ORDER BY rowid",
                parameters,
            ).fetchall()
        groups: dict[str, list[str]] = {}
        for membership in memberships:
            groups.setdefault(membership["user_name"].casefold(), []).append(membership["group_name"])
        return [
            User(
                name=row["name"],
                groups=tuple(groups.get(row["name"].casefold(), ())),
                admin=bool(row["admin"]),
                created_at=moment(row["created_at"]),
            )
            for row in rows
        ]
