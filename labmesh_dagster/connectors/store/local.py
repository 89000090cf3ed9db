"""The local object store: one directory per zone under a root.

Writes go to a temporary file under ``<root>/.tmp`` and are renamed into
place, so a reader (or a sensor listing the zone) never sees half a file and a
crash leaves no partial object behind. The temporary directory sits beside the
zones on the same file system so that the rename is atomic.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat as statmod
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from labmesh_dagster.connectors.store.base import READ_CHUNK, ObjectInfo, ObjectStore
from labmesh_dagster.core.errors import InvalidObjectKey, ObjectExists, ObjectNotFound
from labmesh_dagster.core.keys import ObjectKey, Zone


class LocalObjectStore(ObjectStore):
    """Zones as directories: ``<root>/<zone>/<experiment_id>/<relative path>``."""

    # A small file's copy, fsync and parse take less than a thread's hand-off and its contention for the GIL
    # (11 MB of tiny files went slower on two threads); above this, a second file's disk waits overlap the
    # first one's parsing.
    inline_below_bytes = 64 * 1024

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self._zone_roots = {zone: self.root / zone.value for zone in Zone}
        self._resolved_zones: dict[Zone, str] = {}

    def zone_root(self, zone: Zone) -> Path:
        return self._zone_roots[Zone(zone)]

    def _resolved_zone(self, zone: Zone) -> str:
        """The zone's real path, looked up once: every key's path is checked against it."""
        if zone not in self._resolved_zones:
            self._resolved_zones[zone] = os.path.realpath(self.zone_root(zone))
        return self._resolved_zones[zone]

    def path(self, key: ObjectKey) -> Path:
        zone_root = self.zone_root(key.zone)
        path = zone_root / key.path
        # ObjectKey already refuses '..'; this guards against symlinked escapes. Only a symlink below the
        # zone can lead out of it, so the full resolution runs only when the key's own folders hold one:
        # resolving every call costs a stat of each folder from '/', a tenth of a promotion's CPU.
        if _symlink_below(zone_root, key.path):
            real, zone = os.path.realpath(path), self._resolved_zone(key.zone)
            if real != zone and not real.startswith(zone + os.sep):
                raise InvalidObjectKey(f"{key} resolves outside its zone")
        return path

    def _info(self, key: ObjectKey, stat: os.stat_result) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=stat.st_size,
            modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
            etag=f"{stat.st_mtime_ns:x}-{stat.st_size:x}-{stat.st_ino:x}",
        )

    def list(self, zone: Zone, prefix: str = "", *, start_after: str = "") -> Iterator[ObjectInfo]:
        zone_root = self.zone_root(zone)
        # Walk only the directory the prefix names, not the whole zone.
        start = zone_root / prefix.rsplit("/", 1)[0] if "/" in prefix else zone_root
        if not start.is_dir():
            return
        found: list[tuple[str, os.stat_result]] = []
        for directory, dirnames, filenames in os.walk(start):
            dirnames.sort()
            for filename in filenames:
                path = Path(directory, filename)
                key = path.relative_to(zone_root).as_posix()
                if not key.startswith(prefix) or key <= start_after:
                    continue
                try:
                    stat = path.lstat()
                except FileNotFoundError:  # removed while we walked
                    continue
                # Only regular files are objects: a symlink may point anywhere (even outside the
                # store) and a FIFO would block its reader forever, so neither is ever taken.
                if statmod.S_ISREG(stat.st_mode):
                    found.append((key, stat))
        for key, stat in sorted(found):
            yield self._info(ObjectKey(zone, key), stat)

    def stat(self, key: ObjectKey) -> ObjectInfo:
        path = self.path(key)
        try:
            stat = path.lstat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(str(key)) from exc
        if not statmod.S_ISREG(stat.st_mode):
            raise ObjectNotFound(str(key))
        return self._info(key, stat)

    def open(self, key: ObjectKey) -> AbstractContextManager[BinaryIO]:
        try:
            return self.path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(str(key)) from exc

    def _write_atomically(self, key: ObjectKey, source: BinaryIO | bytes, *, if_absent: bool = False) -> ObjectInfo:
        destination = self.path(key)
        destination.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = self.root / ".tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="put-")
        try:
            with os.fdopen(handle, "wb") as out:
                if isinstance(source, bytes):
                    out.write(source)
                else:
                    shutil.copyfileobj(source, out, READ_CHUNK)
                out.flush()
                os.fsync(out.fileno())
            # mkstemp creates 0600; a lab's shared store wants the usual 0644.
            os.chmod(tmp_name, 0o644)
            if if_absent:
                # link() never replaces: of two writers racing for one name, exactly one succeeds.
                try:
                    _into_place(os.link, tmp_name, destination)
                except FileExistsError as exc:
                    raise ObjectExists(str(key)) from exc
                finally:
                    Path(tmp_name).unlink(missing_ok=True)
            else:
                _into_place(os.replace, tmp_name, destination)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return self.stat(key)

    def put(self, key: ObjectKey, data: bytes | BinaryIO) -> ObjectInfo:
        return self._write_atomically(key, data)

    def copy(self, source: ObjectKey, destination: ObjectKey, *, if_absent: bool = False) -> ObjectInfo:
        with self.open(source) as stream:
            return self._write_atomically(destination, stream, if_absent=if_absent)

    def move(self, source: ObjectKey, destination: ObjectKey) -> ObjectInfo:
        """A rename: atomic and instant on one file system, so a sensor can quarantine a huge file in its tick."""
        self.stat(source)  # a regular file, or ObjectNotFound
        source_path, destination_path = self.path(source), self.path(destination)
        destination_path.parent.mkdir(parents=True, exist_ok=True)
        _into_place(os.replace, source_path, destination_path)
        return self.stat(destination)

    def delete(self, key: ObjectKey) -> None:
        # Emptied folders are left in place: an instrument may be about to write into them.
        with contextlib.suppress(NotADirectoryError, IsADirectoryError):  # no object has this key
            self.path(key).unlink(missing_ok=True)

    def remove_empty_folder(self, zone: Zone, folder: str) -> bool:
        """``rmdir``: the file system itself refuses a directory that holds anything, even one file just made."""
        try:
            os.rmdir(self.path(ObjectKey(zone, folder)))
        except InvalidObjectKey:
            return False  # a symlink out of the zone: not ours to remove
        except OSError as exc:
            # Not empty (ENOTEMPTY, or EEXIST on some systems), already gone, or not a directory (a file, a symlink).
            if exc.errno in {errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT, errno.ENOTDIR}:
                return False
            raise
        return True

    def provision(self, experiment_id: str) -> dict[Zone, str]:
        locations = {}
        for zone in Zone:
            folder = self.zone_root(zone) / ObjectKey.for_experiment(zone, experiment_id, "x").first_segment
            folder.mkdir(parents=True, exist_ok=True)
            locations[zone] = folder.as_uri() + "/"
        return locations

    def uri(self, key: ObjectKey) -> str:
        return self.path(key).as_uri()

    def location(self, zone: Zone, experiment_id: str) -> str:
        return (self.zone_root(zone) / ObjectKey.for_experiment(zone, experiment_id, "x").first_segment).as_uri() + "/"


def _symlink_below(zone_root: Path, relative: str) -> bool:
    """Whether a segment of ``relative`` under ``zone_root`` is a symlink; segments that do not exist are not."""
    current = str(zone_root)
    for segment in relative.split("/"):
        current = os.path.join(current, segment)
        try:
            if statmod.S_ISLNK(os.lstat(current).st_mode):
                return True
        except (FileNotFoundError, NotADirectoryError):
            return False
    return False


def _into_place(place: Callable[[str | Path, Path], None], source: str | Path, destination: Path) -> None:
    """Rename or link ``source`` to ``destination``, making its folder again if it was removed meanwhile.

    Promotion removes the landing folders it emptied, and a folder a writer
    has just made is empty until the writer's rename lands in it: the writer
    makes it again rather than failing.
    """
    for attempt in range(3):
        try:
            place(source, destination)
            return
        except FileNotFoundError:
            if attempt == 2 or not os.path.lexists(source):
                raise
            destination.parent.mkdir(parents=True, exist_ok=True)
