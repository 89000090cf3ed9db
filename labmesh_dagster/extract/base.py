"""What every format's extractor receives and returns.

An extractor is a plain function ``(stream, context) -> Summary``. The stream
is the file's decompressed bytes, read forwards only; the context names the
file, collects facts that stay true if the extractor then fails, and carries
the time budget. Keeping this contract in one place is what lets the registry
treat a FASTQ, a BAM and a PDF alike: it never needs to know a format to
report its failure, its partial result or its samples.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from labmesh_dagster.core.errors import ExtractionError

TEXT_LIMIT = 2000
"""Most characters kept as an Extraction's searchable text."""

MAX_SAMPLES = 1000
"""Most sample ids one file may report; a table of a million rows names its first thousand."""

SPOOL_LIMIT = 2 * 1024**3
"""Largest file copied to a temporary file for a library that must seek (XLSX, TIFF, PDF, BAM index)."""

COPY_CHUNK = 1024 * 1024


class Deadline:
    """A point in time after which an extractor stops reading and reports what it has.

    Checked between batches, never per record, so its cost is nil; ``None``
    seconds means no budget at all.
    """

    def __init__(self, seconds: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = None if seconds is None else clock() + seconds
        self.seconds = seconds

    def expired(self) -> bool:
        return self._end is not None and self._clock() >= self._end


SiblingOpener = Callable[[str], "BinaryIO | None"]
"""Opens the file of the given name next to the one being extracted, or returns None."""


@dataclass
class FileContext:
    """One file's name, the facts known so far and the time budget, handed to its extractor.

    ``partial`` holds what stays true if the extractor raises (``reads_before_error``);
    ``partial_reason`` is set when the extractor stopped early on purpose
    (``time_budget``, ``scan_limit``) and returned a summary of what it read.
    ``open_sibling`` opens a file beside this one by its name (``x.bam.bai``), or
    returns None when there is none: an index, when present, spares a scan.
    ``codec`` names the compression the registry undid on the way ("gz"), if any.
    ``size`` is the file's stored (compressed) size in bytes, when the caller knows it:
    an extractor may skip set-up that pays only on large files (a read-ahead thread).
    """

    name: str
    deadline: Deadline = field(default_factory=lambda: Deadline(None))
    open_sibling: SiblingOpener = field(default=lambda _name: None)
    codec: str | None = None
    size: int | None = None
    partial: dict[str, Any] = field(default_factory=dict)
    partial_reason: str | None = None

    def stop_early(self, reason: str) -> None:
        """Record that the summary covers only part of the file, and why."""
        self.partial_reason = reason

    def error(self, reason: str, detail: str) -> ExtractionError:
        """An ExtractionError naming this file, for ``raise ctx.error(...)``."""
        return ExtractionError(self.name, reason, detail)


@dataclass(frozen=True)
class Summary:
    """What an extractor learnt: JSON-ready ``metadata``, short searchable ``text``, and sample ids found inside."""

    metadata: dict[str, Any]
    text: str = ""
    samples: tuple[str, ...] = ()


Extractor = Callable[[BinaryIO, FileContext], Summary]


def unique_samples(values: Iterator[object] | list[object] | tuple[object, ...]) -> tuple[str, ...]:
    """Distinct, non-blank sample ids in first-seen order, at most MAX_SAMPLES."""
    seen: dict[str, None] = {}
    for value in values:
        text = str(value).strip() if value is not None else ""
        if text and text not in seen:
            seen[text] = None
            if len(seen) >= MAX_SAMPLES:
                break
    return tuple(seen)


@contextmanager
def spooled(stream: BinaryIO, ctx: FileContext, suffix: str = "") -> Iterator[Path]:
    """Copy the stream to a temporary file for a library that needs to seek, and remove it after.

    Memory stays flat (the copy goes through a 1 MiB buffer); a file larger
    than SPOOL_LIMIT is refused as ``too_large`` rather than filling the disk.
    """
    handle, name = tempfile.mkstemp(prefix="labmesh-extract-", suffix=suffix)
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            copied = 0
            while chunk := stream.read(COPY_CHUNK):
                copied += len(chunk)
                if copied > SPOOL_LIMIT:
                    raise ctx.error("too_large", f"larger than the {SPOOL_LIMIT} bytes this format may be copied for")
                out.write(chunk)
        yield path
    finally:
        path.unlink(missing_ok=True)
