"""The demo's files are what the instruments would write, so the demo passes its own checks.

Pinned here: every RNA-seq pair the demo drops is linked as a consistent
pair (same read count, and first reads naming the same cluster, as bcl2fastq
names R1 and R2), its reads carry CASAVA 1.8 names of one NovaSeq run with
the read number 1 or 2; the amplicon reads carry the index the sample sheet
gives their sample; the nanopore reads carry MinKNOW's UUID read names. The
E. coli isolate also has a coordinate-sorted BAM with its BAI (the read group
names the sample) and a plain VCF whose calls the reads support, so the
built-in samtools and bcftools pipelines have input; every file is the same
bytes on every call.
"""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from pathlib import Path

import pysam
import pytest

from labmesh_dagster import demo
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.demo import demo_drops
from labmesh_dagster.extract import extract
from labmesh_dagster.extract.linking import DescribedFile, link_files
from labmesh_dagster.pipelines.planning import plan_invocations
from labmesh_dagster.pipelines.spec import builtin_pipelines_path, load_pipelines


@pytest.fixture(scope="module")
def described() -> list[DescribedFile]:
    """The demo's landing files, extracted as the platform extracts them (generated once: it takes seconds)."""
    described = []
    for drop in demo_drops():
        extraction = extract(io.BytesIO(drop.content()), drop.key.path)
        assert extraction.error is None, (drop.key.path, extraction.error)
        described.append(DescribedFile(drop.key.path, extraction.format, extraction.metadata))
    return described


def test_every_demo_read_pair_passes_the_pairing_check(described: list[DescribedFile]) -> None:
    links = link_files(described)
    pairs = {key: link for key, link in links.items() if "mate" in link}
    assert sorted(pairs) == [
        f"DEMO-RNASEQ-001/run-2026-11-03/{sample}_R{read}.fastq.gz"
        for sample in ("LIV-01", "LIV-02")
        for read in (1, 2)
    ]
    for key, link in pairs.items():
        assert link["pair_consistent"] is True, (key, link)
        assert "pair_problem" not in link


def test_demo_rna_seq_reads_carry_one_novaseq_run_and_their_read_number(described: list[DescribedFile]) -> None:
    by_key = {file.key: file.metadata for file in described}
    for sample in ("LIV-01", "LIV-02"):
        names = [by_key[f"DEMO-RNASEQ-001/run-2026-11-03/{sample}_R{read}.fastq.gz"]["read_name"] for read in (1, 2)]
        assert [name["convention"] for name in names] == ["casava1.8", "casava1.8"]
        assert [name["read"] for name in names] == [1, 2]
        assert names[0]["flowcell"] == names[1]["flowcell"] and names[0]["index"] == names[1]["index"]


def test_demo_amplicon_reads_carry_their_sample_sheet_index_and_nanopore_reads_a_uuid(
    described: list[DescribedFile],
) -> None:
    drops = {drop.key.path: drop.content for drop in demo_drops()}
    sheet = csv.DictReader(io.StringIO(drops["DEMO-AMPLICON-002/SampleSheet.csv"]().decode()))
    by_key = {file.key: file.metadata for file in described}
    for row in sheet:
        read_name = by_key[f"DEMO-AMPLICON-002/{row['Sample_ID']}.fastq"]["read_name"]
        assert (read_name["convention"], read_name["index"]) == ("casava1.8", row["index"])
    first_read = by_key["DEMO-NANOPORE-003/ECOLI-7.fastq.gz"]["first_read"]
    assert uuid.UUID(first_read.split()[0]).version == 4
    assert " runid=" in first_read and " read=" in first_read and " ch=" in first_read


def test_the_isolate_has_an_indexed_bam_and_a_vcf_that_name_its_sample(
    described: list[DescribedFile], tmp_path: Path
) -> None:
    """The BAM is coordinate-sorted with its BAI beside it, its read group names ECOLI-7, and the VCF's calls
    are what the reads show: one sample, each call's depth the BAM's own depth there."""
    by_key = {file.key: file for file in described}
    bam, vcf = by_key["DEMO-NANOPORE-003/alignment/ECOLI-7.bam"], by_key["DEMO-NANOPORE-003/variants/ECOLI-7.vcf"]
    assert (bam.format, bam.metadata["samples"], bam.metadata["unmapped"]) == ("bam", ["ECOLI-7"], 4)
    assert (vcf.format, vcf.metadata["samples"]) == ("vcf", ["ECOLI-7"])

    drops = {drop.key.path: drop.content for drop in demo_drops()}
    (tmp_path / "ECOLI-7.bam").write_bytes(drops["DEMO-NANOPORE-003/alignment/ECOLI-7.bam"]())
    (tmp_path / "ECOLI-7.bam.bai").write_bytes(drops["DEMO-NANOPORE-003/alignment/ECOLI-7.bam.bai"]())
    (tmp_path / "ECOLI-7.vcf").write_bytes(drops["DEMO-NANOPORE-003/variants/ECOLI-7.vcf"]())
    with pysam.AlignmentFile(str(tmp_path / "ECOLI-7.bam"), "rb") as alignments:
        assert alignments.header["HD"]["SO"] == "coordinate" and alignments.has_index()
        assert [(stat.contig, stat.mapped, stat.unmapped) for stat in alignments.get_index_statistics()] == [
            ("ECOLI-7_contig_1", 56, 4)
        ]
        with pysam.VariantFile(str(tmp_path / "ECOLI-7.vcf")) as calls:
            records = list(calls)
            assert list(calls.header.samples) == ["ECOLI-7"] and len(records) >= 10
            for record in records:
                covering = alignments.count(record.contig, record.pos - 1, record.pos, read_callback="all")
                assert record.info["DP"] == covering, record.pos


def test_the_demo_files_are_the_same_bytes_every_time() -> None:
    first = {drop.key.path: hashlib.sha256(drop.content()).hexdigest() for drop in demo_drops()}
    demo.ecoli_alignment.cache_clear()
    demo._ecoli_reads.cache_clear()
    again = {drop.key.path: hashlib.sha256(drop.content()).hexdigest() for drop in demo_drops()}
    assert first == again


def test_the_built_in_pipelines_have_input_in_the_demo(described: list[DescribedFile]) -> None:
    """samtools runs on the BAM (not its index), bcftools on the VCF, fastp on every FASTQ of the isolate."""
    record = ExperimentRecord.from_dict({"id": "DEMO-NANOPORE-003", "title": "isolate", "samples": [{"id": "ECOLI-7"}]})
    entries = [
        ManifestEntry(
            key=f"raw/{file.key}",
            size=1,
            sha256=hashlib.sha256(file.key.encode()).hexdigest(),
            format=file.format,
            created="2026-11-09T00:00:00+00:00",
            sample_ids=tuple(file.metadata.get("samples") or ()),
        )
        for file in described
        if file.key.startswith("DEMO-NANOPORE-003/")
    ]
    manifest = Manifest.build("DEMO-NANOPORE-003", "raw", entries)
    by_pipeline: dict[str, list[str]] = {}
    for invocation in plan_invocations(load_pipelines(builtin_pipelines_path()), record, manifest, run_id="r"):
        by_pipeline.setdefault(invocation["pipeline"]["name"], []).extend(item["key"] for item in invocation["inputs"])
    bam = "raw/DEMO-NANOPORE-003/alignment/ECOLI-7.bam"
    assert (
        by_pipeline["samtools-stats"] == by_pipeline["samtools-idxstats"] == by_pipeline["samtools-flagstat"] == [bam]
    )
    assert by_pipeline["bcftools-stats"] == ["raw/DEMO-NANOPORE-003/variants/ECOLI-7.vcf"]
    assert by_pipeline["fastp"] == ["raw/DEMO-NANOPORE-003/ECOLI-7.fastq.gz"]
