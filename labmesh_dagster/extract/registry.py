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

import codecs
import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import dnaio

from labmesh_dagster.core.errors import ExtractionError
from labmesh_dagster.extract.compression import (
    CODEC_REASONS,
    COMPRESSION_SUFFIXES,
    HeadStream,
    Readable,
    chain_head,
    codec_error_in_rest,
    open_decompressed,
    read_head,
)
from labmesh_dagster.extract.fastq import FastqStats, accumulate_fastq
from labmesh_dagster.extract.formats import HEAD_SIZE, detect_format

TEXT_LIMIT = 2000
"""Most characters kept as an Extraction's searchable text."""

JSON_PARSE_LIMIT = 8 * 1024 * 1024
"""JSON larger than this (decompressed) is not parsed: json.loads holds the whole document in memory."""

CHUNK_SIZE = 1024 * 1024
MAX_CSV_LINE = 1024 * 1024
MAX_JSON_KEYS = 200
MAX_CSV_COLUMNS = 1000
FASTA_BATCH = 10000

_CODECS = frozenset(COMPRESSION_SUFFIXES.values())


@dataclass(frozen=True)
class Extraction:
    """What was learnt about one file.

    ``metadata`` holds only JSON types so it can go straight into a manifest
    or the catalog. When ``error`` is set the file is corrupt and ``metadata``
    holds only what was certain before the fault (such as
    ``reads_before_error``). ``text`` is a short, searchable rendering.
    """

    format: str
    metadata: dict[str, Any]
    error: ExtractionError | None = None
    text: str = ""


Handler = Callable[[BinaryIO, str, dict[str, Any]], tuple[dict[str, Any], str]]
"""A format's summariser: (decompressed stream, name, partial facts) -> (metadata, text).

It records in ``partial`` what stays true if it then raises ExtractionError.
"""


def _extract_fastq(stream: BinaryIO, name: str, partial: dict[str, Any]) -> tuple[dict[str, Any], str]:
    stats = FastqStats()
    try:
        accumulate_fastq(stream, name, stats)
    except ExtractionError:
        partial["reads_before_error"] = stats.reads
        raise
    summary = stats.summary()
    text = (
        f"FASTQ reads={summary['reads']} bases={summary['bases']} "
        f"mean_length={summary['mean_length']} gc_percent={summary['gc_percent']}"
    )
    return summary, text


def _extract_fasta(stream: BinaryIO, name: str, partial: dict[str, Any]) -> tuple[dict[str, Any], str]:
    records = 0
    total_length = 0
    gc = 0
    batch: list[str] = []

    def fold() -> None:
        nonlocal records, total_length, gc
        joined = "".join(batch).encode("ascii", "replace")
        records += len(batch)
        total_length += len(joined)
        gc += sum(joined.count(base) for base in (b"G", b"C", b"g", b"c"))
        batch.clear()

    try:
        for record in dnaio.open(stream, fileformat="fasta"):  # type: ignore[call-overload]
            batch.append(record.sequence)
            if len(batch) >= FASTA_BATCH:
                fold()
    except (ExtractionError, dnaio.FastaFormatError, UnicodeDecodeError):
        partial["records_before_error"] = records
        raise
    fold()
    gc_percent = round(100 * gc / total_length, 2) if total_length else None
    metadata = {"records": records, "total_length": total_length, "gc_percent": gc_percent}
    return metadata, f"FASTA records={records} total_length={total_length} gc_percent={gc_percent}"


def _extract_text(stream: BinaryIO, name: str, partial: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Count lines and keep the first characters, validating UTF-8 as it goes."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines = 0
    consumed = 0
    last = b""
    snippet = ""
    while chunk := stream.read(CHUNK_SIZE):
        pending = len(decoder.getstate()[0])
        try:
            decoded = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            partial["lines_before_error"] = newlines + chunk[: max(exc.start - pending, 0)].count(b"\n")
            offset = consumed - pending + exc.start
            raise ExtractionError(name, "not_utf8", f"invalid UTF-8 at byte {offset}: {exc.reason}") from exc
        if len(snippet) < TEXT_LIMIT:
            snippet += decoded[: TEXT_LIMIT - len(snippet)]
        newlines += chunk.count(b"\n")
        consumed += len(chunk)
        last = chunk[-1:]
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        partial["lines_before_error"] = newlines
        raise ExtractionError(name, "not_utf8", f"a UTF-8 character is cut off at byte {consumed}") from exc
    lines = newlines + (1 if last not in (b"", b"\n") else 0)
    return {"lines": lines, "encoding": "utf-8"}, snippet.removeprefix("\ufeff")


def _bounded_lines(text: io.TextIOBase, name: str, snippet: list[str]) -> Iterator[str]:
    """Yield lines of at most MAX_CSV_LINE characters, so one endless line cannot fill memory."""
    kept = 0
    while line := text.readline(MAX_CSV_LINE):
        if len(line) == MAX_CSV_LINE and not line.endswith("\n"):
            raise ExtractionError(name, "bad_format", f"a line is longer than {MAX_CSV_LINE} characters")
        if kept < TEXT_LIMIT:
            snippet.append(line[: TEXT_LIMIT - kept])
            kept += len(snippet[-1])
        yield line


def _extract_table(delimiter: str) -> Handler:
    """A handler reading the header and counting rows of a delimited file."""

    def handler(stream: BinaryIO, name: str, partial: dict[str, Any]) -> tuple[dict[str, Any], str]:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict", newline="")  # type: ignore[type-var]
        snippet: list[str] = []
        rows = 0
        header: list[str] = []
        try:
            reader = csv.reader(_bounded_lines(text, name, snippet), delimiter=delimiter)
            header = next(reader, [])
            for row in reader:
                if row:
                    rows += 1
        except ExtractionError:
            partial["rows_before_error"] = rows
            raise
        except UnicodeDecodeError as exc:
            partial["rows_before_error"] = rows
            raise ExtractionError(name, "not_utf8", str(exc)) from exc
        except csv.Error as exc:
            partial["rows_before_error"] = rows
            raise ExtractionError(name, "bad_format", str(exc)) from exc
        metadata = {
            "columns": header[:MAX_CSV_COLUMNS],
            "column_count": len(header),
            "rows": rows,
            "encoding": "utf-8",
        }
        return metadata, "".join(snippet)

    return handler


def _json_shape(value: object) -> dict[str, Any]:
    """Describe a parsed JSON document by its top-level type (and keys or length)."""
    if isinstance(value, dict):
        return {"type": "object", "keys": list(value)[:MAX_JSON_KEYS], "key_count": len(value)}
    if isinstance(value, list):
        return {"type": "array", "length": len(value)}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, (int, float)):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    return {"type": "null"}


def _extract_json(stream: BinaryIO, name: str, partial: dict[str, Any]) -> tuple[dict[str, Any], str]:
    data = read_head(stream, JSON_PARSE_LIMIT + 1)
    if len(data) > JSON_PARSE_LIMIT:
        snippet = codecs.getincrementaldecoder("utf-8")("replace").decode(data[: TEXT_LIMIT * 4])
        return {"parsed": False}, snippet[:TEXT_LIMIT].removeprefix("\ufeff")
    try:
        document = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ExtractionError(name, "not_utf8", f"invalid UTF-8 at byte {exc.start}: {exc.reason}") from exc
    try:
        value = json.loads(document)
    except json.JSONDecodeError as exc:
        raise ExtractionError(name, "bad_format", f"invalid JSON: {exc}") from exc
    return {"parsed": True, **_json_shape(value)}, document[:TEXT_LIMIT]


_HANDLERS: dict[str, Handler] = {
    "fastq": _extract_fastq,
    "fasta": _extract_fasta,
    "text": _extract_text,
    "md": _extract_text,
    "yaml": _extract_text,
    "csv": _extract_table(","),
    "tsv": _extract_table("\t"),
    "json": _extract_json,
}


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


def extract(stream: BinaryIO, name: str) -> Extraction:
    """Detect the format of the file in ``stream`` and extract its metadata.

    ``stream`` is read once, forwards, in chunks, and always to its end; it
    is never seeked and never closed. ``name`` gives the suffix and names the
    file in errors. Bad content yields an Extraction with ``error`` set;
    zero bytes yield format "empty" with ``{"empty": True}``.
    """
    head = read_head(stream, HEAD_SIZE)
    if not head:
        return Extraction(format="empty", metadata={"empty": True})
    fmt = detect_format(name, head)
    handler = _HANDLERS.get(_base_format(fmt))
    if handler is None:
        _drain(stream)
        return Extraction(format=fmt, metadata={})
    body: HeadStream = chain_head(head, stream)
    partial: dict[str, Any] = {}
    error: ExtractionError
    decompressed: BinaryIO | None = None
    try:
        decompressed = open_decompressed(body, name, head=head)
        metadata, text = handler(decompressed, name, partial)
    except Exception as exc:
        if body.failed:
            raise
        error = _as_extraction_error(exc, name)
    else:
        _drain(stream)
        return Extraction(format=fmt, metadata=metadata, text=text[:TEXT_LIMIT])
    if decompressed is not None and error.reason not in CODEC_REASONS:
        codec_error = codec_error_in_rest(decompressed)
        if codec_error is not None:
            detail = f"{codec_error.detail} (reading had already failed: {error.reason}: {error.detail})"
            error = ExtractionError(name, codec_error.reason, detail)
    _drain(stream)
    return Extraction(format=fmt, metadata=partial, error=error)
