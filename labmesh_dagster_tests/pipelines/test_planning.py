"""Planning pipelines into invocations, and filling their placeholders.

Contract (pipelines contract, section 2): a pipeline takes the raw files its ``takes`` allows (format
family from the content, or from the name when the content was unreadable, so an empty or corrupt FASTQ
still reaches QC; the experiment's platform and assay case-insensitively; with ``samples: sample_sheet``
only files linked to one of the record's samples); ``per: file`` plans one invocation per file,
``per: pair`` one per Illumina R1/R2 pair in one folder (a lone mate runs ``command`` on its own),
``per: experiment`` one over all; labels, ``{name}`` stems, staging and publish prefixes follow the
layout; the invocation id is ``<pipeline>-<16 hex>``, stable across runs and changed by the version or
an input's checksum; pipelines taking other pipelines' outputs are planned in a later stage from what
those published; ``expand_command`` fills placeholders, ``{inputs}`` into one argument per input.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from labmesh_dagster.core.experiment import ExperimentRecord, Sample
from labmesh_dagster.core.keys import ObjectKey
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.pipelines.commands import PlaceholderError, expand_command
from labmesh_dagster.pipelines.planning import file_stem, mate_of, plan_invocations, stages
from labmesh_dagster.pipelines.spec import Pipeline

RECORD = ExperimentRecord(
    id="EXP-1", title="t", platform="Illumina NovaSeq 6000", protocol="RNA-seq", samples=(Sample("S1"), Sample("S2"))
)


def _pipeline(name: str = "fastp", **fields: object) -> Pipeline:
    spec: dict[str, object] = {
        "name": name,
        "version": "1",
        "command": ["tool", "{inputs}"],
        "outputs": ["*"],
        **fields,
    }
    if spec.get("per") == "pair":
        spec.setdefault("paired_command", ["tool", "{read1}", "{read2}"])
    return Pipeline.model_validate(spec)


def _entry(relative: str, fmt: str, *, samples: tuple[str, ...] = (), error: bool = False) -> ManifestEntry:
    key = f"raw/EXP-1/{relative}"
    return ManifestEntry(
        key=key,
        size=10,
        sha256=hashlib.sha256(key.encode()).hexdigest(),
        format=fmt,
        created="2026-12-01T00:00:00+00:00",
        sample_ids=samples,
        error={"reason": "truncated", "detail": "cut short"} if error else None,
    )


def _manifest(*entries: ManifestEntry) -> Manifest:
    return Manifest.build("EXP-1", "raw", entries)


LAB = _manifest(
    _entry("run1/S1_R1.fastq.gz", "fastq.gz", samples=("S1",)),
    _entry("run1/S1_R2.fastq.gz", "fastq.gz", samples=("S1",)),
    _entry("run1/S2_L001_R1_001.fastq.gz", "fastq.gz", samples=("S2",)),
    _entry("run1/S2_L001_R2_001.fastq.gz", "fastq.gz", samples=("S2",)),
    _entry("run1/S3_R1.fastq.gz", "fastq.gz", samples=("S3",)),
    _entry("run1/EMPTY.fastq", "empty", error=True),
    _entry("aln/S1.bam", "bam", samples=("S1",)),
    _entry("calls.vcf.gz", "vcf.gz"),
    _entry("notes.md", "md"),
    _entry("SampleSheet.csv", "illumina_samplesheet"),
)


def _labels(invocations: list[dict]) -> list[str]:
    return [invocation["label"] for invocation in invocations]


def test_a_file_invocation_has_the_contract_shape() -> None:
    (invocation,) = plan_invocations(
        [_pipeline("samtools-stats", takes={"formats": ["bam"]})], RECORD, LAB, run_id="r1"
    )
    pipeline = _pipeline("samtools-stats", takes={"formats": ["bam"]})
    key, sha = "raw/EXP-1/aln/S1.bam", hashlib.sha256(b"raw/EXP-1/aln/S1.bam").hexdigest()
    canonical = json.dumps(["samtools-stats", "1", "aln/S1", [[key, sha]]], separators=(",", ":"))
    expected_id = "samtools-stats-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert invocation == {
        "invocation_id": expected_id,
        "pipeline": pipeline.model_dump(mode="json"),
        "experiment_id": "EXP-1",
        "label": "aln/S1",
        "name": "S1",
        "inputs": [{"key": key, "sha256": sha, "role": "input"}],
        "staging_prefix": f"processed/EXP-1/_labmesh/runs/r1/{expected_id}/",
        "publish_prefix": "processed/EXP-1/samtools-stats/aln/",
    }
    assert ObjectKey.parse(invocation["staging_prefix"] + "out.txt").experiment_id == "EXP-1"


def test_formats_match_the_content_family_or_the_name_of_an_unreadable_file() -> None:
    fastq = plan_invocations([_pipeline(takes={"formats": ["fastq"]})], RECORD, LAB, run_id="r1")
    assert _labels(fastq) == [
        "run1/EMPTY",
        "run1/S1_R1",
        "run1/S1_R2",
        "run1/S2_L001_R1_001",
        "run1/S2_L001_R2_001",
        "run1/S3_R1",
    ]
    vcf = plan_invocations([_pipeline("bcftools-stats", takes={"formats": ["VCF", "bcf"]})], RECORD, LAB, run_id="r1")
    assert [(item["label"], item["name"], item["publish_prefix"]) for item in vcf] == [
        ("calls", "calls", "processed/EXP-1/bcftools-stats/")
    ]
    corrupt = _manifest(_entry("x/S9.fastq.gz", "gz", error=True), _entry("x/S9.txt", "text"))
    assert _labels(plan_invocations([_pipeline(takes={"formats": ["fastq"]})], RECORD, corrupt, run_id="r")) == ["x/S9"]
    everything = plan_invocations([_pipeline("md5")], RECORD, LAB, run_id="r1")
    assert len(everything) == len(LAB.entries)


def test_platforms_and_assays_compare_without_case() -> None:
    def planned(**takes: object) -> int:
        return len(plan_invocations([_pipeline(takes={"formats": ["bam"], **takes})], RECORD, LAB, run_id="r"))

    assert planned(platforms=["illumina novaseq 6000"]) == 1
    assert planned(platforms=["Oxford Nanopore"]) == 0
    assert planned(assays=["rna-seq", "WGS"]) == 1
    assert planned(assays=["WGS"]) == 0
    no_platform = ExperimentRecord(id="EXP-1", title="t")
    assert plan_invocations([_pipeline(takes={"platforms": ["x"]})], no_platform, LAB, run_id="r") == []


def test_the_sample_sheet_keeps_only_files_of_the_records_samples() -> None:
    pipeline = _pipeline(takes={"formats": ["fastq"], "samples": "sample_sheet"})
    assert _labels(plan_invocations([pipeline], RECORD, LAB, run_id="r")) == [
        "run1/S1_R1",
        "run1/S1_R2",
        "run1/S2_L001_R1_001",
        "run1/S2_L001_R2_001",
    ]


def test_pairs_are_found_by_illumina_names_and_lone_mates_run_alone() -> None:
    invocations = plan_invocations([_pipeline(per="pair", takes={"formats": ["fastq"]})], RECORD, LAB, run_id="r")
    summary = [
        (item["label"], item["name"], [(i["key"].rsplit("/", 1)[1], i["role"]) for i in item["inputs"]])
        for item in invocations
    ]
    assert summary == [
        ("run1/EMPTY", "EMPTY", [("EMPTY.fastq", "input")]),
        ("run1/S1", "S1", [("S1_R1.fastq.gz", "read1"), ("S1_R2.fastq.gz", "read2")]),
        ("run1/S2_L001", "S2_L001", [("S2_L001_R1_001.fastq.gz", "read1"), ("S2_L001_R2_001.fastq.gz", "read2")]),
        ("run1/S3_R1", "S3_R1", [("S3_R1.fastq.gz", "input")]),
    ]


@pytest.mark.parametrize(
    ("names", "pairs"),
    [
        (["a/S_1.fq.gz", "a/S_2.fq.gz"], ["a/S"]),
        (["a/S.R1.fastq", "a/S.R2.fastq"], ["a/S"]),
        (["a/S_R1.fastq.gz", "b/S_R2.fastq.gz"], []),
        (["a/S_R1.fastq.gz", "a/S_R2.fastq"], []),
        (["a/S_R1.fastq.gz", "a/S_2.fastq.gz"], []),
        (["a/sample_1_1.fq", "a/sample_1_2.fq"], ["a/sample_1"]),
    ],
)
def test_mates_share_a_folder_a_spelling_and_a_suffix(names: list[str], pairs: list[str]) -> None:
    manifest = _manifest(*(_entry(name, "fastq") for name in names))
    invocations = plan_invocations([_pipeline(per="pair")], RECORD, manifest, run_id="r")
    assert [item["label"] for item in invocations if len(item["inputs"]) == 2] == pairs


def test_stems_and_mates() -> None:
    assert file_stem("S1_R1.fastq.gz") == "S1_R1"
    assert file_stem("raw/EXP-1/x/S1.sorted.bam") == "S1.sorted"
    assert file_stem("calls.vcf.bgz") == "calls" and file_stem(".hidden") == ".hidden"
    assert mate_of("S2_L001_R2_001.fastq.gz") == ("S2_L001", 2)
    assert mate_of("S1.bam") is None


def test_one_invocation_per_experiment_takes_all_in_key_order() -> None:
    (invocation,) = plan_invocations(
        [_pipeline("seqkit-stats", per="experiment", takes={"formats": ["fastq"]})], RECORD, LAB, run_id="r"
    )
    assert invocation["label"] == "EXP-1" and invocation["name"] == "EXP-1"
    assert invocation["publish_prefix"] == "processed/EXP-1/seqkit-stats/"
    keys = [item["key"] for item in invocation["inputs"]]
    assert keys == sorted(keys) and len(keys) == 6
    assert plan_invocations([_pipeline(per="experiment", takes={"formats": ["cram"]})], RECORD, LAB, run_id="r") == []


def test_ids_are_stable_across_runs_and_change_with_version_or_checksum() -> None:
    pipeline = _pipeline(takes={"formats": ["fastq"]})
    first = plan_invocations([pipeline], RECORD, LAB, run_id="run-a")
    again = plan_invocations([pipeline], RECORD, LAB, run_id="run-b")
    assert [i["invocation_id"] for i in first] == [i["invocation_id"] for i in again]
    assert all(i["invocation_id"].startswith("fastp-") and len(i["invocation_id"]) == len("fastp-") + 16 for i in first)
    assert first[0]["staging_prefix"] != again[0]["staging_prefix"]

    bumped = plan_invocations([_pipeline(version="2", takes={"formats": ["fastq"]})], RECORD, LAB, run_id="run-a")
    assert not {i["invocation_id"] for i in bumped} & {i["invocation_id"] for i in first}

    changed = LAB.entry("raw/EXP-1/run1/S1_R2.fastq.gz")
    assert changed is not None
    other = ManifestEntry(**{**changed.__dict__, "sha256": "0" * 64})
    edited = _manifest(other, *(entry for entry in LAB.entries if entry is not changed))
    after = {i["label"]: i["invocation_id"] for i in plan_invocations([pipeline], RECORD, edited, run_id="run-a")}
    before = {i["label"]: i["invocation_id"] for i in first}
    assert [label for label in before if before[label] != after[label]] == ["run1/S1_R2"]


def test_outputs_of_are_planned_in_a_later_stage_from_what_was_published() -> None:
    fastp = _pipeline(per="pair", takes={"formats": ["fastq"]})
    samtools = _pipeline("samtools-stats", takes={"formats": ["bam"]})
    multiqc = _pipeline(
        "multiqc", per="experiment", takes={"outputs_of": ["fastp", "samtools-stats"], "formats": [".json", ".txt"]}
    )
    report = _pipeline("report", takes={"outputs_of": ["multiqc"]})
    assert [[p.name for p in stage] for stage in stages([report, multiqc, fastp, samtools])] == [
        ["fastp", "samtools-stats"],
        ["multiqc"],
        ["report"],
    ]
    assert [[p.name for p in stage] for stage in stages([multiqc, samtools])] == [["samtools-stats"], ["multiqc"]]

    assert plan_invocations([multiqc], RECORD, LAB, run_id="r") == []
    published = {
        "fastp": [
            {"key": "processed/EXP-1/fastp/run1/S1.fastp.json", "sha256": "a" * 64},
            {"key": "processed/EXP-1/fastp/run1/S1.fastp.html", "sha256": "b" * 64},
        ],
        "samtools-stats": [{"key": "processed/EXP-1/samtools-stats/aln/S1.stats.txt", "sha256": "c" * 64}],
        "unrelated": [{"key": "processed/EXP-1/other/x.json", "sha256": "d" * 64}],
    }
    (invocation,) = plan_invocations([multiqc], RECORD, LAB, run_id="r", outputs_by_pipeline=published)
    assert [item["key"] for item in invocation["inputs"]] == [
        "processed/EXP-1/fastp/run1/S1.fastp.json",
        "processed/EXP-1/samtools-stats/aln/S1.stats.txt",
    ]
    assert invocation["publish_prefix"] == "processed/EXP-1/multiqc/"


def test_expand_command_fills_each_placeholder() -> None:
    values = {
        "inputs": ["/in/a.bam", "/in/b.bam"],
        "output_dir": "/out",
        "name": "S1",
        "threads": 4,
        "input": "/in/a.bam",
    }
    assert expand_command(
        ["tool", "-@", "{threads}", "{inputs}", "--out={output_dir}/{name}.txt", "{{x}}"], values
    ) == [
        "tool",
        "-@",
        "4",
        "/in/a.bam",
        "/in/b.bam",
        "--out=/out/S1.txt",
        "{x}",
    ]
    assert expand_command(["tool", "{inputs}", "end"], {"inputs": []}) == ["tool", "end"]
    with pytest.raises(PlaceholderError, match=r"no value for \{read1\}"):
        expand_command(["tool", "{read1}"], values)
    with pytest.raises(PlaceholderError, match="must be an argument on its own"):
        expand_command(["tool", "x{inputs}"], values)
