"""Tables: delimited text (CSV, TSV) and Excel workbooks, summarised by their columns, rows and samples.

Lab instruments write tables the way their Windows PC is set up: UTF-8 with
or without a BOM, UTF-16 with a BOM, Windows-1252, and ``;`` as the delimiter
wherever the decimal mark is a comma, all behind a ``.csv`` suffix. So the
encoding is chosen from the first bytes, the delimiter is sniffed from the
first lines, and a file is refused only when it is not text at all. Text is
decoded and split into lines here rather than by ``TextIOWrapper`` so that
UTF-8 which turns out to be Windows-1252 halfway through can switch codecs
instead of failing, and so that every line is bounded in length: memory stays
flat whatever the size.

The column naming the samples is found by its header, so that a plate layout
or a results table links to the samples it is about.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any, BinaryIO

from labmesh_dagster.extract.base import (
    MAX_SAMPLES,
    TEXT_LIMIT,
    Extractor,
    FileContext,
    Summary,
    spooled,
    unique_samples,
)
from labmesh_dagster.extract.compression import read_head

MAX_CSV_LINE = 1024 * 1024
"""Longest line, in characters: one endless line must not fill memory."""

MAX_CSV_COLUMNS = 1000
"""Most column names kept in metadata; ``column_count`` still tells the full width."""

MAX_SHEETS = 100
"""Most workbook sheets described one by one; ``sheet_names`` lists them all."""

HEAD_SIZE = 64 * 1024
"""Bytes the encoding is chosen from."""

CHUNK_SIZE = 64 * 1024

SNIFF_LINES = 40
SNIFF_CHARS = 32 * 1024
"""The delimiter is sniffed from at most this many first lines and characters: enough to see it repeat."""

DELIMITERS = ",;\t|"

DEADLINE_EVERY = 10_000
"""Rows read between two looks at the time budget."""

BINARY_CONTROL_SHARE = 0.01
"""Share of control characters (other than tab, newlines, form feed, DOS end of file) above which bytes are not text."""

_TEXT_CONTROLS = frozenset(b"\t\n\r\x0b\x0c\x1a\x1b")
_CONTROLS = frozenset(range(32)) - _TEXT_CONTROLS | {0x7F}
_LINE_END = re.compile(r"\r\n|\r|\n")

SAMPLE_COLUMN_NAMES = (
    "sampleid",
    "samplename",
    "sample",
    "samplecode",
    "samplelabel",
    "sampleidentifier",
    "specimenid",
    "specimen",
    "biosampleid",
    "biosample",
)
"""Header names of a sample id column, lower case without spaces or punctuation, best first."""

_UTF8 = ("utf-8", "utf-8-sig")
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def _normalised(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def sample_column(header: Sequence[object]) -> int | None:
    """The index of the column naming samples (``Sample_ID``, ``sample name``, ``Specimen`` ...), or None."""
    names = [_normalised(str(cell)) if cell is not None else "" for cell in header]
    for wanted in SAMPLE_COLUMN_NAMES:
        if wanted in names:
            return names.index(wanted)
    return None


def _is_binary(head: bytes) -> bool:
    """NUL bytes or many control characters: no text encoding written by a lab instrument looks like that."""
    if b"\x00" in head:
        return True
    controls = sum(1 for byte in head if byte in _CONTROLS)
    return controls > BINARY_CONTROL_SHARE * len(head)


def choose_encoding(head: bytes) -> tuple[str, int] | None:
    """The encoding the first bytes show and the length of their byte order mark, or None if they are not text.

    A BOM decides (UTF-8, UTF-16 LE or BE); else UTF-8 if the head decodes as
    such (a character cut at its end allowed), else Windows-1252, else
    Latin-1 when bytes undefined in Windows-1252 show up.
    """
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding, len(bom)
    if _is_binary(head):
        return None
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8", 0
    try:
        head.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1", 0
    return "cp1252", 0


class TextDecoder:
    """Decodes a byte stream chunk by chunk in the chosen encoding.

    UTF-8 that meets a byte sequence it cannot be (an ``é`` saved by Excel
    on Windows, after 64 KiB of ASCII) switches to Windows-1252 from that byte
    on rather than failing: ``encoding`` then says "cp1252" and
    ``fallback_at`` the offset (after any BOM) where the switch happened.
    UTF-16 that does not decode raises ``UnicodeDecodeError``.
    """

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.fallback_at: int | None = None
        self._utf8 = encoding in _UTF8
        codec = "cp1252" if self._utf8 else encoding
        self._decoder = codecs.getincrementaldecoder(codec)("replace" if codec == "cp1252" else "strict")
        self._pending = b""
        self._consumed = 0

    def decode(self, data: bytes, final: bool = False) -> str:
        if not self._utf8:
            return self._decoder.decode(data, final)
        data = self._pending + data
        try:
            text, used = codecs.utf_8_decode(data, "strict", final)
        except UnicodeDecodeError as exc:
            self._utf8 = False
            self.encoding = "cp1252"
            self.fallback_at = self._consumed + exc.start
            self._pending = b""
            return data[: exc.start].decode("utf-8") + self._decoder.decode(data[exc.start :], final)
        self._pending = data[used:]
        self._consumed += used
        return text


def decode_all(data: bytes, ctx: FileContext) -> tuple[str, str]:
    """Decode a small text file held whole (a sample sheet) as a table would be: its text and the encoding used."""
    chosen = choose_encoding(data[:HEAD_SIZE])
    if chosen is None:
        raise ctx.error("bad_format", "not text: NUL bytes or control characters where text was expected")
    encoding, bom = chosen
    decoder = TextDecoder(encoding)
    try:
        text = decoder.decode(data[bom:], final=True)
    except UnicodeDecodeError as exc:
        raise ctx.error("bad_format", f"invalid {encoding} at byte {exc.start + bom}: {exc.reason}") from exc
    return text, decoder.encoding


class _Lines:
    """The lines of a decoded stream, each at most MAX_CSV_LINE characters, keeping the first characters as text.

    Lines end at ``\\r\\n``, ``\\n`` or a lone ``\\r`` (old Mac Excel) and keep
    their ending, as the csv module expects of a file opened with
    ``newline=""``.
    """

    def __init__(self, stream: BinaryIO, head: bytes, decoder: TextDecoder, ctx: FileContext) -> None:
        self._stream = stream
        self._head = head
        self._decoder = decoder
        self._ctx = ctx
        self.snippet: list[str] = []
        self._kept = 0

    def _texts(self) -> Iterator[str]:
        yield self._decoder.decode(self._head)
        while chunk := self._stream.read(CHUNK_SIZE):
            yield self._decoder.decode(chunk)
        yield self._decoder.decode(b"", final=True)

    def _keep(self, line: str) -> str:
        if len(line) > MAX_CSV_LINE:
            raise self._ctx.error("bad_format", f"a line is longer than {MAX_CSV_LINE} characters")
        if self._kept < TEXT_LIMIT:
            self.snippet.append(line[: TEXT_LIMIT - self._kept])
            self._kept += len(self.snippet[-1])
        return line

    def __iter__(self) -> Iterator[str]:
        pending = ""
        for text in self._texts():
            pending += text
            start = 0
            for match in _LINE_END.finditer(pending):
                if match.group() == "\r" and match.end() == len(pending):
                    break  # perhaps the first half of a \r\n cut between two chunks
                yield self._keep(pending[start : match.end()])
                start = match.end()
            pending = pending[start:]
            if len(pending) > MAX_CSV_LINE:
                raise self._ctx.error("bad_format", f"a line is longer than {MAX_CSV_LINE} characters")
        if pending:
            yield self._keep(pending)


def sniff_delimiter(lines: Sequence[str], default: str) -> str:
    """The delimiter of the first lines among ``, ; tab |``, or ``default`` when they do not show one.

    ``csv.Sniffer`` guesses from how consistently a character repeats per
    physical line; its guess is kept only if the header line holds it, since
    a delimiter that does not split the header is no delimiter. It gives up
    on a quoted field spanning lines or on decimal commas beside ``;``, so
    then each candidate is tried with the csv parser itself, and the one that
    splits the header widest and the most rows as wide as the header wins.
    """
    sample = "".join(lines)
    header = next((line for line in lines if line.strip()), "")
    try:
        guessed = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        pass
    else:
        if guessed in header:
            return guessed
    best, best_score = default, (0.0, 1)
    for delimiter in DELIMITERS:
        rows = [row for row in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter) if row]
        width = len(rows[0]) if rows else 0
        share = sum(len(row) == width for row in rows[1:]) / max(len(rows) - 1, 1)
        if width > 1 and (share, width) > best_score:
            best, best_score = delimiter, (share, width)
    return best


def _add_sample(samples: dict[str, None], value: str) -> None:
    if value := value.strip():
        samples[value] = None


def _head_lines(lines: Iterator[str]) -> list[str]:
    taken: list[str] = []
    size = 0
    for line in lines:
        taken.append(line)
        size += len(line)
        if len(taken) >= SNIFF_LINES or size >= SNIFF_CHARS:
            break
    return taken


def delimited(default_delimiter: str) -> Extractor:
    """An extractor for delimited text whose delimiter is sniffed, ``default_delimiter`` when it cannot be."""

    def extract_table(stream: BinaryIO, ctx: FileContext) -> Summary:
        head = read_head(stream, HEAD_SIZE)
        chosen = choose_encoding(head)
        if chosen is None:
            raise ctx.error("bad_format", "not text: NUL bytes or control characters where a table was expected")
        encoding, bom = chosen
        decoder = TextDecoder(encoding)
        lines = _Lines(stream, head[bom:], decoder, ctx)
        rows = ragged = 0
        header: list[str] = []
        column: int | None = None
        samples: dict[str, None] = {}
        try:
            line_iterator = iter(lines)
            first = _head_lines(line_iterator)
            delimiter = sniff_delimiter(first, default_delimiter)
            ctx.partial["delimiter"] = delimiter
            reader = csv.reader(chain(first, line_iterator), delimiter=delimiter)
            header = next((row for row in reader if row), [])
            column = sample_column(header)
            ctx.partial["columns"] = header[:MAX_CSV_COLUMNS]
            for row in reader:
                if not row:
                    continue
                rows += 1
                ragged += len(row) != len(header)
                if column is not None and column < len(row) and len(samples) < MAX_SAMPLES:
                    _add_sample(samples, row[column])
                if rows % DEADLINE_EVERY == 0 and ctx.deadline.expired():
                    ctx.stop_early("time_budget")
                    break
        except Exception as exc:
            ctx.partial.update(rows_before_error=rows, encoding=decoder.encoding)
            if isinstance(exc, UnicodeDecodeError):
                raise ctx.error("bad_format", f"invalid {decoder.encoding} after {rows} rows: {exc.reason}") from exc
            if isinstance(exc, csv.Error):
                raise ctx.error("bad_format", f"{exc} (after {rows} rows)") from exc
            raise
        metadata: dict[str, Any] = {
            "columns": header[:MAX_CSV_COLUMNS],
            "column_count": len(header),
            "rows": rows,
            "encoding": decoder.encoding,
            "delimiter": delimiter,
            "sample_column": header[column] if column is not None else None,
            "ragged_rows": ragged,
        }
        if decoder.fallback_at is not None:
            metadata["encoding_fallback_at_byte"] = decoder.fallback_at + bom
        return Summary(metadata=metadata, text="".join(lines.snippet), samples=unique_samples(list(samples)))

    return extract_table


def _cell_text(value: object) -> str:
    return "" if value is None else str(value)


def _trimmed(row: Iterable[object]) -> list[str]:
    """A row's cells as text, without the empty cells read-only openpyxl pads it with on the right."""
    cells = [_cell_text(value) for value in row]
    while cells and not cells[-1].strip():
        cells.pop()
    return cells


class _SheetScan:
    """One worksheet read row by row: header, row count, sample column and values, first rows as text."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.header: list[str] | None = None
        self.rows = 0
        self.column: int | None = None
        self.samples: dict[str, None] = {}
        self.text = ""

    def add(self, row: list[str]) -> None:
        if self.header is None:
            self.header = row
            self.column = sample_column(row)
        else:
            self.rows += 1
            if self.column is not None and self.column < len(row) and len(self.samples) < MAX_SAMPLES:
                _add_sample(self.samples, row[self.column])
        if len(self.text) < TEXT_LIMIT:
            self.text += ("\t".join(row) + "\n")[: TEXT_LIMIT - len(self.text)]

    def describe(self, dimensions: str | None) -> dict[str, Any]:
        header = self.header or []
        described: dict[str, Any] = {"name": self.name}
        if dimensions:
            described["dimensions"] = dimensions
        described.update(
            rows=self.rows,
            columns=header[:MAX_CSV_COLUMNS],
            column_count=len(header),
            sample_column=header[self.column] if self.column is not None else None,
        )
        return described


def _dimensions(sheet: Any) -> str | None:
    """The cell range a sheet declares (``A1:F97``), if it declares one."""
    try:
        dimensions = sheet.calculate_dimension()
    except (ValueError, AttributeError):
        return None
    return str(dimensions) if dimensions else None


def _open_workbook(path: Any, ctx: FileContext) -> Any:
    # openpyxl is imported here so that reading a CSV never pays for it.
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except zipfile.BadZipFile as exc:
        if "not a zip file" in str(exc):
            raise ctx.error(
                "truncated", f"the zip directory at the end of the workbook is missing, it is probably cut short: {exc}"
            ) from exc
        raise ctx.error("bad_format", f"broken zip archive: {exc}") from exc
    except (KeyError, InvalidFileException) as exc:
        raise ctx.error("bad_format", f"a zip archive but not an Excel workbook: {exc}") from exc


def extract_xlsx(stream: BinaryIO, ctx: FileContext) -> Summary:
    """Sheet names, and per worksheet its declared range, header, row count and sample column.

    A workbook is a zip, read from its end, so it is spooled to a temporary
    file; openpyxl's read-only mode then streams each sheet's rows. Samples
    come from the first sheet with a sample column.
    """
    with spooled(stream, ctx, ".xlsx") as path:
        workbook = _open_workbook(path, ctx)
        try:
            return _summarise_workbook(workbook, ctx)
        except (zipfile.BadZipFile, zlib.error, EOFError, SyntaxError) as exc:
            # SyntaxError: both the standard library's and lxml's XML parse errors derive from it.
            raise ctx.error("bad_format", f"a part of the workbook is broken: {type(exc).__name__}: {exc}") from exc
        finally:
            workbook.close()


def _summarise_workbook(workbook: Any, ctx: FileContext) -> Summary:
    names = [str(name) for name in workbook.sheetnames]
    ctx.partial["sheet_names"] = names
    sheets: list[dict[str, Any]] = []
    text = ""
    samples: tuple[str, ...] = ()
    sample_sheet: str | None = None
    rows_read = 0
    for name in names[:MAX_SHEETS]:
        sheet = workbook[name]
        if not hasattr(sheet, "iter_rows"):
            sheets.append({"name": name, "kind": "chartsheet"})
            continue
        scan = _SheetScan(name)
        dimensions = _dimensions(sheet)
        # Forget the declared range: rows are then not padded to its width, and the
        # gaps a stray cell in row 1,048,576 leaves cost nothing.
        sheet.reset_dimensions()
        for values in sheet.iter_rows(values_only=True):
            rows_read += 1
            if rows_read % DEADLINE_EVERY == 0 and ctx.deadline.expired():
                ctx.stop_early("time_budget")
                break
            if row := _trimmed(values):
                scan.add(row)
        sheets.append(scan.describe(dimensions))
        if scan.text and len(text) < TEXT_LIMIT:
            text += f"[{name}]\n{scan.text}"
        if sample_sheet is None and scan.column is not None:
            sample_sheet = name
            samples = unique_samples(list(scan.samples))
        if ctx.partial_reason is not None:
            break
    metadata: dict[str, Any] = {
        "sheet_names": names,
        "sheet_count": len(names),
        "sheets": sheets,
        "sample_sheet": sample_sheet,
    }
    return Summary(metadata=metadata, text=text[:TEXT_LIMIT], samples=samples)


EXTRACTORS: dict[str, Extractor] = {"csv": delimited(","), "tsv": delimited("\t"), "xlsx": extract_xlsx}
