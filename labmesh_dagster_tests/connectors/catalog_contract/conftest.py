"""The catalog contract runs against each catalog labmesh keeps its own state in: SQLite and PostgreSQL.

Every test here takes ``catalog`` (or ``open_catalog``, to open the same
catalog again as another process would) and so runs twice: on a SQLite file
in the test's folder, and on PostgreSQL. A behaviour that holds for one and not
the other fails here.

Each PostgreSQL test gets a schema of its own in one database made for the
session (`fresh_database`), named in its URL's ``search_path``: the catalog
migrates it from nothing, as it would a new database, and creating a schema
costs a fraction of creating a database, which the hundreds of tests here
would otherwise spend most of their time on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from labmesh_dagster.connectors.catalog.postgres import PostgresCatalog
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.postgres import close_idle
from labmesh_dagster_tests.postgres_databases import fresh_database

AnyCatalog = SqliteCatalog | PostgresCatalog
BACKENDS = ("sqlite", "postgres")


@pytest.fixture(scope="session")
def contract_database() -> Iterator[str]:
    with fresh_database("labmesh_catalog_contract") as url:
        yield url


@contextmanager
def schema_of_its_own(database: str) -> Iterator[str]:
    """A URL whose connections see only a new, empty schema of ``database``; dropped on leaving."""
    schema = f"catalog_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database, autocommit=True) as db:
        db.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{database}?options=-csearch_path%3D{schema}"
    try:
        yield url
    finally:
        close_idle(url)  # the connections the catalog kept for this schema's URL end with it
        with psycopg.connect(database, autocommit=True) as db:
            db.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgres_catalog_url(contract_database: str) -> Iterator[str]:
    with schema_of_its_own(contract_database) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def open_catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], AnyCatalog]:
    """Opens the test's catalog (the same one on every call), on the backend the test is run for."""
    if request.param == "sqlite":
        path = tmp_path / "catalog" / "catalog.sqlite"
        return lambda: SqliteCatalog(path)
    url = request.getfixturevalue("postgres_catalog_url")
    return lambda: PostgresCatalog(url)


@pytest.fixture
def catalog(open_catalog: Callable[[], AnyCatalog]) -> AnyCatalog:
    return open_catalog()


@pytest.fixture(scope="module", params=BACKENDS)
def open_module_catalog(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], AnyCatalog]]:
    """As `open_catalog`, for a lab a module builds once and its tests only read."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("catalog") / "catalog.sqlite"
        yield lambda: SqliteCatalog(path)
        return
    with schema_of_its_own(request.getfixturevalue("contract_database")) as url:
        yield lambda: PostgresCatalog(url)
