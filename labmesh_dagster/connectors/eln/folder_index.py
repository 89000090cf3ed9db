"""What the folder ELN last saw of each record file, so a poll reads only the files that changed.

A poll compares each file's modification time and size with what it saw
before: every file when it lists the folder (a ``stat`` per file), or only the
paths the kernel's change feed names (`folder_watch`). The index keeps that,
and which experiments each file defines (its *claims*), so that:

- only new, edited, renamed or removed files are read and parsed;
- "the first file (in path order) defining an experiment wins" still holds
  when only one of the files defining it changed;
- fetching one experiment reads the file that defines it, not the folder.

Crash safety: the sensor's cursor, not the index, says what was seen. Each poll
writes the state it found as a new *generation* and hands back a cursor naming
it; rows of generations after the cursor's are a poll whose cursor Dagster never
stored (the tick crashed), and are dropped before comparing, so that poll's
changes are found again. When the cursor's generation is known to be
committed, the rows it superseded are removed. An index that cannot serve a
cursor (another epoch, compacted past it, deleted) makes the poll read the whole
folder once, as a first poll does: never a change missed.

The index is a cache of the folder, never the truth: `fetch` reads the file it
points to and checks the record is there.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from labmesh_dagster.connectors.sqlite_files import connect, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS folder_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS folder_files (
    path TEXT NOT NULL,
    gen INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    present INTEGER NOT NULL,
    PRIMARY KEY (path, gen)
);
CREATE INDEX IF NOT EXISTS folder_files_by_gen ON folder_files (gen);
CREATE TABLE IF NOT EXISTS folder_claims (
    path TEXT NOT NULL,
    gen INTEGER NOT NULL,
    position INTEGER NOT NULL,
    experiment_id TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (path, gen, position)
);
CREATE INDEX IF NOT EXISTS folder_claims_by_experiment ON folder_claims (experiment_id);
CREATE INDEX IF NOT EXISTS folder_claims_by_gen ON folder_claims (gen);
"""

# SQLite's default limit of host parameters is 999 on old builds: lookups go in chunks below it.
_CHUNK = 500


# What a listing tells of a file without reading it: its modification time (ns) and size. A plain tuple,
# since a listing makes one per file and compares them all.
FileState = tuple[int, int]


@dataclass(frozen=True)
class Claim:
    """One experiment a record file defines: the file (relative, ``/``-separated), its place in it, its source."""

    path: str
    position: int
    experiment_id: str
    source: str

    @property
    def order(self) -> tuple[tuple[str, ...], int]:
        """Path order, as the folder is read: the first claim in this order keeps the experiment."""
        return path_order(self.path), self.position


def path_order(path: str) -> tuple[str, ...]:
    """The sort key of a relative path: by its parts, as `sorted` orders `pathlib` paths."""
    return tuple(path.split("/"))


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


class FolderIndex:
    """The index of one records folder, in one SQLite file (written by the ELN sensor, read by runs)."""

    def __init__(self, path: str | os.PathLike[str], records_dir: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.records_dir = str(Path(records_dir))

    def _prepare(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with connect(self.path) as db:
            db.executescript(SCHEMA)

    def open(self, epoch: str, gen: int) -> dict[str, FileState] | None:
        """The files as generation ``gen`` of ``epoch`` saw them; None when the index cannot tell.

        Drops the rows of later generations (a poll whose cursor was never
        stored) and removes what ``gen`` superseded, since a cursor naming it
        means Dagster stored it.
        """
        if not self.path.exists():
            return None
        self._prepare()
        with transaction(self.path) as db:
            if not self._settle(db, epoch, gen):
                return None
            return {
                row[0]: (row[1], row[2])
                for row in db.execute("SELECT path, mtime_ns, size FROM folder_files WHERE present = 1")
            }

    def settle(self, epoch: str, gen: int) -> bool:
        """`open` without reading every file back: for a poll that is told which paths changed (`folder_watch`).

        Costs what the generations settled wrote, not what the folder holds;
        `states` and `states_under` then read the few paths the poll compares.
        """
        if not self.path.exists():
            return False
        self._prepare()
        with transaction(self.path) as db:
            return self._settle(db, epoch, gen)

    def _settle(self, db: sqlite3.Connection, epoch: str, gen: int) -> bool:
        meta = {row[0]: row[1] for row in db.execute("SELECT key, value FROM folder_meta")}
        compacted = int(meta.get("compacted", "0"))
        if meta.get("epoch") != epoch or meta.get("records_dir") != self.records_dir or gen < compacted:
            return False
        newest = db.execute("SELECT max(gen) FROM folder_files").fetchone()[0] or 0
        if gen > max(newest, compacted):
            return False
        db.execute("DELETE FROM folder_files WHERE gen > ?", (gen,))
        db.execute("DELETE FROM folder_claims WHERE gen > ?", (gen,))
        # Normally one generation to settle; more only if an earlier settling was itself rolled back.
        for settled in range(compacted + 1, gen + 1):
            for table in ("folder_files", "folder_claims"):
                db.execute(
                    f"DELETE FROM {table} WHERE gen < ? AND path IN (SELECT path FROM folder_files WHERE gen = ?)",
                    (settled, settled),
                )
            db.execute("DELETE FROM folder_files WHERE gen = ? AND present = 0", (settled,))
        if gen > compacted:
            db.execute("INSERT OR REPLACE INTO folder_meta VALUES ('compacted', ?)", (str(gen),))
        return True

    def states(self, paths: Iterable[str]) -> dict[str, FileState]:
        """The files among ``paths`` the index holds (after `settle`), with their states."""
        found: dict[str, FileState | None] = {}
        with connect(self.path) as db:
            for chunk in _chunks(sorted(set(paths))):
                marks = ", ".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT path, mtime_ns, size, present FROM folder_files WHERE path IN ({marks}) ORDER BY gen",
                    chunk,
                )
                found.update(self._present(rows))
        return {path: state for path, state in found.items() if state is not None}

    def states_under(self, folder: str) -> dict[str, FileState]:
        """The files the index holds (after `settle`) under the relative ``folder``, with their states.

        A range of the primary key: ``/`` sorts just before ``0``, so the paths
        beginning ``folder/`` are those from ``folder/`` up to ``folder0``.
        """
        with connect(self.path) as db:
            rows = db.execute(
                "SELECT path, mtime_ns, size, present FROM folder_files WHERE path >= ? AND path < ? ORDER BY gen",
                (f"{folder}/", f"{folder}0"),
            )
            found = self._present(rows)
        return {path: state for path, state in found.items() if state is not None}

    @staticmethod
    def _present(rows: Iterable[sqlite3.Row]) -> dict[str, FileState | None]:
        """Each path's newest row (rows come oldest generation first): its state, or None for a tombstone."""
        return {row[0]: (row[1], row[2]) if row[3] else None for row in rows}

    def restart(self) -> str:
        """Forget everything: a new epoch, at generation 0 with no files. Returns the epoch."""
        self._prepare()
        epoch = uuid.uuid4().hex[:16]
        with transaction(self.path) as db:
            db.execute("DELETE FROM folder_files")
            db.execute("DELETE FROM folder_claims")
            db.execute("DELETE FROM folder_meta")
            db.executemany(
                "INSERT INTO folder_meta VALUES (?, ?)",
                [("epoch", epoch), ("records_dir", self.records_dir), ("compacted", "0")],
            )
        return epoch

    def claims_of_paths(self, paths: Iterable[str]) -> list[Claim]:
        """The claims the index holds for these files (after `open`: as the cursor's generation saw them)."""
        return self._claims("path", sorted(set(paths)))

    def claims_of_experiments(self, experiment_ids: Iterable[str]) -> list[Claim]:
        """Every file's claim on these experiments (after `open`: as the cursor's generation saw them)."""
        return self._claims("experiment_id", sorted(set(experiment_ids)))

    def _claims(self, column: str, values: list[str]) -> list[Claim]:
        if not values or not self.path.exists():
            return []
        found: list[Claim] = []
        with connect(self.path) as db:
            for chunk in _chunks(values):
                marks = ", ".join("?" * len(chunk))
                found += [
                    Claim(row[0], row[1], row[2], row[3])
                    for row in db.execute(
                        f"SELECT path, position, experiment_id, source FROM folder_claims WHERE {column} IN ({marks})",
                        chunk,
                    )
                ]
        return found

    def save(
        self,
        gen: int,
        changed: Mapping[str, tuple[FileState, list[Claim]]],
        removed: Iterable[str],
    ) -> None:
        """Write generation ``gen``: the changed files' states and claims, and a tombstone per removed file."""
        with transaction(self.path) as db:
            db.executemany(
                "INSERT OR REPLACE INTO folder_files VALUES (?, ?, ?, ?, 1)",
                [(path, gen, *state) for path, (state, _) in changed.items()],
            )
            db.executemany(
                "INSERT OR REPLACE INTO folder_claims VALUES (?, ?, ?, ?, ?)",
                [
                    (path, gen, claim.position, claim.experiment_id, claim.source)
                    for path, (_, claims) in changed.items()
                    for claim in claims
                ],
            )
            db.executemany("INSERT OR REPLACE INTO folder_files VALUES (?, ?, 0, 0, 0)", [(p, gen) for p in removed])

    def candidates(self, experiment_id: str) -> list[str]:
        """Files that define (or defined, in a generation not yet settled) ``experiment_id``, in path order.

        For `fetch`, which reads them in this order and keeps the first that
        still holds the record; an index that cannot be read gives none.
        """
        if not self.path.exists():
            return []
        try:
            with connect(self.path) as db:
                rows = db.execute(
                    "SELECT DISTINCT path FROM folder_claims WHERE experiment_id = ?", (experiment_id,)
                ).fetchall()
        except sqlite3.Error:
            return []
        return sorted((row[0] for row in rows), key=path_order)
