"""A file's extracted content cut into passages that remember where in the file they came from.

Search by meaning compares a question with passages of a few sentences, not
with whole files (one vector for a 40-page report says little about any page),
and the chat cites the place: a PDF's page, a table's rows, a Markdown
section, a text file's lines, a field of the extracted metadata. A short file
is kept whole.

The chunker reads only what extraction kept (``ManifestEntry.text``, at most a
few thousand characters, and the metadata): nothing is read from the store
again, so publishing stays as bounded as it was. The structure comes from that
text: PDF pages are separated by form feeds (``\\f``, as pdftotext writes
them), a delimited table's snippet is its header and first rows, a workbook's
names each sheet as ``[name]``, Markdown keeps its headings.

Passages stay under the embedding model's 256 word pieces (about 150 words of
lab text, whose ids and numbers cost several pieces each); prose passages
overlap by one short sentence or line, so a statement cut at a boundary is
still whole in one of them. Table passages repeat the header instead, so each
reads on its own.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labmesh_dagster.core.passages import LocationKind, Passage, PassageLocation

MAX_WORDS = 150
"""Most words in a passage: about 200-250 word pieces of lab text, under the model's 256."""

TARGET_WORDS = 110
"""A passage is closed once it holds this many words (units are not cut to reach it)."""

OVERLAP_WORDS = 40
"""A unit (sentence or line) at most this long is repeated at the start of the next passage."""

FIELD_WORDS = 60
"""Small metadata fields are gathered into one passage up to this many words."""

PAGE_BREAK = "\f"
"""Between the pages of a PDF's extracted text."""

TABLE_FORMATS = frozenset({"csv", "tsv"})
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[\"'(\[]?[A-Z0-9])")
_WORD = re.compile(r"\w+")
_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SHEET = re.compile(r"^\[(.+)\]$")


@dataclass(frozen=True)
class _Unit:
    """A piece no passage splits: a line, or a sentence of a long line; ``line`` counts from 1."""

    text: str
    line: int

    @property
    def words(self) -> int:
        return word_count(self.text)


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def base_format(fmt: str) -> str:
    """The format without a compression codec: ``csv.gz`` -> ``csv``."""
    return fmt.split(".", 1)[0]


def chunk_file(
    document_id: str,
    *,
    fmt: str,
    text: str,
    fields: Sequence[tuple[str, str]] = (),
    metadata: Mapping[str, Any] | None = None,
) -> list[Passage]:
    """The passages of one file: its text's (by the format's structure), then its metadata fields'.

    ``fields`` are the extracted metadata as ``(name, rendered text)``, in
    the order they are shown; ``metadata`` the raw extracted metadata, read
    for structure only (a table's delimiter, a PDF's page count).
    """
    metadata = metadata or {}
    pieces = [*text_chunks(text, base_format(fmt), metadata), *field_chunks(fields)]
    return [Passage(document_id, ordinal, piece, location) for ordinal, (piece, location) in enumerate(pieces)]


def text_chunks(text: str, fmt: str, metadata: Mapping[str, Any]) -> list[tuple[str, PassageLocation]]:
    """The text's passages with their places, by the structure its format gives it."""
    if not text.strip():
        return []
    if fmt == "pdf":
        return _pdf_chunks(text, metadata)
    if fmt in TABLE_FORMATS:
        delimiter = metadata.get("delimiter") or ("\t" if fmt == "tsv" else ",")
        return _table_chunks(text.splitlines(keepends=True), str(delimiter), None)
    if fmt == "xlsx":
        return _workbook_chunks(text)
    if word_count(text) <= MAX_WORDS:
        return [(text.strip(), PassageLocation(LocationKind.WHOLE))]
    if fmt == "md":
        return _markdown_chunks(text)
    return [(piece, PassageLocation(LocationKind.LINES, first, last)) for piece, first, last in _windows(_lines(text))]


def field_chunks(fields: Sequence[tuple[str, str]]) -> list[tuple[str, PassageLocation]]:
    """Metadata fields as passages: small neighbours gathered, a long one cut by its lines, each named."""
    chunks: list[tuple[str, PassageLocation]] = []
    names: list[str] = []
    texts: list[str] = []
    words = 0

    def flush() -> None:
        nonlocal words
        if texts:
            chunks.append(("\n".join(texts), PassageLocation(LocationKind.FIELD, label=", ".join(names))))
        names.clear()
        texts.clear()
        words = 0

    for name, rendered in fields:
        rendered = rendered.strip()
        if not rendered:
            continue
        size = word_count(rendered)
        if size > MAX_WORDS:
            flush()
            for piece, _, _ in _windows(_lines(rendered), overlap=False):
                chunks.append((piece, PassageLocation(LocationKind.FIELD, label=name)))
            continue
        if words and words + size > FIELD_WORDS:
            flush()
        names.append(name)
        texts.append(rendered)
        words += size
    flush()
    return chunks


def _lines(text: str, first_line: int = 1) -> list[_Unit]:
    """Non-blank lines as units, a line too long for one passage cut into sentences (and words)."""
    units: list[_Unit] = []
    for number, line in enumerate(text.splitlines(), start=first_line):
        if line.strip():
            units.extend(_Unit(piece, number) for piece in _split_long(line.strip()))
    return units


def _split_long(text: str) -> list[str]:
    """``text`` whole when it fits a passage; else its sentences, a sentence too long cut into word runs."""
    if word_count(text) <= MAX_WORDS:
        return [text]
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        if word_count(sentence) <= MAX_WORDS:
            pieces.append(sentence)
            continue
        tokens = sentence.split()
        step = TARGET_WORDS
        pieces.extend(" ".join(tokens[start : start + step]) for start in range(0, len(tokens), step))
    return [piece for piece in pieces if piece.strip()]


def _windows(units: Sequence[_Unit], *, overlap: bool = True) -> list[tuple[str, int, int]]:
    """Consecutive units gathered into passages: ``(text, first line, last line)``.

    A passage closes at `TARGET_WORDS`, or before a unit that would take it
    past `MAX_WORDS`; with ``overlap``, the next one starts with its last unit
    when that is short (and the passage had more than that unit).
    """
    passages: list[tuple[str, int, int]] = []
    window: list[_Unit] = []
    words = 0
    fresh = False  # whether the window holds more than the unit carried over from the passage before

    def carry() -> tuple[list[_Unit], int]:
        last = window[-1]
        if overlap and len(window) > 1 and last.words <= OVERLAP_WORDS:
            return [last], last.words
        return [], 0

    for unit in units:
        if window and words + unit.words > MAX_WORDS:
            if fresh:
                passages.append(_joined(window))
                window, words = carry()
            if words + unit.words > MAX_WORDS:
                window, words = [], 0
        window.append(unit)
        words += unit.words
        fresh = True
        if words >= TARGET_WORDS:
            passages.append(_joined(window))
            window, words = carry()
            fresh = False
    if fresh:
        passages.append(_joined(window))
    return passages


def _joined(units: Iterable[_Unit]) -> tuple[str, int, int]:
    """Units as one text: pieces of one line joined by a space, lines by a newline."""
    units = list(units)
    parts: list[str] = []
    for position, unit in enumerate(units):
        if position:
            parts.append(" " if unit.line == units[position - 1].line else "\n")
        parts.append(unit.text)
    return "".join(parts), units[0].line, units[-1].line


def _pdf_chunks(text: str, metadata: Mapping[str, Any]) -> list[tuple[str, PassageLocation]]:
    """Passages by page; text extracted before pages were marked says only which pages it came from."""
    pages = text.split(PAGE_BREAK)
    chunks: list[tuple[str, PassageLocation]] = []
    if len(pages) == 1:
        count = metadata.get("pages")
        last = min(count, 5) if isinstance(count, int) and count > 1 else None
        location = PassageLocation(LocationKind.PAGE, 1, last)
        return [(piece, location) for piece, _, _ in _windows(_lines(text))]
    for number, page in enumerate(pages, start=1):
        location = PassageLocation(LocationKind.PAGE, number, number)
        chunks.extend((piece, location) for piece, _, _ in _windows(_lines(page)))
    return chunks


def _table_chunks(lines: Sequence[str], delimiter: str, sheet: str | None) -> list[tuple[str, PassageLocation]]:
    """Rows gathered under their header (repeated in each passage); rows count from 1, the header is row 0.

    Rows are read as CSV, so a quoted cell spanning lines stays in its row.
    """
    if len(delimiter) != 1:
        delimiter = ","
    reader = csv.reader(lines, delimiter=delimiter)
    consumed = 0
    header = ""
    rows: list[tuple[int, str]] = []
    row_number = -1
    try:
        for record in reader:
            raw = "".join(lines[consumed : reader.line_num]).rstrip("\r\n")
            consumed = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            row_number += 1
            if row_number == 0:
                header = raw
            else:
                rows.append((row_number, raw))
    except csv.Error:
        pass  # the snippet's last row was cut inside a quoted cell: the rows before it stand
    chunks: list[tuple[str, PassageLocation]] = []
    budget = MAX_WORDS - word_count(header)
    group: list[tuple[int, str]] = []
    words = 0
    for number, raw in rows:
        size = word_count(raw)
        if group and words + size > max(budget, TARGET_WORDS // 2):
            chunks.append(_rows_chunk(header, group, sheet))
            group, words = [], 0
        group.append((number, raw))
        words += size
    if group:
        chunks.append(_rows_chunk(header, group, sheet))
    if not chunks and header:
        chunks.append((header, PassageLocation(LocationKind.ROWS, 0, 0, sheet)))
    return chunks


def _rows_chunk(header: str, group: Sequence[tuple[int, str]], sheet: str | None) -> tuple[str, PassageLocation]:
    text = "\n".join([header, *(raw for _, raw in group)]) if header else "\n".join(raw for _, raw in group)
    return text, PassageLocation(LocationKind.ROWS, group[0][0], group[-1][0], sheet)


def _workbook_chunks(text: str) -> list[tuple[str, PassageLocation]]:
    """A workbook's text is ``[sheet]`` then its rows, tab-separated, for each sheet read."""
    chunks: list[tuple[str, PassageLocation]] = []
    sheet: str | None = None
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        match = _SHEET.match(line.rstrip("\r\n"))
        if match:
            if lines:
                chunks.extend(_table_chunks(lines, "\t", sheet))
            sheet, lines = match.group(1), []
        else:
            lines.append(line)
    if lines:
        chunks.extend(_table_chunks(lines, "\t", sheet))
    return chunks


def _markdown_chunks(text: str) -> list[tuple[str, PassageLocation]]:
    """Passages by section (a heading and what follows it up to the next); text before any heading by its lines."""
    chunks: list[tuple[str, PassageLocation]] = []
    for label, first_line, body in _sections(text):
        units = _lines(body, first_line)
        for piece, first, last in _windows(units):
            location = (
                PassageLocation(LocationKind.SECTION, first, last, label)
                if label is not None
                else PassageLocation(LocationKind.LINES, first, last)
            )
            chunks.append((piece, location))
    return chunks


def _sections(text: str) -> list[tuple[str | None, int, str]]:
    """``(heading, first line, text)`` of each section, its heading line included; text before any heading has None.

    ATX headings (``# Results``) and setext ones underlined with ``=``; a
    ``---`` underline is left alone, as it is also a rule or front matter. A
    heading inside fenced code is not one.
    """
    sections: list[tuple[str | None, int, list[str]]] = [(None, 1, [])]
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        opening = _FENCE.match(line)
        if opening:
            if fence is None:
                fence = opening.group(1)[0]
            elif opening.group(1)[0] == fence:
                fence = None
            sections[-1][2].append(line)
            continue
        if fence is None:
            atx = _ATX_HEADING.match(line)
            if atx:
                sections.append(((atx.group(2) or "").strip() or "(untitled)", number, [line]))
                continue
            body = sections[-1][2]
            if _SETEXT_UNDERLINE.match(line) and line.strip()[0] == "=" and body and body[-1].strip():
                title = body.pop()
                sections.append((title.strip(), number - 1, [title, line]))
                continue
        sections[-1][2].append(line)
    return [(label, first, "\n".join(body)) for label, first, body in sections if "".join(body).strip()]
