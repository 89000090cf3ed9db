"""The access file: one SQLite database for users, their groups, API tokens and recent failed sign-ins.

SQLite rather than a YAML or JSON users file, because the portal and the CLI
change it at the same time: a text file would need a lock of its own and a
rewrite of the whole file for every change, and a crash mid-write could lose
every account. SQLite gives atomic transactions across processes (WAL, and
``BEGIN IMMEDIATE`` from `labmesh_dagster.connectors.sqlite_files`), unique
names enforced by the database itself, and one place where the sign-in
throttle's counts are shared by every process that checks them.

The file holds password hashes and token digests, so it is created readable
by its owner only; SQLite gives its ``-wal`` and ``-shm`` files the same mode.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

from labmesh_dagster.connectors.sqlite_files import BUSY_TIMEOUT_SECONDS, connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS user_groups (
    user_name TEXT NOT NULL COLLATE NOCASE REFERENCES users (name) ON DELETE CASCADE,
    group_name TEXT NOT NULL,
    PRIMARY KEY (user_name, group_name)
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id TEXT NOT NULL PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    user_name TEXT NOT NULL COLLATE NOCASE REFERENCES users (name) ON DELETE CASCADE,
    label TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS api_tokens_user ON api_tokens (user_name);
CREATE TABLE IF NOT EXISTS login_failures (
    subject TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_subject ON login_failures (subject, at);
"""


def create_private(path: Path) -> None:
    """Create ``path`` (and its folder) readable and writable by its owner only, unless it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def use_wal(path: Path) -> None:
    """Put a database into WAL mode, waiting out another process doing the same.

    The switch needs an exclusive lock, and a connection that already holds a
    shared one when it asks is refused at once ("database is locked") rather
    than made to wait, since waiting could deadlock. Two processes opening a
    new file together (the portal and the CLI) hit exactly that, so the switch
    is tried again until the file is in WAL mode, which lasts: later
    connections find it so and need no lock for it.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        finally:
            db.close()
        time.sleep(0.01)


def prepare(path: Path, schema: str) -> None:
    """Create the private file and its tables at once; safe when several processes do it together."""
    create_private(path)
    use_wal(path)
    with connect(path) as db:
        db.executescript(f"BEGIN IMMEDIATE;{schema}COMMIT;")


def prepare_access_file(path: Path) -> None:
    prepare(path, SCHEMA)
