"""A store's tables migrated once per process and database: opening a store again costs no round trip.

Ports opens a store for every operation that asks (each sensor tick, each
portal request), as it opens a SQLite file. `migrate` takes an advisory lock
and reads the ledger, which is cheap but not free, so each store calls
`ensure_migrated` on open: the first open of a store on a database in this
process migrates it, every later one is a set lookup. Another process that
upgrades the schema meanwhile is no concern: steps only add, and this
process's code knows no newer step.
"""

from __future__ import annotations

from labmesh_dagster.connectors.postgres import check_url
from labmesh_dagster.connectors.postgres_migrations import Migrations, migrate

_migrated: set[tuple[str, str, int]] = set()


def ensure_migrated(url: str, migrations: Migrations) -> bool:
    """Bring the store's tables up to date unless this process already did; True when it looked at the database."""
    key = (check_url(url), migrations.store, migrations.version)
    if key in _migrated:
        return False
    migrate(url, migrations)
    _migrated.add(key)
    return True


def forget_migrations() -> None:
    """Look at every database again on the next open (what a new process does; for tests)."""
    _migrated.clear()
