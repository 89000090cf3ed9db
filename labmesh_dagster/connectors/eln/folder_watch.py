"""Which record files changed since a poll, from the kernel's change feed, so a tick need not list the folder.

Listing a records folder costs a ``stat`` per file: half a second a tick at
100,000 records, whether anything changed or not. On Linux the kernel can say
what changed instead (inotify(7)). A `FolderWatch`, kept per records folder
(and per index) in the process for as long as it lives (sensor ticks run in a
long-lived code server), collects the relative paths of record files created,
written, touched, renamed or removed, and the folders created, renamed or
removed (each new folder is watched in turn, so the whole tree is). A poll then
compares only those paths with the index (`folder_index`).

A change must never be missed, so the poll lists the whole folder, as without
a watch, whenever the feed cannot vouch for what happened since its cursor:

- the first poll of a process (the watch starts just before that listing, so
  nothing between the two is lost), and a cursor this process's polls did not
  hand out (another process polled, or a cursor was reset);
- the kernel's queue overflowed (``IN_Q_OVERFLOW``), the records folder itself
  was moved, removed or unmounted, or more paths changed than a watch keeps;
- no inotify (not Linux), or no watch to be had (``max_user_watches`` or
  ``max_user_instances`` reached): every poll lists, and a watch is tried
  again after the reconciliation interval;
- a records folder on a network or FUSE filesystem (NFS, SMB, sshfs, ...,
  read from ``/proc/self/mountinfo``), where the kernel does not see other
  machines' writes: it is listed every poll unless the watch is forced
  (``on``);
- and every ``reconcile_seconds`` in any case, since labs keep records on
  shares, and a record file that is a link to a file elsewhere changes unseen.

Crash safety stays with the cursor, as in `folder_index`: the paths a poll
took are kept against the cursor it started from until a later poll starts
from the cursor it handed out (Dagster stored it). A poll that starts again
from the older cursor (the tick crashed) is given them again.

One inotify instance serves the process (one descriptor, whatever the number
of folders); it is read without blocking at the start of each poll, so no
thread runs between ticks. A forked child starts with none of it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import struct
import sys
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

# inotify(7)
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_ISDIR = 0x40000000
# Content (written, truncated, touched) and names (created, renamed, removed) of what a folder holds, and the
# folder's own end. IN_MODIFY as well as IN_CLOSE_WRITE: a writer that keeps the file open closes it late.
_MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
)
# Subfolders are not followed through links, as the listing does not descend into linked folders.
_SUBFOLDER_MASK = _MASK | IN_DONT_FOLLOW
_EVENT = struct.Struct("iIII")
_READ_SIZE = 1 << 16

WATCH_MODES = ("auto", "on", "off")
DEFAULT_RECONCILE_SECONDS = 600.0
# Filesystems where a write made on another machine raises no event here (FUSE ones too: most are remote).
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ncpfs",
        "9p",
        "afs",
        "coda",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "beegfs",
        "orangefs",
        "ocfs2",
        "gfs2",
        "virtiofs",
        "davfs",
        "fuse",
        "fuseblk",
    }
)
# Changed paths a watch keeps between polls before it gives up and has the next poll list the folder.
MAX_PENDING = 200_000
# Cursors a watch remembers (normally two: the one stored, and the one the last poll handed out).
MAX_JOURNAL = 16
# Folders watched at once in one process; the least recently polled is let go past it.
MAX_FOLDERS = 64


class WatchUnavailable(Exception):
    """No watch for this folder: its polls list it."""


@dataclass
class Dirty:
    """Paths (relative, ``/``-separated) a poll must compare with the index: record files, and whole folders."""

    files: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)

    def add(self, other: Dirty) -> None:
        self.files |= other.files
        self.folders |= other.folders

    def __len__(self) -> int:
        return len(self.files) + len(self.folders)


def parse_events(buffer: bytes) -> list[tuple[int, int, str]]:
    """The events in what one ``read`` of an inotify descriptor returned: (watch, mask, name)."""
    events = []
    offset = 0
    while offset + _EVENT.size <= len(buffer):
        wd, mask, _cookie, length = _EVENT.unpack_from(buffer, offset)
        offset += _EVENT.size
        name = buffer[offset : offset + length].split(b"\0", 1)[0]
        offset += length
        events.append((wd, mask, os.fsdecode(name)))
    return events


# Which files a poll compares: what `FolderEln` lists (set by it, so the two agree).
RecordName = Callable[[str], bool]


def _unescape(field_text: str) -> str:
    """A mountinfo path: space, tab, newline and backslash are written as octal escapes."""
    for escaped, plain in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field_text = field_text.replace(escaped, plain)
    return field_text


def _within(path: str, folder: str) -> bool:
    return folder == "/" or path == folder or path.startswith(folder.rstrip("/") + "/")


def network_filesystem(path: str, mountinfo: str | None = None) -> str | None:
    """The type of the network or FUSE filesystem holding ``path`` or mounted inside it; None when all are local.

    ``mountinfo`` is the text of ``/proc/self/mountinfo`` (read when not
    given; None when it cannot be, as on a system without it).
    """
    if mountinfo is None:
        try:
            with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as file:
                mountinfo = file.read()
        except OSError:
            return None
    path = os.path.realpath(path)
    holding: tuple[int, str] | None = None
    inside: list[str] = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields or len(fields) < 5:
            continue
        point, fstype = _unescape(fields[4]), fields[fields.index("-") + 1]
        if _within(path, point) and (holding is None or len(point) >= holding[0]):
            holding = (len(point), fstype)
        elif _within(point, path):
            inside.append(fstype)
    for fstype in ([holding[1]] if holding else []) + inside:
        if fstype in NETWORK_FILESYSTEMS or fstype.startswith("fuse."):
            return fstype
    return None


class _Inotify:
    """One inotify instance, read without blocking; watch descriptors are shared by the trees that hold them."""

    def __init__(self) -> None:
        if not sys.platform.startswith("linux"):
            raise WatchUnavailable(f"no inotify on {sys.platform}")
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            init, self._add, self._rm = libc.inotify_init1, libc.inotify_add_watch, libc.inotify_rm_watch
        except AttributeError as exc:
            raise WatchUnavailable("the C library has no inotify") from exc
        init.argtypes, init.restype = [ctypes.c_int], ctypes.c_int
        self._add.argtypes, self._add.restype = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32], ctypes.c_int
        self._rm.argtypes, self._rm.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        fd = init(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise WatchUnavailable(
                f"no inotify instance to be had: {os.strerror(code)} (fs.inotify.max_user_instances)"
            )
        self.fd = fd
        self.owners: dict[int, dict[_Tree, str]] = {}

    def add(self, path: str, mask: int) -> int:
        wd = self._add(self.fd, os.fsencode(path), mask)
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), path)
        return wd

    def remove(self, wd: int, tree: _Tree) -> None:
        owners = self.owners.get(wd)
        if owners is None:
            return
        owners.pop(tree, None)
        if not owners:
            del self.owners[wd]
            self._rm(self.fd, wd)  # gone already (its folder removed): nothing to undo

    def drain(self) -> None:
        """Every queued event, handed to the trees watching its folder."""
        while True:
            try:
                buffer = os.read(self.fd, _READ_SIZE)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            for wd, mask, name in parse_events(buffer):
                if mask & IN_Q_OVERFLOW:
                    for tree in {tree for owners in self.owners.values() for tree in owners}:
                        tree.lose("the kernel's event queue overflowed (fs.inotify.max_queued_events)")
                    continue
                owners = self.owners.get(wd)
                if not owners:
                    continue
                if mask & IN_IGNORED:
                    del self.owners[wd]
                for tree, relative in list(owners.items()):
                    tree.event(wd, relative, mask, name)

    def close(self) -> None:
        os.close(self.fd)


class _Tree:
    """The watches on one records folder and its subfolders (hidden ones skipped, as the listing skips them)."""

    def __init__(self, feed: _Inotify, root: str, is_record: RecordName) -> None:
        self.feed = feed
        self.root = root
        self.is_record = is_record
        self.folders: dict[str, int] = {}
        self.consumers: list[FolderWatch] = []
        self.broken: str | None = "not watched yet"

    def _path(self, relative: str) -> str:
        return os.path.join(self.root, *relative.split("/")) if relative else self.root

    def sync(self) -> None:
        """Watch the whole tree anew (after a loss: folders created meanwhile may be unwatched)."""
        self.close()
        if not os.path.isdir(self.root):
            self.broken = "the records folder does not exist"
            raise WatchUnavailable(self.broken)
        self.broken = None
        self.watch_subtree("")

    def watch_subtree(self, relative: str) -> None:
        """Watch the folder and every folder under it; each is watched before it is read, so none slips by."""
        pending = [relative]
        while pending:
            current = pending.pop()
            path = self._path(current)
            try:
                wd = self.feed.add(path, _SUBFOLDER_MASK if current else _MASK)
            except OSError as exc:
                if current and exc.errno in (errno.ENOENT, errno.ENOTDIR):
                    continue  # gone again: its removal is in the queue
                self.close()
                self.broken = f"cannot watch {path}: {exc.strerror} (fs.inotify.max_user_watches?)"
                raise WatchUnavailable(self.broken) from exc
            owners = self.feed.owners.setdefault(wd, {})
            stale = owners.get(self)
            if stale is not None and stale != current and self.folders.get(stale) == wd:
                del self.folders[stale]  # a folder renamed whose move is still queued
            owners[self] = current
            self.folders[current] = wd
            try:
                with os.scandir(path) as entries:
                    for entry in entries:
                        if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
                            pending.append(f"{current}/{entry.name}" if current else entry.name)
            except OSError:
                continue

    def forget_subtree(self, relative: str) -> None:
        prefix = f"{relative}/"
        for folder in [f for f in self.folders if f == relative or f.startswith(prefix)]:
            self.feed.remove(self.folders.pop(folder), self)

    def event(self, wd: int, relative: str, mask: int, name: str) -> None:
        if mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT):
            if relative == "":
                self.lose("the records folder was moved, removed or unmounted")
            elif mask & IN_IGNORED and self.folders.get(relative) == wd:
                del self.folders[relative]
            return
        if not name or name.startswith("."):
            return
        path = f"{relative}/{name}" if relative else name
        if mask & IN_ISDIR:
            if mask & (IN_MOVED_FROM | IN_DELETE):
                self.forget_subtree(path)
            if mask & (IN_CREATE | IN_MOVED_TO):
                try:
                    self.watch_subtree(path)
                except WatchUnavailable as exc:
                    self.lose(str(exc))
                    return
            if mask & (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE):
                for consumer in self.consumers:
                    consumer.note(folder=path)
        elif self.is_record(name):
            for consumer in self.consumers:
                consumer.note(file=path)

    def lose(self, reason: str) -> None:
        """Events were lost: the tree is watched anew, and each consumer lists the folder once."""
        if self.broken is None:
            self.broken = reason
        for consumer in self.consumers:
            consumer.lose(reason)

    def close(self) -> None:
        for wd in self.folders.values():
            self.feed.remove(wd, self)
        self.folders.clear()


@dataclass
class _Entry:
    """A cursor a poll handed out, and what a poll starting from it must compare (more collects as events come)."""

    cursor: Hashable
    since: Dirty


class FolderWatch:
    """One poller's view of a watched records folder: the paths changed since each cursor it handed out.

    Got from `watch_folder`; a poll calls `take` with the cursor it starts
    from and `polled` with the one it hands out, or, for a full listing,
    `before_listing` and then `listed`.
    """

    def __init__(self, tree: _Tree, clock: Callable[[], float], reconcile_seconds: float) -> None:
        self.tree = tree
        self.clock = clock
        self.reconcile_seconds = reconcile_seconds
        self.pending = Dirty()
        self.journal: list[_Entry] = []
        self.lost: str | None = "the first poll in this process"
        self.listed_at: float | None = None

    def note(self, *, file: str | None = None, folder: str | None = None) -> None:
        if file is not None:
            self.pending.files.add(file)
        if folder is not None:
            self.pending.folders.add(folder)
        if len(self.pending) > MAX_PENDING:
            self.pending = Dirty()
            self.lose(f"more than {MAX_PENDING} paths changed between polls")

    def lose(self, reason: str) -> None:
        if self.lost is None:
            self.lost = reason

    def take(self, cursor: Hashable) -> Dirty | str:
        """The paths a poll from ``cursor`` must compare; or why it must list the folder instead."""
        with _LOCK:
            self.tree.feed.drain()
            for entry in self.journal:
                entry.since.add(self.pending)
            self.pending = Dirty()
            if self.tree.broken is not None:
                return self.tree.broken
            if self.lost is not None:
                return self.lost
            if self.listed_at is None or self.clock() - self.listed_at >= self.reconcile_seconds:
                return f"the reconciliation listing (every {self.reconcile_seconds:g} s)"
            starts = [index for index, entry in enumerate(self.journal) if entry.cursor == cursor]
            if not starts:
                return "a cursor this process did not hand out"
            del self.journal[: starts[-1]]
            since = self.journal[0].since
            return Dirty(set(since.files), set(since.folders))

    def polled(self, cursor: Hashable, leftover: Iterable[str]) -> None:
        """A poll handed out ``cursor``; ``leftover`` are changed files it left for the next poll."""
        with _LOCK:
            self.journal.append(_Entry(cursor, Dirty(set(leftover))))
            del self.journal[:-MAX_JOURNAL]

    def before_listing(self) -> None:
        """The folder is about to be listed whole: what was queued is moot, and a lost tree is watched anew.

        Raises `WatchUnavailable` when the tree cannot be watched (the folder
        is then listed without a watch).
        """
        with _LOCK:
            self.tree.feed.drain()
            if self.tree.broken is not None:
                self.tree.sync()
            self.pending = Dirty()
            self.journal.clear()
            self.lost = None
            self.listed_at = self.clock()

    def listed(self, cursor: Hashable, leftover: Iterable[str]) -> None:
        """The listing handed out ``cursor``: the only one a next poll can start from without listing."""
        self.polled(cursor, leftover)


@dataclass
class _Unavailable:
    reason: str
    retry_at: float


_LOCK = threading.RLock()
_FEED: _Inotify | None = None
_TREES: dict[str, _Tree] = {}
_WATCHES: dict[tuple[str, str], FolderWatch | _Unavailable] = {}


def _feed() -> _Inotify:
    global _FEED
    if _FEED is None:
        _FEED = _Inotify()
    return _FEED


def watch_folder(
    records_dir: str | os.PathLike[str],
    key: str,
    *,
    mode: str,
    is_record: RecordName,
    clock: Callable[[], float],
    reconcile_seconds: float,
) -> FolderWatch | str:
    """This process's watch of ``records_dir`` for the poller ``key`` (its index); or why there is none.

    ``mode`` ``auto`` watches folders on local filesystems, ``on`` any (a
    network share's remote writes are then found by the reconciliation
    listing), ``off`` none. A watch that could not be had is tried again
    after ``reconcile_seconds`` (at once for a folder that did not exist).
    """
    if mode not in WATCH_MODES:
        raise ValueError(f"watch mode {mode!r}: one of {', '.join(WATCH_MODES)}")
    if mode == "off":
        return "watching is off"
    root = os.path.realpath(records_dir)
    with _LOCK:
        known = _WATCHES.get((root, key))
        if isinstance(known, FolderWatch):
            _WATCHES[(root, key)] = _WATCHES.pop((root, key))  # most recently used last
            return known
        if known is not None and clock() < known.retry_at:
            return known.reason
        try:
            watch = _new_watch(root, mode, is_record, clock, reconcile_seconds)
        except WatchUnavailable as exc:
            missing = not os.path.isdir(root)
            _WATCHES[(root, key)] = _Unavailable(str(exc), clock() + (0 if missing else reconcile_seconds))
            return str(exc)
        _WATCHES[(root, key)] = watch
        _evict()
        return watch


def _new_watch(
    root: str, mode: str, is_record: RecordName, clock: Callable[[], float], reconcile_seconds: float
) -> FolderWatch:
    if mode == "auto" and (fstype := network_filesystem(root)) is not None:
        raise WatchUnavailable(
            f"the records folder is on {fstype}, where other machines' writes raise no event here "
            "(LABMESH_ELN_WATCH=on watches it anyway)"
        )
    tree = _TREES.get(root)
    if tree is None:
        tree = _Tree(_feed(), root, is_record)
        tree.sync()
        _TREES[root] = tree
    watch = FolderWatch(tree, clock, reconcile_seconds)
    tree.consumers.append(watch)
    return watch


def _evict() -> None:
    watches = [(key, watch) for key, watch in _WATCHES.items() if isinstance(watch, FolderWatch)]
    for key, watch in watches[: max(0, len(watches) - MAX_FOLDERS)]:
        del _WATCHES[key]
        watch.tree.consumers.remove(watch)
        if not watch.tree.consumers:
            watch.tree.close()
            _TREES.pop(watch.tree.root, None)


def forget_all() -> None:
    """Let every watch go, as a new process starts: the next poll of each folder lists it."""
    global _FEED
    with _LOCK:
        for tree in _TREES.values():
            tree.close()
        _TREES.clear()
        _WATCHES.clear()
        if _FEED is not None:
            _FEED.close()
            _FEED = None


def _after_fork() -> None:
    """A forked child must not read the parent's events (it would take them from the parent): it starts afresh."""
    global _FEED, _LOCK
    _LOCK = threading.RLock()
    if _FEED is not None:
        with contextlib.suppress(OSError):
            _FEED.close()  # the child's copy of the descriptor only: the parent's instance lives on
        _FEED = None
    _TREES.clear()
    _WATCHES.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
