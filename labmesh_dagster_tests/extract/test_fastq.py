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
from labmesh_dagster.extract import FastqStats, extract, fastq_stats, readahead
from labmesh_dagster.extract import fastq as fastq_module
from labmesh_dagster.extract.fastq import accumulate_fastq

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


@pytest.mark.parametrize("block_size", [1, 7, 1000, 4096])
def test_many_small_blocks_give_the_same_stats_as_one(block_size: int) -> None:
    data = generated_fastq(250)
    assert stats_of(data, block_size=block_size, track_positions=True) == stats_of(data, track_positions=True)


MIXED_LENGTHS = b"@r1\nACG\n+\nI5+\n@r2\nA\n+\n5\n@r3\nAC\n+\n+I\n@r4\nTTT\n+\nIII\n"
"""Phred+33: 'I' is 40, '5' is 20, '+' is 10."""


@pytest.mark.parametrize("block_size", [1, 9, 20, 1 << 20])
def test_per_position_mean_quality_averages_only_the_reads_reaching_each_position(block_size: int) -> None:
    stats = stats_of(MIXED_LENGTHS, track_positions=True, block_size=block_size)
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


def test_a_record_whose_quality_is_shorter_than_its_sequence_is_a_length_mismatch() -> None:
    assert reason_for(b"@r1\nACGT\n+\nII\n@r2\nACGT\n+\nIIII\n") == "length_mismatch"


def test_a_final_record_with_a_mismatched_but_terminated_quality_is_a_length_mismatch() -> None:
    assert reason_for(b"@r1\nACGT\n+\nIIII\n@r2\nACGT\n+\nII\n") == "length_mismatch"


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


def illumina_fastq(reads: int, *, lane: int = 1, read: int = 1, length: int = 151, seed: int = 3) -> bytes:
    """Reads named the way CASAVA 1.8+ names them, with binned NovaSeq qualities."""
    rng = random.Random(seed)
    records = []
    for number in range(reads):
        sequence = "".join(rng.choice("ACGT") for _ in range(length))
        quality = "".join(rng.choice("#,:F") for _ in range(length))
        name = f"A00123:45:HJK7LDSX2:{lane}:1101:{1000 + number}:2000 {read}:N:0:ACGTACGT+TTGGCCAA"
        records.append(f"@{name}\n{sequence}\n+\n{quality}\n")
    return "".join(records).encode("ascii")


def extracted(data: bytes, name: str = "reads.fastq", **options: Any) -> dict[str, Any]:
    extraction = extract(io.BytesIO(data), name, **options)
    assert extraction.error is None, extraction.error
    return extraction.metadata


def test_an_illumina_read_name_gives_instrument_run_flowcell_lane_read_and_index() -> None:
    metadata = extracted(illumina_fastq(20, lane=2, read=2))
    assert metadata["read_name"] == {
        "convention": "casava1.8",
        "instrument": "A00123",
        "run_number": 45,
        "flowcell": "HJK7LDSX2",
        "lane": 2,
        "read": 2,
        "index": "ACGTACGT+TTGGCCAA",
    }
    assert metadata["lanes"] == [2]
    assert metadata["first_read"].startswith("A00123:45:HJK7LDSX2:2:1101:1000:2000")


def test_lanes_merged_into_one_file_are_all_listed() -> None:
    data = illumina_fastq(3000, lane=1) + illumina_fastq(3000, lane=2, seed=4)
    stats = FastqStats()
    accumulate_fastq(io.BytesIO(data), "merged.fastq", stats, block_size=64 * 1024)
    assert stats.details()["lanes"] == [1, 2]


def test_legacy_illumina_and_sra_read_names_are_recognised() -> None:
    legacy = b"@HWUSI-EAS100R:6:73:941:1973#ATCACG/1\nACGT\n+\nIIII\n"
    sra = b"@SRR001666.1 071112_SLXA-EAS1_s_7:5:1:817:345 length=4\nACGT\n+\nIIII\n"
    assert extracted(legacy)["read_name"] == {
        "convention": "illumina_legacy",
        "instrument": "HWUSI-EAS100R",
        "lane": 6,
        "read": 1,
        "index": "ATCACG",
    }
    assert extracted(sra)["read_name"] == {"convention": "sra", "accession": "SRR001666"}


def test_q20_q30_and_n50_match_a_recount() -> None:
    data = illumina_fastq(500) + generated_fastq(300, length=60, seed=9)
    lines = data.decode("ascii").splitlines()
    qualities = "".join(lines[3::4])
    lengths = sorted((len(sequence) for sequence in lines[1::4]), reverse=True)
    half, running, n50 = sum(lengths) / 2, 0, None
    for length in lengths:
        running += length
        if running >= half:
            n50 = length
            break
    metadata = extracted(data)
    assert metadata["q20_percent"] == round(100 * sum(ord(q) - 33 >= 20 for q in qualities) / len(qualities), 2)
    assert metadata["q30_percent"] == round(100 * sum(ord(q) - 33 >= 30 for q in qualities) / len(qualities), 2)
    assert metadata["n50"] == n50 == 151
    assert metadata["fixed_length"] is False


def random_reads(rng: random.Random, reads: int, lengths: tuple[int, int], alphabet: str, crlf: bool) -> bytes:
    newline = "\r\n" if crlf else "\n"
    records = []
    for number in range(reads):
        length = rng.randint(*lengths)
        sequence = "".join(rng.choice(alphabet) for _ in range(length))
        quality = "".join(chr(rng.randint(33, 74)) for _ in range(length))
        records.append(f"@r{number} x{newline}{sequence}{newline}+{newline}{quality}{newline}")
    return "".join(records).encode("ascii")


@pytest.mark.parametrize(
    ("lengths", "alphabet", "crlf"),
    [
        pytest.param((150, 150), "ACGTN", False, id="fixed-length"),
        pytest.param((30, 150), "ACGTN", False, id="trimmed"),
        pytest.param((5, 3000), "ACGTN", False, id="long-reads"),
        pytest.param((0, 40), "ACGTNacgtn", True, id="soft-masked-crlf-empty-reads"),
    ],
)
@pytest.mark.parametrize("block_size", [333, 8 * 1024 * 1024])
def test_block_counting_matches_the_slow_recount_for_any_read_shape(
    tmp_path: Path, lengths: tuple[int, int], alphabet: str, crlf: bool, block_size: int
) -> None:
    data = random_reads(random.Random(11), 400, lengths, alphabet, crlf)
    path = tmp_path / "reads.fastq"
    path.write_bytes(data.replace(b"\r\n", b"\n"))
    expected = recount(path)
    got = stats_of(data, block_size=block_size, track_positions=True)
    assert {key: got[key] for key in expected} == expected
    lines = data.decode("ascii").splitlines()
    for position in (0, 20):
        reaching = [quality for quality in lines[3::4] if len(quality) > position]
        mean = sum(ord(quality[position]) - 33 for quality in reaching) / len(reaching)
        assert got["per_position_mean_quality"][position] == round(mean, 2)


def test_a_plus_line_repeating_the_read_name_is_valid() -> None:
    data = b"@r1 desc\nACGT\n+r1 desc\nIIII\n@r2\nGG\n+\nII\n"
    assert stats_of(data)["reads"] == 2


def test_non_ascii_bases_are_bad_format_with_the_reads_before_them() -> None:
    good = illumina_fastq(10)
    extraction = extract(io.BytesIO(good + "@bad\nAC\u00e9T\n+\nIIIII\n".encode()), "reads.fastq")
    assert extraction.error is not None and extraction.error.reason == "bad_format"
    assert extraction.metadata == {"reads_before_error": 10}
    assert "line 42" in extraction.error.detail


def test_the_error_names_the_line_of_the_fault_in_a_later_block() -> None:
    data = generated_fastq(2000) + b"@broken\nACGT\n-\nIIII\n" + generated_fastq(10)
    with pytest.raises(ExtractionError) as caught:
        stats_of(data, block_size=4096)
    assert caught.value.reason == "bad_format"
    assert "line 8003" in caught.value.detail


def test_a_spent_time_budget_gives_a_partial_summary_marked_as_such() -> None:
    data = generated_fastq(3000)
    extraction = extract(io.BytesIO(data), "reads.fastq", budget_seconds=0)
    assert extraction.error is None
    assert extraction.partial == "time_budget"
    assert 0 < extraction.metadata["reads"] <= 3000


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 1000, 4097])
def test_the_word_wise_byte_sum_equals_the_plain_sum(size: int) -> None:
    import numpy as np

    from labmesh_dagster.extract.fastq import byte_sum

    values = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8)
    assert byte_sum(values) == int(values.sum(dtype=np.uint64))
    assert byte_sum(np.full(size, 255, dtype=np.uint8)) == 255 * size


def test_a_small_file_of_known_size_is_read_on_the_callers_thread_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Below READ_AHEAD_FROM_BYTES no read-ahead thread starts, and the metadata is what the threads give."""
    data = gzip.compress(illumina_fastq(300), mtime=0)
    threaded = extracted(data, "small.fastq.gz")

    def no_thread(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a read-ahead thread started for a small file")

    monkeypatch.setattr(readahead.Ahead, "__init__", no_thread)
    assert extracted(data, "small.fastq.gz", size=len(data)) == threaded


def test_a_small_file_that_inflates_past_its_first_block_is_counted_whole() -> None:
    """Its blocks are sized to the stored bytes; highly compressible reads spill over many of them."""
    packed = gzip.compress(generated_fastq(50) * 1000 + illumina_fastq(7), mtime=0)
    assert len(packed) * fastq_module.SMALL_FILE_EXPANSION < len(gzip.decompress(packed)) // 10
    assert extracted(packed, "r.fastq.gz", size=len(packed)) == extracted(packed, "r.fastq.gz")


def test_a_fault_in_a_later_block_of_a_small_file_still_keeps_the_reads_before_it() -> None:
    data = gzip.compress(generated_fastq(5000) + b"@broken\nACGT\n-\nIIII\n" + generated_fastq(10), mtime=0)
    extraction = extract(io.BytesIO(data), "r.fastq.gz", size=len(data))
    assert extraction.error is not None and extraction.error.reason == "bad_format"
    assert extraction.metadata == {"reads_before_error": 5000}
