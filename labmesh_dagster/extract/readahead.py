"""Running a stream's reader one step ahead in a background thread, so two cores share the work.

Decompression (isal, zlib, bz2, lzma), socket reads and numpy's scans all
release the GIL, so a thread that keeps a couple of items ready lets them run
while the caller works on the previous item. The queue is short, which bounds
memory to a few items; an error in the thread is re-raised, as the same
exception, where the caller takes the next item, after the items produced
before it, so a dropped connection still looks like a dropped connection and
no good data is lost to it.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from labmesh_dagster.extract.compression import Readable

QUEUE_DEPTH = 2
_PUT_TIMEOUT = 0.1

Item = TypeVar("Item")


class Ahead(Generic[Item]):
    """Items of an iterator produced by a background thread; ``close`` stops it and waits for it."""

    def __init__(self, source: Iterator[Item], depth: int = QUEUE_DEPTH) -> None:
        self._source = source
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name="labmesh-read-ahead", daemon=True)
        self._thread.start()

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_PUT_TIMEOUT)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._source:
                if not self._put(("item", item)):
                    return
        except BaseException as exc:  # handed to the consumer, who decides what it means
            self._put(("error", exc))
            return
        self._put(("end", None))

    def __iter__(self) -> Iterator[Item]:
        return self

    def __next__(self) -> Item:
        if self._done:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == "item":
            return value  # type: ignore[no-any-return]
        self._done = True
        self._thread.join()
        if kind == "error":
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop producing and wait for the thread, so the stream is the caller's alone again."""
        self._stop.set()
        self._thread.join()
        self._done = True


@contextmanager
def ahead(source: Iterator[Item], depth: int = QUEUE_DEPTH) -> Iterator[Ahead[Item]]:
    """The items of ``source``, produced one step ahead in a thread that is always stopped on leaving."""
    producer = Ahead(source, depth)
    try:
        yield producer
    finally:
        producer.close()


def _pieces(stream: Readable, first: int, largest: int) -> Iterator[bytes]:
    """The stream in pieces that grow from ``first`` to ``largest`` bytes.

    Small first pieces keep what precedes an early fault (a decoder loses
    the output of the read it fails in); large later ones spare calls.
    """
    read = getattr(stream, "read1", stream.read)
    size = first
    while piece := read(size):
        yield piece
        size = min(size * 4, largest)


class AheadStream(io.RawIOBase):
    """A readable stream whose source is read (and, for a decoder, inflated) in a background thread."""

    def __init__(self, stream: Readable, first_piece: int = 64 * 1024, largest_piece: int = 4 * 1024 * 1024) -> None:
        super().__init__()
        self._ahead: Ahead[bytes] = Ahead(_pieces(stream, first_piece, largest_piece), depth=4)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._pending:
            self._pending = memoryview(next(self._ahead, b""))
        view = memoryview(buffer).cast("B")
        count = min(len(view), len(self._pending))
        view[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def close(self) -> None:
        self._ahead.close()
        super().close()
