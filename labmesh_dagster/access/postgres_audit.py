"""The audit log in PostgreSQL: the twin of `labmesh_dagster.access.audit.SqliteAuditLog` for a shared deployment.

Append-only as the SQLite log is: the class can only append and read, and a
trigger refuses every UPDATE, DELETE and TRUNCATE on the table, whoever
issues them. As there, a role that owns the table can drop the trigger; a lab
that needs proof against its own operators grants the portal's role INSERT
and SELECT only, or ships the log elsewhere as well.

Entries are numbered by an identity column in the order written, read newest
first with the same filters. A user filter compares ``lower()``, which folds
every letter where SQLite's NOCASE folds only ASCII ones: for a name outside
ASCII (only a failed sign-in can log one) PostgreSQL matches more cases.
Text is kept as PostgreSQL can keep it (`kept_text`): valid UTF-8 without NUL.
"""

from __future__ import annotations

from typing import Any

from labmesh_dagster.access.audit import AuditEntry, AuditEvent, AuditFilter, AuditKind
from labmesh_dagster.access.postgres_database import kept_text, prepare_audit_table, utc
from labmesh_dagster.connectors.postgres import connect, transaction
from labmesh_dagster.core.clock import Clock, utc_now


class PostgresAuditLog:
    """The append-only log in PostgreSQL: `record` an event, `read` entries newest first."""

    def __init__(self, url: str, *, clock: Clock = utc_now) -> None:
        self.url = url
        self.clock = clock
        prepare_audit_table(url)

    def record(self, event: AuditEvent) -> AuditEntry:
        at = self.clock()
        with transaction(self.url) as db:
            row = db.execute(
                "INSERT INTO audit_events (at, kind, user_name, experiment_id, file_key, query, address, detail) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    utc(at),
                    AuditKind(event.kind).value,
                    *(_text(value) for value in (event.user, event.experiment_id, event.file_key)),
                    *(_text(value) for value in (event.query, event.address, event.detail)),
                ),
            ).fetchone()
        return AuditEntry(int(row["id"]), at, event)

    def read(self, filters: AuditFilter = AuditFilter()) -> list[AuditEntry]:
        """The entries that pass every filter, newest first, at most ``filters.limit`` of them."""
        clauses, parameters = _where(filters)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with connect(self.url) as db:
            rows = db.execute(
                f"SELECT * FROM audit_events {where} ORDER BY at DESC, id DESC LIMIT %s",
                [*parameters, filters.limit],  # LIMIT NULL: every entry
            ).fetchall()
        return [_entry(row) for row in rows]


def _text(value: str | None) -> str | None:
    return None if value is None else kept_text(value)


def _where(filters: AuditFilter) -> tuple[list[str], list[object]]:
    clauses: list[str] = []
    parameters: list[object] = []
    if filters.user is not None:
        clauses.append("lower(user_name) = lower(%s)")
        parameters.append(kept_text(filters.user))
    if filters.kinds:
        clauses.append("kind = ANY(%s)")
        parameters.append(sorted(kind.value for kind in filters.kinds))
    if filters.experiment_id is not None:
        clauses.append("experiment_id = %s")
        parameters.append(kept_text(filters.experiment_id))
    if filters.since is not None:
        clauses.append("at >= %s")
        parameters.append(utc(filters.since))
    if filters.until is not None:
        clauses.append("at < %s")
        parameters.append(utc(filters.until))
    return clauses, parameters


def _entry(row: dict[str, Any]) -> AuditEntry:
    event = AuditEvent(
        kind=AuditKind(row["kind"]),
        user=row["user_name"],
        experiment_id=row["experiment_id"],
        file_key=row["file_key"],
        query=row["query"],
        address=row["address"],
        detail=row["detail"],
    )
    return AuditEntry(id=int(row["id"]), at=utc(row["at"]), event=event)
