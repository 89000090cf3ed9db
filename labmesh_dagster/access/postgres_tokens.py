"""API tokens in PostgreSQL: the twin of `labmesh_dagster.access.tokens.SqliteTokenStore` for a shared deployment.

Tokens are made, kept (as SHA-256 digests) and refused by the same rules.
Making one locks its user's row against removal (``FOR KEY SHARE``) until the
token is in, so a token is never left behind for a user removed at the same
moment; SQLite gets the same from its single writer. A repeated id is tried
again inside a savepoint, because a failed statement would otherwise abort the
whole PostgreSQL transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from labmesh_dagster.access.errors import UnknownToken, UnknownUser
from labmesh_dagster.access.postgres_database import kept_text, prepare_access_tables, utc, utc_or_none
from labmesh_dagster.access.tokens import PREFIX, IssuedToken, TokenInfo, digest, new_token
from labmesh_dagster.connectors.postgres import connect, transaction
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.clock import Clock, utc_now

INFO = "SELECT id, user_name, label, created_at, expires_at, revoked_at FROM access_api_tokens"


class PostgresTokenStore:
    """The API tokens in PostgreSQL, beside the users they act for."""

    def __init__(self, url: str, *, clock: Clock = utc_now) -> None:
        self.url = url
        self.clock = clock
        prepare_access_tables(url)

    def create(self, user: str, *, label: str = "", expires_at: datetime | None = None) -> IssuedToken:
        """A new token for ``user`` (`UnknownUser` if there is none)."""
        created_at = self.clock()
        with transaction(self.url) as db:
            row = db.execute(
                "SELECT name FROM access_users WHERE lower(name) = lower(%s) FOR KEY SHARE", (kept_text(user),)
            ).fetchone()
            if row is None:
                raise UnknownUser(f"no user {user!r}; add them first with `labmesh users add`")
            while True:  # a repeated 48-bit id is unlikely, but the id is a primary key, so it is checked
                token_id, token = new_token()
                try:
                    with db.transaction():
                        db.execute(
                            "INSERT INTO access_api_tokens (id, digest, user_name, label, created_at, expires_at) "
                            "VALUES (%s, %s, %s, %s, %s, %s)",
                            (
                                token_id,
                                digest(token),
                                row["name"],
                                kept_text(label),
                                utc(created_at),
                                utc_or_none(expires_at),
                            ),
                        )
                    break
                except psycopg.errors.UniqueViolation:
                    continue
        info = TokenInfo(token_id, row["name"], label, created_at, expires_at, None)
        return IssuedToken(token, info)

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        """Tokens, newest first; revoked and expired ones too, marked by their dates."""
        where, parameters = ("WHERE lower(user_name) = lower(%s)", (kept_text(user),)) if user else ("", ())
        with connect(self.url) as db:
            rows = db.execute(f'{INFO} {where} ORDER BY created_at DESC, id COLLATE "C"', parameters).fetchall()
        return [_info(row) for row in rows]

    def revoke(self, token_id: str) -> TokenInfo:
        """Refuse the token from now on; revoking it again changes nothing. `UnknownToken` if there is none."""
        with transaction(self.url) as db:
            db.execute(
                "UPDATE access_api_tokens SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL",
                (utc(self.clock()), kept_text(token_id)),
            )
            row = db.execute(f"{INFO} WHERE id = %s", (kept_text(token_id),)).fetchone()
        if row is None:
            raise UnknownToken(f"no token {token_id!r}; `labmesh tokens list` shows their ids")
        return _info(row)

    def viewer_for_token(self, token: str) -> Viewer | None:
        """Who a request bearing ``token`` is; None for a token that is unknown, revoked or expired."""
        if not token.startswith(PREFIX):
            return None
        with connect(self.url) as db:
            row = db.execute(
                "SELECT u.name, u.admin, t.expires_at, "
                "       array_agg(g.group_name) FILTER (WHERE g.group_name IS NOT NULL) AS groups "
                "FROM access_api_tokens t JOIN access_users u ON u.name = t.user_name "
                "LEFT JOIN access_user_groups g ON g.user_name = u.name "
                "WHERE t.digest = %s AND t.revoked_at IS NULL GROUP BY u.name, t.id",
                (digest(token),),
            ).fetchone()
        if row is None or (row["expires_at"] is not None and row["expires_at"] <= utc(self.clock())):
            return None
        return Viewer(name=row["name"], groups=frozenset(row["groups"] or ()), admin=row["admin"])


def _info(row: dict[str, Any]) -> TokenInfo:
    return TokenInfo(
        id=row["id"],
        user=row["user_name"],
        label=row["label"],
        created_at=utc(row["created_at"]),
        expires_at=utc_or_none(row["expires_at"]),
        revoked_at=utc_or_none(row["revoked_at"]),
    )
