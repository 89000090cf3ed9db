"""The access tables and the audit log on PostgreSQL: their migrations, and text and moments as they are kept there.

The twin of `labmesh_dagster.access.database` for a deployment with
``LABMESH_DATABASE_URL``: the portal's workers, the daemon and the CLI then
share one server instead of one file. The rules the SQLite schema enforces
are the server's here as well:

- user names are unique ignoring case: a unique index on ``lower(name)``
  (names are ASCII letters, digits and ``. _ @ + -``, so ``lower`` folds them
  as SQLite's NOCASE does), and every lookup compares ``lower(name)``;
- removing a user removes their groups and tokens (``ON DELETE CASCADE``);
- the audit log refuses UPDATE, DELETE and TRUNCATE by trigger, whoever
  issues them.

The tables carry an ``access_`` prefix because the database is shared with
the catalog, the ELN inbox and the lineage log; the audit table keeps its
SQLite name, ``audit_events``. Accounts and the audit log are two stores with
their own migrations, as they are two files under SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime

from labmesh_dagster.connectors.postgres_migrations import Migrations
from labmesh_dagster.connectors.postgres_schema import ensure_migrated
from labmesh_dagster.core.text import clean_text

ACCESS = Migrations(
    "access",
    (
        """
        CREATE TABLE access_users (
            name TEXT NOT NULL PRIMARY KEY,
            password_hash TEXT NOT NULL,
            admin BOOLEAN NOT NULL DEFAULT false,
            created_at TIMESTAMPTZ NOT NULL
        );
        CREATE UNIQUE INDEX access_users_name_nocase ON access_users (lower(name));
        CREATE TABLE access_user_groups (
            user_name TEXT NOT NULL REFERENCES access_users (name) ON DELETE CASCADE,
            group_name TEXT NOT NULL,
            position INTEGER NOT NULL,
            PRIMARY KEY (user_name, group_name)
        );
        CREATE TABLE access_api_tokens (
            id TEXT NOT NULL PRIMARY KEY,
            digest TEXT NOT NULL UNIQUE,
            user_name TEXT NOT NULL REFERENCES access_users (name) ON DELETE CASCADE,
            label TEXT NOT NULL DEFAULT '',
            created_at TIMESTAMPTZ NOT NULL,
            expires_at TIMESTAMPTZ,
            revoked_at TIMESTAMPTZ
        );
        CREATE INDEX access_api_tokens_user ON access_api_tokens (lower(user_name));
        CREATE TABLE access_login_failures (
            subject TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX access_login_failures_subject ON access_login_failures (subject, at);
        CREATE INDEX access_login_failures_at ON access_login_failures (at);
        """,
    ),
)

AUDIT = Migrations(
    "audit",
    (
        """
        CREATE TABLE audit_events (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at TIMESTAMPTZ NOT NULL,
            kind TEXT NOT NULL,
            user_name TEXT,
            experiment_id TEXT,
            file_key TEXT,
            query TEXT,
            address TEXT,
            detail TEXT
        );
        CREATE INDEX audit_events_at ON audit_events (at);
        CREATE INDEX audit_events_user ON audit_events (lower(user_name), at);
        CREATE INDEX audit_events_kind ON audit_events (kind, at);
        CREATE INDEX audit_events_experiment ON audit_events (experiment_id, at);
        CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the audit log is append-only: entries cannot be %',
                CASE TG_OP WHEN 'UPDATE' THEN 'changed' ELSE 'removed' END;
        END
        $$;
        CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events
            FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
        """,
    ),
)


def prepare_access_tables(url: str) -> None:
    """Create or bring up to date the access tables (once a process); safe when several processes do it together."""
    ensure_migrated(url, ACCESS)


def prepare_audit_table(url: str) -> None:
    ensure_migrated(url, AUDIT)


def kept_text(value: str) -> str:
    """Text as PostgreSQL can keep it: valid UTF-8 and no NUL, which a TEXT column refuses and SQLite keeps.

    A name typed at the sign-in form may hold anything and must still be
    counted and logged, so a NUL becomes U+FFFD, as an undecodable unit does.
    """
    return clean_text(value).replace("\x00", "\ufffd")


def utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime, going in or coming out.

    Going in, a naive moment is taken to be UTC already, as `times.stamp`
    takes it; coming out, a TIMESTAMPTZ arrives in the session's time zone
    and is moved to UTC, as the SQLite twin returns its moments.
    """
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)
