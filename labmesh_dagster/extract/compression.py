"""Transparent decompression of a binary stream that can be read only once.

Lab files arrive as streams from the store (an S3 body, a socket, a pipe) that
cannot seek, so the codec is chosen by peeking at the first bytes and chaining
them back in front of the rest instead of rewinding. Every codec error is turned
into an :class:`ExtractionError` at the point of reading, so that a parser
further down (dnaio, csv, json) never has to know which codec was in play, and
a corrupt file is reported with a stable reason code rather than a library's
own exception type.
"""

from __future__ import annotations

import bz2
import gzip
import importlib
import io
import lzma
import zlib
from types import ModuleType
from typing import BinaryIO, Protocol

from isal import igzip, isal_zlib

from labmesh_dagster.core.errors import ExtractionError

MAGIC_LENGTH = 6
"""Bytes needed to recognise every supported codec (xz has the longest magic)."""

COMPRESSION_SUFFIXES: dict[str, str] = {
    ".gz": "gz",
    ".bgz": "gz",
    ".bz2": "bz2",
    ".xz": "xz",
    ".zst": "zst",
}
"""File name suffix -> codec name; codec names double as the suffix of compound formats."""

_REASONS: dict[str, str] = {"gz": "bad_gzip", "bz2": "bad_bzip2", "xz": "bad_xz", "zst": "bad_zstd"}


class Readable(Protocol):
    """The one method labmesh needs from a source: ``read(n)`` returning bytes."""

    def read(self, size: int = -1, /) -> bytes | None: ...


def sniff_compression(head: bytes) -> str | None:
    """Name the codec whose magic number starts ``head`` ("gz", "bz2", "xz", "zst"), else None.

    bzip2 also needs the block-size digit after ``BZh``, so that a text file
    which happens to start with "BZh" is not taken for a compressed one.
    """
    if head.startswith(b"\x1f\x8b"):
        return "gz"
    if head.startswith(b"BZh") and head[3:4].isdigit() and head[3:4] != b"0":
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zst"
    return None


def strip_compression_suffix(name: str) -> str:
    """Drop one compression suffix (``reads.fastq.gz`` -> ``reads.fastq``); other names are kept."""
    lowered = name.lower()
    for suffix in COMPRESSION_SUFFIXES:
        if lowered.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_head(stream: Readable, size: int) -> bytes:
    """Read up to ``size`` bytes, looping because a pipe or socket may return short reads."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


class HeadStream(io.RawIOBase):
    """A stream whose first bytes were already read, played back before the rest.

    This is how a one-pass stream is "rewound": the caller keeps what it peeked
    at and chains it back. ``failed`` records that the underlying stream itself
    raised, which lets callers tell an I/O failure (not the file's fault, may
    be retried) from corrupt content (reported as an ExtractionError).
    Closing it never closes the underlying stream, which belongs to the caller.
    """

    def __init__(self, head: bytes, stream: Readable) -> None:
        super().__init__()
        self._head = head
        self._offset = 0
        self._stream = stream
        self.failed = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._offset < len(self._head):
            count = min(len(view), len(self._head) - self._offset)
            view[:count] = self._head[self._offset : self._offset + count]
            self._offset += count
            return count
        # readinto1 / read1 where the source has them: straight into the caller's buffer, and a
        # buffered decoder hands over what it has inflated so far instead of losing it to an error.
        readinto = getattr(self._stream, "readinto1", None)
        if readinto is None and isinstance(self._stream, io.RawIOBase):
            readinto = self._stream.readinto  # a raw stream's readinto returns what one read gave
        try:
            if readinto is not None:
                return readinto(view)  # type: ignore[no-any-return]
            data = getattr(self._stream, "read1", self._stream.read)(len(view))
        except BaseException:
            self.failed = True
            raise
        if not data:
            return 0
        view[: len(data)] = data
        return len(data)


def chain_head(head: bytes, stream: Readable) -> HeadStream:
    """Put bytes already read from ``stream`` back in front of it."""
    return HeadStream(head, stream)


class _CheckedStream(io.RawIOBase):
    """Reads from a decoder and turns its errors into ExtractionError with a reason code.

    An error is only blamed on the data when the source stream did not fail:
    bz2, for one, reports corrupt data as a bare OSError, which would otherwise
    be indistinguishable from a network error on the source.
    """

    def __init__(
        self,
        decoder: BinaryIO,
        source: HeadStream,
        codec: str,
        name: str,
        errors: tuple[type[BaseException], ...],
    ) -> None:
        super().__init__()
        self._decoder = decoder
        self._source = source
        self._codec = codec
        self._name = name
        self._errors = errors

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            return self._decoder.readinto(buffer)  # type: ignore[attr-defined,no-any-return]
        except ExtractionError:
            raise
        except EOFError as exc:
            if self._source.failed:
                raise
            raise ExtractionError(
                self._name, "truncated", f"{self._codec} data ends before its end marker: {exc}"
            ) from exc
        except self._errors as exc:
            if self._source.failed:
                raise
            raise ExtractionError(self._name, _REASONS[self._codec], str(exc) or type(exc).__name__) from exc


def _import_optional(module: str) -> ModuleType | None:
    """Import a module by name, or None; importlib honours ``sys.modules[name] = None`` in tests."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _zstd_decoder(source: BinaryIO, name: str) -> tuple[BinaryIO, tuple[type[BaseException], ...]]:
    """Open a zstd reader with whichever library is present.

    The stdlib API (``compression.zstd`` from Python 3.14, ``backports.zstd``
    before) comes first because it reads across frames and raises EOFError on
    truncation like the other codecs; ``zstandard`` is the fallback.
    """
    for module_name in ("compression.zstd", "backports.zstd"):
        module = _import_optional(module_name)
        if module is not None:
            return module.ZstdFile(source), (module.ZstdError,)
    zstandard = _import_optional("zstandard")
    if zstandard is not None:
        reader = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True)
        return reader, (zstandard.ZstdError,)
    raise ExtractionError(
        name, "unsupported_compression", "zstd data needs zstandard or backports.zstd, neither is installed"
    )


def _open_decoder(codec: str, source: BinaryIO, name: str) -> tuple[BinaryIO, tuple[type[BaseException], ...]]:
    """Open the decoder for ``codec`` with the exception types that mean corrupt data."""
    if codec == "gz":
        # isal's reader runs through every member of a multi-member gzip (BGZF,
        # concatenated lanes) just as the stdlib does, only several times faster.
        decoder: BinaryIO = igzip.IGzipFile(fileobj=source, mode="rb")  # type: ignore[assignment]
        # isal types its `error` as an instance in its stubs, though it is the exception class.
        corrupt: tuple[type[BaseException], ...] = (gzip.BadGzipFile, isal_zlib.error, zlib.error, OSError)  # type: ignore[assignment]
        return decoder, corrupt
    if codec == "bz2":
        return bz2.BZ2File(source), (OSError, ValueError)  # type: ignore[return-value]
    if codec == "xz":
        return lzma.LZMAFile(source), (lzma.LZMAError,)  # type: ignore[return-value]
    return _zstd_decoder(source, name)


def open_decompressed(stream: Readable, name: str, head: bytes | None = None) -> BinaryIO:
    """Return a buffered binary stream of the decompressed bytes of ``stream``.

    The codec is chosen from the magic number, never from the name, because
    lab files are renamed freely and the bytes do not lie. ``head`` is for a
    caller that has already seen the first bytes of ``stream`` *without
    consuming them* (for instance, it chained them back): it spares a peek.
    Without ``head`` the first bytes are read and chained back, so ``stream``
    is read strictly forwards and never seeked.

    Reads of the result raise ExtractionError with reason ``truncated``,
    ``bad_gzip``, ``bad_bzip2``, ``bad_xz`` or ``bad_zstd`` when the data is
    corrupt; opening a zstd stream without a zstd library raises
    ``unsupported_compression``. Uncompressed data passes through unchanged.
    """
    if head is None:
        magic = read_head(stream, MAGIC_LENGTH)
        source = HeadStream(magic, stream)
    else:
        magic = head[:MAGIC_LENGTH]
        source = HeadStream(b"", stream)
    codec = sniff_compression(magic)
    if codec is None:
        return io.BufferedReader(source)  # type: ignore[return-value]
    decoder, errors = _open_decoder(codec, io.BufferedReader(source), name)  # type: ignore[arg-type]
    return io.BufferedReader(_CheckedStream(decoder, source, codec, name, errors))  # type: ignore[return-value]


def _inflate_zstd_head(data: bytes, limit: int) -> bytes | None:
    """Inflate the start of a zstd stream, or None when no zstd library is present."""
    for module_name in ("compression.zstd", "backports.zstd"):
        module = _import_optional(module_name)
        if module is not None:
            return module.ZstdDecompressor().decompress(data, max_length=limit)  # type: ignore[no-any-return]
    zstandard = _import_optional("zstandard")
    if zstandard is not None:
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)[:limit]  # type: ignore[no-any-return]
    return None


def decompress_head(codec: str, head: bytes, limit: int) -> bytes | None:
    """Inflate the start of a compressed head, at most ``limit`` bytes, or None when that is impossible.

    Used by format detection to look inside a compressed file from its first
    bytes alone. None means "cannot tell" (corrupt start, missing library, or a
    bzip2 block longer than the head, since bzip2 emits nothing before a block
    is complete), and the caller then falls back on the file name.
    """
    data: bytes | None
    try:
        if codec == "gz":
            data = zlib.decompressobj(wbits=31).decompress(head, limit)
        elif codec == "bz2":
            data = bz2.BZ2Decompressor().decompress(head, max_length=limit)
        elif codec == "xz":
            data = lzma.LZMADecompressor().decompress(head, max_length=limit)
        else:
            data = _inflate_zstd_head(head, limit)
    except Exception:  # any codec error here only means "the name must decide"
        return None
    return data or None


CODEC_REASONS = frozenset({"truncated", "unsupported_compression", *_REASONS.values()})
"""Reason codes that blame the compressed container rather than what it holds."""


def codec_error_in_rest(stream: BinaryIO) -> ExtractionError | None:
    """Read the rest of a stream from :func:`open_decompressed` and return the codec's error, if any.

    Corrupt compressed data usually decodes to garbage before the codec
    notices (a gzip CRC is only checked at the end of a member), so a parser
    fails first with a misleading "bad format". Reading on to the codec's own
    verdict names the real cause. Errors of the source stream still escape.
    """
    try:
        while stream.read(1024 * 1024):
            pass
    except ExtractionError as exc:
        return exc
    except ValueError:  # the stream was closed by the parser: nothing more to learn
        return None
    return None
