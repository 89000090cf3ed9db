"""FASTQ statistics are right, identical whatever the compression, and corrupt files fail with a reason.

Pinned here: reads, bases, lengths, GC%, N% and mean quality match a plain
Python recount of the same file; gzip, bzip2 and xz copies and the CRLF copy
give the plain file's numbers; every member of a multi-member gzip is
counted; per-position quality is right for reads of mixed lengths and across
batch boundaries; the Phred+64 guess; and the reason codes: ``truncated`` for
data or a record cut short, ``bad_gzip`` for a corrupt gzip body,
``bad_format`` for invalid FASTQ, ``unsupported_compression`` for zstd without
a library. Zero bytes are zero reads, not an error.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.core.errors import ExtractionError
from labmesh_dagster.extract import FastqStats, fastq_stats

DATA = Path(__file__).parent.parent / "data" / "dnaio"
PLAIN_FILES = ["simple.fastq", "small.fastq", "paired.1.fastq", "paired.2.fastq"]


def recount(path: Path) -> dict[str, Any]:
    """The statistics the slow, obvious way: four lines at a time, one base at a time."""
    lines = path.read_text(encoding="ascii").splitlines()
    sequences, qualities = lines[1::4], lines[3::4]
    bases = sum(len(s) for s in sequences)
    gc = sum(1 for s in sequences for base in s if base in "GCgc")
    n = sum(1 for s in sequences for base in s if base in "Nn")
    phred = [ord(q) - 33 for quality in qualities for q in quality]
    return {
        "reads": len(sequences),
        "bases": bases,
        "min_length": min(len(s) for s in sequences),
        "mean_length": round(bases / len(sequences), 2),
        "max_length": max(len(s) for s in sequences),
        "gc_percent": round(100 * gc / bases, 2),
        "n_percent": round(100 * n / bases, 4),
        "mean_quality": round(sum(phred) / len(phred), 2),
        "quality_encoding": "phred33",
    }


def stats_of(data: bytes, name: str = "reads.fastq", **options: Any) -> dict[str, Any]:
    return fastq_stats(io.BytesIO(data), name, **options)


def reason_for(data: bytes, name: str = "reads.fastq") -> str:
    with pytest.raises(ExtractionError) as caught:
        stats_of(data, name)
    assert caught.value.name == name
    return caught.value.reason


def generated_fastq(reads: int, length: int = 100, seed: int = 7) -> bytes:
    """Reads long enough that a compressed copy spans many deflate blocks."""
    rng = random.Random(seed)
    records = []
    for number in range(reads):
        sequence = "".join(rng.choice("ACGTN") for _ in range(length))
        quality = "".join(rng.choice("#+5?I") for _ in range(length))
        records.append(f"@read{number}\n{sequence}\n+\n{quality}\n")
    return "".join(records).encode("ascii")


@pytest.mark.parametrize("name", PLAIN_FILES)
def test_stats_of_each_dnaio_file_match_a_plain_recount(name: str) -> None:
    path = DATA / name
    with path.open("rb") as stream:
        assert fastq_stats(stream, name) == recount(path)


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_compressed_copies_give_the_plain_file_stats(suffix: str) -> None:
    name = f"simple.fastq{suffix}"
    with (DATA / name).open("rb") as stream:
        assert fastq_stats(stream, name) == recount(DATA / "simple.fastq")


def test_compression_is_recognised_by_content_not_by_name() -> None:
    plain = (DATA / "small.fastq").read_bytes()
    assert stats_of(gzip.compress(plain), "reads.dat") == recount(DATA / "small.fastq")


def test_crlf_line_endings_give_the_same_stats_as_lf() -> None:
    with (DATA / "dos.fastq").open("rb") as stream:
        assert fastq_stats(stream, "dos.fastq") == recount(DATA / "small.fastq")


def test_every_member_of_a_multi_member_gzip_is_counted() -> None:
    simple, small = (DATA / "simple.fastq").read_bytes(), (DATA / "small.fastq").read_bytes()
    stats = stats_of(gzip.compress(simple) + gzip.compress(small), "lanes.fastq.gz")
    assert stats["reads"] == 2 + 3
    assert stats["bases"] == 18 + 102


def test_many_batches_give_the_same_stats_as_one() -> None:
    data = generated_fastq(250)
    assert stats_of(data, batch_size=7, track_positions=True) == stats_of(data, track_positions=True)


MIXED_LENGTHS = b"@r1\nACG\n+\nI5+\n@r2\nA\n+\n5\n@r3\nAC\n+\n+I\n@r4\nTTT\n+\nIII\n"
"""Phred+33: 'I' is 40, '5' is 20, '+' is 10."""


@pytest.mark.parametrize("batch_size", [1, 2, 3, 20000])
def test_per_position_mean_quality_averages_only_the_reads_reaching_each_position(batch_size: int) -> None:
    stats = stats_of(MIXED_LENGTHS, track_positions=True, batch_size=batch_size)
    first = (40 + 20 + 10 + 40) / 4
    second = (20 + 40 + 40) / 3
    third = (10 + 40) / 2
    assert stats["per_position_mean_quality"] == [round(first, 2), round(second, 2), round(third, 2)]
    assert (stats["min_length"], stats["max_length"]) == (1, 3)


def test_per_position_quality_is_left_out_unless_asked_for() -> None:
    assert "per_position_mean_quality" not in stats_of(MIXED_LENGTHS)


def test_the_accumulator_takes_str_or_bytes_batches_alike() -> None:
    from_str, from_bytes = FastqStats(track_positions=True), FastqStats(track_positions=True)
    from_str.add_batch(["ACGN", "gc"], ["IIII", "##"])
    from_bytes.add_batch([b"ACGN", b"gc"], [b"IIII", b"##"])
    assert from_str.summary() == from_bytes.summary()
    assert from_str.summary()["gc_percent"] == round(100 * 4 / 6, 2)
    assert from_str.summary()["n_percent"] == round(100 * 1 / 6, 4)


def test_high_quality_characters_with_none_below_at_sign_are_guessed_phred64() -> None:
    stats = stats_of(b"@r1\nACGT\n+\nhhhh\n@r2\nACGT\n+\nTTTT\n")
    assert stats["quality_encoding"] == "phred64"
    assert stats["mean_quality"] == round(((104 - 64) * 4 + (84 - 64) * 4) / 8, 2)


def test_zero_bytes_are_zero_reads_not_an_error() -> None:
    stats = stats_of(b"")
    assert stats["reads"] == 0
    assert stats["bases"] == 0
    assert stats["mean_length"] is None


def test_a_gzip_cut_in_half_is_truncated() -> None:
    compressed = gzip.compress(generated_fastq(3000))
    assert reason_for(compressed[: len(compressed) // 2], "reads.fastq.gz") == "truncated"


def test_bzip2_and_xz_cut_in_half_are_truncated() -> None:
    data = generated_fastq(3000)
    for compress, name in [(bz2.compress, "reads.fastq.bz2"), (lzma.compress, "reads.fastq.xz")]:
        compressed = compress(data)
        assert reason_for(compressed[: len(compressed) // 2], name) == "truncated", name


def test_a_gzip_with_bytes_flipped_in_its_middle_is_bad_gzip() -> None:
    corrupted = bytearray(gzip.compress(generated_fastq(3000)))
    middle = len(corrupted) // 2
    corrupted[middle : middle + 8] = bytes(byte ^ 0xFF for byte in corrupted[middle : middle + 8])
    assert reason_for(bytes(corrupted), "reads.fastq.gz") == "bad_gzip"


def test_a_gzip_with_a_corrupt_deflate_stream_is_bad_gzip() -> None:
    corrupted = bytearray(gzip.compress(generated_fastq(3000)))
    corrupted[12:16] = b"\xff\xff\xff\xff"
    assert reason_for(bytes(corrupted), "reads.fastq.gz") == "bad_gzip"


def test_a_corrupt_xz_is_bad_xz() -> None:
    corrupted = bytearray(lzma.compress(generated_fastq(3000)))
    corrupted[len(corrupted) // 2] ^= 0xFF
    assert reason_for(bytes(corrupted), "reads.fastq.xz") == "bad_xz"


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(b"@r1\nACGT\n+\nIIII\n@r2\nAC", id="inside-sequence"),
        pytest.param(b"@r1\nACGT\n+\nIIII\n@r2\nACGT\n+\n", id="after-plus-line"),
        pytest.param(b"@r1\nACGT\n+\nIIII\n@r2\nACGT\n+\nII", id="inside-quality"),
        pytest.param(b"@r1\r\nACGT\r\n+\r\nIIII\r\n@r2\r\nACGT\r\n+\r\nII", id="inside-quality-crlf"),
    ],
)
def test_a_plain_fastq_whose_last_record_is_cut_short_is_truncated(cut: bytes) -> None:
    assert reason_for(cut) == "truncated"


def test_a_record_whose_quality_is_shorter_than_its_sequence_is_bad_format() -> None:
    assert reason_for(b"@r1\nACGT\n+\nII\n@r2\nACGT\n+\nIIII\n") == "bad_format"


def test_a_final_record_with_a_mismatched_but_terminated_quality_is_bad_format() -> None:
    assert reason_for(b"@r1\nACGT\n+\nIIII\n@r2\nACGT\n+\nII\n") == "bad_format"


def test_a_plus_line_naming_another_read_is_bad_format() -> None:
    assert reason_for((DATA / "withplus.fastq").read_bytes(), "withplus.fastq") == "bad_format"


def test_text_that_is_not_fastq_is_bad_format() -> None:
    assert reason_for(b"sample,od600\nA1,0.4\n") == "bad_format"


def test_zstd_without_any_zstd_library_is_unsupported_compression(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("compression.zstd", "backports.zstd", "zstandard"):
        monkeypatch.setitem(sys.modules, module, None)
    assert reason_for(b"\x28\xb5\x2f\xfd" + b"\x00" * 16, "reads.fastq.zst") == "unsupported_compression"


def test_zstd_gives_the_plain_file_stats_when_a_zstd_library_is_present() -> None:
    zstd = pytest.importorskip("backports.zstd")
    compressed = zstd.compress((DATA / "small.fastq").read_bytes())
    assert stats_of(compressed + compressed, "reads.fastq.zst")["reads"] == 2 * 3
    assert stats_of(compressed, "reads.fastq.zst") == recount(DATA / "small.fastq")
