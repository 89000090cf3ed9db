"""Content checksums by algorithm, so two copies of a file can be compared without reading either.

labmesh's own checksum is SHA-256, computed whenever it reads a file. S3 keeps
a checksum of its own for every object, and for multipart objects the only one
that covers the whole object (rather than its parts) is a CRC (CRC64NVME,
CRC32, CRC32C) of type ``FULL_OBJECT``. Comparing a copy with its original in
whichever algorithm both carry is what lets a promotion be verified by two
HEAD requests instead of two downloads; a `Checksum` names its algorithm so a
SHA-256 is never compared with a CRC.

Values are lowercase hex of the big-endian digest in every algorithm (S3 sends
base64 of the same bytes).
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

SHA256 = "sha256"
SHA1 = "sha1"
CRC64NVME = "crc64nvme"
CRC32 = "crc32"
CRC32C = "crc32c"
ALGORITHMS = (SHA256, SHA1, CRC64NVME, CRC32, CRC32C)
READ_CHUNK = 1024 * 1024

# Name of each algorithm in S3's API (``ChecksumAlgorithm``, ``Checksum<NAME>`` members).
S3_NAMES = {SHA256: "SHA256", SHA1: "SHA1", CRC64NVME: "CRC64NVME", CRC32: "CRC32", CRC32C: "CRC32C"}
# CRCs combine across parts, so S3 can keep them for a whole multipart object; SHAs cannot.
FULL_OBJECT_CAPABLE = frozenset({CRC64NVME, CRC32, CRC32C})


@dataclass(frozen=True, order=True)
class Checksum:
    """A digest with the name of the algorithm that made it, written ``algorithm:hex``."""

    algorithm: str
    value: str

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown checksum algorithm {self.algorithm!r}; known: {', '.join(ALGORITHMS)}")

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.value}"

    @classmethod
    def parse(cls, text: str) -> Checksum:
        """``algorithm:hex``; a bare 64-digit hex string is a SHA-256 (manifests written before algorithms)."""
        algorithm, separator, value = text.partition(":")
        if not separator:
            return cls(SHA256, text.lower())
        return cls(algorithm.lower(), value.lower())

    @classmethod
    def from_s3(cls, s3_name: str, base64_value: str) -> Checksum:
        algorithm = next(name for name, s3 in S3_NAMES.items() if s3 == s3_name)
        return cls(algorithm, base64.b64decode(base64_value).hex())


class _Crc:
    """A running CRC with the hashlib-like interface the hasher needs."""

    def __init__(self, update: Callable[[bytes, int], int], width_bytes: int) -> None:
        self._update = update
        self._width = width_bytes
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = self._update(data, self._value)

    def hexdigest(self) -> str:
        return self._value.to_bytes(self._width, "big").hex()


def _new(algorithm: str) -> hashlib._Hash | _Crc:
    if algorithm in (CRC64NVME, CRC32C):
        # Imported on first use: loading awscrt's native library costs tens of milliseconds that
        # SHA-256 alone (``labmesh extract``, the sync agent) never needs.
        from awscrt import checksums as crt

        return _Crc(crt.crc64nvme, 8) if algorithm == CRC64NVME else _Crc(crt.crc32c, 4)
    if algorithm == CRC32:
        return _Crc(zlib.crc32, 4)
    return hashlib.new(algorithm)


class Hasher:
    """Several checksums of one stream in one pass (reading is the cost; a CRC on top is nearly free)."""

    def __init__(self, algorithms: Iterable[str] = (SHA256,)) -> None:
        self._digests = {algorithm: _new(algorithm) for algorithm in dict.fromkeys(algorithms)}

    def update(self, data: bytes) -> None:
        for digest in self._digests.values():
            digest.update(data)

    def checksums(self) -> dict[str, Checksum]:
        return {algorithm: Checksum(algorithm, digest.hexdigest()) for algorithm, digest in self._digests.items()}


class HashingReader:
    """A reader that hashes what passes through it, so one pass gives both a consumer's result and checksums.

    Extraction reads a file once; hashing through this tee spares reading it
    again. ``finish`` hashes whatever the consumer left unread.
    """

    def __init__(self, stream: BinaryIO, algorithms: Iterable[str] = (SHA256,)) -> None:
        self._stream = stream
        self._hasher = Hasher(algorithms)

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self._hasher.update(chunk)
        return chunk

    def readinto1(self, buffer: bytearray | memoryview) -> int:
        """Read straight into the caller's buffer where the source allows, hashing it there: no copy made."""
        view = memoryview(buffer).cast("B")
        readinto = getattr(self._stream, "readinto1", None) or getattr(self._stream, "readinto", None)
        if readinto is None:
            data = self._stream.read(len(view))
            count = len(data)
            view[:count] = data
        else:
            count = readinto(view)
        self._hasher.update(view[:count])  # type: ignore[arg-type]
        return count

    def readable(self) -> bool:
        return True

    def finish(self) -> dict[str, Checksum]:
        while self.read(READ_CHUNK):
            pass
        return self._hasher.checksums()


def stream_checksums(stream: BinaryIO, algorithms: Iterable[str] = (SHA256,)) -> dict[str, Checksum]:
    """Checksums of everything left in ``stream``; memory stays flat whatever its size."""
    hasher = Hasher(algorithms)
    while chunk := stream.read(READ_CHUNK):
        hasher.update(chunk)
    return hasher.checksums()
