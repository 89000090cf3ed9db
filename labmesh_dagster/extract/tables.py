"""Delimited tables (CSV, TSV): columns and row count, read a line at a time.

Lines are bounded in length so one endless line cannot fill memory, and the
first characters are kept as the file's searchable text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import BinaryIO

from labmesh_dagster.extract.base import TEXT_LIMIT, Extractor, FileContext, Summary

MAX_CSV_LINE = 1024 * 1024
MAX_CSV_COLUMNS = 1000


def _bounded_lines(text: io.TextIOBase, ctx: FileContext, snippet: list[str]) -> Iterator[str]:
    """Yield lines of at most MAX_CSV_LINE characters, so one endless line cannot fill memory."""
    kept = 0
    while line := text.readline(MAX_CSV_LINE):
        if len(line) == MAX_CSV_LINE and not line.endswith("\n"):
            raise ctx.error("bad_format", f"a line is longer than {MAX_CSV_LINE} characters")
        if kept < TEXT_LIMIT:
            snippet.append(line[: TEXT_LIMIT - kept])
            kept += len(snippet[-1])
        yield line


def delimited(delimiter: str) -> Callable[[BinaryIO, FileContext], Summary]:
    """An extractor reading the header and counting rows of a file delimited by ``delimiter``."""

    def extract_table(stream: BinaryIO, ctx: FileContext) -> Summary:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict", newline="")  # type: ignore[type-var]
        snippet: list[str] = []
        rows = 0
        header: list[str] = []
        try:
            reader = csv.reader(_bounded_lines(text, ctx, snippet), delimiter=delimiter)
            header = next(reader, [])
            for row in reader:
                if row:
                    rows += 1
        except UnicodeDecodeError as exc:
            ctx.partial["rows_before_error"] = rows
            raise ctx.error("not_utf8", str(exc)) from exc
        except csv.Error as exc:
            ctx.partial["rows_before_error"] = rows
            raise ctx.error("bad_format", str(exc)) from exc
        except Exception:
            ctx.partial["rows_before_error"] = rows
            raise
        metadata = {"columns": header[:MAX_CSV_COLUMNS], "column_count": len(header), "rows": rows, "encoding": "utf-8"}
        return Summary(metadata=metadata, text="".join(snippet))

    return extract_table


EXTRACTORS: dict[str, Extractor] = {"csv": delimited(","), "tsv": delimited("\t")}
