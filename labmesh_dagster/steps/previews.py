"""Bounded previews of a stored file: what the portal shows of it, never the whole file.

A preview reads the start of the object and stops: at most `PREVIEW_BYTES`
of decompressed data, and of a compressed object only as much as those bytes
take, so a 40 GB FASTQ costs what a small one does. What is shown depends on
the format the extractor recorded:

- FASTQ: the first reads (name, sequence, qualities);
- CSV, TSV: a table head, the delimiter sniffed as the extractor does;
- XLSX: a table head of the first sheet (read only when the file is small
  enough to open, since a workbook is a zip whose directory is at its end);
- VCF: the header lines and the first records;
- PDF: the first pages' text (same size bound as workbooks);
- other text: the first lines;
- anything else: a hex dump of the head.

Text is decoded leniently (undecodable bytes replaced) and every value is
returned as plain text: escaping is the page's job, and the portal's templates
escape everything.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.errors import ExtractionError
from labmesh_dagster.core.keys import ObjectKey
from labmesh_dagster.extract.compression import open_decompressed

PREVIEW_BYTES = 256 * 1024
"""Decompressed bytes read at most for one preview."""
WHOLE_FILE_LIMIT = 16 * 1024 * 1024
"""Workbooks and PDFs must be read whole to be opened: larger ones get no preview, and say so."""
MAX_READS = 8
MAX_ROWS = 20
MAX_COLUMNS = 30
MAX_LINES = 40
MAX_CELL = 200
HEX_BYTES = 512

TEXT_FORMATS = frozenset({"txt", "json", "yaml", "yml", "xml", "html", "md", "log", "fasta", "fa", "sam", "gff", "bed"})


@dataclass(frozen=True)
class Read:
    name: str
    sequence: str
    qualities: str


@dataclass(frozen=True)
class Preview:
    """What a page shows of a file; ``kind`` picks the layout, ``truncated`` says there is more."""

    kind: str
    reads: tuple[Read, ...] = ()
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    lines: tuple[str, ...] = ()
    truncated: bool = False
    note: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def format_family(fmt: str) -> str:
    """``fastq.gz`` -> ``fastq``: the format without its compression."""
    return fmt.lower().split(".", 1)[0] if fmt else ""


def preview_object(store: ObjectStore, key: ObjectKey, fmt: str, size: int) -> Preview:
    """A bounded preview of the object at ``key``, recorded as ``fmt``, of ``size`` bytes."""
    family = format_family(fmt)
    try:
        if family in {"xlsx", "pdf"}:
            if size > WHOLE_FILE_LIMIT:
                return Preview("none", note=f"no preview: a {family.upper()} is opened whole, and this one is large")
            with store.open(key) as stream:
                data = stream.read(WHOLE_FILE_LIMIT + 1)
            return _workbook(data) if family == "xlsx" else _pdf(data)
        with store.open(key) as stream:
            if family not in {"fastq", "csv", "tsv", "vcf", *TEXT_FORMATS}:
                return _hex(stream.read(HEX_BYTES), size)
            head, more = _decompressed_head(stream, key.name)
    except ExtractionError as exc:
        return Preview("none", note=f"no preview: {exc}")
    if family == "fastq":
        return _reads(head, more)
    if family in {"csv", "tsv"}:
        return _table(head, more, "\t" if family == "tsv" else ",")
    if family == "vcf":
        return _vcf(head, more)
    return _text(head, more)


def _decompressed_head(stream: BinaryIO, name: str) -> tuple[bytes, bool]:
    """The first `PREVIEW_BYTES` of the decompressed stream, and whether there is more."""
    data = open_decompressed(stream, name).read(PREVIEW_BYTES + 1)
    return data[:PREVIEW_BYTES], len(data) > PREVIEW_BYTES


def _lines(head: bytes, more: bool) -> tuple[list[str], bool]:
    """Whole lines of the head (a line cut by the bound is dropped), and whether there is more."""
    text = head.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if more and lines and not text.endswith("\n"):
        lines.pop()
    return lines, more


def _clip(value: str) -> str:
    return value if len(value) <= MAX_CELL else value[:MAX_CELL] + "…"


def _reads(head: bytes, more: bool) -> Preview:
    lines, more = _lines(head, more)
    reads: list[Read] = []
    for start in range(0, len(lines) - 3, 4):
        name, sequence, plus, qualities = lines[start : start + 4]
        if not name.startswith("@") or not plus.startswith("+"):
            return Preview("text", lines=tuple(lines[:MAX_LINES]), note="not FASTQ records: the file's first lines")
        reads.append(Read(name[1:], sequence, qualities))
        if len(reads) == MAX_READS:
            return Preview("reads", reads=tuple(reads), truncated=True)
    return Preview("reads", reads=tuple(reads), truncated=more)


def _table(head: bytes, more: bool, default: str) -> Preview:
    lines, more = _lines(head, more)
    sample = lines[: MAX_ROWS + 1]
    try:
        delimiter = csv.Sniffer().sniff("\n".join(sample[:10]), delimiters=",\t;").delimiter
    except csv.Error:
        delimiter = default
    rows = [tuple(_clip(cell) for cell in row[:MAX_COLUMNS]) for row in csv.reader(sample, delimiter=delimiter)]
    if not rows:
        return Preview("table", note="the file is empty")
    return Preview("table", header=rows[0], rows=tuple(rows[1:]), truncated=more or len(lines) > len(sample))


def _vcf(head: bytes, more: bool) -> Preview:
    lines, more = _lines(head, more)
    meta = [line for line in lines if line.startswith("##")]
    columns = next((line.lstrip("#").split("\t") for line in lines if line.startswith("#CHROM")), [])
    records = [line for line in lines if line and not line.startswith("#")]
    rows = tuple(tuple(_clip(cell) for cell in line.split("\t")[:MAX_COLUMNS]) for line in records[:MAX_ROWS])
    return Preview(
        "vcf",
        header=tuple(columns[:MAX_COLUMNS]),
        rows=rows,
        lines=tuple(_clip(line) for line in meta[:MAX_LINES]),
        truncated=more or len(records) > MAX_ROWS or len(meta) > MAX_LINES,
    )


def _text(head: bytes, more: bool) -> Preview:
    lines, more = _lines(head, more)
    return Preview(
        "text", lines=tuple(_clip(line) for line in lines[:MAX_LINES]), truncated=more or len(lines) > MAX_LINES
    )


def _hex(head: bytes, size: int) -> Preview:
    def rows() -> Iterator[str]:
        for offset in range(0, len(head), 16):
            chunk = head[offset : offset + 16]
            shown = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in chunk)
            yield f"{offset:08x}  {chunk.hex(' '):<47}  {shown}"

    return Preview("hex", lines=tuple(rows()), truncated=size > len(head))


def _workbook(data: bytes) -> Preview:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged workbook
        return Preview("none", note=f"no preview: the workbook cannot be opened ({type(exc).__name__})")
    try:
        sheet = book.worksheets[0]
        rows = [
            tuple(_clip("" if cell is None else str(cell)) for cell in row[:MAX_COLUMNS])
            for row in sheet.iter_rows(max_row=MAX_ROWS + 1, values_only=True)
        ]
        name = sheet.title
    finally:
        book.close()
    if not rows:
        return Preview("table", note="the first sheet is empty")
    truncated = (sheet.max_row or 0) > MAX_ROWS + 1
    return Preview("table", header=rows[0], rows=tuple(rows[1:]), truncated=truncated, extra={"sheet": name})


def _pdf(data: bytes) -> Preview:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages[:3]]
    except (PdfReadError, ValueError, KeyError) as exc:
        return Preview("none", note=f"no preview: the PDF cannot be read ({type(exc).__name__})")
    lines = [line for page in pages for line in page.splitlines()]
    return Preview(
        "text",
        lines=tuple(_clip(line) for line in lines[:MAX_LINES]),
        truncated=len(reader.pages) > 3 or len(lines) > MAX_LINES,
        note=f"text of the first pages of {len(reader.pages)}",
    )
