"""Passages: pieces of a file's content that remember where in the file they came from.

Search by meaning and the chat both answer with passages, not whole files, so
a citation can point at the place: page 3 of a PDF, rows 120-139 of a table,
the "Results" section of a Markdown file, lines 40-58 of a text file, or the
``platform`` field of a metadata record. Every content index backend returns
the same `PassageHit`, whichever way it stores them, and the chat cites them
by `Passage.id`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

PASSAGE_SEPARATOR = "#"
"""Between a document id (a file's key) and a passage's ordinal in a passage id: ``raw/EXP-1/a.pdf#3``."""


class LocationKind(StrEnum):
    """What a passage's place in its file is counted in."""

    PAGE = "page"  # a PDF page, from 1
    ROWS = "rows"  # data rows of a table, from 1 (the header is row 0)
    SECTION = "section"  # a Markdown (or other headed) section, by its heading
    LINES = "lines"  # lines of a text file, from 1
    FIELD = "field"  # a field of a metadata record, by its name
    WHOLE = "whole"  # a short document kept whole


_NOUNS = {
    LocationKind.PAGE: ("page", "pages"),
    LocationKind.ROWS: ("row", "rows"),
    LocationKind.LINES: ("line", "lines"),
}


@dataclass(frozen=True)
class PassageLocation:
    """Where a passage sits in its file.

    ``start`` and ``end`` (inclusive) count pages, rows or lines; ``label`` names a section or a field.
    """

    kind: LocationKind
    start: int | None = None
    end: int | None = None
    label: str | None = None

    def describe(self) -> str:
        """How a citation names the place: ``page 3``, ``rows 120-139``, ``section "Results"``, ``field platform``."""
        if self.kind is LocationKind.WHOLE:
            return "whole file"
        if self.kind in (LocationKind.SECTION, LocationKind.FIELD):
            return f'{self.kind.value} "{self.label}"' if self.kind is LocationKind.SECTION else f"field {self.label}"
        noun = {
            LocationKind.PAGE: ("page", "pages"),
            LocationKind.ROWS: ("row", "rows"),
            LocationKind.LINES: ("line", "lines"),
        }
        singular, plural = noun[self.kind]
        if self.end is None or self.end == self.start:
            return f"{singular} {self.start}"
        return f"{plural} {self.start}-{self.end}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "start": self.start, "end": self.end, "label": self.label}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PassageLocation:
        return cls(LocationKind(data["kind"]), data.get("start"), data.get("end"), data.get("label"))


@dataclass(frozen=True)
class Passage:
    """One passage of a document (a file), ``ordinal`` its position among the document's passages (from 0)."""

    document_id: str
    ordinal: int
    text: str
    location: PassageLocation

    @property
    def id(self) -> str:
        return passage_id(self.document_id, self.ordinal)


def passage_id(document_id: str, ordinal: int) -> str:
    return f"{document_id}{PASSAGE_SEPARATOR}{ordinal}"


def split_passage_id(value: str) -> tuple[str, int]:
    """``(document_id, ordinal)`` of a passage id; `ValueError` when it is not one."""
    document_id, separator, ordinal = value.rpartition(PASSAGE_SEPARATOR)
    if not separator or not document_id or not ordinal.isdigit():
        raise ValueError(f"not a passage id: {value!r}")
    return document_id, int(ordinal)


class SearchMode(StrEnum):
    """How passages are ranked: by words (BM25), by meaning (dense vectors), or both fused (the default)."""

    KEYWORD = "keyword"
    DENSE = "dense"
    HYBRID = "hybrid"


@dataclass(frozen=True)
class PassageHit:
    """A passage a retrieval found, best first; ``score`` only orders hits of one retrieval.

    ``title`` and ``uri`` are its document's (the file name and location);
    ``attributes`` its document's facets (experiment id, zone, format, ...).
    """

    passage: Passage
    title: str
    uri: str
    score: float
    attributes: Mapping[str, Any] = field(default_factory=dict)
    meaning: float | None = None
    """Its closeness in meaning to the question (cosine), where the retrieval measured it; None elsewhere."""
