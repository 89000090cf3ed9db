"""FASTQ is read as Cock et al. 2010 define it: wrapped records count, and every fault is named where it is.

Pinned here, on the test files published with the paper (``data/cock2010``,
from Biopython) and on records written here:

- records wrapped over several lines, with quality lines that begin with '@'
  or '+', are counted as a record-by-record reading of the grammar counts
  them, whatever the block size and wherever they fall among ordinary records;
- a quality byte outside '!'..'~' fails with ``bad_quality``; whitespace
  inside a sequence or quality line fails with ``whitespace`` and is never
  counted as a base;
- blank lines at the very end of a file are accepted, anywhere else they are
  a fault;
- each fault names its real cause, its record and its line, and the reads
  before it are counted;
- ordinary four-line reads, of one length or many, short or long, are read
  in blocks, never record by record.
"""

from __future__ import annotations

import gzip
import io
import random
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.core.errors import ExtractionError
from labmesh_dagster.extract import extract, fastq_stats

COCK2010 = Path(__file__).parent.parent / "data" / "cock2010"
QUALITIES = [chr(code) for code in range(33, 75)]
WRAPPED = ["tricky.fastq", "wrapping_original_sanger.fastq", "longreads_original_sanger.fastq"]


def grammar_records(data: bytes) -> list[tuple[str, str]]:
    """(sequence, quality) of each record the slow, obvious way: sequence lines up to '+', quality lines until as long.

    Only for valid files; blank lines at the very end are dropped first.
    """
    lines = [line.rstrip("\r") for line in data.decode("ascii").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    records, at = [], 0
    while at < len(lines):
        assert lines[at].startswith("@")
        sequence, at = "", at + 1
        while not lines[at].startswith("+"):
            sequence, at = sequence + lines[at], at + 1
        quality, at = lines[at + 1] if at + 1 < len(lines) else "", at + 2
        while len(quality) < len(sequence):
            quality, at = quality + lines[at], at + 1
        records.append((sequence, quality))
    return records


def recount(data: bytes) -> dict[str, Any]:
    """The statistics of the records the grammar reads, one base at a time."""
    records = grammar_records(data)
    sequences = "".join(sequence for sequence, _ in records)
    qualities = "".join(quality for _, quality in records)
    lengths = [len(sequence) for sequence, _ in records]
    return {
        "reads": len(records),
        "bases": len(sequences),
        "min_length": min(lengths),
        "max_length": max(lengths),
        "gc_percent": round(100 * sum(base in "GCgc" for base in sequences) / len(sequences), 2),
        "n_percent": round(100 * sum(base in "Nn" for base in sequences) / len(sequences), 4),
        "mean_quality": round(sum(ord(q) - 33 for q in qualities) / len(qualities), 2),
    }


def stats_of(data: bytes, name: str = "reads.fastq", **options: Any) -> dict[str, Any]:
    return fastq_stats(io.BytesIO(data), name, **options)


def fault_of(data: bytes, name: str = "reads.fastq", **options: Any) -> ExtractionError:
    with pytest.raises(ExtractionError) as caught:
        stats_of(data, name, **options)
    assert caught.value.name == name
    return caught.value


def four_line_reads(count: int, lengths: tuple[int, int], seed: int = 5, repeat_titles: bool = False) -> bytes:
    """Ordinary four-line reads of lengths drawn from ``lengths``, with Illumina names and a full quality range.

    With ``repeat_titles`` each '+' line repeats the title, as older Illumina pipelines wrote them.
    """
    rng = random.Random(seed)
    records = []
    for number in range(count):
        length = rng.randint(*lengths)
        sequence = "".join(rng.choices("ACGTN", k=length))
        quality = "".join(rng.choices(QUALITIES, k=length))
        name = f"A00123:45:HJK7LDSX2:1:1101:{number}:2000 1:N:0:ACGT"
        records.append(f"@{name}\n{sequence}\n+{name if repeat_titles else ''}\n{quality}\n")
    return "".join(records).encode("ascii")


def line_of(data: bytes, text: bytes) -> int:
    """The 1-based number of the first line holding ``text``."""
    return data[: data.index(text)].count(b"\n") + 1


@pytest.mark.parametrize("name", WRAPPED)
@pytest.mark.parametrize("block_size", [7, 64, 1 << 20])
def test_records_wrapped_over_several_lines_are_counted_as_the_grammar_reads_them(name: str, block_size: int) -> None:
    data = (COCK2010 / name).read_bytes()
    got = stats_of(data, name, block_size=block_size)
    expected = recount(data)
    assert {key: got[key] for key in expected} == expected


def test_a_quality_line_starting_with_at_or_plus_is_quality_not_a_new_record() -> None:
    data = (COCK2010 / "tricky.fastq").read_bytes()
    assert b"\n@IIIIIIIIIIIIIII" in data and b"\n@-7.%<&+/$/%4(++(%\n" in data
    stats = stats_of(data, "tricky.fastq", track_positions=True)
    qualities = [quality for _, quality in grammar_records(data)]
    assert stats["reads"] == 4
    assert stats["per_position_mean_quality"][0] == round(sum(ord(q[0]) - 33 for q in qualities) / 4, 2)


def test_a_wrapped_record_among_ordinary_ones_is_counted_and_reading_goes_on_in_blocks() -> None:
    wrapped = (COCK2010 / "wrapping_original_sanger.fastq").read_bytes()
    data = four_line_reads(3000, (30, 151)) + wrapped + four_line_reads(3000, (30, 151), seed=6)
    for block_size in (4096, 1 << 20):
        got = stats_of(data, block_size=block_size)
        expected = recount(data)
        assert {key: got[key] for key in expected} == expected


def test_a_gzipped_wrapped_file_gives_the_plain_file_stats() -> None:
    data = (COCK2010 / "longreads_original_sanger.fastq").read_bytes()
    assert stats_of(gzip.compress(data), "longreads.fastq.gz") == stats_of(data)


@pytest.mark.parametrize("byte", [0x00, 0x1B, 0x1F, 0x7F, 0x80, 0xFF], ids=lambda byte: f"0x{byte:02X}")
def test_a_quality_byte_outside_bang_to_tilde_is_bad_quality(byte: int) -> None:
    full_range = (COCK2010 / "sanger_full_range_original_sanger.fastq").read_bytes()
    assert stats_of(full_range)["reads"] == 2  # '!' (33) and '~' (126) themselves are quality characters
    good = four_line_reads(3000, (30, 151))
    bad_record = b"@bad\nACGTACGT\n+\nIII" + bytes([byte]) + b"IIII\n"
    data = good + bad_record + four_line_reads(10, (30, 151))
    for block_size in (4096, 1 << 20):
        fault = fault_of(data, block_size=block_size)
        assert fault.reason == "bad_quality"
        assert f"line {line_of(data, b'@bad') + 3}, record 3001" in fault.detail
        assert "column 4" in fault.detail
    extraction = extract(io.BytesIO(data), "reads.fastq")
    assert extraction.metadata == {"reads_before_error": 3000}


def test_a_bad_quality_byte_inside_a_wrapped_record_is_bad_quality() -> None:
    data = (COCK2010 / "tricky.fastq").read_bytes().replace(b"IIIIIII.IIIIII1@44", b"IIIIIII.IIIII\x7f1@44")
    fault = fault_of(data, "tricky.fastq")
    assert fault.reason == "bad_quality"
    assert fault.detail.startswith("line 17, record 4: quality character 0x7F at column 14")


@pytest.mark.parametrize(
    ("name", "place"),
    [
        ("error_spaces.fastq", "line 2, record 1: a space in the sequence, column 10"),
        ("error_tabs.fastq", "line 2, record 1: a tab in the sequence, column 10"),
        ("error_qual_space.fastq", "line 16, record 4: a space in the quality, column 19"),
        ("error_qual_tab.fastq", "line 20, record 5: a tab in the quality, column 11"),
    ],
)
def test_whitespace_inside_a_sequence_or_quality_line_is_a_fault_of_its_own(name: str, place: str) -> None:
    fault = fault_of((COCK2010 / name).read_bytes(), name)
    assert (fault.reason, fault.detail) == ("whitespace", place)


@pytest.mark.parametrize(
    ("whitespace", "what"),
    [(b" ", "a space"), (b"\t", "a tab"), (b"\v", "a vertical tab"), (b"\f", "a form feed"), (b"\r", "a carriage")],
)
def test_whitespace_is_never_counted_as_bases_in_a_block_of_ordinary_reads(whitespace: bytes, what: str) -> None:
    good = four_line_reads(3000, (151, 151))
    data = good + b"@spaced\nACGT" + whitespace + b"ACG\n+\nIIIIIIII\n" + good
    fault = fault_of(data)
    assert fault.reason == "whitespace"
    assert fault.detail.startswith(f"line {line_of(data, b'@spaced') + 1}, record 3001: {what}")
    assert extract(io.BytesIO(data), "reads.fastq").metadata == {"reads_before_error": 3000}


@pytest.mark.parametrize("ending", [b"\n", b"\n\n", b"\r\n"], ids=["one", "two", "crlf"])
def test_blank_lines_at_the_very_end_of_a_file_are_accepted(ending: bytes) -> None:
    for data in (four_line_reads(300, (30, 151)), (COCK2010 / "tricky.fastq").read_bytes()):
        if ending == b"\r\n":
            data = data.replace(b"\n", b"\r\n")
        assert stats_of(data + ending) == stats_of(data)


def test_the_blank_lines_of_zero_length_reads_are_their_sequence_and_quality() -> None:
    data = (COCK2010 / "zero_length.fastq").read_bytes()
    stats = stats_of(data + b"\n", "zero_length.fastq")
    assert (stats["reads"], stats["min_length"]) == (5, 0)
    assert stats["bases"] == recount(data)["bases"]


def test_a_blank_line_between_records_is_a_fault_at_its_line() -> None:
    good = four_line_reads(300, (30, 151))
    fault = fault_of(good + b"\n" + good)
    assert (fault.reason, fault.detail) == (
        "bad_format",
        f"line {4 * 300 + 1}, record 301: a blank line where a record should start",
    )


@pytest.mark.parametrize(
    ("name", "reason", "place"),
    [
        ("error_diff_ids.fastq", "bad_format", "line 11, record 3: the '+' line repeats"),
        ("error_double_qual.fastq", "bad_format", "line 13, record 4: expected '@' to start a record"),
        ("error_double_seq.fastq", "bad_format", "line 15, record 4: expected the '+' line"),
        ("error_long_qual.fastq", "length_mismatch", "line 16, record 4: a quality of 26 characters"),
        ("error_short_qual.fastq", "length_mismatch", "line 12, record 3: a quality of 24 characters"),
        ("error_no_qual.fastq", "length_mismatch", "line 4, record 1: a blank line where the quality goes on"),
        ("error_trunc_at_seq.fastq", "truncated", "record 5: the file ends after its title"),
        ("error_trunc_in_title.fastq", "truncated", "line 17, record 5: the file ends inside the title line"),
        ("error_trunc_in_seq.fastq", "truncated", "line 18, record 5: the file ends inside the sequence"),
        ("error_trunc_at_plus.fastq", "truncated", "record 5: the file ends inside its sequence, before its '+'"),
        ("error_trunc_in_plus.fastq", "truncated", "line 19, record 5: the file ends inside the '+' line"),
        ("error_trunc_at_qual.fastq", "truncated", "line 19, record 5: the file ends after the '+' line"),
        ("error_trunc_in_qual.fastq", "length_mismatch", "line 20, record 5: a quality of 24 characters"),
    ],
)
def test_each_broken_file_of_the_paper_names_its_cause_record_and_line(name: str, reason: str, place: str) -> None:
    data = (COCK2010 / name).read_bytes()
    for block_size in (7, 1 << 20):
        fault = fault_of(data, name, block_size=block_size)
        assert (fault.reason, place in fault.detail) == (reason, True), fault.detail
    record = int(place.split("record ")[1].split(":")[0])
    assert extract(io.BytesIO(data), name).metadata == {"reads_before_error": record - 1}


def test_a_record_missing_its_plus_line_is_named_where_the_plus_line_belongs() -> None:
    good = four_line_reads(2000, (100, 100))
    data = good + b"@broken\nACGT\n-\nIIII\n" + four_line_reads(10, (100, 100))
    fault = fault_of(data, block_size=4096)
    broken = line_of(data, b"@broken")
    assert fault.reason == "bad_format"
    assert fault.detail == (
        f"line {broken + 2}, record 2001: expected the '+' line, found '-'; "
        f"no '+' line follows before line {broken + 4}, which starts with '@'"
    )


@pytest.mark.parametrize(
    ("lengths", "repeat_titles"),
    [
        pytest.param((151, 151), False, id="fixed-length"),
        pytest.param((35, 151), False, id="trimmed"),
        pytest.param((35, 151), True, id="trimmed-titles-repeated"),
        pytest.param((0, 40), False, id="short-with-empty"),
        pytest.param((1000, 1400), False, id="kilobase-amplicons"),
        pytest.param((500, 20000), False, id="long-reads"),
    ],
)
def test_ordinary_reads_are_read_in_blocks_never_record_by_record(
    monkeypatch: pytest.MonkeyPatch, lengths: tuple[int, int], repeat_titles: bool
) -> None:
    data = four_line_reads(1500 if lengths[1] < 1000 else 100, lengths, repeat_titles=repeat_titles)

    def record_by_record(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("an ordinary record was read record by record")

    monkeypatch.setattr("labmesh_dagster.extract.fastq.read_records", record_by_record)
    for block_size in (64 * 1024, 1 << 20):
        got = stats_of(data, block_size=block_size)
        expected = recount(data)
        assert {key: got[key] for key in expected} == expected
