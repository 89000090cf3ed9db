"""A one-way stream offered to htslib (pysam) through an OS pipe, watched on its way in.

htslib reads only from paths and file descriptors, while the streams here are
one-way (an S3 body) and cannot be seeked or reopened. :class:`HtsPipe`
therefore has a thread copy the stream into an OS pipe that htslib opens as
``/dev/fd/N``, so memory stays at a pipe buffer whatever the file size.

The same thread hands the raw bytes to watchers as they pass (BGZF block
boundaries and the end-of-file block, the last bytes, line numbers), because
pysam calls nearly every fault "truncated file": what the watchers saw is what
tells a file that was cut short from one with garbage inside, and gives a bad
line its number. Used by :mod:`labmesh_dagster.extract.alignment` (SAM, BAM,
CRAM) and :mod:`labmesh_dagster.extract.variants` (VCF, BCF).
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, Protocol

import pysam

from labmesh_dagster.extract.base import Deadline, FileContext
from labmesh_dagster.extract.compression import chain_head, read_head

PIPE_CHUNK = 256 * 1024
"""Bytes copied into the pipe at a time; with the pipe's own buffer this is all the memory a file costs."""

BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
"""The empty BGZF block every complete BAM and BCF ends with (SAM specification, 4.1.2)."""

_GZIP_MAGIC = b"\x1f\x8b"


class Watcher(Protocol):
    """Something that looks at the raw bytes on their way into the pipe."""

    def feed(self, chunk: bytes) -> None: ...


def _bgzf_block_size(header: bytes) -> int | None:
    """The total size of the BGZF block whose gzip header (with all its extra fields) is ``header``, else None."""
    if len(header) < 12 or header[:3] != b"\x1f\x8b\x08" or not header[3] & 0x04:
        return None
    extra_end = 12 + int.from_bytes(header[10:12], "little")
    position = 12
    while position + 4 <= min(extra_end, len(header)):
        length = int.from_bytes(header[position + 2 : position + 4], "little")
        if header[position : position + 2] == b"BC" and length == 2 and position + 6 <= len(header):
            size = int.from_bytes(header[position + 4 : position + 6], "little") + 1
            return size if size >= extra_end + 8 else None
        position += 4 + length
    return None


class BgzfBlocks:
    """Follows BGZF block boundaries in raw bytes as they pass, without inflating anything.

    htslib reports data cut short and garbage after the header alike; where
    the blocks stop making sense, and whether the stream ended on a block
    boundary right after the empty end-of-file block, is what tells them apart.
    """

    def __init__(self) -> None:
        self.offset = 0
        self.invalid_at: int | None = None
        self._block_start = 0
        self._block_end = 0
        self._header = bytearray()
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        start = self.offset
        self.offset += len(chunk)
        self._tail = (self._tail + chunk[-len(BGZF_EOF) :])[-len(BGZF_EOF) :]
        position = max(0, self._block_end - start)
        while self.invalid_at is None and position < len(chunk):
            needed = self._header_length()
            taken = chunk[position : position + needed - len(self._header)]
            self._header += taken
            position += len(taken)
            if len(self._header) < needed:
                continue
            if self._header_length() > needed:
                continue  # the fixed part named the length of the extra fields: collect them too
            size = _bgzf_block_size(bytes(self._header))
            if size is None:
                self.invalid_at = self._block_start
                break
            self._block_start = self._block_end = self._block_start + size
            self._header.clear()
            position = self._block_end - start

    def _header_length(self) -> int:
        """12 bytes of fixed gzip header, then its extra fields once a BGZF-like fixed part says how long."""
        fixed = self._header[:12]
        if len(fixed) < 12 or fixed[:3] != b"\x1f\x8b\x08" or not fixed[3] & 0x04:
            return 12
        return 12 + int.from_bytes(fixed[10:12], "little")

    @property
    def ended_on_boundary(self) -> bool:
        return not self._header and self.offset == self._block_end

    @property
    def ends_with_eof_block(self) -> bool:
        """True when the bytes seen so far end with a whole empty EOF block, as a complete file does."""
        return self.invalid_at is None and self.ended_on_boundary and self._tail == BGZF_EOF


class Tail:
    """Keeps the last bytes that passed (a CRAM's end-of-file container)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data = b""

    def feed(self, chunk: bytes) -> None:
        self.data = (self.data + chunk[-self.size :])[-self.size :]


class TextLines:
    """Counts the lines of a text format as they pass, and the header lines (those starting ``prefix``) first.

    htslib numbers neither; with them a bad record becomes "line 1234", and a
    fault on a last line without its newline becomes "truncated".
    """

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.header_lines = 0
        self.newlines = 0
        self.last_byte = b""
        self._in_header = True
        self._at_line_start = True

    def feed(self, chunk: bytes) -> None:
        self.newlines += chunk.count(b"\n")
        self.last_byte = chunk[-1:]
        position = 0
        while self._in_header and position < len(chunk):
            if self._at_line_start and not chunk.startswith(self.prefix, position):
                self._in_header = False
                break
            end = chunk.find(b"\n", position)
            if end < 0:
                self._at_line_start = False
                break
            self.header_lines += 1
            self._at_line_start = True
            position = end + 1

    def line_of_record(self, records_before: int) -> int:
        """The 1-based line number of the record after ``records_before`` good ones."""
        return self.header_lines + records_before + 1

    def is_cut_last_line(self, line: int) -> bool:
        """True when ``line`` is the final line of the data seen and has no newline."""
        return self.last_byte not in (b"", b"\n") and line == self.newlines + 1


class HtsPipe:
    """A one-way stream offered to htslib as ``/dev/fd/N``, copied into an OS pipe by a thread.

    The writer never outlives :meth:`close`: htslib may stop reading anywhere
    (a bounded scan, a fault) and may even keep its own descriptor of the pipe
    open, so ``close`` reads and discards what is left in the pipe until the
    writer has seen the stop and closed its end; nothing can block for good.
    With ``read_rest`` the writer then reads the stream on to its end (until
    the deadline) so the watchers see every byte. An error of the stream
    itself (a dropped connection, a corrupt gzip under a SAM) is kept and
    raised by ``close`` as it was, ahead of whatever htslib made of the gap.
    """

    def __init__(self, stream: BinaryIO, watchers: Iterable[Watcher] = (), deadline: Deadline | None = None) -> None:
        self._stream = stream
        self._watchers = tuple(watchers)
        self._deadline = deadline or Deadline(None)
        self._read_fd, self._write_fd = os.pipe()
        self._stop = threading.Event()
        self._read_rest = False
        self._closed = False
        self.reached_end = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._copy, name="labmesh-hts-pipe", daemon=True)
        self._thread.start()

    @property
    def path(self) -> str:
        """The path htslib opens to read the stream."""
        return f"/dev/fd/{self._read_fd}"

    def _copy(self) -> None:
        write_fd: int | None = self._write_fd
        try:
            while True:
                if self._stop.is_set():
                    if write_fd is not None:
                        os.close(write_fd)
                        write_fd = None
                    if not self._read_rest or self._deadline.expired():
                        return
                chunk = self._stream.read(PIPE_CHUNK)
                if not chunk:
                    self.reached_end = True
                    return
                for watcher in self._watchers:
                    watcher.feed(chunk)
                if write_fd is not None and not self._stop.is_set():
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(write_fd, view) :]
        except BaseException as exc:  # handed to the reading thread by close()
            self.error = exc
        finally:
            if write_fd is not None:
                os.close(write_fd)

    def close(self, *, read_rest: bool = False) -> None:
        """Stop feeding htslib, wait for the writer, and raise the stream's own error if it had one."""
        if self._closed:
            return
        self._closed = True
        self._read_rest = read_rest
        self._stop.set()
        try:
            while os.read(self._read_fd, 64 * 1024):
                pass
        finally:
            os.close(self._read_fd)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def message(self, exc: BaseException, name: str) -> str:
        """pysam's message for a fault, naming the file instead of the pipe it was read from."""
        return str(exc).replace(f"b'{self.path}'", name).replace(self.path, name)

    def __enter__(self) -> HtsPipe:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@contextlib.contextmanager
def quiet_htslib() -> Iterator[None]:
    """Silence htslib's own messages on stderr; its faults still reach us as exceptions from pysam."""
    previous = pysam.get_verbosity()
    pysam.set_verbosity(0)
    try:
        yield
    finally:
        pysam.set_verbosity(previous)


def close_quietly(handle: Any) -> None:
    """Close a pysam reader; closing one only repeats a read fault already met and classified."""
    with contextlib.suppress(OSError):
        handle.close()


def checked_start(stream: BinaryIO, ctx: FileContext, magic: bytes, label: str) -> tuple[BinaryIO, bool]:
    """Check that a BAM or BCF starts as one (BGZF around ``magic``, or bare ``magic``); return it and whether BGZF.

    Detection sends any gzip named ``.bam`` here, so a gzip holding something
    else is refused as ``bad_magic`` and plain gzip (not BGZF, which htslib
    cannot read from a pipe) as ``bad_format``, before htslib sees a byte.
    """
    head = read_head(stream, 64 * 1024)
    rest: BinaryIO = io.BufferedReader(chain_head(head, stream))  # type: ignore[arg-type]
    if not head.startswith(_GZIP_MAGIC):
        if head.startswith(magic):
            return rest, False
        raise ctx.error("bad_magic", f"not {label}: it starts with {head[:4]!r}, neither BGZF nor {magic!r}")
    try:
        inner = zlib.decompressobj(wbits=31).decompress(head, len(magic))
    except zlib.error as exc:
        raise ctx.error("bad_gzip", f"the first gzip block does not inflate: {exc}") from exc
    if not inner.startswith(magic):
        raise ctx.error("bad_magic", f"gzip data that is not {label}: it inflates to {inner[: len(magic)]!r}")
    if _bgzf_block_size(head[:65536]) is None:
        raise ctx.error("bad_format", f"{label} compressed with plain gzip instead of BGZF blocks")
    return rest, True


def shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
