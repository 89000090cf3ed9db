"""A hashing reader gives the checksums of every byte, however its consumer reads.

Pinned here: ``read``, ``readinto1`` (into the caller's buffer, from a source
with or without ``readinto``) and ``finish`` on what was left unread all give
the checksums of the whole stream.
"""

from __future__ import annotations

import hashlib
import io

import pytest

from labmesh_dagster.core.checksums import CRC64NVME, SHA256, Hasher, HashingReader

DATA = bytes(range(256)) * 5000


class ReadOnly:
    """A source with nothing but ``read``, like an S3 body."""

    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(min(size, 777) if size > 0 else size)


def expected() -> dict[str, str]:
    hasher = Hasher((SHA256, CRC64NVME))
    hasher.update(DATA)
    return {algorithm: checksum.value for algorithm, checksum in hasher.checksums().items()}


@pytest.mark.parametrize("source", [lambda: io.BufferedReader(io.BytesIO(DATA)), lambda: ReadOnly(DATA)])
def test_reading_into_a_buffer_hashes_what_was_read_and_finish_the_rest(source) -> None:
    reader = HashingReader(source(), (SHA256, CRC64NVME))
    buffer = bytearray(10_000)
    count = reader.readinto1(buffer)
    assert 0 < count <= len(buffer) and bytes(buffer[:count]) == DATA[:count]
    chunk = reader.read(5000)
    assert chunk and chunk == DATA[count : count + len(chunk)]
    checksums = reader.finish()
    assert {algorithm: checksum.value for algorithm, checksum in checksums.items()} == expected()
    assert checksums[SHA256].value == hashlib.sha256(DATA).hexdigest()
