"""What only the PostgreSQL catalog does: it checks its URL and migrates its own tables once.

The behaviour it shares with SQLite is pinned in ``catalog_contract/``. Pinned
here: a URL that is not PostgreSQL's is refused with a clear error before
anything connects; opening a new database creates the catalog's tables at the
version its migrations reach, and opening it again, from this process or
another, applies nothing twice.
"""

from __future__ import annotations

import pytest

from labmesh_dagster.connectors import postgres_schema
from labmesh_dagster.connectors.catalog.postgres import PostgresCatalog, open_postgres_catalog
from labmesh_dagster.connectors.catalog.postgres_schema import MIGRATIONS
from labmesh_dagster.connectors.postgres import DatabaseUrlError, connect
from labmesh_dagster.core.experiment import ExperimentRecord


def test_a_url_that_is_not_postgresql_is_refused() -> None:
    with pytest.raises(DatabaseUrlError, match="expected a postgresql:// URL"):
        PostgresCatalog("sqlite:///catalog.sqlite")


def test_a_new_database_gets_the_catalogs_tables_once(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = open_postgres_catalog(postgres_url)
    catalog.upsert_experiment(ExperimentRecord(id="EXP-1", title="Liver"), {})
    monkeypatch.setattr(postgres_schema, "_migrated", set())  # as another process would find it

    reopened = open_postgres_catalog(postgres_url)

    with connect(postgres_url) as db:
        versions = db.execute("SELECT version FROM labmesh_migrations WHERE store = 'catalog'").fetchall()
    assert [row["version"] for row in versions] == list(range(1, MIGRATIONS.version + 1))
    assert reopened.experiment_fingerprints() == catalog.experiment_fingerprints() != {}
