"""FASTA statistics: records, total length, N50 and GC, streamed with dnaio.

Only record lengths are kept (4 bytes each), not sequences, so an assembly of
millions of contigs costs megabytes; GC is counted a batch of records at a
time in C.
"""

from __future__ import annotations

from typing import BinaryIO

import dnaio
import numpy as np
import numpy.typing as npt

from labmesh_dagster.extract.base import Extractor, FileContext, Summary

FASTA_BATCH = 10000
_GC = (b"G", b"C", b"g", b"c")
_N = (b"N", b"n")


def n50(lengths: npt.NDArray[np.int64]) -> int | None:
    """The length L such that records of length >= L hold at least half of all bases."""
    if lengths.size == 0:
        return None
    ordered = np.sort(lengths)[::-1]
    cumulative = np.cumsum(ordered)
    return int(ordered[int(np.searchsorted(cumulative, cumulative[-1] / 2))])


def extract_fasta(stream: BinaryIO, ctx: FileContext) -> Summary:
    lengths: list[npt.NDArray[np.int64]] = []
    counts = {"records": 0, "gc": 0, "n": 0}
    batch: list[str] = []
    names: list[str] = []

    def fold() -> None:
        joined = "".join(batch).encode("ascii", "replace")
        lengths.append(np.fromiter(map(len, batch), dtype=np.int64, count=len(batch)))
        counts["records"] += len(batch)
        counts["gc"] += sum(joined.count(base) for base in _GC)
        counts["n"] += sum(joined.count(base) for base in _N)
        batch.clear()

    try:
        for record in dnaio.open(stream, fileformat="fasta"):  # type: ignore[call-overload]
            batch.append(record.sequence)
            if len(names) < 20:
                names.append(record.name.split(maxsplit=1)[0] if record.name else "")
            if len(batch) >= FASTA_BATCH:
                fold()
                if ctx.deadline.expired():
                    ctx.stop_early("time_budget")
                    break
    except Exception:
        ctx.partial["records_before_error"] = counts["records"]
        raise
    fold()
    all_lengths = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    total = int(all_lengths.sum())
    first_records = [name for name in names if name]
    metadata: dict[str, object] = {
        "records": counts["records"],
        "total_length": total,
        "min_length": int(all_lengths.min()) if all_lengths.size else None,
        "max_length": int(all_lengths.max()) if all_lengths.size else None,
        "n50": n50(all_lengths),
        "gc_percent": round(100 * counts["gc"] / total, 2) if total else None,
        "n_percent": round(100 * counts["n"] / total, 4) if total else None,
        "first_records": first_records,
    }
    text = (
        f"FASTA records={metadata['records']} total_length={total} n50={metadata['n50']} "
        f"gc_percent={metadata['gc_percent']} " + " ".join(first_records)
    )
    return Summary(metadata=metadata, text=text)


EXTRACTORS: dict[str, Extractor] = {"fasta": extract_fasta}
