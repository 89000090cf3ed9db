"""The one entry point for metadata extraction: detect a file's format, then summarise it.

``extract`` is called on every file a sensor tick brings in, so it keeps two
promises. It never raises because of what a file contains: a corrupt file comes
back as an :class:`Extraction` whose ``error`` says why, and the other files of
the tick go on. And it reads its stream once, forwards and to the end, so a
caller hashing the bytes through a tee sees every one of them. The only
exceptions that escape are those of the stream itself (a dropped connection),
which say nothing about the file and may deserve a retry.
"""

from __future__ import annotations

import importlib
import io
import mimetypes
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from labmesh_dagster.core.defaults import EXTRACT_SECONDS
from labmesh_dagster.core.errors import ExtractionError
from labmesh_dagster.extract.base import TEXT_LIMIT, Deadline, Extractor, FileContext, SiblingOpener
from labmesh_dagster.extract.compression import (
    CODEC_REASONS,
    COMPRESSION_SUFFIXES,
    HeadStream,
    Readable,
    chain_head,
    codec_error_in_rest,
    open_decompressed,
    read_head,
    sniff_compression,
)
from labmesh_dagster.extract.formats import HEAD_SIZE, detect_format

CHUNK_SIZE = 1024 * 1024

DEFAULT_BUDGET_SECONDS = EXTRACT_SECONDS
"""Time one file may take before its extractor stops and reports a partial summary (LABMESH_EXTRACT_SECONDS)."""

_CODECS = frozenset(COMPRESSION_SUFFIXES.values())

RAW_STREAM_FORMATS = frozenset({"bam", "bcf"})
"""Formats whose extractor reads the file as stored: BGZF blocks are their native form, not a wrapper."""


@dataclass(frozen=True)
class Extraction:
    """What was learnt about one file.

    ``metadata`` holds only JSON types so it can go straight into a manifest
    or the catalog. When ``error`` is set the file is corrupt and ``metadata``
    holds only what was certain before the fault (such as
    ``reads_before_error``). ``partial`` names why a summary covers only part
    of the file (``time_budget``, ``scan_limit``), else None. ``samples`` are
    the sample ids the file itself names; ``text`` is a short, searchable
    rendering.
    """

    format: str
    metadata: dict[str, Any]
    error: ExtractionError | None = None
    text: str = ""
    samples: tuple[str, ...] = ()
    partial: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The extraction as one JSON object, as ``labmesh extract`` prints it."""
        document: dict[str, Any] = {"format": self.format, "metadata": self.metadata, "samples": list(self.samples)}
        if self.partial:
            document["partial"] = self.partial
        if self.error is not None:
            document["error"] = {"reason": self.error.reason, "detail": self.error.detail}
        document["text"] = self.text
        return document


EXTRACTOR_MODULES: dict[str, str] = {
    "fastq": "fastq",
    "fasta": "fasta",
    **dict.fromkeys(("sam", "bam", "cram"), "alignment"),
    **dict.fromkeys(("vcf", "bcf"), "variants"),
    **dict.fromkeys(("illumina_runinfo", "illumina_runparameters", "illumina_samplesheet"), "illumina"),
    **dict.fromkeys(("csv", "tsv", "xlsx"), "tables"),
    "instrument": "instruments",
    "tiff": "images",
    "mzml": "mzml",
    **dict.fromkeys(("json", "md", "text", "xml", "yaml", "html"), "documents"),
    "pdf": "pdf",
}
"""Format name -> the module (of ``labmesh_dagster.extract``) whose ``EXTRACTORS`` has its extractor."""


class _Extractors(Mapping[str, Extractor]):
    """Format name -> extractor, each module imported when a file of one of its formats first comes.

    ``labmesh extract reads.fastq`` then starts without importing the PDF,
    image and alignment libraries, a fifth of a second it would spend before
    reading a byte.
    """

    def __getitem__(self, fmt: str) -> Extractor:
        module = importlib.import_module(f"labmesh_dagster.extract.{EXTRACTOR_MODULES[fmt]}")
        return module.EXTRACTORS[fmt]  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        return iter(EXTRACTOR_MODULES)

    def __len__(self) -> int:
        return len(EXTRACTOR_MODULES)


EXTRACTORS: Mapping[str, Extractor] = _Extractors()
"""Format name (as ``detect_format`` gives it, without codec) -> its extractor; each module lists its own."""


MIME_BY_FORMAT: dict[str, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "zip": "application/zip",
    "xls": "application/vnd.ms-excel",
    "gz": "application/gzip",
    "bz2": "application/x-bzip2",
    "xz": "application/x-xz",
    "zst": "application/zstd",
    "text": "text/plain",
}
"""MIME types of the formats labmesh names from content but has no extractor for."""


def mime_type(name: str, fmt: str) -> str:
    """The MIME type of a file labmesh only describes generically: from its content's format, else its name."""
    known = MIME_BY_FORMAT.get(fmt)
    if known is not None:
        return known
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def _base_format(fmt: str) -> str:
    """The format without its codec: "fastq.gz" -> "fastq"; a bare codec ("gz") stays as it is."""
    base, _, codec = fmt.rpartition(".")
    return base if base and codec in _CODECS else fmt


def _as_extraction_error(exc: Exception, name: str) -> ExtractionError:
    """Give an error raised while reading a file's content a reason code, if it has none yet."""
    if isinstance(exc, ExtractionError):
        return exc
    if isinstance(exc, UnicodeDecodeError):
        return ExtractionError(name, "not_utf8", str(exc))
    return ExtractionError(name, "bad_format", f"{type(exc).__name__}: {exc}")


def _drain(stream: Readable) -> None:
    """Read the rest of the stream, so that a tee on it sees the whole file."""
    while stream.read(CHUNK_SIZE):
        pass


def _no_sibling(_name: str) -> BinaryIO | None:
    return None


def extract(
    stream: BinaryIO,
    name: str,
    *,
    budget_seconds: float | None = DEFAULT_BUDGET_SECONDS,
    open_sibling: SiblingOpener = _no_sibling,
    size: int | None = None,
) -> Extraction:
    """Detect the format of the file in ``stream`` and extract its metadata.

    ``stream`` is read once, forwards, in chunks, and always to its end; it
    is never seeked and never closed. ``name`` gives the suffix and names the
    file in errors. Bad content yields an Extraction with ``error`` set;
    zero bytes yield format "empty" with ``{"empty": True}``. After
    ``budget_seconds`` an extractor stops at its next batch and the result
    is marked ``partial="time_budget"`` (the rest is still read, unparsed).
    ``open_sibling`` lets an extractor use a file stored beside this one
    (an alignment's index). ``size``, the file's stored size when known,
    spares small files the set-up only large ones repay.
    """
    head = read_head(stream, HEAD_SIZE)
    if not head:
        return Extraction(format="empty", metadata={"empty": True})
    fmt = detect_format(name, head)
    extractor = EXTRACTORS.get(_base_format(fmt))
    if extractor is None:
        _drain(stream)
        return Extraction(format=fmt, metadata={"mime_type": mime_type(name, fmt)})
    body: HeadStream = chain_head(head, stream)
    codec = sniff_compression(head) if fmt not in RAW_STREAM_FORMATS else None
    ctx = FileContext(name=name, deadline=Deadline(budget_seconds), open_sibling=open_sibling, codec=codec, size=size)
    error: ExtractionError
    decompressed: BinaryIO | None = None
    try:
        if fmt in RAW_STREAM_FORMATS:
            summary = extractor(io.BufferedReader(body), ctx)  # type: ignore[arg-type]
        else:
            decompressed = open_decompressed(body, name, head=head)
            summary = extractor(decompressed, ctx)
    except Exception as exc:
        if body.failed:
            raise
        error = _as_extraction_error(exc, name)
    else:
        _drain(stream)
        return Extraction(
            format=fmt,
            metadata=summary.metadata,
            text=summary.text[:TEXT_LIMIT],
            samples=summary.samples,
            partial=ctx.partial_reason,
        )
    if decompressed is not None and error.reason not in CODEC_REASONS:
        codec_error = codec_error_in_rest(decompressed)
        if codec_error is not None:
            detail = f"{codec_error.detail} (reading had already failed: {error.reason}: {error.detail})"
            error = ExtractionError(name, codec_error.reason, detail)
    _drain(stream)
    return Extraction(format=fmt, metadata=ctx.partial, error=error)
