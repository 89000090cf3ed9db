"""A PostgreSQL database whose default collation is a language's, not byte order: what a managed server may have.

RDS and most distributions create databases in ``en_US.UTF-8``, where ``B``
sorts after ``a``; SQLite compares bytes. The stores declare ``COLLATE "C"``
on the keys they order by, and tests on such a database prove it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from labmesh_dagster.connectors.postgres import with_database
from labmesh_dagster_tests.postgres_databases import SERVER_URL


@contextmanager
def english_sorted_database() -> Iterator[str]:
    """The URL of a new database collating as ICU's ``en-US``; dropped on leaving."""
    name = f"labmesh_test_en_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(
            f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        )
        try:
            with psycopg.connect(with_database(SERVER_URL, name)) as db:
                order = [row[0] for row in db.execute("SELECT x FROM (VALUES ('B'), ('a')) AS v(x) ORDER BY x")]
            assert order == ["a", "B"], "the database should sort as English does"
            yield with_database(SERVER_URL, name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
