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
import time
from collections.abc import Iterator
from contextlib import contextmanager

BUSY_TIMEOUT_SECONDS = 60
WAL_SWITCH_PAUSE_SECONDS = 0.05


def _use_wal(db: sqlite3.Connection) -> None:
    """Put the file in WAL mode, once: a file already in it (every one but a new or old file) is left alone.

    Switching needs the file to itself, and SQLite does not wait on the busy
    timeout for it: two processes opening a file that is not yet WAL at once
    would have one fail with "database is locked". So the switch is asked only
    when the mode is not WAL yet, and tried again while another connection
    holds the file, up to the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(WAL_SWITCH_PAUSE_SECONDS)


@contextmanager
def connect(path: str | os.PathLike[str], *, foreign_keys: bool = False) -> Iterator[sqlite3.Connection]:
    """An autocommit connection with rows by name; closed on leaving."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        db.row_factory = sqlite3.Row
        _use_wal(db)
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
