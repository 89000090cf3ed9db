"""API tokens for scripts and notebooks: shown once when made, kept only as a SHA-256 digest.

A token is ``lmt_<id>_<secret>``: the id names it in lists and revocations,
the secret is 32 random bytes from `secrets` (256 bits). The access file keeps
the SHA-256 digest of the whole token and never the token itself, so a copy of
the file lets nobody call the API.

A plain SHA-256 suffices here where passwords need Argon2: a slow, salted hash
protects secrets people choose, which are few enough to guess; nobody can
enumerate 2^256 random secrets however fast each guess is. A fast unsalted
digest also lets a request's token be found by an index lookup on the digest,
where a salted hash would have to be tried against every token. The lookup
compares digests, never the secret, so its timing tells nothing about a token.

A token acts as its user as they are now: changing the user's groups changes
what their tokens see, and removing the user removes their tokens.

`TokenStore` is what callers hold: `SqliteTokenStore` keeps the tokens in
the SQLite access file, `labmesh_dagster.access.postgres_tokens.PostgresTokenStore`
in PostgreSQL.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from labmesh_dagster.access.database import prepare_access_file
from labmesh_dagster.access.errors import UnknownToken, UnknownUser
from labmesh_dagster.access.times import moment, stamp
from labmesh_dagster.connectors.sqlite_files import connect, transaction
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.clock import Clock, utc_now

PREFIX = "lmt_"
SECRET_BYTES = 32


def digest(token: str) -> str:
    """What the access file keeps of a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: everything but the token itself, which is never stored."""

    id: str
    user: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        """``active``, ``revoked`` or ``expired``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``token`` is the only copy there will ever be, to show once and forget."""

    token: str
    info: TokenInfo


def new_token() -> tuple[str, str]:
    """A fresh token id and the whole token, ``lmt_<id>_<secret>``."""
    token_id = secrets.token_hex(6)
    return token_id, f"{PREFIX}{token_id}_{secrets.token_urlsafe(SECRET_BYTES)}"


class TokenStore(Protocol):
    """The API tokens beside the users they act for, wherever they are kept."""

    clock: Clock

    def create(self, user: str, *, label: str = "", expires_at: datetime | None = None) -> IssuedToken:
        """A new token for ``user`` (`UnknownUser` if there is none)."""
        ...

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        """Tokens, newest first; revoked and expired ones too, marked by their dates."""
        ...

    def revoke(self, token_id: str) -> TokenInfo:
        """Refuse the token from now on; revoking it again changes nothing. `UnknownToken` if there is none."""
        ...

    def viewer_for_token(self, token: str) -> Viewer | None:
        """Who a request bearing ``token`` is; None for a token that is unknown, revoked or expired."""
        ...


class SqliteTokenStore:
    """The API tokens in the SQLite access file, beside the users they act for."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock = utc_now) -> None:
        self.path = Path(path)
        self.clock = clock
        prepare_access_file(self.path)

    def create(self, user: str, *, label: str = "", expires_at: datetime | None = None) -> IssuedToken:
        """A new token for ``user`` (`UnknownUser` if there is none)."""
        created_at = self.clock()
        with transaction(self.path, foreign_keys=True) as db:
            row = db.execute("SELECT name FROM users WHERE name = ?", (user,)).fetchone()
            if row is None:
                raise UnknownUser(f"no user {user!r}; add them first with `labmesh users add`")
            while True:  # a repeated 48-bit id is unlikely, but the id is a primary key, so it is checked
                token_id, token = new_token()
                try:
                    db.execute(
                        "INSERT INTO api_tokens (id, digest, user_name, label, created_at, expires_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (token_id, digest(token), row["name"], label, stamp(created_at), _stamp(expires_at)),
                    )
                    break
                except sqlite3.IntegrityError:
                    continue
        info = TokenInfo(token_id, row["name"], label, created_at, expires_at, None)
        return IssuedToken(token, info)

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        """Tokens, newest first; revoked and expired ones too, marked by their dates."""
        where, parameters = ("WHERE user_name = ?", (user,)) if user else ("", ())
        with connect(self.path) as db:
            rows = db.execute(
                "SELECT id, user_name, label, created_at, expires_at, revoked_at FROM api_tokens "
                f"{where} ORDER BY created_at DESC, id",
                parameters,
            ).fetchall()
        return [_info(row) for row in rows]

    def revoke(self, token_id: str) -> TokenInfo:
        """Refuse the token from now on; revoking it again changes nothing. `UnknownToken` if there is none."""
        with transaction(self.path) as db:
            db.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (stamp(self.clock()), token_id),
            )
            row = db.execute(
                "SELECT id, user_name, label, created_at, expires_at, revoked_at FROM api_tokens WHERE id = ?",
                (token_id,),
            ).fetchone()
        if row is None:
            raise UnknownToken(f"no token {token_id!r}; `labmesh tokens list` shows their ids")
        return _info(row)

    def viewer_for_token(self, token: str) -> Viewer | None:
        """Who a request bearing ``token`` is; None for a token that is unknown, revoked or expired."""
        if not token.startswith(PREFIX):
            return None
        with connect(self.path) as db:
            row = db.execute(
                "SELECT users.name, users.admin, api_tokens.expires_at FROM api_tokens "
                "JOIN users ON users.name = api_tokens.user_name "
                "WHERE api_tokens.digest = ? AND api_tokens.revoked_at IS NULL",
                (digest(token),),
            ).fetchone()
            if row is None or (row["expires_at"] is not None and moment(row["expires_at"]) <= self.clock()):
                return None
            groups = db.execute(
                "SELECT group_name FROM user_groups WHERE user_name = ? ORDER BY rowid", (row["name"],)
            ).fetchall()
        return Viewer(name=row["name"], groups=frozenset(group[0] for group in groups), admin=bool(row["admin"]))


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else stamp(value)


def _moment(value: str | None) -> datetime | None:
    return None if value is None else moment(value)


def _info(row: sqlite3.Row) -> TokenInfo:
    return TokenInfo(
        id=row["id"],
        user=row["user_name"],
        label=row["label"],
        created_at=moment(row["created_at"]),
        expires_at=_moment(row["expires_at"]),
        revoked_at=_moment(row["revoked_at"]),
    )
