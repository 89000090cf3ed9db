"""The built-in pipelines file, run by the tool runner with the real tools on tiny generated lab files.

Contract pinned here: ``builtin.yaml`` loads; planned by `plan_invocations` over a raw manifest holding a
FASTQ pair, a lone FASTQ, a BAM and a VCF, every built-in pipeline runs its real tool (fastp, seqkit,
samtools flagstat/stats/idxstats, bcftools stats) and stages the outputs its globs name, with the
tool's version recorded; MultiQC over all of those outputs writes exactly one ``multiqc_report.html``
whose own modules recognised every one of them; fastp writes reports only, never trimmed reads; where
fastp is not installed its invocation says so and its fallback, labmesh's own FASTQ QC, runs instead.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.experiment import ExperimentRecord, Sample
from labmesh_dagster.core.keys import ObjectKey
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.pipelines.planning import plan_invocations, stages
from labmesh_dagster.pipelines.spec import Pipeline, builtin_pipelines_path, load_pipelines
from labmesh_dagster.pipelines.tool_runner import run_invocation
from labmesh_dagster_tests.pipelines.tool_data import EXPERIMENT, RUN_ID, bam, fastq_gz, put_raw, vcf

RECORD = ExperimentRecord(id=EXPERIMENT, title="QC demo", platform="Illumina", samples=(Sample("S1"), Sample("S2")))


def _builtin() -> dict[str, Pipeline]:
    return {pipeline.name: pipeline for pipeline in load_pipelines(builtin_pipelines_path())}


def _lab(store: LocalObjectStore, tmp_path: Path) -> Manifest:
    files = {
        "fastq/S1_R1.fastq.gz": ("fastq.gz", fastq_gz(seed=1)),
        "fastq/S1_R2.fastq.gz": ("fastq.gz", fastq_gz(seed=2)),
        "fastq/S2.fastq.gz": ("fastq.gz", fastq_gz(seed=3)),
        "bam/S1.bam": ("bam", bam(tmp_path / "S1.bam")),
        "vcf/S1.vcf": ("vcf", vcf()),
    }
    entries = []
    for relative, (fmt, content) in files.items():
        item = put_raw(store, relative, content)
        entries.append(
            ManifestEntry(
                key=item["key"],
                size=len(content),
                sha256=item["sha256"],
                format=fmt,
                created="2026-12-06T06:00:00+00:00",
            )
        )
    return Manifest.build(EXPERIMENT, "raw", entries)


def _run(store: LocalObjectStore, invocations: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {invocation["invocation_id"]: run_invocation(store, invocation) for invocation in invocations}


def test_the_builtin_file_loads_and_names_labmesh_qc_as_fastps_fallback() -> None:
    pipelines = _builtin()

    assert list(pipelines) == [
        "fastp",
        "fastq-qc",
        "seqkit-stats",
        "samtools-flagstat",
        "samtools-stats",
        "samtools-idxstats",
        "bcftools-stats",
        "multiqc",
    ]
    assert pipelines["fastp"].fallback == "fastq-qc"
    assert set(pipelines["multiqc"].takes.outputs_of) == set(pipelines) - {"fastq-qc", "multiqc"}
    assert "--no-version-check" in pipelines["multiqc"].command


@pytest.mark.slow
def test_every_builtin_tool_runs_for_real_and_multiqc_recognises_all_of_their_outputs(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    manifest = _lab(store, tmp_path)
    pipelines = [pipeline for pipeline in _builtin().values() if pipeline.name != "fastq-qc"]
    first, second = stages(pipelines)

    planned = plan_invocations(first, RECORD, manifest, run_id=RUN_ID)
    results = _run(store, planned)

    assert {result["status"] for result in results.values()} == {"succeeded"}, [
        (result["invocation_id"], result["reason"], result["stderr_tail"][-500:]) for result in results.values()
    ]
    names: dict[str, list[str]] = defaultdict(list)
    outputs_by_pipeline: dict[str, list[dict[str, str]]] = defaultdict(list)
    for invocation in planned:
        result = results[invocation["invocation_id"]]
        names[invocation["pipeline"]["name"]] += [output["name"] for output in result["outputs"]]
        outputs_by_pipeline[invocation["pipeline"]["name"]] += [
            {"key": output["key"], "sha256": output["sha256"]} for output in result["outputs"]
        ]
    assert {name: sorted(found) for name, found in names.items()} == {
        # A pair's reads go to fastp together; no trimmed reads are written, only the reports.
        "fastp": ["S1.fastp.html", "S1.fastp.json", "S2.fastp.html", "S2.fastp.json"],
        "seqkit-stats": [f"{EXPERIMENT}.seqkit-stats.tsv"],
        "samtools-flagstat": ["S1.flagstat.txt"],
        "samtools-stats": ["S1.samtools-stats.txt"],
        "samtools-idxstats": ["S1.idxstats.txt"],
        "bcftools-stats": ["S1.bcftools-stats.txt"],
    }
    versions = {name: version for result in results.values() for name, version in result["tool_versions"].items()}
    assert set(versions) == {"fastp", "seqkit", "samtools", "bcftools"}
    assert all(version[0].isdigit() for version in versions.values()), versions
    flagstat = _staged_text(store, outputs_by_pipeline["samtools-flagstat"][0])
    assert flagstat.startswith("60 + 0 in total (QC-passed reads + QC-failed reads)")
    assert _staged_text(store, outputs_by_pipeline["samtools-idxstats"][0]).startswith("chr1\t2000\t60\t0")
    fastp_pair = json.loads(_staged_text(store, _named(outputs_by_pipeline["fastp"], "S1.fastp.json")))
    assert fastp_pair["summary"]["before_filtering"]["total_reads"] == 400  # both mates of 200 reads

    (report,) = plan_invocations(second, RECORD, manifest, run_id=RUN_ID, outputs_by_pipeline=outputs_by_pipeline)
    multiqc = run_invocation(store, report)

    assert multiqc["status"] == "succeeded", (multiqc["reason"], multiqc["stderr_tail"])
    assert multiqc["tool_versions"]["multiqc"].startswith("1.")
    staged = {output["name"]: output for output in multiqc["outputs"]}
    assert [name for name in staged if name.endswith(".html")] == ["multiqc_report.html"]
    sources = _staged_text(store, staged["multiqc_report_data/multiqc_sources.txt"])
    found = {(line.split("\t")[0], line.split("\t")[1]) for line in sources.splitlines()[1:]}
    assert {module for module, _section in found} >= {"fastp", "SeqKit", "Samtools", "Bcftools"}
    read = {Path(line.split("\t")[-1]).name for line in sources.splitlines()[1:]}
    assert read >= {
        "S1.fastp.json",
        "S2.fastp.json",
        f"{EXPERIMENT}.seqkit-stats.tsv",
        "S1.flagstat.txt",
        "S1.samtools-stats.txt",
        "S1.idxstats.txt",
        "S1.bcftools-stats.txt",
    }


def test_bcftools_and_samtools_report_through_stdout_into_their_output_files(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    manifest = _lab(store, tmp_path)
    pipelines = _builtin()

    planned = plan_invocations(
        [pipelines["bcftools-stats"], pipelines["samtools-flagstat"]], RECORD, manifest, run_id=RUN_ID
    )
    results = list(_run(store, planned).values())

    assert [result["status"] for result in results] == ["succeeded", "succeeded"]
    bcftools, flagstat = (result["outputs"][0] for result in results)
    assert _staged_text(store, bcftools).startswith("# This file was produced by bcftools stats")
    assert "number of SNPs:\t2" in _staged_text(store, bcftools)
    assert "60 + 0 mapped" in _staged_text(store, flagstat)
    assert results[1]["command_line"].startswith("python -m labmesh_dagster.pipelines.stdout_to_file ")


def test_without_fastp_its_invocation_says_so_and_labmesh_qc_runs_in_its_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalObjectStore(tmp_path / "store")
    manifest = _lab(store, tmp_path)
    pipelines = _builtin()
    # A PATH with labmesh's own interpreter and nothing else: fastp is not on it.
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))

    fastp = plan_invocations([pipelines["fastp"]], RECORD, manifest, run_id=RUN_ID)
    fallback = plan_invocations([pipelines["fastq-qc"]], RECORD, manifest, run_id=RUN_ID)
    fastp_results, qc_results = _run(store, fastp), _run(store, fallback)

    assert {(r["status"], r["reason"]) for r in fastp_results.values()} == {("failed", "tool not installed: fastp")}
    assert [r["status"] for r in qc_results.values()] == ["succeeded"] * 3
    outputs = [output for result in qc_results.values() for output in result["outputs"]]
    assert sorted(output["name"] for output in outputs) == ["S1_R1.qc.json", "S1_R2.qc.json", "S2.qc.json"]
    document = json.loads(_staged_text(store, outputs[0]))
    assert document["pipeline"] == "labmesh.fastq_qc" and document["status"] == "ok"
    assert document["stats"]["reads"] == 200


def test_labmesh_qc_fails_a_corrupt_fastq_with_the_reason_on_stderr(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    item = put_raw(store, "fastq/bad.fastq", b"@a\nACGT\n+\nII\n")
    entry = ManifestEntry(
        key=item["key"], size=14, sha256=item["sha256"], format="fastq", created="2026-12-06T06:00:00+00:00"
    )
    (planned,) = plan_invocations(
        [_builtin()["fastq-qc"]], RECORD, Manifest.build(EXPERIMENT, "raw", [entry]), run_id=RUN_ID
    )

    result = run_invocation(store, planned)

    assert result["status"] == "failed" and result["exit_code"] == 1
    assert "QC of bad.fastq failed: length_mismatch" in result["stderr_tail"]


def _named(outputs: list[dict[str, str]], name: str) -> dict[str, str]:
    return next(output for output in outputs if output["key"].endswith("/" + name))


def _staged_text(store: LocalObjectStore, output: dict[str, Any]) -> str:
    return store.read_bytes(ObjectKey.parse(output["key"])).decode("utf-8")
