"""The agent's memory: which file versions reached landing, verified, so a restart uploads nothing twice.

A file version is (path, size, modification time). It is recorded as
``verified`` only after the object in the store was checked against the local
checksum, so a crash at any moment leaves either no record (the file is checked
against the store and uploaded only if it is not already there) or a true one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    object_key TEXT NOT NULL,
    verified_at TEXT NOT NULL,
    PRIMARY KEY (path, size, mtime_ns)
);
"""


class Ledger:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            yield db
            db.commit()
        finally:
            db.close()

    def is_done(self, path: str, size: int, mtime_ns: int) -> bool:
        with self._connect() as db:
            row = db.execute(
                "SELECT 1 FROM uploads WHERE path = ? AND size = ? AND mtime_ns = ?", (path, size, mtime_ns)
            ).fetchone()
        return row is not None

    def record(self, path: str, size: int, mtime_ns: int, sha256: str, object_key: str) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO uploads VALUES (?, ?, ?, ?, ?, ?)",
                (path, size, mtime_ns, sha256, object_key, datetime.now(UTC).isoformat(timespec="seconds")),
            )

    def count(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM uploads").fetchone()[0])
