"""Schema migrations for labmesh's PostgreSQL stores: numbered SQL steps per store, each applied once.

Alembic would bring SQLAlchemy models labmesh does not have; the stores write
plain SQL, so their migrations are plain SQL too. Each store declares its
`Migrations`: a name and the ordered steps that build its tables from nothing
(step 1) and change them since (steps 2, 3...). A step once released is
never edited: a change is a new step at the end.

`migrate` applies the steps a database lacks, each in its own transaction
together with its row in ``labmesh_migrations``, under a transaction-scoped
advisory lock, so two processes starting at once (the daemon and the portal)
never apply a step twice, and a step that fails leaves nothing half done.
A database that holds steps newer than this labmesh knows is refused with a
clear error rather than used: an older release would misread its tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from labmesh_dagster.connectors.postgres import connect
from labmesh_dagster.core.errors import LabmeshError

LOCK_KEY = 0x1AB3E5
"""The advisory lock all of labmesh's migrations take (one number: the stores' migrations are serialised)."""

LEDGER = """
CREATE TABLE IF NOT EXISTS labmesh_migrations (
    store TEXT NOT NULL,
    version INTEGER NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (store, version)
)
"""


class SchemaTooNew(LabmeshError):
    """The database was migrated by a newer labmesh than this one."""


@dataclass(frozen=True)
class Migrations:
    """One store's schema history: ``steps[0]`` is version 1."""

    store: str
    steps: tuple[str, ...]

    @property
    def version(self) -> int:
        return len(self.steps)


def applied_version(db: object, store: str) -> int:
    row = db.execute(  # type: ignore[attr-defined]
        "SELECT coalesce(max(version), 0) AS version FROM labmesh_migrations WHERE store = %s", (store,)
    ).fetchone()
    return int(row["version"])


def migrate(url: str, migrations: Migrations) -> int:
    """Bring ``migrations.store``'s tables up to date in the database at ``url``; returns the steps applied."""
    applied = 0
    with connect(url) as db:
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            db.execute(LEDGER)
        while True:
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                version = applied_version(db, migrations.store)
                if version > migrations.version:
                    raise SchemaTooNew(
                        f"the {migrations.store} tables are at version {version}, newer than this labmesh knows"
                        f" ({migrations.version}): upgrade labmesh before using this database"
                    )
                if version == migrations.version:
                    return applied
                db.execute(migrations.steps[version])
                db.execute(
                    "INSERT INTO labmesh_migrations (store, version) VALUES (%s, %s)", (migrations.store, version + 1)
                )
                applied += 1
