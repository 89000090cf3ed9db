"""The whole lab data flow on the local profile, driven through the real Definitions.

Contract: an ELN record becomes a partition and a registered experiment; its
instrument files go landing -> raw (verified, landing emptied) -> processed
(the built-in pipelines through Pipes, eagerly automated: real fastp, seqkit,
samtools, bcftools and MultiQC outputs, each with lineage to the exact input
files and their checksums) and people's files in final are picked up;
search finds the data by sample, experiment, file name, platform and
description; rematerializing everything and re-running every sensor leaves
the catalog exactly as it was.
"""

from __future__ import annotations

import gzip
import json

import dagster as dg
import pytest

from labmesh_dagster.connectors.catalog.base import SearchQuery
from labmesh_dagster.core.checksums import Checksum
from labmesh_dagster.core.keys import ObjectKey, Zone, manifest_key
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.lineage.graph import build_graph
from labmesh_dagster_tests.conftest import DATA, Lab

RECORD = {
    "id": "EXP-42",
    "title": "Liver biopsy RNA-seq",
    "description": "Bulk sequencing of fibrotic liver biopsies",
    "owner": "Ada Example",
    "group": "Hepatology",
    "project": "Fibrosis atlas",
    "samples": [{"id": "S-001"}, {"id": "S-002"}],
    "platform": "Illumina MiSeq",
    "protocol": "TruSeq",
    "created": "2026-11-02",
    "tags": ["rna-seq"],
    "flowcell": "HXYZ123",
}


# The flow runs the built-in pipelines: the real tools' outputs are what it checks.
pytestmark = pytest.mark.real_tools

BAM = "project.NIST_NIST7035_H7AP8ADXX_TAAGGCGA_1_NA12878.bwa.markDuplicates.bam"
# What each built-in pipeline writes for the files above, and from which raw file.
TOOL_OUTPUTS = {
    "processed/EXP-42/fastp/run1/S-001_R1.fastp.json": ("raw/EXP-42/run1/S-001_R1.fastq.gz",),
    "processed/EXP-42/fastp/run1/S-002_R1.fastp.html": ("raw/EXP-42/run1/S-002_R1.fastq",),
    "processed/EXP-42/samtools-flagstat/aln/S-001.flagstat.txt": ("raw/EXP-42/aln/S-001.bam",),
    "processed/EXP-42/samtools-stats/aln/S-001.samtools-stats.txt": ("raw/EXP-42/aln/S-001.bam",),
    "processed/EXP-42/samtools-idxstats/aln/S-001.idxstats.txt": ("raw/EXP-42/aln/S-001.bam",),
    "processed/EXP-42/bcftools-stats/calls/S-002.bcftools-stats.txt": ("raw/EXP-42/calls/S-002.vcf.gz",),
    "processed/EXP-42/seqkit-stats/EXP-42.seqkit-stats.tsv": (
        "raw/EXP-42/run1/S-001_R1.fastq.gz",
        "raw/EXP-42/run1/S-002_R1.fastq",
    ),
}


def _assets(lab: Lab, zone: Zone, experiment_id: str) -> Manifest:
    return Manifest.from_json(lab.store.read_bytes(manifest_key(zone, experiment_id)))


def run_flow(lab: Lab) -> None:
    lab.write_record("EXP-42.yaml", RECORD)
    [registration] = lab.run_sensor("eln_sensor")
    assert registration.success
    assert lab.partitions() == ["EXP-42"]
    locations = lab.catalog.experiment_locations("EXP-42")
    assert locations == {zone.value: lab.store.location(zone, "EXP-42") for zone in Zone}
    assert lab.settings.eln_outbox_dir.joinpath("EXP-42.json").is_file()  # written back to the ELN
    assert lab.catalog.get_experiment("EXP-42").custom == {"flowcell": "HXYZ123"}

    # The automation sensor keeps a cursor between ticks; "updated" means "since the previous tick".
    automation_cursor = dg.evaluate_automation_conditions(defs=lab.defs, instance=lab.instance).cursor

    fastq = (DATA / "dnaio" / "simple.fastq").read_bytes()
    lab.land("EXP-42", "run1/S-001_R1.fastq.gz", gzip.compress(fastq, mtime=0))
    lab.land("EXP-42", "run1/S-002_R1.fastq", fastq)
    lab.land("EXP-42", "SampleSheet.csv", b"Sample_ID,index\nS-001,ACGT\nS-002,TTGA\n")
    lab.land("EXP-42", "aln/S-001.bam", (DATA / "pysam" / BAM).read_bytes())
    lab.land("EXP-42", "calls/S-002.vcf.gz", (DATA / "pysam" / "ex1.vcf.gz").read_bytes())
    [raw_run] = lab.run_sensor("landing_sensor")
    assert raw_run.success
    assert lab.keys(Zone.LANDING, "EXP-42") == []

    automation = dg.evaluate_automation_conditions(defs=lab.defs, instance=lab.instance, cursor=automation_cursor)
    requested = {
        (key.to_user_string(), partition)
        for key, subset in ((r.key, r.true_subset) for r in automation.results)
        for partition in (subset.get_internal_subset_value().get_partition_keys() if subset.size else [])
    }
    assert ("processed_dataset", "EXP-42") in requested
    assert lab.materialize("processed_dataset", partition="EXP-42").success

    lab.put_final("EXP-42", "report/summary.md", b"# Fibrosis summary\nS-001 shows high COL1A1.\n")
    [final_run] = lab.run_sensor("final_sensor")
    assert final_run.success


def test_experiment_flows_from_eln_record_to_searchable_final_dataset(any_lab: Lab) -> None:
    lab = any_lab
    run_flow(lab)

    raw = _assets(lab, Zone.RAW, "EXP-42")
    assert [entry.key for entry in raw.entries] == [
        "raw/EXP-42/SampleSheet.csv",
        "raw/EXP-42/aln/S-001.bam",
        "raw/EXP-42/calls/S-002.vcf.gz",
        "raw/EXP-42/run1/S-001_R1.fastq.gz",
        "raw/EXP-42/run1/S-002_R1.fastq",
    ]
    gz = raw.entry("raw/EXP-42/run1/S-001_R1.fastq.gz")
    assert gz.format == "fastq.gz" and gz.metadata["reads"] == 2 and gz.sample_ids == ("S-001",)
    assert gz.source_checksum and gz.derived_from == ("landing/EXP-42/run1/S-001_R1.fastq.gz",)
    for entry in raw.entries:
        landing = Checksum.parse(entry.source_checksum or "")
        assert entry.checksum(landing.algorithm) == landing.value, entry.key

    processed = _assets(lab, Zone.PROCESSED, "EXP-42")
    for key, inputs in TOOL_OUTPUTS.items():
        entry = processed.entry(key)
        assert entry is not None and entry.derived_from == inputs, key
    fastp = json.loads(lab.store.read_bytes(ObjectKey.parse("processed/EXP-42/fastp/run1/S-001_R1.fastp.json")))
    assert fastp["summary"]["before_filtering"]["total_reads"] == 2
    flagstat = lab.store.read_bytes(ObjectKey.parse("processed/EXP-42/samtools-flagstat/aln/S-001.flagstat.txt"))
    assert b"in total (QC-passed reads + QC-failed reads)" in flagstat
    bcftools = lab.store.read_bytes(ObjectKey.parse("processed/EXP-42/bcftools-stats/calls/S-002.bcftools-stats.txt"))
    assert b"number of records:" in bcftools
    multiqc = processed.entry("processed/EXP-42/multiqc/multiqc_report.html")
    assert multiqc is not None and multiqc.produced_by is not None
    assert {item.key for item in multiqc.produced_by.inputs} >= set(TOOL_OUTPUTS)
    report = lab.store.read_bytes(ObjectKey.parse(multiqc.key))
    assert all(module in report for module in (b"fastp", b"Samtools", b"Bcftools", b"SeqKit"))

    # Every processed file says what made it, and from exactly which bytes: each input's sha256 is the one
    # its own dataset's manifest gives it.
    checksums = {entry.key: entry.sha256 for manifest in (raw, processed) for entry in manifest.entries}
    for entry in processed.entries:
        made = entry.produced_by
        assert made is not None and made.run_id and made.tool_versions and made.command_line, entry.key
        assert set(entry.derived_from) == {item.key for item in made.inputs}, entry.key
        assert all(checksums[item.key] == item.sha256 for item in made.inputs), entry.key
    assert processed.entry(next(iter(TOOL_OUTPUTS))).produced_by.tool_versions == {"fastp": "0.23.2"}

    lineage = build_graph(lab.ports.lineage_log().events("EXP-42"))
    edges = {(edge.source, edge.target) for edge in lineage.file_edges}
    assert ("raw/EXP-42/run1/S-002_R1.fastq", "processed/EXP-42/fastp/run1/S-002_R1.fastp.json") in edges
    assert ("raw/EXP-42/aln/S-001.bam", "processed/EXP-42/samtools-stats/aln/S-001.samtools-stats.txt") in edges
    assert ("processed/EXP-42/", "final/EXP-42/report/summary.md") in edges

    def datasets(**query: str) -> set[tuple[str, str | None]]:
        return {(hit.experiment_id, hit.dataset) for hit in lab.catalog.search(SearchQuery(**query))}

    assert ("EXP-42", "raw") in datasets(sample="S-001")
    assert ("EXP-42", "raw") in datasets(text="S-002")
    assert datasets(experiment="EXP-42") >= {("EXP-42", "raw"), ("EXP-42", "processed"), ("EXP-42", "final")}
    assert ("EXP-42", "raw") in datasets(text="S-001_R1.fastq.gz")
    assert ("EXP-42", "final") in datasets(text="summary.md")
    assert ("EXP-42", "raw") in datasets(platform="MiSeq")
    assert ("EXP-42", "raw") in datasets(text="fibrotic")
    assert datasets(text="fibrotic", platform="NovaSeq") == set()
    hits = lab.catalog.search(SearchQuery(sample="S-002", format="fastq"))
    assert [file.key for hit in hits for file in hit.files] == ["raw/EXP-42/run1/S-002_R1.fastq"]

    # Each dataset's current revision keeps what its checks found, so the portal needs no Dagster instance.
    checked = {zone: lab.catalog.dataset_revisions("EXP-42", zone)[0].checks for zone in (Zone.RAW, Zone.PROCESSED)}
    assert {check.name for check in checked[Zone.RAW] or ()} >= {"raw_files_match_landing_checksums", "content_indexed"}
    assert {check.name for check in checked[Zone.PROCESSED] or ()} >= {
        "pipelines_succeeded",
        "catalog_matches_manifest",
    }
    assert all(check.passed for checks in checked.values() for check in checks or ())
    assert lab.catalog.checks_needing_attention() == []


@pytest.mark.slow
def test_rematerializing_everything_and_replaying_sensors_changes_nothing(any_lab: Lab) -> None:
    lab = any_lab
    run_flow(lab)
    before = lab.catalog.snapshot()
    store_before = {zone: lab.keys(zone) for zone in Zone}

    for asset in ("experiment", "raw_dataset", "processed_dataset", "final_dataset"):
        assert lab.materialize(asset, partition="EXP-42").success
    for sensor in ("eln_sensor", "landing_sensor", "final_sensor"):
        lab.cursors.clear()
        assert lab.run_sensor(sensor) == []

    assert lab.catalog.snapshot() == before
    assert {zone: lab.keys(zone) for zone in Zone} == store_before
    processed_files = _assets(lab, Zone.PROCESSED, "EXP-42").file_count
    assert [s.datasets for s in lab.catalog.summaries()] == [{"raw": 5, "processed": processed_files, "final": 1}]
