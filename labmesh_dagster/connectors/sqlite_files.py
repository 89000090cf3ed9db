"""SQLite files as labmesh's local stores use them: one connection per operation, WAL, immediate transactions.

The catalog, the content index, the lineage log and the sync ledger may
share a file and are written by concurrent Dagster runs and the CLI. WAL lets
readers go on while one run writes; ``BEGIN IMMEDIATE`` takes the write lock
up front, so read-then-write upserts from concurrent runs queue instead of
failing with a lock upgrade error.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

BUSY_TIMEOUT_SECONDS = 60


@contextmanager
def connect(path: str | os.PathLike[str], *, foreign_keys: bool = False) -> Iterator[sqlite3.Connection]:
    """An autocommit connection with rows by name; closed on leaving."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        if foreign_keys:
            db.execute("PRAGMA foreign_keys=ON")
        yield db
    finally:
        db.close()


@contextmanager
def transaction(path: str | os.PathLike[str], *, foreign_keys: bool = False) -> Iterator[sqlite3.Connection]:
    """One write transaction: committed when the block ends, rolled back if it raises."""
    with connect(path, foreign_keys=foreign_keys) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
