"""The demo's files are what the instruments would write, so the demo passes its own checks.

Pinned here: every RNA-seq pair the demo drops is linked as a consistent
pair (same read count, and first reads naming the same cluster, as bcl2fastq
names R1 and R2), its reads carry CASAVA 1.8 names of one NovaSeq run with
the read number 1 or 2; the amplicon reads carry the index the sample sheet
gives their sample; the nanopore reads carry MinKNOW's UUID read names.
"""

from __future__ import annotations

import csv
import io
import uuid

import pytest

from labmesh_dagster.demo import demo_drops
from labmesh_dagster.extract import extract
from labmesh_dagster.extract.linking import DescribedFile, link_files


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
