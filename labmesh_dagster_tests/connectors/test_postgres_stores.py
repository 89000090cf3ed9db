"""What the three PostgreSQL stores of labmesh's own state share: their tables, and a server that is away.

Contract, for the ELN inbox, the lineage log and the rejected ELN records:
each store's tables are made on its first open in a process, and a later
open on the same database costs no look at it; a new process finds nothing
left to do; the three live side by side in one database, each at its own
version in the ledger. A server that cannot be reached, at open or later, is
`DatabaseUnavailable` naming it, never a driver error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from labmesh_dagster.connectors import postgres, postgres_schema
from labmesh_dagster.connectors.eln.base import ElnEvent
from labmesh_dagster.connectors.eln.postgres_inbox import PostgresInbox
from labmesh_dagster.connectors.lineage.postgres import PostgresLineageLog
from labmesh_dagster.connectors.postgres import DatabaseUnavailable, connect
from labmesh_dagster.connectors.postgres_rejections import PostgresRejectionStore
from labmesh_dagster.core.errors import RecordError
from labmesh_dagster_tests.postgres_databases import fresh_database

EVENT = ElnEvent("lims", "e1", "EXP-1", "changed", "2026-11-29T10:00:00Z")
LINEAGE = {
    "eventType": "START",
    "eventTime": "2026-11-29T10:00:00.000Z",
    "run": {"runId": "r1", "facets": {"labmesh_run": {"experimentId": "EXP-1"}}},
    "job": {"name": "experiment"},
}

# Each store, opened, and one write of its own.
STORES: dict[str, tuple[Callable[[str], Any], Callable[[Any], object]]] = {
    "eln_inbox": (PostgresInbox, lambda inbox: inbox.put(EVENT)),
    "lineage_log": (PostgresLineageLog, lambda log: log.emit([LINEAGE])),
    "eln_rejections": (PostgresRejectionStore, lambda store: store.record([RecordError("/eln/a.yaml", "no id")])),
}


@pytest.fixture
def migrations_seen(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The stores whose tables were looked at, in this process, from now on."""
    monkeypatch.setattr(postgres_schema, "_migrated", set())
    seen: list[str] = []
    real = postgres_schema.migrate

    def watched(url: str, migrations: Any) -> int:
        seen.append(migrations.store)
        return real(url, migrations)

    monkeypatch.setattr(postgres_schema, "migrate", watched)
    return seen


@pytest.mark.parametrize("store", STORES)
def test_a_stores_tables_are_made_once_per_process_and_database(
    postgres_url: str, migrations_seen: list[str], store: str
) -> None:
    open_store, write = STORES[store]

    for _ in range(3):
        write(open_store(postgres_url))
    postgres_schema.forget_migrations()  # a new process: it looks again, and finds nothing to do
    write(open_store(postgres_url))

    assert migrations_seen == [store, store]
    with connect(postgres_url) as db:
        ledger = db.execute("SELECT version FROM labmesh_migrations WHERE store = %s", (store,)).fetchall()
    assert ledger == [{"version": 1}]


def test_the_three_stores_live_side_by_side_in_one_database(postgres_url: str) -> None:
    for open_store, write in STORES.values():
        write(open_store(postgres_url))

    with connect(postgres_url) as db:
        ledger = db.execute("SELECT store, version FROM labmesh_migrations ORDER BY store").fetchall()
    assert ledger == [{"store": store, "version": 1} for store in sorted(STORES)]


@pytest.fixture
def impatient(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without their pauses: the test sees the outcome, not the backoff."""
    monkeypatch.setattr(postgres, "FIRST_PAUSE_SECONDS", 0.0)


@pytest.mark.parametrize("store", STORES)
def test_a_server_that_cannot_be_reached_is_database_unavailable(impatient: None, store: str) -> None:
    open_store, _ = STORES[store]

    with pytest.raises(DatabaseUnavailable, match=r"postgres@127\.0\.0\.1:1/labmesh .*after 5 attempts"):
        open_store("postgresql://postgres@127.0.0.1:1/labmesh")


@pytest.mark.parametrize("store", STORES)
def test_a_database_gone_after_opening_is_database_unavailable(impatient: None, store: str) -> None:
    open_store, write = STORES[store]
    with fresh_database() as url:
        opened = open_store(url)

    with pytest.raises(DatabaseUnavailable):
        write(opened)
