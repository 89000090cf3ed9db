"""SAM, BAM and CRAM through ``extract``: header facts, read counts, and a clear reason for every fault.

Pinned here, always through a one-way stream: read groups, samples,
platforms, references, programs and sort order; counts from a BAM index
stored beside the file (``.bam.bai``, ``.bai``, ``.csi``) without a scan, and
otherwise from the record flags, exact when the whole file was read and
marked ``scan`` with ``partial`` when the record limit or the time budget
stopped it; a CRAM counted without its reference; an index that is
unreadable, unreachable or of another file is not trusted. Faults: a BAM cut
inside a block or at a block boundary is ``truncated``, garbage after the
header ``bad_format``, a gzip that is not BAM ``bad_magic``, plain gzip
``bad_format``; a bad SAM line is named by its number; a cut CRAM is
``truncated``. A failing stream raises its own error and leaves no thread
behind, and htslib prints nothing.
"""

from __future__ import annotations

import gzip
import random
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import dnaio
import pysam
import pytest

from labmesh_dagster.extract import Extraction, alignment, extract, hts_pipe
from labmesh_dagster_tests.extract.test_registry import FailingStream, OneWayStream
from labmesh_dagster_tests.extract.test_registry import extract_bytes as extract_one_way

DATA = Path(__file__).parent.parent / "data" / "pysam"
NIST_BAM = DATA / "project.NIST_NIST7035_H7AP8ADXX_TAAGGCGA_1_NA12878.bwa.markDuplicates.bam"
RECORDS = 3000

READ_GROUPS = [
    {
        "ID": "rg1",
        "SM": "patient-7",
        "PL": "ILLUMINA",
        "LB": "lib-A",
        "PU": "HJK7LDSX3.1",
        "CN": "Core",
        "DT": "2024-03-01",
    },
    {"ID": "rg2", "SM": "patient-8", "PL": "ONT", "LB": "lib-B"},
]
BWA_COMMAND = "bwa mem -t 16 -R @RG\\tID:rg1\\tSM:patient-7 ex1.fa " + "reads_R1.fastq.gz " * 30


def extract_bytes(data: bytes, name: str, **kwargs: Any) -> Extraction:
    return extract_one_way(data, name, piece=7000, **kwargs)


class OneWaySibling(OneWayStream):
    """A sibling file as the store hands it out: one-way, and the extractor's to close."""

    opened: list[OneWaySibling] = []

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.closed = False
        OneWaySibling.opened.append(self)

    def close(self) -> None:
        self.closed = True


def siblings(files: dict[str, bytes]) -> Callable[[str], BinaryIO | None]:
    """An ``open_sibling`` over files stored beside the one extracted, by name."""

    def open_sibling(name: str) -> BinaryIO | None:
        return OneWaySibling(files[name]) if name in files else None  # type: ignore[return-value]

    return open_sibling


@pytest.fixture(autouse=True)
def siblings_are_closed() -> Iterator[None]:
    OneWaySibling.opened.clear()
    yield
    assert all(sibling.closed for sibling in OneWaySibling.opened), "every sibling opened must be closed"


def reference_sequences() -> dict[str, str]:
    """ex1.fa's contigs, read with dnaio: pysam's FastaFile would write an index into the test data folder."""
    with dnaio.open(DATA / "ex1.fa") as records:
        return {record.name.split()[0]: record.sequence for record in records}


def reference_lengths() -> dict[str, int]:
    return {name: len(sequence) for name, sequence in reference_sequences().items()}


def alignment_header(with_references: bool = True) -> dict[str, Any]:
    header: dict[str, Any] = {
        "HD": {"VN": "1.6", "SO": "coordinate"},
        "RG": READ_GROUPS,
        "PG": [{"ID": "bwa", "PN": "bwa", "VN": "0.7.17-r1188", "CL": BWA_COMMAND}],
    }
    if with_references:
        header["SQ"] = [{"SN": name, "LN": length, "AS": "ex1"} for name, length in reference_lengths().items()]
    return header


def generated_flags(count: int = RECORDS, seed: int = 11) -> list[int]:
    rng = random.Random(seed)
    flags = []
    for _ in range(count):
        flag = rng.choice([0, 16, 99, 147])
        for bit, chance in ((0x4, 0.1), (0x100, 0.05), (0x800, 0.03), (0x400, 0.08), (0x200, 0.02)):
            if rng.random() < chance:
                flag |= bit
        flags.append(flag)
    return flags


def expected_counts(flags: list[int]) -> dict[str, int]:
    """The counts the slow, obvious way."""
    return {
        "records": len(flags),
        "mapped": sum(1 for flag in flags if not flag & 0x4),
        "unmapped": sum(1 for flag in flags if flag & 0x4),
        "secondary": sum(1 for flag in flags if flag & 0x100),
        "supplementary": sum(1 for flag in flags if flag & 0x800),
        "duplicates": sum(1 for flag in flags if flag & 0x400),
        "qc_fail": sum(1 for flag in flags if flag & 0x200),
    }


def write_alignments(path: Path, flags: list[int], mode: str = "wb", header: dict[str, Any] | None = None) -> None:
    """Coordinate-sorted records with the given flags, reads copied from ex1.fa so that a CRAM can encode them."""
    sequences = reference_sequences()
    names = sorted(sequences)
    rng = random.Random(len(flags))
    options: dict[str, Any] = {"reference_filename": str(path.parent / "ex1.fa")} if mode == "wc" else {}
    with pysam.AlignmentFile(str(path), mode, header=header or alignment_header(), **options) as out:
        for index, flag in enumerate(flags):
            name = names[index * len(names) // len(flags)]
            start = int((index * len(names) / len(flags)) % 1 * (len(sequences[name]) - 60))
            segment = pysam.AlignedSegment(out.header)
            segment.query_name = f"read{index}"
            segment.flag = flag
            segment.reference_name = name
            segment.reference_start = start
            segment.mapping_quality = 0 if flag & 0x4 else 60
            segment.cigartuples = [(0, 50)]
            segment.query_sequence = sequences[name][start : start + 50]
            segment.query_qualities = pysam.qualitystring_to_array("".join(rng.choices("#+5?I", k=50)))
            segment.set_tag("RG", READ_GROUPS[index % 2]["ID"])
            out.write(segment)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A sorted BAM with its indexes, the same reads as CRAM (and its index), and the reference it was made with."""
    folder = tmp_path_factory.mktemp("alignments")
    shutil.copy(DATA / "ex1.fa", folder / "ex1.fa")
    flags = generated_flags()
    write_alignments(folder / "reads.bam", flags)
    pysam.index(str(folder / "reads.bam"))
    pysam.index("-c", str(folder / "reads.bam"), str(folder / "reads.bam.csi"))
    write_alignments(folder / "reads.cram", flags, mode="wc")
    pysam.index(str(folder / "reads.cram"))
    write_alignments(folder / "empty.bam", [])
    pysam.index(str(folder / "empty.bam"))
    return {path.name: path for path in folder.iterdir()}


def assert_header_facts(metadata: dict[str, Any]) -> None:
    references = reference_lengths()
    assert metadata["samples"] == ["patient-7", "patient-8"]
    assert metadata["platforms"] == ["ILLUMINA", "ONT"]
    assert metadata["read_group_count"] == 2
    assert metadata["read_groups"][0] == {
        "id": "rg1",
        "sample": "patient-7",
        "platform": "ILLUMINA",
        "library": "lib-A",
        "platform_unit": "HJK7LDSX3.1",
        "center": "Core",
        "date": "2024-03-01",
    }
    assert metadata["read_groups"][1] == {"id": "rg2", "sample": "patient-8", "platform": "ONT", "library": "lib-B"}
    assert metadata["sort_order"] == "coordinate"
    assert metadata["sam_version"] == "1.6"
    assert metadata["reference_count"] == len(references)
    assert metadata["references"] == list(references)
    assert metadata["reference_total_length"] == sum(references.values())
    assert metadata["assemblies"] == ["ex1"]
    bwa = metadata["programs"][0]
    assert (bwa["id"], bwa["name"], bwa["version"]) == ("bwa", "bwa", "0.7.17-r1188")
    assert BWA_COMMAND.startswith(bwa["command_line"][:-1]) and len(bwa["command_line"]) <= 200


def test_a_bam_from_a_one_way_stream_gets_its_header_facts_and_exact_counts_from_a_full_scan(
    made: dict[str, Path],
) -> None:
    extraction = extract_bytes(made["reads.bam"].read_bytes(), "run7/reads.bam")
    assert (extraction.format, extraction.error, extraction.partial) == ("bam", None, None)
    assert_header_facts(extraction.metadata)
    assert {key: extraction.metadata[key] for key in expected_counts([])} == expected_counts(generated_flags())
    assert extraction.metadata["counts_from"] == "full_scan"
    assert extraction.metadata["records_scanned"] == RECORDS
    assert (extraction.metadata["index"], extraction.metadata["eof_checked"]) == (None, True)
    assert extraction.samples == ("patient-7", "patient-8")
    for fact in ("BAM", "patient-7", "ILLUMINA", "ONT", "chr1", "bwa 0.7.17-r1188", "coordinate"):
        assert fact in extraction.text
    assert "ACGT" not in extraction.text


@pytest.mark.parametrize("index_name", ["reads.bam.bai", "reads.bai", "reads.bam.csi"])
def test_counts_come_from_an_index_stored_beside_the_bam_without_a_scan(made: dict[str, Path], index_name: str) -> None:
    stored = "reads.bam.csi" if index_name.endswith(".csi") else "reads.bam.bai"
    open_sibling = siblings({index_name: made[stored].read_bytes()})
    extraction = extract_bytes(made["reads.bam"].read_bytes(), "lab/run7/reads.bam", open_sibling=open_sibling)
    expected = expected_counts(generated_flags())
    assert extraction.error is None
    assert extraction.metadata["counts_from"] == "index"
    assert extraction.metadata["index"] == index_name
    assert [extraction.metadata[key] for key in ("records", "mapped", "unmapped")] == [
        expected["records"],
        expected["mapped"],
        expected["unmapped"],
    ]
    assert extraction.metadata["secondary"] is None and extraction.metadata["records_scanned"] is None
    assert extraction.metadata["eof_checked"] is True
    assert_header_facts(extraction.metadata)


@pytest.mark.parametrize(
    ("index", "note"),
    [
        (b"BAI\x01" + bytes(range(40)), "unreadable"),
        ("empty.bam.bai", "does not match"),
    ],
)
def test_an_index_that_is_unreadable_or_of_another_file_is_not_trusted_and_the_records_are_scanned(
    made: dict[str, Path], index: bytes | str, note: str
) -> None:
    index_bytes = made[index].read_bytes() if isinstance(index, str) else index
    extraction = extract_bytes(
        made["reads.bam"].read_bytes(), "reads.bam", open_sibling=siblings({"reads.bam.bai": index_bytes})
    )
    assert extraction.error is None
    assert extraction.metadata["counts_from"] == "full_scan"
    assert extraction.metadata["records"] == RECORDS
    assert note in extraction.metadata["counts_note"]


def test_an_index_that_cannot_be_fetched_only_costs_a_scan(made: dict[str, Path]) -> None:
    def unreachable(name: str) -> BinaryIO | None:
        raise TimeoutError(f"GET {name} timed out")

    extraction = extract_bytes(made["reads.bam"].read_bytes(), "reads.bam", open_sibling=unreachable)
    assert extraction.error is None
    assert (extraction.metadata["counts_from"], extraction.metadata["records"]) == ("full_scan", RECORDS)
    assert "timed out" in extraction.metadata["counts_note"]


def test_a_bounded_scan_stops_at_the_record_limit_and_counts_only_what_it_read(
    made: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alignment, "SCAN_RECORD_LIMIT", 1000)
    monkeypatch.setattr(alignment, "SCAN_BATCH", 300)
    extraction = extract_bytes(made["reads.bam"].read_bytes(), "reads.bam")
    assert extraction.error is None
    assert extraction.partial == "scan_limit"
    assert extraction.metadata["counts_from"] == "scan"
    assert extraction.metadata["records_scanned"] == 1000
    with pysam.AlignmentFile(str(made["reads.bam"])) as bam:
        first_flags = [segment.flag for _, segment in zip(range(1000), bam.fetch(until_eof=True), strict=False)]
    assert {key: extraction.metadata[key] for key in expected_counts([])} == expected_counts(first_flags)
    assert "first records only" in extraction.text
    assert extraction.metadata["eof_checked"] is True, "the rest is still read to check the end-of-file marker"


def test_a_file_with_exactly_as_many_records_as_the_limit_is_a_full_scan(
    made: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alignment, "SCAN_RECORD_LIMIT", RECORDS)
    extraction = extract_bytes(made["reads.bam"].read_bytes(), "reads.bam")
    assert (extraction.partial, extraction.metadata["counts_from"]) == (None, "full_scan")


def test_the_time_budget_stops_the_scan_and_marks_the_summary_partial(
    made: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alignment, "SCAN_BATCH", 500)
    extraction = extract_bytes(made["reads.bam"].read_bytes(), "reads.bam", budget_seconds=0)
    assert extraction.error is None
    assert extraction.partial == "time_budget"
    assert (extraction.metadata["counts_from"], extraction.metadata["records_scanned"]) == ("scan", 500)
    assert extraction.metadata["samples"] == ["patient-7", "patient-8"]


def test_a_cram_is_counted_from_its_flags_even_when_its_reference_is_gone(
    made: dict[str, Path], tmp_path: Path
) -> None:
    cram = made["reads.cram"].read_bytes()
    with pysam.AlignmentFile(str(made["reads.cram"]), reference_filename=str(made["ex1.fa"])) as opened:
        assert opened.header.to_dict()["SQ"][0]["UR"].endswith("ex1.fa"), "the CRAM names the reference it needs"
    moved = shutil.move(made["ex1.fa"], tmp_path / "elsewhere.fa")
    try:
        extraction = extract_bytes(cram, "reads.cram", open_sibling=siblings({"reads.cram.crai": b"any"}))
    finally:
        shutil.move(moved, made["ex1.fa"])
    assert (extraction.format, extraction.error) == ("cram", None)
    assert_header_facts(extraction.metadata)
    assert extraction.metadata["cram_version"] == f"{cram[4]}.{cram[5]}", "the file definition's version bytes"
    assert {key: extraction.metadata[key] for key in expected_counts([])} == expected_counts(generated_flags())
    assert extraction.metadata["counts_from"] == "full_scan"
    assert extraction.metadata["index"] == "reads.cram.crai"
    assert "no read counts" in extraction.metadata["counts_note"]
    assert extraction.metadata["eof_checked"] is True
    assert "CRAM" in extraction.text


def sam_flags(text: str) -> list[int]:
    return [int(line.split("\t")[1]) for line in text.splitlines() if line and not line.startswith("@")]


@pytest.mark.parametrize("name", ["rg_with_tab.sam", "example_empty_header.sam"])
def test_a_sam_gets_its_references_programs_and_counts(name: str) -> None:
    content = (DATA / name).read_text()
    extraction = extract_bytes(content.encode(), name)
    header = [line.split("\t") for line in content.splitlines() if line.startswith("@")]
    references = [fields[1].removeprefix("SN:") for fields in header if fields[0] == "@SQ"]
    assert (extraction.format, extraction.error) == ("sam", None)
    assert extraction.metadata["references"] == references
    assert extraction.metadata["program_count"] == sum(fields[0] == "@PG" for fields in header)
    assert extraction.metadata["samples"] == [] and extraction.samples == ()
    assert {key: extraction.metadata[key] for key in expected_counts([])} == expected_counts(sam_flags(content))
    assert (extraction.metadata["counts_from"], extraction.metadata["eof_checked"]) == ("full_scan", None)


def test_the_bwa_command_line_of_rg_with_tab_is_kept_shortened() -> None:
    extraction = extract_bytes((DATA / "rg_with_tab.sam").read_bytes(), "rg_with_tab.sam")
    program = extraction.metadata["programs"][0]
    assert program["name"] == "bwa"
    assert program["command_line"].startswith("bwa mem -p -t 8 -M -R @RG")
    assert "bwa 0.7.9a-r786" in extraction.text


def test_a_sam_gz_arrives_inflated_and_reads_like_the_plain_sam() -> None:
    content = (DATA / "rg_with_tab.sam").read_bytes()
    plain = extract_bytes(content, "rg_with_tab.sam")
    compressed = extract_bytes(gzip.compress(content), "rg_with_tab.sam.gz")
    assert compressed.format == "sam.gz"
    assert compressed.metadata == plain.metadata


def test_the_real_illumina_bam_names_its_sample_platform_centre_and_programs() -> None:
    extraction = extract_bytes(NIST_BAM.read_bytes(), NIST_BAM.name)
    with pysam.AlignmentFile(str(NIST_BAM)) as bam:
        header = bam.header.to_dict()
        flags = [segment.flag for segment in bam.fetch(until_eof=True)]
        references = list(bam.references)
    assert extraction.error is None
    assert extraction.samples == ("NIST7035",)
    group = extraction.metadata["read_groups"][0]
    assert (group["platform"], group["center"], group["platform_unit"]) == (
        "Illumina",
        "illuminafacility",
        "H7AP8ADXX_TAAGGCGA_1_NA12878",
    )
    assert [program["id"] for program in extraction.metadata["programs"]] == [pg["ID"] for pg in header["PG"]]
    assert len(extraction.metadata["programs"][1]["command_line"]) == 200
    assert extraction.metadata["reference_count"] == len(references) > 50
    assert extraction.metadata["references"] == references[:50]
    assert extraction.metadata["records"] == len(flags)


def test_an_unaligned_bam_without_references_is_fine(tmp_path: Path) -> None:
    header = alignment_header(with_references=False)
    with pysam.AlignmentFile(str(tmp_path / "u.bam"), "wb", header=header) as out:
        for index in range(10):
            segment = pysam.AlignedSegment(out.header)
            segment.query_name = f"r{index}"
            segment.flag = 0x4
            segment.query_sequence = "ACGT" * 10
            out.write(segment)
    extraction = extract_bytes((tmp_path / "u.bam").read_bytes(), "basecalled.bam")
    assert extraction.error is None
    assert (extraction.metadata["reference_count"], extraction.metadata["unmapped"]) == (0, 10)
    assert extraction.samples == ("patient-7", "patient-8")


def test_a_header_larger_than_the_pipe_buffer_does_not_block(tmp_path: Path) -> None:
    contigs = [{"SN": f"scaffold_{n}", "LN": 1000 + n} for n in range(20000)]
    with pysam.AlignmentFile(str(tmp_path / "draft.bam"), "wb", header={"HD": {"VN": "1.6"}, "SQ": contigs}):
        pass
    extraction = extract_bytes((tmp_path / "draft.bam").read_bytes(), "draft.bam")
    assert extraction.error is None
    assert extraction.metadata["reference_count"] == 20000
    assert extraction.metadata["references"] == [contig["SN"] for contig in contigs[:50]]
    assert extraction.metadata["records"] == 0


def test_a_bam_without_bgzf_is_read_but_has_no_end_marker_to_check(made: dict[str, Path]) -> None:
    data = gzip.decompress(made["reads.bam"].read_bytes())
    assert data.startswith(b"BAM\x01")
    extraction = extract_bytes(data, "reads.bam")
    assert extraction.error is None
    assert (extraction.metadata["records"], extraction.metadata["eof_checked"]) == (RECORDS, False)


def bgzf_block_starts(data: bytes) -> list[int]:
    """Where each BGZF block of a BAM or BCF starts (BSIZE, at bytes 16-17, is the block's size less one)."""
    starts, offset = [], 0
    while offset < len(data):
        starts.append(offset)
        offset += int.from_bytes(data[offset + 16 : offset + 18], "little") + 1
    return starts


def assert_fault(extraction: Extraction, reason: str, name: str) -> None:
    assert extraction.error is not None, extraction
    assert (extraction.error.reason, extraction.error.name) == (reason, name), extraction.error


def test_a_bam_cut_inside_a_block_is_truncated_with_the_records_read_before(made: dict[str, Path]) -> None:
    data = made["reads.bam"].read_bytes()
    extraction = extract_bytes(data[: len(data) // 2], "reads.bam")
    assert_fault(extraction, "truncated", "reads.bam")
    assert "inside a block" in extraction.error.detail  # type: ignore[union-attr]
    assert 0 < extraction.metadata["records_before_error"] < RECORDS
    assert extraction.metadata["samples"] == ["patient-7", "patient-8"], "header facts stay true"


def test_a_bam_cut_at_a_block_boundary_is_truncated_though_htslib_reads_it_without_complaint(
    made: dict[str, Path],
) -> None:
    data = made["reads.bam"].read_bytes()
    starts = bgzf_block_starts(data)
    for cut in (starts[len(starts) // 2], len(data) - len(hts_pipe.BGZF_EOF)):
        extraction = extract_bytes(data[:cut], "reads.bam")
        assert_fault(extraction, "truncated", "reads.bam")
        assert "end-of-file block" in extraction.error.detail  # type: ignore[union-attr]


def test_counts_from_an_index_do_not_hide_a_cut_file(made: dict[str, Path]) -> None:
    data = made["reads.bam"].read_bytes()
    open_sibling = siblings({"reads.bam.bai": made["reads.bam.bai"].read_bytes()})
    extraction = extract_bytes(data[: len(data) * 2 // 3], "reads.bam", open_sibling=open_sibling)
    assert_fault(extraction, "truncated", "reads.bam")


def test_garbage_after_the_bam_header_is_bad_format_at_its_offset(made: dict[str, Path]) -> None:
    data = made["reads.bam"].read_bytes()
    first_block_end = bgzf_block_starts(data)[1]
    garbage = random.Random(5).randbytes(20000)
    extraction = extract_bytes(data[:first_block_end] + garbage, "reads.bam")
    assert_fault(extraction, "bad_format", "reads.bam")
    assert f"offset {first_block_end}" in extraction.error.detail  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (gzip.compress(b"sample\tbarcode\nS1\tACGT\n" * 50), "bad_magic"),
        (gzip.compress(random.Random(2).randbytes(5000)), "bad_magic"),
        (random.Random(3).randbytes(5000), "bad_magic"),
        (gzip.compress(b"BAM\x01" + bytes(100)), "bad_format"),
    ],
    ids=["gzip-of-text", "gzip-of-random-bytes", "random-bytes", "plain-gzip-bam"],
)
def test_a_bam_that_is_not_bgzf_bam_is_refused_with_a_clear_reason(data: bytes, reason: str) -> None:
    extraction = extract_bytes(data, "sample.bam")
    assert extraction.format == "bam"
    assert_fault(extraction, reason, "sample.bam")


def test_a_bad_sam_line_is_bad_format_with_its_line_number() -> None:
    lines = (DATA / "rg_with_tab.sam").read_text().splitlines(keepends=True)
    bad = 40
    lines[bad - 1] = "read_x\tnot-a-flag\tchr1\t100\n"
    extraction = extract_bytes("".join(lines).encode(), "aln.sam")
    assert_fault(extraction, "bad_format", "aln.sam")
    assert f"line {bad} " in extraction.error.detail  # type: ignore[union-attr]
    header_lines = sum(line.startswith("@") for line in lines)
    assert extraction.metadata["records_before_error"] == bad - header_lines - 1


def test_a_sam_cut_in_its_last_line_is_truncated() -> None:
    content = (DATA / "rg_with_tab.sam").read_bytes()
    last_line = content.rstrip(b"\n").rindex(b"\n") + 1
    sequence = last_line
    for _field in range(9):
        sequence = content.index(b"\t", sequence) + 1
    extraction = extract_bytes(content[: sequence + 5], "aln.sam")
    assert_fault(extraction, "truncated", "aln.sam")
    assert extraction.metadata["records_before_error"] == len(sam_flags(content.decode())) - 1


def test_a_sam_line_cut_between_two_tags_is_still_a_valid_record() -> None:
    content = (DATA / "rg_with_tab.sam").read_bytes()
    extraction = extract_bytes(content[: content.rindex(b"\t")], "aln.sam")
    assert extraction.error is None
    assert extraction.metadata["records"] == len(sam_flags(content.decode()))


def test_a_sam_whose_header_htslib_rejects_is_bad_format() -> None:
    extraction = extract_bytes(
        b"@HD\tVN:1.6\n@RG\tID:x\tSM:y\tbroken\nr1\t4\t*\t0\t0\t*\t*\t0\t0\tACGT\tIIII\n", "x.sam"
    )
    assert_fault(extraction, "bad_format", "x.sam")
    assert "/dev/fd" not in extraction.error.detail  # type: ignore[union-attr]


def test_a_cut_cram_is_truncated(made: dict[str, Path]) -> None:
    data = made["reads.cram"].read_bytes()
    for cut in (len(data) // 2, len(data) - len(alignment.CRAM_EOF[3])):
        assert_fault(extract_bytes(data[:cut], "reads.cram"), "truncated", "reads.cram")


def test_htslib_prints_nothing_even_for_a_corrupt_file(
    made: dict[str, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    data = made["reads.bam"].read_bytes()
    extract_bytes(data[: len(data) // 2], "reads.bam")
    extract_bytes(b"@HD\tVN:1.6\n@XY\tbad\n", "x.sam")
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("name", ["reads.bam", "aln.sam", "aln.sam.gz"])
@pytest.mark.parametrize("where", ["just_after_the_head", "near_the_end"])
def test_a_failing_stream_raises_its_own_error_and_leaves_no_thread_behind(
    made: dict[str, Path], name: str, where: str
) -> None:
    if name.startswith("aln"):
        data = (DATA / "rg_with_tab.sam").read_bytes()
        data = gzip.compress(data) if name.endswith(".gz") else data
    else:
        data = made[name].read_bytes()
    head = 64 * 1024
    assert len(data) > head + 20_000, "the failure must come after the registry's head, inside the extractor"
    fail_after = head + 2000 if where == "just_after_the_head" else len(data) - 2000
    threads = threading.active_count()
    with pytest.raises(ConnectionResetError):
        extract(FailingStream(data, fail_after=fail_after), name)  # type: ignore[arg-type]
    assert threading.active_count() == threads
