"""A PostgreSQL database of a test's own: created empty on the machine's server, dropped afterwards.

The server is the one CI and the development machine run (127.0.0.1:5432,
trust authentication); ``LABMESH_TEST_POSTGRES_URL`` names another. A test
that needs PostgreSQL fails, not skips, when there is none: a store whose
Postgres half was never exercised must not pass as tested.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from labmesh_dagster.connectors.postgres import close_idle, with_database

SERVER_URL = os.environ.get("LABMESH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def fresh_database(prefix: str = "labmesh_test") -> Iterator[str]:
    """The URL of a new, empty database; it is dropped (its connections ended) on leaving."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(f"these tests need PostgreSQL at {SERVER_URL} (LABMESH_TEST_POSTGRES_URL): {error}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        url = with_database(SERVER_URL, name)
        try:
            yield url
        finally:
            close_idle(url)
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
