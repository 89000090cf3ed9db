"""The local content indexes the contract suites run against: SQLite in the test's folder, PostgreSQL in a database
of the test's own (`fresh_database`), both behind the same helpers so a test reads the same for either."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from labmesh_dagster.connectors.postgres import connect
from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.connectors.search.postgres import PostgresContentIndex
from labmesh_dagster_tests.postgres_databases import fresh_database

LocalIndex = SqliteContentIndex | PostgresContentIndex
LOCAL_BACKENDS = ("sqlite", "postgres")


@contextmanager
def local_index(backend: str, folder: Path, **options: Any) -> Iterator[LocalIndex]:
    """A new, empty local index of ``backend``; a PostgreSQL one's database is dropped on leaving."""
    if backend == "sqlite":
        yield SqliteContentIndex(folder / "catalog.sqlite", **options)
        return
    with fresh_database("labmesh_content_test") as url:
        yield PostgresContentIndex(url, **options)


IndexOpener = Callable[..., LocalIndex]
"""Opens the test's index with the given options: the first call makes it, every later one opens the same index
again, as another process would."""


@contextmanager
def index_opener(backend: str, folder: Path) -> Iterator[IndexOpener]:
    """An `IndexOpener` of ``backend``: a file in ``folder``, or a database made on first use and dropped on leaving."""
    with ExitStack() as stack:
        urls: list[str] = []

        def open_index(**options: Any) -> LocalIndex:
            if backend == "sqlite":
                return SqliteContentIndex(folder / "catalog.sqlite", **options)
            if not urls:
                urls.append(stack.enter_context(fresh_database("labmesh_content_test")))
            return PostgresContentIndex(urls[0], **options)

        yield open_index


def _execute(index: LocalIndex, sql: str) -> Any:
    if isinstance(index, SqliteContentIndex):
        db = sqlite3.connect(index.path)
        try:
            found = db.execute(sql).fetchall()
            db.commit()
        finally:
            db.close()
        return found
    with connect(index.url) as pg:
        cursor = pg.execute(sql)
        return [tuple(row.values()) for row in cursor.fetchall()] if cursor.description else []


def vector_count(index: LocalIndex) -> int:
    """How many vectors the index keeps."""
    return int(_execute(index, "SELECT count(*) FROM content_vectors")[0][0])


def lose_vectors(index: LocalIndex) -> None:
    """Delete every vector behind the index's back, as an index from before vectors, or a failed embedding, has none."""
    _execute(index, "DELETE FROM content_vectors")
