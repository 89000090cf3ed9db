"""The object store port: four zones of keyed, immutable-ish blobs.

The port is deliberately S3-shaped (list by prefix, whole-object put, copy,
delete, streaming reads) so that the local directory store and an S3 store
are interchangeable and nothing upstream assumes a file system.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from labmesh_dagster.core.checksums import SHA256, Checksum, stream_checksums
from labmesh_dagster.core.errors import ChecksumMismatch, ObjectNotFound
from labmesh_dagster.core.keys import ObjectKey, Zone

READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or stat tells about an object, without reading it.

    ``etag`` changes whenever the content may have changed; callers use it to
    notice new or rewritten objects cheaply.
    """

    key: ObjectKey
    size: int
    modified: datetime
    etag: str


class ObjectStore(ABC):
    """Keyed storage in four zones."""

    # Whether an object becomes visible only once complete (S3: yes). Where it does not (a
    # folder an instrument writes into), a file is taken only after it stopped changing.
    complete_when_visible: bool = False

    # Objects smaller than this are copied and read on the calling thread: handing them to a worker thread
    # costs more than it saves. Where every read is a round trip (S3), each object gains from company: 0.
    inline_below_bytes: int = 0

    def zone_of(self, bucket: str) -> Zone | None:
        """The zone a bucket holds, or None for a bucket that is not one of ours (or a store without buckets)."""
        return None

    @abstractmethod
    def list(self, zone: Zone, prefix: str = "", *, start_after: str = "") -> Iterator[ObjectInfo]:
        """Every object in ``zone`` whose key starts with ``prefix``, in key order, after ``start_after``.

        ``start_after`` lets a long listing be taken in slices across sensor ticks.
        """

    @abstractmethod
    def stat(self, key: ObjectKey) -> ObjectInfo:
        """Facts about one object; raises `ObjectNotFound`."""

    @abstractmethod
    def open(self, key: ObjectKey) -> AbstractContextManager[BinaryIO]:
        """A streaming reader; raises `ObjectNotFound`."""

    @abstractmethod
    def put(self, key: ObjectKey, data: bytes | BinaryIO) -> ObjectInfo:
        """Write an object whole: readers see the old or the new content, never a mix."""

    @abstractmethod
    def copy(self, source: ObjectKey, destination: ObjectKey, *, if_absent: bool = False) -> ObjectInfo:
        """Copy an object (server-side where the backend can).

        With ``if_absent`` the store itself refuses to replace an existing
        destination (raising `ObjectExists`), so two writers racing for one raw
        key can never both win.
        """

    @abstractmethod
    def delete(self, key: ObjectKey) -> None:
        """Remove an object; removing a missing object is not an error (idempotent)."""

    def delete_if_unchanged(self, key: ObjectKey, etag: str) -> None:
        """Remove an object only if it is still the version with ``etag``, else raise `ChecksumMismatch`.

        Backends with conditional deletes (S3's ``If-Match``) make this atomic; the
        default compares first, which leaves only a moment for a rewrite to slip in.
        """
        try:
            current = self.stat(key).etag
        except ObjectNotFound:
            return
        if current != etag:
            raise ChecksumMismatch(str(key), etag, "the object changed since it was copied")
        self.delete(key)

    @abstractmethod
    def remove_empty_folder(self, zone: Zone, folder: str) -> bool:
        """Remove the folder ``folder`` (a key prefix, no trailing slash) if it holds nothing; True if removed.

        A folder that holds anything is kept, whatever arrives while this
        runs: the local store removes a directory only when the file system
        finds it empty (``rmdir``), and S3 deletes a zero-byte ``folder/``
        marker only after a listing shows nothing else under it (and deleting
        a marker never touches the objects beside it). A folder already gone,
        or never there, is False, not an error, so this is idempotent.
        """

    @abstractmethod
    def provision(self, experiment_id: str) -> dict[Zone, str]:
        """Prepare an experiment's place in every zone; returns each zone's location URI."""

    @abstractmethod
    def uri(self, key: ObjectKey) -> str:
        """Where people and other tools find the object (``file://`` or ``s3://``)."""

    @abstractmethod
    def location(self, zone: Zone, experiment_id: str) -> str:
        """URI of an experiment's folder in a zone."""

    def move(self, source: ObjectKey, destination: ObjectKey) -> ObjectInfo:
        """Move an object, deleting the source only once the copy hashes the same.

        Backends that can rename atomically override this; the default is the
        verified copy-then-delete every object store supports.
        """
        before = self.stat(source)
        expected = self.checksum(source)
        info = self.copy(source, destination)
        actual = self.checksum(destination, expected.algorithm)
        if actual != expected:
            self.delete(destination)
            raise ChecksumMismatch(str(source), str(expected), str(actual))
        try:
            self.delete_if_unchanged(source, before.etag)
        except ChecksumMismatch:
            # Rewritten while we copied: the copy is of an older version, so the source must stay.
            self.delete(destination)
            raise
        return info

    def exists(self, key: ObjectKey) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def checksum(self, key: ObjectKey, algorithm: str | None = None) -> Checksum:
        """The object's checksum in ``algorithm``, or in whichever the store has at hand when None.

        The default streams the object (memory stays flat whatever the size);
        stores that keep checksums of their own (S3) answer from those without
        reading, so a copy is compared with its original in the algorithm the
        original's answer names.
        """
        wanted = algorithm or SHA256
        with self.open(key) as stream:
            return stream_checksums(stream, (wanted,))[wanted]

    def sha256(self, key: ObjectKey) -> str:
        return self.checksum(key, SHA256).value

    def read_bytes(self, key: ObjectKey) -> bytes:
        """Whole content of a small object (manifests, records); never use for data files."""
        with self.open(key) as stream:
            return stream.read()
