"""VCF and BCF through ``extract``: header facts, a full record count, and a clear reason for every fault.

Pinned here, always through a one-way stream: samples, contigs, reference,
file format version, INFO/FORMAT/FILTER ids and the callers named by
``##source``, ``##<tool>Version``, ``##<tool>_version`` and
``##<X>CommandLine`` lines; every record counted (or the count marked
``scan``/``time_budget`` when the budget ends it); UTF-8 in records; a
``.vcf.gz`` read inflated; BCF as stored. Faults: a malformed record is
``bad_format`` with its line number, a last line cut short ``truncated``, a
file without a header ``bad_format``; a BCF cut inside a block or at a block
boundary is ``truncated``, garbage ``bad_format``, a gzip that is not BCF
``bad_magic``. Zero bytes are "empty". A failing stream raises its own error.
"""

from __future__ import annotations

import gzip
import random
import threading
from pathlib import Path
from typing import Any

import pysam
import pytest

from labmesh_dagster.extract import Extraction, extract, variants
from labmesh_dagster_tests.extract.test_alignment import bgzf_block_starts
from labmesh_dagster_tests.extract.test_registry import FailingStream
from labmesh_dagster_tests.extract.test_registry import extract_bytes as extract_one_way

DATA = Path(__file__).parent.parent / "data" / "pysam"
SAMPLES = ("tumour-12", "normal-12")
RECORDS = 12000


def extract_bytes(data: bytes, name: str, **kwargs: Any) -> Extraction:
    return extract_one_way(data, name, piece=7000, **kwargs)


def record_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def header_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("#")]


def assert_fault(extraction: Extraction, reason: str, name: str) -> None:
    assert extraction.error is not None, extraction
    assert (extraction.error.reason, extraction.error.name) == (reason, name), extraction.error


def made_header() -> pysam.VariantHeader:
    header = pysam.VariantHeader()
    header.add_line("##source=Mutect2")
    header.add_line("##bcftools_normVersion=1.17+htslib-1.17")
    header.add_line(
        '##GATKCommandLine=<ID=Mutect2,CommandLine="Mutect2 -R ref.fa -I t.bam",Version="4.4.0.0",Date="2024-01-01">'
    )
    header.add_line("##reference=file:///refs/GRCh38_full_analysis_set.fa")
    for name, length in (("chr1", 248956422), ("chr2", 242193529)):
        header.contigs.add(name, length=length)
    header.info.add("DP", 1, "Integer", "Depth")
    header.formats.add("GT", 1, "String", "Genotype")
    header.formats.add("AD", "R", "Integer", "Allelic depths")
    header.filters.add("weak_evidence", None, None, "Mutation does not meet likelihood threshold")
    for sample in SAMPLES:
        header.add_sample(sample)
    return header


def write_variants(path: Path, mode: str, records: int = RECORDS) -> None:
    rng = random.Random(4)
    with pysam.VariantFile(str(path), mode, header=made_header()) as out:
        for index in range(records):
            contig = "chr1" if index < records * 2 // 3 else "chr2"
            record = out.new_record(contig=contig, start=index * 50, alleles=("A", rng.choice("CGT")), qual=30)
            record.info["DP"] = rng.randrange(10, 200)
            for sample in SAMPLES:
                record.samples[sample]["GT"] = (0, 1)
                record.samples[sample]["AD"] = (rng.randrange(100), rng.randrange(100))
            out.write(record)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A BCF and the same variants as VCF text, made with pysam."""
    folder = tmp_path_factory.mktemp("variants")
    write_variants(folder / "calls.bcf", "wb")
    write_variants(folder / "calls.vcf", "w")
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def assert_made_header_facts(metadata: dict[str, Any]) -> None:
    assert metadata["samples"] == list(SAMPLES) and metadata["sample_count"] == 2
    assert metadata["contigs"] == ["chr1", "chr2"]
    assert metadata["contig_total_length"] == 248956422 + 242193529
    assert metadata["reference"] == "file:///refs/GRCh38_full_analysis_set.fa"
    assert metadata["callers"] == ["Mutect2", "bcftools_norm 1.17+htslib-1.17", "GATK Mutect2 4.4.0.0"]
    assert metadata["info_ids"] == ["DP"]
    assert metadata["format_ids"] == ["GT", "AD"]
    assert metadata["filter_ids"] == ["PASS", "weak_evidence"]


def test_a_vcf_from_the_pysam_suite_gets_samples_reference_callers_and_its_records_counted() -> None:
    content = (DATA / "example_vcf42.vcf").read_text()
    extraction = extract_bytes(content.encode(), "example_vcf42.vcf")
    samples = header_lines(content)[-1].split("\t")[9:]
    assert (extraction.format, extraction.error, extraction.partial) == ("vcf", None, None)
    assert extraction.samples == tuple(samples)
    assert extraction.metadata["fileformat"] == content.splitlines()[0].removeprefix("##fileformat=")
    assert extraction.metadata["reference"] == "1000GenomesPilot-NCBI36"
    assert extraction.metadata["callers"] == ["myImputationProgramV3.1"]
    assert extraction.metadata["file_date"] == "20090805"
    assert extraction.metadata["info_ids"] == [
        line.split("ID=")[1].split(",")[0] for line in header_lines(content) if line.startswith("##INFO")
    ]
    assert extraction.metadata["contig_count"] == 0, "this file declares no contigs"
    assert (extraction.metadata["records"], extraction.metadata["counts_from"]) == (
        len(record_lines(content)),
        "full_scan",
    )
    for fact in ("VCF", "VCFv4.2", "NA00001", "1000GenomesPilot-NCBI36", "myImputationProgramV3.1"):
        assert fact in extraction.text


def test_utf8_in_a_vcf43_record_is_read() -> None:
    content = (DATA / "example_vcf43_with_utf8.vcf").read_text(encoding="utf-8")
    assert "Nürnberg" in content
    extraction = extract_bytes(content.encode(), "example_vcf43_with_utf8.vcf")
    assert extraction.error is None
    assert extraction.metadata["fileformat"] == "VCFv4.3"
    assert (extraction.metadata["contigs"], extraction.metadata["contig_total_length"]) == (["20"], 62435964)
    assert extraction.metadata["records"] == len(record_lines(content))


def test_a_bgzipped_vcf_arrives_inflated_and_is_read_as_vcf() -> None:
    data = (DATA / "ex1.vcf.gz").read_bytes()
    content = gzip.decompress(data).decode()
    extraction = extract_bytes(data, "ex1.vcf.gz")
    contigs = [line.split("ID=")[1].split(",")[0] for line in header_lines(content) if line.startswith("##contig")]
    assert (extraction.format, extraction.error) == ("vcf.gz", None)
    assert extraction.samples == tuple(header_lines(content)[-1].split("\t")[9:])
    assert extraction.metadata["contigs"] == contigs and extraction.metadata["contig_count"] == len(contigs)
    assert extraction.metadata["callers"] == ["Platypus_Version_0.1.5"]
    assert extraction.metadata["records"] == len(record_lines(content))


def test_a_vcf_gz_without_a_header_is_bad_format() -> None:
    extraction = extract_bytes((DATA / "example.vcf.gz").read_bytes(), "example.vcf.gz")
    assert_fault(extraction, "bad_format", "example.vcf.gz")
    assert "/dev/fd" not in extraction.error.detail  # type: ignore[union-attr]


def test_a_zero_byte_vcf_is_empty_without_error() -> None:
    data = (DATA / "example_empty.vcf").read_bytes()
    assert extract_bytes(data, "example_empty.vcf") == Extraction(format="empty", metadata={"empty": True})


def test_a_vcf_with_a_header_and_no_records_has_zero_records_and_its_samples() -> None:
    content = (DATA / "example_vcf42.vcf").read_text()
    extraction = extract_bytes("\n".join(header_lines(content)).encode() + b"\n", "no_calls.vcf")
    assert extraction.error is None
    assert extraction.metadata["records"] == 0
    assert extraction.samples == tuple(header_lines(content)[-1].split("\t")[9:])


@pytest.mark.parametrize("name", ["calls.bcf", "calls.vcf"])
def test_variants_written_by_pysam_are_counted_and_their_callers_named(made: dict[str, bytes], name: str) -> None:
    extraction = extract_bytes(made[name], name)
    assert (extraction.format, extraction.error) == (name.rsplit(".", 1)[1], None)
    assert_made_header_facts(extraction.metadata)
    assert (extraction.metadata["records"], extraction.metadata["counts_from"]) == (RECORDS, "full_scan")
    assert extraction.metadata["eof_checked"] is (True if name.endswith(".bcf") else None)
    assert "GATK Mutect2 4.4.0.0" in extraction.text and "tumour-12" in extraction.text


def test_callers_are_found_in_the_header_lines_each_tool_writes() -> None:
    header = "\n".join(
        [
            "##fileformat=VCFv4.2",
            "##DeepVariant_version=1.5.0",
            "##source_version=2.9.10",
            "##source=strelka",
            "##bcftools_callVersion=1.9+htslib-1.9",
            '##GATKCommandLine.HaplotypeCaller=<ID=HaplotypeCaller,Version=3.8-1-0-gf15c1c3ef,Date="Mon Jan 01">',
            '##DRAGENCommandLine=<ID=dragen,Version="SW: 07.021.624.3.10.9, HW: 07.021.624",Date="Tue Feb 06">',
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
        ]
    )
    extraction = extract_bytes(header.encode() + b"\n", "calls.vcf")
    assert extraction.metadata["callers"] == [
        "DeepVariant 1.5.0",
        "strelka 2.9.10",
        "bcftools_call 1.9+htslib-1.9",
        "GATK HaplotypeCaller 3.8-1-0-gf15c1c3ef",
        "dragen SW: 07.021.624.3.10.9, HW: 07.021.624",
    ]


def test_the_time_budget_stops_the_count_and_marks_it_partial(
    made: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(variants, "COUNT_BATCH", 1000)
    extraction = extract_bytes(made["calls.vcf"], "calls.vcf", budget_seconds=0)
    assert extraction.error is None
    assert extraction.partial == "time_budget"
    assert (extraction.metadata["records"], extraction.metadata["counts_from"]) == (1000, "scan")
    assert "time budget" in extraction.text


def test_a_malformed_record_is_bad_format_with_its_line_number() -> None:
    lines = (DATA / "example_vcf42.vcf").read_text().splitlines(keepends=True)
    bad = len(header_lines("".join(lines))) + 3
    lines[bad - 1] = "20\tnot-a-position\t.\tT\tA\t3\tq10\tNS=3\tGT\t0|0\t0|1\t0/0\n"
    extraction = extract_bytes("".join(lines).encode(), "calls.vcf")
    assert_fault(extraction, "bad_format", "calls.vcf")
    assert f"line {bad} " in extraction.error.detail  # type: ignore[union-attr]
    assert extraction.metadata["records_before_error"] == 2
    assert extraction.metadata["samples"] == ["NA00001", "NA00002", "NA00003"], "header facts stay true"


def test_a_vcf_cut_in_its_last_line_is_truncated() -> None:
    content = (DATA / "example_vcf42.vcf").read_bytes()
    extraction = extract_bytes(content[:-30], "calls.vcf")
    assert_fault(extraction, "truncated", "calls.vcf")
    assert extraction.metadata["records_before_error"] == len(record_lines(content.decode())) - 1


def test_a_bcf_cut_inside_a_block_or_at_a_block_boundary_is_truncated(made: dict[str, bytes]) -> None:
    data = made["calls.bcf"]
    starts = bgzf_block_starts(data)
    assert len(starts) > 3
    for cut in (len(data) // 2, starts[len(starts) // 2], len(data) - 28):
        extraction = extract_bytes(data[:cut], "calls.bcf")
        assert_fault(extraction, "truncated", "calls.bcf")
        assert extraction.metadata["samples"] == list(SAMPLES)
        assert 0 < extraction.metadata["records_before_error"] <= RECORDS


def test_garbage_inside_a_bcf_is_bad_format(made: dict[str, bytes]) -> None:
    data = made["calls.bcf"]
    second_block = bgzf_block_starts(data)[1]
    extraction = extract_bytes(data[:second_block] + random.Random(8).randbytes(30000), "calls.bcf")
    assert_fault(extraction, "bad_format", "calls.bcf")
    assert f"offset {second_block}" in extraction.error.detail  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (gzip.compress(b"chrom\tpos\nchr1\t100\n" * 20), "bad_magic"),
        (random.Random(1).randbytes(3000), "bad_magic"),
    ],
    ids=["gzip-of-text", "random-bytes"],
)
def test_a_bcf_that_is_not_bcf_is_refused_with_a_clear_reason(data: bytes, reason: str) -> None:
    extraction = extract_bytes(data, "calls.bcf")
    assert extraction.format == "bcf"
    assert_fault(extraction, reason, "calls.bcf")


def test_a_bcf_in_plain_gzip_is_bad_format(made: dict[str, bytes]) -> None:
    extraction = extract_bytes(gzip.compress(gzip.decompress(made["calls.bcf"])), "calls.bcf")
    assert_fault(extraction, "bad_format", "calls.bcf")
    assert "BGZF" in extraction.error.detail  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["calls.bcf", "calls.vcf"])
def test_a_failing_stream_raises_its_own_error_and_leaves_no_thread_behind(made: dict[str, bytes], name: str) -> None:
    data = made[name]
    assert len(data) > 100_000, "the failure must come after the registry's 64 KiB head, inside the extractor"
    threads = threading.active_count()
    with pytest.raises(ConnectionResetError):
        extract(FailingStream(data, fail_after=len(data) - 5000), name)  # type: ignore[arg-type]
    assert threading.active_count() == threads
