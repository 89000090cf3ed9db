"""FASTA statistics are right for any layout, and a chromosome-sized record is never held in memory.

Pinned here: records, lengths, N50, GC% and N% match a plain recount for
wrapped and unwrapped records, soft-masked bases, CRLF, empty records, a last
line without its newline and records spanning many blocks; sequence before the
first header and non-ASCII bytes are bad_format with their line; a long record
costs a block of memory, not its length.
"""

from __future__ import annotations

import random
import tracemalloc
from typing import Any

import pytest

from labmesh_dagster.extract import fasta
from labmesh_dagster_tests.extract.test_registry import extract_bytes


def recount(data: bytes) -> dict[str, Any]:
    """The statistics the obvious way: split into records, join their lines, count letters."""
    text = data.decode("ascii").replace("\r\n", "\n")
    records = [chunk.split("\n", 1) for chunk in text.split(">")[1:]]
    sequences = ["".join(body.split("\n")) if len(parts) > 1 else "" for parts in records for body in parts[1:2]]
    sequences += [""] * (len(records) - len(sequences))
    lengths = sorted((len(sequence) for sequence in sequences), reverse=True)
    bases = sum(lengths)
    half, running, n50 = bases / 2, 0, None
    for length in lengths:
        running += length
        if running >= half:
            n50 = length
            break
    joined = "".join(sequences)
    return {
        "records": len(records),
        "total_length": bases,
        "min_length": min(lengths),
        "max_length": max(lengths),
        "n50": n50 if bases else None,
        "gc_percent": round(100 * sum(base in "GCgc" for base in joined) / bases, 2) if bases else None,
        "n_percent": round(100 * sum(base in "Nn" for base in joined) / bases, 4) if bases else None,
    }


def random_fasta(seed: int, records: int, lengths: tuple[int, int], width: int, crlf: bool = False) -> bytes:
    rng = random.Random(seed)
    newline = "\r\n" if crlf else "\n"
    parts = []
    for number in range(records):
        sequence = "".join(rng.choice("ACGTNacgtn") for _ in range(rng.randint(*lengths)))
        lines = [sequence[i : i + width] for i in range(0, len(sequence), width)] if width else [sequence]
        parts.append(
            f">contig_{number} length={len(sequence)}{newline}" + "".join(f"{line}{newline}" for line in lines)
        )
    return "".join(parts).encode("ascii")


@pytest.mark.parametrize(
    ("records", "lengths", "width", "crlf"),
    [
        pytest.param(50, (100, 5000), 60, False, id="wrapped-contigs"),
        pytest.param(300, (0, 300), 0, False, id="unwrapped-with-empty-records"),
        pytest.param(40, (1, 2000), 80, True, id="crlf"),
    ],
)
@pytest.mark.parametrize("block_size", [97, 4096, 8 * 1024 * 1024])
def test_statistics_match_a_recount_for_any_layout(
    monkeypatch: pytest.MonkeyPatch, records: int, lengths: tuple[int, int], width: int, crlf: bool, block_size: int
) -> None:
    monkeypatch.setattr(fasta, "BLOCK_SIZE", block_size)
    data = random_fasta(records, records, lengths, width, crlf)
    metadata = extract_bytes(data, "contigs.fa").metadata
    assert {key: metadata[key] for key in recount(data)} == recount(data)
    assert metadata["first_records"][:2] == ["contig_0", "contig_1"]


def test_a_last_line_without_its_newline_is_counted() -> None:
    metadata = extract_bytes(b">a\nACGT\n>b\nGG", "two.fa").metadata
    assert (metadata["records"], metadata["total_length"], metadata["min_length"]) == (2, 6, 2)


def test_sequence_before_the_first_header_is_bad_format_naming_its_line() -> None:
    extraction = extract_bytes(b"\nACGT\n>a\nACGT\n", "headless.fa")
    assert extraction.error is not None and extraction.error.reason == "bad_format"
    assert "line 2" in extraction.error.detail


def test_a_non_ascii_byte_is_bad_format_naming_its_line() -> None:
    extraction = extract_bytes(">a\nACGT\n>b\nAC\u00e9T\n".encode(), "accent.fa")
    assert extraction.error is not None and extraction.error.reason == "bad_format"
    assert "line 4" in extraction.error.detail


def test_a_chromosome_sized_record_costs_a_block_of_memory_not_its_length(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fasta, "BLOCK_SIZE", 1024 * 1024)
    line = b"ACGTNACGTT" * 6 + b"\n"
    data = b">chr1 a long one\n" + line * 500_000  # 30 million bases in one record
    tracemalloc.start()
    try:
        metadata = extract_bytes(data, "genome.fa", piece=1024 * 1024).metadata
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (metadata["records"], metadata["total_length"], metadata["n50"]) == (1, 30_000_000, 30_000_000)
    assert metadata["gc_percent"] == 40.0 and metadata["n_percent"] == 10.0
    assert peak < 12 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB for a {len(data) / 2**20:.0f} MiB record"
