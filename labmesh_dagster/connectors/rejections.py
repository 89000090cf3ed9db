"""ELN records labmesh could not read, kept until they read fine, so `labmesh status` can list them.

The ELN sensor meets a bad record (a YAML file that does not parse, an entry
without an id, two records claiming one experiment) in a tick that otherwise
goes well: a log line inside a green tick is seen by nobody. So each
rejection is written here, keyed by the record's source (a file, ``file[2]``
for the third record of a list, an entry URL), with its reason and when it
was first and last seen; a later poll that reads the same source fine clears
it. The store is a table in the catalog's SQLite file, beside the lineage log
and the content index, so it needs no file of its own; with
``LABMESH_DATABASE_URL`` it is a table in that PostgreSQL database
(`postgres_rejections`), behind the same `RejectionStore` base.

Clearing goes by the source's *container*: ``file[2]`` and ``file`` are the
same file, and a source is read whole each time it is read, so a record read
fine from a file clears what was said of that file before, and the poll's own
rejections of it are then written again. A source no poll reads any more (a
bad record file deleted rather than fixed) is never cleared here; `labmesh
status` leaves out those whose file is gone.
"""

from __future__ import annotations

import os
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from labmesh_dagster.connectors.sqlite_files import connect, transaction
from labmesh_dagster.core.clock import Clock, utc_now
from labmesh_dagster.core.errors import RecordError
from labmesh_dagster.core.text import clean_text

SCHEMA = """
CREATE TABLE IF NOT EXISTS eln_rejections (
    source TEXT PRIMARY KEY,
    container TEXT NOT NULL,
    reason TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS eln_rejections_by_container ON eln_rejections (container);
"""

_POSITION = re.compile(r"\[\d+\]$")


def container(source: str) -> str:
    """The file or entry a source is part of: ``records.yaml[2]`` -> ``records.yaml``."""
    return _POSITION.sub("", source)


@dataclass(frozen=True)
class Rejection:
    """One ELN record that could not be read, and why."""

    source: str
    reason: str
    first_seen: datetime
    last_seen: datetime


def rejected_rows(
    rejected: Iterable[RecordError], read_fine: Iterable[str]
) -> tuple[list[str], list[tuple[str, str, str]]]:
    """One poll's outcome as rows: the containers to clear, then (source, container, reason) of each rejection."""
    cleared = sorted({container(clean_text(source)) for source in read_fine})
    kept = []
    for error in rejected:
        source = clean_text(error.source)
        kept.append((source, container(source), clean_text(error.reason)))
    return cleared, kept


class RejectionStore(ABC):
    """Rejected ELN records, wherever labmesh keeps its own state."""

    @abstractmethod
    def record(self, rejected: Iterable[RecordError], read_fine: Iterable[str] = ()) -> None:
        """Note one poll's outcome: clear what ``read_fine`` sources said before, then keep ``rejected``.

        Idempotent: the same poll noted twice leaves the same rows (only
        ``last_seen`` moves), so a replayed sensor tick changes nothing else.
        Times are kept to the second.
        """

    @abstractmethod
    def rejections(self) -> list[Rejection]:
        """Every rejection standing, by source (in byte order)."""

    def standing(self) -> list[Rejection]:
        """The rejections someone can still act on: `rejections` without those whose record file was deleted.

        What `labmesh status` and the portal's status page list.
        """
        return [rejection for rejection in self.rejections() if not _deleted_record_file(container(rejection.source))]


class SqliteRejectionStore(RejectionStore):
    """Rejected ELN records in one SQLite file (the catalog's)."""

    def __init__(self, path: str | os.PathLike[str], clock: Clock = utc_now) -> None:
        self.path = Path(path)
        self.clock = clock
        self._prepared = False

    def _prepare(self) -> None:
        if not self._prepared:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with connect(self.path) as db:
                db.executescript(SCHEMA)
            self._prepared = True

    def record(self, rejected: Iterable[RecordError], read_fine: Iterable[str] = ()) -> None:
        self._prepare()
        now = self.clock().isoformat(timespec="seconds")
        cleared, kept = rejected_rows(rejected, read_fine)
        with transaction(self.path) as db:
            db.executemany("DELETE FROM eln_rejections WHERE container = ?", [(name,) for name in cleared])
            db.executemany(
                """INSERT INTO eln_rejections (source, container, reason, first_seen, last_seen)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (source) DO UPDATE SET reason = excluded.reason, last_seen = excluded.last_seen""",
                [(source, name, reason, now, now) for source, name, reason in kept],
            )

    def rejections(self) -> list[Rejection]:
        # Reading creates nothing: `labmesh status` on an empty home only looks.
        if not self.path.exists():
            return []
        with connect(self.path) as db:
            try:
                rows = db.execute("SELECT * FROM eln_rejections ORDER BY source").fetchall()
            except sqlite3.OperationalError:  # no table yet: the sensor never rejected anything
                return []
        return [
            Rejection(
                source=row["source"],
                reason=row["reason"],
                first_seen=datetime.fromisoformat(row["first_seen"]),
                last_seen=datetime.fromisoformat(row["last_seen"]),
            )
            for row in rows
        ]


def _deleted_record_file(source: str) -> bool:
    """Whether a rejected record's source is a file of the folder ELN that was since deleted (nothing to fix)."""
    path = Path(source)
    return path.is_absolute() and not path.exists()
