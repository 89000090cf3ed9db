"""Extraction of files on this machine, as ``labmesh extract`` shows it to people checking what will be recorded.

The same ``extract`` the platform runs on each promoted object, applied to
local paths, with the same links between files (read pairs, run, sample
sheet) that a dataset's manifest gets, so what the command prints is what the
catalog will hold. A folder stands for every file under it, as a run folder
is landed whole.

Only regular files are read, as only regular files are objects in the store
(`LocalObjectStore.list` takes nothing else): a FIFO would block its reader
for ever, a device such as ``/dev/zero`` never ends, and a symlink found in a
folder may point anywhere, so the platform never follows one. Such entries
are reported as skipped, with the reason, and the other files go on. A path
named on the command line is followed if it is a symlink, as ``cat`` would,
since the person named it; what it points to must still be a regular file.

The time budget holds on input that does not end (a file still being
appended to, a huge sparse file): the extractor stops at the budget, and a
little later reading stops too, so the command always returns. A file cut
off that way has no checksum, since one over part of a file would be a lie.
"""

from __future__ import annotations

import fcntl
import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from labmesh_dagster.core.checksums import SHA256, HashingReader
from labmesh_dagster.core.file_kinds import file_kind
from labmesh_dagster.extract.base import Deadline
from labmesh_dagster.extract.linking import DescribedFile, link_files
from labmesh_dagster.extract.registry import DEFAULT_BUDGET_SECONDS, extract

READ_CHUNK = 1024 * 1024

Clock = Callable[[], float]


@dataclass(frozen=True)
class FoundPath:
    """A path to describe; ``named`` if the person gave it (then a symlink is followed), else found in a folder."""

    path: Path
    named: bool


class NotRegular(Exception):
    """The path is not a regular file (a symlink not to follow, a FIFO, a socket, a device): it is not read."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def expand(paths: Sequence[str]) -> Iterator[FoundPath]:
    """The paths named, with folders replaced by the entries under them (sorted, hidden ones skipped).

    Symlinked folders inside a folder are yielded, not walked, so that they
    are reported like any other symlink rather than silently left out.
    """
    for name in paths:
        path = Path(name)
        if not path.is_dir():
            yield FoundPath(path, named=True)
            continue
        for folder, subfolders, files in os.walk(path):  # never descends into symlinked folders
            links = sorted(sub for sub in subfolders if not sub.startswith(".") and Path(folder, sub).is_symlink())
            subfolders[:] = sorted(sub for sub in subfolders if not sub.startswith(".") and sub not in links)
            for entry in sorted([*files, *links]):
                if not entry.startswith("."):
                    yield FoundPath(Path(folder) / entry, named=False)


def _refusal(path: Path, mode: int) -> NotRegular:
    kind = file_kind(mode)
    if kind == "symlink":
        target = os.readlink(path) if path.is_symlink() else "?"
        return NotRegular(
            "symlink", f"{path} is a symlink (to {target}); the platform never follows links found in a folder"
        )
    reason = {"FIFO (named pipe)": "fifo", "folder": "not_a_file"}.get(kind, kind.replace(" ", "_"))
    return NotRegular(reason, f"{path} is a {kind}, not a regular file; labmesh reads regular files only")


def open_regular(path: Path, *, follow_symlinks: bool) -> BinaryIO:
    """``path`` opened for reading if it is a regular file, else `NotRegular` (nothing is opened).

    The type is checked before opening (opening a device can have effects of
    its own) and again on the open descriptor, so a file swapped for a FIFO
    in between is still refused. The open never blocks: O_NONBLOCK, taken
    off again once the descriptor is known to be a regular file's.
    """
    before = os.stat(path, follow_symlinks=follow_symlinks)
    if not stat.S_ISREG(before.st_mode):
        raise _refusal(path, before.st_mode)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    descriptor = os.open(path, flags)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise _refusal(path, mode)
        fcntl.fcntl(descriptor, fcntl.F_SETFL, fcntl.fcntl(descriptor, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _open_sibling_of(path: Path) -> Any:
    def open_sibling(name: str) -> BinaryIO | None:
        # A sibling (an alignment's index) is an object beside the file in the store: a regular file, never a link.
        if "/" in name:
            return None
        try:
            return open_regular(path.parent / name, follow_symlinks=False)
        except (OSError, NotRegular):
            return None

    return open_sibling


class BudgetedReader:
    """A file read until its time budget has run out, then ended, so endless input still comes to an end.

    The budget is the extractor's plus a grace (`cut_after`): the extractor
    notices its own deadline first and stops with a proper partial summary;
    this reader then ends the rest of the pass, which would otherwise go on
    reading (and hashing) for as long as the input lasts.
    """

    def __init__(self, stream: BinaryIO, deadline: Deadline) -> None:
        self._stream = stream
        self._deadline = deadline
        self.cut = False
        self.bytes_read = 0

    def _over(self) -> bool:
        if not self.cut and self._deadline.expired():
            self.cut = True
        return self.cut

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            pieces = []
            while piece := self.read(READ_CHUNK):
                pieces.append(piece)
            return b"".join(pieces)
        if self._over():
            return b""
        chunk = self._stream.read(size)
        self.bytes_read += len(chunk)
        return chunk

    def readinto(self, buffer: bytearray | memoryview) -> int:
        if self._over():
            return 0
        count = self._stream.readinto(buffer)  # type: ignore[attr-defined]
        self.bytes_read += count
        return int(count)

    readinto1 = readinto

    def readable(self) -> bool:
        return True


def cut_after(budget_seconds: float) -> float:
    """When reading itself stops: the budget, plus a tenth of it (at least a second) for the extractor to stop first."""
    return budget_seconds + max(1.0, budget_seconds / 10)


def describe_file(
    path: Path,
    budget_seconds: float | None = DEFAULT_BUDGET_SECONDS,
    *,
    follow_symlinks: bool = True,
    clock: Clock = time.monotonic,
) -> dict[str, Any]:
    """One file's extraction as a JSON object.

    A file that cannot be read is an object with its ``error``; a path that
    is not a regular file (or a symlink not to follow) one with ``skipped``.
    ``clock`` times the budget on reading (tests hand in their own).
    """
    document: dict[str, Any] = {"file": str(path)}
    try:
        with open_regular(path, follow_symlinks=follow_symlinks) as stream:
            size = os.fstat(stream.fileno()).st_size
            deadline = Deadline(None if budget_seconds is None else cut_after(budget_seconds), clock)
            budgeted = BudgetedReader(stream, deadline)
            reader = HashingReader(budgeted)  # type: ignore[arg-type]
            extraction = extract(
                reader,  # type: ignore[arg-type]
                path.name,
                budget_seconds=budget_seconds,
                open_sibling=_open_sibling_of(path),
                size=size,
            )
            sha256 = reader.finish()[SHA256].value
    except NotRegular as refusal:
        return {**document, "skipped": {"reason": refusal.reason, "detail": refusal.detail}}
    except FileNotFoundError:
        return {**document, "error": {"reason": "not_found", "detail": f"no such file: {path}"}}
    except OSError as exc:
        return {**document, "error": {"reason": "unreadable", "detail": f"{path}: {exc.strerror or exc}"}}
    if not budgeted.cut:
        return {**document, "size": size, "sha256": sha256, **extraction.to_json()}
    described = {**document, "size": size, **extraction.to_json()}
    # Reading was stopped: an error now is the cut's doing (a record or a gzip member left unfinished).
    described.pop("error", None)
    described["partial"] = "time_budget"
    described["bytes_read"] = budgeted.bytes_read
    return described


def describe_files(
    paths: Sequence[str], budget_seconds: float | None = DEFAULT_BUDGET_SECONDS, *, clock: Clock = time.monotonic
) -> list[dict[str, Any]]:
    """Every file's extraction, in order, with the links between them under ``links``."""
    documents = [
        describe_file(found.path, budget_seconds, follow_symlinks=found.named, clock=clock) for found in expand(paths)
    ]
    described = [
        DescribedFile(document["file"], document["format"], document.get("metadata") or {})
        for document in documents
        if "format" in document
    ]
    links = link_files(described)
    for document in documents:
        if document["file"] in links:
            document["links"] = links[document["file"]]
    return documents
