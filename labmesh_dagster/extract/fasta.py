"""FASTA statistics: records, total length, N50, GC and N, read a block of lines at a time.

A reference genome's records are whole chromosomes (chr1 is 250 million
bases), so a FASTA is never read a record at a time: that would hold a
chromosome in memory. It is read in blocks of whole lines instead. numpy finds
the lines of a block and which are headers; a record's length is the sum of
its sequence lines' lengths, carried from block to block; bases are counted
over the block with header lines taken back out. Only record lengths are kept
(8 bytes each, for N50), so memory is a block whatever the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from labmesh_dagster.extract.base import Extractor, FileContext, Summary

BLOCK_SIZE = 8 * 1024 * 1024
LISTED_RECORDS = 20
MAX_HEADER = 200

_NEWLINE, _CR, _HEADER = 10, 13, ord(">")
_CASE_BIT = np.uint8(0x20)
_WITHOUT_G_BIT = np.uint8(0xFF ^ (ord("G") ^ ord("C")))
_LOWER_C, _LOWER_N = ord("c"), ord("n")


def n50(lengths: npt.NDArray[np.int64]) -> int | None:
    """The length L such that records of length >= L hold at least half of all bases."""
    if lengths.size == 0 or int(lengths.sum()) == 0:
        return None
    ordered = np.sort(lengths)[::-1]
    cumulative = np.cumsum(ordered)
    return int(ordered[int(np.searchsorted(cumulative, cumulative[-1] / 2))])


@dataclass
class _Fasta:
    """The running totals of one file, and the record still open at the end of the last block."""

    lengths: list[npt.NDArray[np.int64]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    records: int = 0
    bases: int = 0
    gc: int = 0
    n: int = 0
    lines: int = 0
    open_length: int | None = None

    def close_record(self) -> None:
        if self.open_length is not None:
            self.lengths.append(np.array([self.open_length], dtype=np.int64))
            self.open_length = None

    def all_lengths(self) -> npt.NDArray[np.int64]:
        return np.concatenate(self.lengths) if self.lengths else np.zeros(0, dtype=np.int64)


def _line_blocks(stream: BinaryIO, block_size: int | None = None) -> Iterator[bytes]:
    """The stream in blocks that end at a line's end (a newline is added to a last line without one)."""
    block_size = block_size or BLOCK_SIZE
    carry = b""
    while chunk := stream.read(block_size):
        block = carry + chunk if carry else chunk
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            carry = block
            continue
        yield block[:cut]
        carry = block[cut:]
    if carry:
        yield carry + b"\n"


def _segment_sums(mask: npt.NDArray[np.bool_], starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> int:
    """How many of ``mask`` are set inside the segments [start, end) (few, short: header lines)."""
    if not len(starts):
        return 0
    cumulative = np.concatenate([[0], np.cumsum(mask[: int(ends[-1])], dtype=np.int64)])
    return int((cumulative[ends] - cumulative[starts]).sum())


def _add_block(block: bytes, totals: _Fasta, ctx: FileContext) -> None:
    data = np.frombuffer(block, dtype=np.uint8)
    newlines = np.flatnonzero(data == _NEWLINE)
    starts = np.empty_like(newlines)
    starts[0] = 0
    starts[1:] = newlines[:-1] + 1
    ends = np.maximum(newlines - (data[np.maximum(newlines - 1, 0)] == _CR), starts)
    if int(data.max()) >= 128:
        bad_line = int(np.searchsorted(newlines, int(np.flatnonzero(data >= 128)[0])))
        raise ctx.error("bad_format", f"a non-ASCII byte on line {totals.lines + bad_line + 1}")
    non_empty = ends > starts
    headers = np.flatnonzero(non_empty & (data[np.minimum(starts, len(data) - 1)] == _HEADER))
    sequence_lengths = np.where(non_empty, ends - starts, 0)
    sequence_lengths[headers] = 0
    cumulative = np.concatenate([[0], np.cumsum(sequence_lengths)])
    before_first = int(cumulative[headers[0]] if len(headers) else cumulative[-1])
    if before_first and totals.open_length is None and totals.records == 0:
        first = int(np.flatnonzero(sequence_lengths)[0])
        raise ctx.error("bad_format", f"line {totals.lines + first + 1} holds sequence before any '>' header")
    if totals.open_length is not None:
        totals.open_length += before_first
    if len(headers):
        totals.close_record()
        record_lengths = cumulative[np.append(headers[1:], len(sequence_lengths))] - cumulative[headers + 1]
        totals.lengths.append(record_lengths[:-1].astype(np.int64))
        totals.open_length = int(record_lengths[-1])
        totals.records += len(headers)
        for index in headers[: max(0, LISTED_RECORDS - len(totals.names))].tolist():
            header = block[int(starts[index]) + 1 : int(ends[index])][:MAX_HEADER].decode("ascii")
            totals.names.append(header.split(maxsplit=1)[0] if header.strip() else "")
    folded = data | _CASE_BIT
    gc_mask = (folded & _WITHOUT_G_BIT) == _LOWER_C
    n_mask = folded == _LOWER_N
    header_starts, header_ends = starts[headers], ends[headers]
    totals.gc += int(np.count_nonzero(gc_mask)) - _segment_sums(gc_mask, header_starts, header_ends)
    totals.n += int(np.count_nonzero(n_mask)) - _segment_sums(n_mask, header_starts, header_ends)
    totals.bases += int(cumulative[-1])
    totals.lines += len(newlines)


def extract_fasta(stream: BinaryIO, ctx: FileContext) -> Summary:
    totals = _Fasta()
    try:
        for block in _line_blocks(stream):
            _add_block(block, totals, ctx)
            if ctx.deadline.expired():
                ctx.stop_early("time_budget")
                break
    except Exception:
        ctx.partial["records_before_error"] = max(totals.records - 1, 0)
        raise
    totals.close_record()
    lengths = totals.all_lengths()
    bases = totals.bases
    first_records = [name for name in totals.names if name]
    metadata: dict[str, Any] = {
        "records": totals.records,
        "total_length": bases,
        "min_length": int(lengths.min()) if lengths.size else None,
        "max_length": int(lengths.max()) if lengths.size else None,
        "n50": n50(lengths),
        "gc_percent": round(100 * totals.gc / bases, 2) if bases else None,
        "n_percent": round(100 * totals.n / bases, 4) if bases else None,
        "first_records": first_records,
    }
    text = (
        f"FASTA records={metadata['records']} total_length={bases} n50={metadata['n50']} "
        f"gc_percent={metadata['gc_percent']} " + " ".join(first_records)
    )
    return Summary(metadata=metadata, text=text)


EXTRACTORS: dict[str, Extractor] = {"fasta": extract_fasta}
