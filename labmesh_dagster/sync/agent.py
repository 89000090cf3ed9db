"""The watched-folder agent: wait until instrument output is complete, upload it to landing, verify, remember.

A file is complete when it has not changed for a quiet period, or, in marker
mode, when its run folder holds a completion marker (Illumina writes
``CopyComplete.txt``/``RTAComplete.txt`` last). Each complete file is hashed
locally (SHA-256 for the ledger, CRC64NVME in the same read), uploaded in
parallel parts with a full-object CRC64NVME, verified against the checksum the
store keeps (a HEAD on S3, whatever the number of parts), and only then
recorded in the ledger. Before
uploading, the store is asked whether the object is already there with the same
checksum (a previous run may have died between upload and ledger), so a
restart never uploads a verified file twice and never loses one.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.checksums import CRC64NVME, SHA256, Checksum, stream_checksums
from labmesh_dagster.core.errors import LabmeshError, ObjectNotFound
from labmesh_dagster.core.keys import ObjectKey
from labmesh_dagster.core.text import clean_text, is_clean_text
from labmesh_dagster.sync.layout import Layout
from labmesh_dagster.sync.ledger import Ledger

ILLUMINA_MARKERS = ("CopyComplete.txt", "RTAComplete.txt")
# Names instruments and copy tools use while a file is still being written.
TEMPORARY_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".filepart")


@dataclass(frozen=True)
class SyncOptions:
    quiet_seconds: float = 30.0
    markers: tuple[str, ...] = ()
    workers: int = 4


@dataclass(frozen=True)
class LocalFile:
    path: Path
    relative: str
    size: int
    mtime_ns: int


@dataclass
class SyncReport:
    uploaded: list[ObjectKey] = field(default_factory=list)
    already_there: list[ObjectKey] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def file_checksums(path: Path, algorithms: tuple[str, ...] = (SHA256, CRC64NVME)) -> dict[str, Checksum]:
    """SHA-256 for the ledger and CRC64NVME, the full-object checksum the S3 store keeps, in one read."""
    with path.open("rb") as stream:
        return stream_checksums(stream, algorithms)


class SyncAgent:
    def __init__(
        self,
        watch_dir: str | Path,
        store: ObjectStore,
        layout: Layout,
        ledger: Ledger,
        options: SyncOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    ) -> None:
        self.watch_dir = Path(watch_dir)
        self.store = store
        self.layout = layout
        self.ledger = ledger
        self.options = options or SyncOptions()
        self.clock = clock
        self.log = log
        # (size, mtime) last seen per path, and since when: the quiet period is measured by us,
        # not by file times, which copies and instrument clocks get wrong.
        self._unchanged_since: dict[str, tuple[int, int, float]] = {}

    def _files(self) -> Iterator[LocalFile]:
        for directory, dirnames, filenames in os.walk(self.watch_dir):
            dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
            for name in sorted(filenames):
                if name.startswith(".") or name.endswith(TEMPORARY_SUFFIXES):
                    continue
                path = Path(directory, name)
                try:
                    stat = path.lstat()
                except FileNotFoundError:
                    continue
                if not path.is_file() or path.is_symlink():
                    continue
                relative = path.relative_to(self.watch_dir).as_posix()
                yield LocalFile(path, relative, stat.st_size, stat.st_mtime_ns)

    def _has_marker(self, file: LocalFile) -> bool:
        folder = file.path.parent
        while True:
            if any((folder / marker).is_file() for marker in self.options.markers):
                return True
            if folder == self.watch_dir or self.watch_dir not in folder.parents:
                return False
            folder = folder.parent

    def _is_complete(self, file: LocalFile, now: float) -> bool:
        if self.options.markers:
            return self._has_marker(file)
        seen = self._unchanged_since.get(file.relative)
        if seen is None or seen[:2] != (file.size, file.mtime_ns):
            self._unchanged_since[file.relative] = (file.size, file.mtime_ns, now)
            return self.options.quiet_seconds <= 0
        return now - seen[2] >= self.options.quiet_seconds

    def pending(self, report: SyncReport) -> list[tuple[LocalFile, ObjectKey]]:
        """Complete files not yet in the ledger, with their landing keys."""
        now = self.clock()
        ready = []
        for file in self._files():
            if not is_clean_text(file.relative):
                # Landing would quarantine it, and neither the ledger nor a key can hold the name: say so here.
                reason = "the name is not valid UTF-8; landing would quarantine it, so rename it"
                report.failed.append((clean_text(file.relative), reason))
                self.log(f"labmesh sync: FAILED {clean_text(file.relative)}: {reason}")
                continue
            if self.ledger.is_done(file.relative, file.size, file.mtime_ns):
                continue
            key = self.layout.key_for(file.relative)
            if key is None:
                report.unplaced.append(file.relative)
            elif self._is_complete(file, now):
                ready.append((file, key))
            else:
                report.waiting.append(file.relative)
        # Two files the layout maps to one key would overwrite each other in landing: neither goes.
        paths_of: dict[ObjectKey, list[str]] = {}
        for file, key in ready:
            paths_of.setdefault(key, []).append(file.relative)
        clashes = {key: paths for key, paths in paths_of.items() if len(paths) > 1}
        for key, paths in clashes.items():
            for path in paths:
                report.failed.append((path, f"{', '.join(paths)} would all become {key}; refine the layout"))
        return [(file, key) for file, key in ready if key not in clashes]

    def _matches(self, key: ObjectKey, file: LocalFile, local: dict[str, Checksum]) -> bool:
        """Whether the store holds exactly this file: compared in the checksum the store has at hand."""
        try:
            if self.store.stat(key).size != file.size:
                return False
            stored = self.store.checksum(key)
        except ObjectNotFound:
            return False
        if stored.algorithm not in local:
            local.update(file_checksums(file.path, (stored.algorithm,)))
        return stored == local[stored.algorithm]

    def _upload(self, file: LocalFile, key: ObjectKey, report: SyncReport, lock: threading.Lock) -> None:
        try:
            local = file_checksums(file.path)
            sha256 = local[SHA256].value
            if self._matches(key, file, local):
                outcome = report.already_there
            else:
                with file.path.open("rb") as stream:
                    self.store.put(key, stream)
                if not self._matches(key, file, local):
                    raise LabmeshError(f"{key} does not match {file.path} after the upload")
                outcome = report.uploaded
            stat = file.path.stat()
            if (stat.st_size, stat.st_mtime_ns) != (file.size, file.mtime_ns):
                raise LabmeshError(f"{file.path} changed during the upload; it will be sent again once quiet")
            self.ledger.record(file.relative, file.size, file.mtime_ns, sha256, str(key))
        except (LabmeshError, OSError) as exc:
            with lock:
                report.failed.append((file.relative, str(exc)))
            self.log(f"labmesh sync: FAILED {file.relative}: {exc}")
            return
        with lock:
            outcome.append(key)
        verb = "uploaded" if outcome is report.uploaded else "already in landing"
        self.log(f"labmesh sync: {verb} {file.relative} -> {key} ({file.size} bytes, sha256 {sha256[:12]}…)")

    def run_once(self) -> SyncReport:
        """One pass: upload every complete file not yet in the ledger, several at a time."""
        report = SyncReport()
        ready = self.pending(report)
        lock = threading.Lock()
        progress = _progress(sum(file.size for file, _ in ready), len(ready))
        with ThreadPoolExecutor(max_workers=max(1, self.options.workers)) as pool:
            for future in [pool.submit(self._upload, file, key, report, lock) for file, key in ready]:
                future.result()
                progress()
        return report

    def run(self, *, interval: float, stop: threading.Event) -> None:
        """Pass after pass until ``stop`` is set (Ctrl-C in the CLI)."""
        while not stop.is_set():
            report = self.run_once()
            if report.failed:
                self.log(f"labmesh sync: {len(report.failed)} file(s) failed; they are retried next pass")
            stop.wait(interval)


def _progress(total_bytes: int, files: int) -> Callable[[], None]:
    """A progress bar on a terminal; nothing otherwise (the log lines say what happened)."""
    if not files or not sys.stderr.isatty():
        return lambda: None
    from tqdm import tqdm

    bar = tqdm(total=files, unit="file", desc=f"labmesh sync ({total_bytes / 1e6:.1f} MB)", leave=False)

    def step() -> None:
        bar.update(1)
        if bar.n >= files:
            bar.close()

    return step
