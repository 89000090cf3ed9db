"""A run that ran pipelines says so in OpenLineage: which pipelines, and what made each file from which bytes.

Pinned here: a processed run carrying pipelines has the ``labmesh_pipelines``
job facet (name, version, engine, declared command, tool versions) on START
and on COMPLETE, and both events validate against OpenLineage 2-0-2 and
labmesh's facet schemas; each file a pipeline made lists ``producedBy`` (the
pipeline, version, invocation and its inputs' keys and sha256) in
``labmesh_files``, a file no pipeline made has none, and a long input list is
cut with its count, marking the facet truncated; a run with no pipelines has no
job facet. `pipeline_refs` makes the refs from the pipelines contract's
invocations and results, `pipelines_of` from the files' provenance (one item
per pipeline and version, with its invocations counted), and
`LineageRun.pipelines`, holding either, reaches the events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from labmesh_dagster.connectors.lineage.base import LineageSink
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest, ManifestEntry, Provenance, ProvenanceInput
from labmesh_dagster.lineage.events import DatasetRef, event_to_dict, files_facet, materialization_events
from labmesh_dagster.lineage.pipelines import PipelineRef, pipeline_refs, pipelines_of
from labmesh_dagster.steps.lineage_run import LineageRun
from labmesh_dagster_tests.lineage.samples import EXPERIMENT, RAW, T0, location
from labmesh_dagster_tests.lineage.schemas import validate_event

FASTP = PipelineRef(
    name="fastp",
    version="1",
    engine="local",
    command="fastp --in1 {input} --json '{output_dir}/{name}.fastp.json'",
    tool_versions={"fastp": "0.23.2"},
)
MULTIQC = PipelineRef(name="multiqc", version="1", engine="local", command="multiqc {input_dir}", tool_versions={})


def made_by(pipeline: str, *inputs: ManifestEntry) -> Provenance:
    return Provenance(
        pipeline=pipeline,
        version="1",
        invocation_id=f"{pipeline}-0123456789abcdef",
        engine="local",
        run_id="run-processed",
        command_line=f"{pipeline} ...",
        tool_versions={pipeline: "1.0"},
        inputs=tuple(ProvenanceInput(item.key, item.sha256) for item in inputs),
    )


def output(key: str, made: Provenance | None) -> ManifestEntry:
    inputs = tuple(item.key for item in made.inputs) if made else ()
    return ManifestEntry(
        key=key,
        size=10,
        sha256="0f" * 32,
        format="json",
        created="2026-11-29T10:00:00+00:00",
        derived_from=inputs,
        produced_by=made,
    )


S1, S2 = RAW.entries
PROCESSED = Manifest.build(
    "EXP-1",
    "processed",
    [
        output("processed/EXP-1/fastp/fastq/S1_R1.fastp.json", made_by("fastp", S1)),
        output("processed/EXP-1/multiqc/multiqc_report.html", made_by("multiqc", S1, S2)),
        output("processed/EXP-1/notes.json", None),
    ],
)


def processed_events(pipelines: Sequence[PipelineRef]) -> tuple[dict[str, Any], dict[str, Any]]:
    start, end = materialization_events(
        asset="processed_dataset",
        run_id="run-processed",
        experiment=EXPERIMENT,
        inputs=[DatasetRef(location(Zone.RAW), Zone.RAW, RAW)],
        outputs=[DatasetRef(location(Zone.PROCESSED), Zone.PROCESSED, PROCESSED)],
        started=T0,
        ended=T0 + timedelta(minutes=4),
        pipelines=pipelines,
    )
    return event_to_dict(start), event_to_dict(end)


def test_a_processed_run_names_its_pipelines_in_a_job_facet_and_validates() -> None:
    start, end = processed_events([FASTP, MULTIQC])

    assert "labmesh_pipelines" in validate_event(start)
    assert "labmesh_pipelines" in validate_event(end)
    facet = end["job"]["facets"]["labmesh_pipelines"]
    assert facet["_producer"].startswith("https://labmesh.example/")
    assert facet["_schemaURL"].endswith("LabmeshPipelinesJobFacet.json#/$defs/LabmeshPipelinesJobFacet")
    assert facet["pipelines"] == [
        {
            "name": "fastp",
            "version": "1",
            "engine": "local",
            "command": "fastp --in1 {input} --json '{output_dir}/{name}.fastp.json'",
            "toolVersions": {"fastp": "0.23.2"},
        },
        {"name": "multiqc", "version": "1", "engine": "local", "command": "multiqc {input_dir}", "toolVersions": {}},
    ]


def test_each_file_a_pipeline_made_lists_its_pipeline_and_exact_inputs() -> None:
    _, end = processed_events([FASTP, MULTIQC])

    files = {item["key"]: item for item in end["outputs"][0]["outputFacets"]["labmesh_files"]["files"]}
    assert files["processed/EXP-1/fastp/fastq/S1_R1.fastp.json"]["producedBy"] == {
        "pipeline": "fastp",
        "version": "1",
        "invocationId": "fastp-0123456789abcdef",
        "inputs": [{"key": "raw/EXP-1/S1_R1.fastq.gz", "sha256": S1.sha256}],
    }
    assert [item["key"] for item in files["processed/EXP-1/multiqc/multiqc_report.html"]["producedBy"]["inputs"]] == [
        S1.key,
        S2.key,
    ]
    assert "producedBy" not in files["processed/EXP-1/notes.json"]


def test_a_long_input_list_is_cut_and_counted_and_the_facet_says_it_was_truncated() -> None:
    many = [
        ManifestEntry(key=f"raw/EXP-1/S{n}.fastq.gz", size=1, sha256="ab" * 32, format="fastq", created="2026-11-29")
        for n in range(5)
    ]
    report = Manifest.build(
        "EXP-1", "processed", [output("processed/EXP-1/multiqc_report.html", made_by("multiqc", *many))]
    )

    facet = files_facet(report, derived_from_limit=2)
    (listed,) = facet.files

    assert listed.producedBy is not None
    assert len(listed.producedBy.inputs) == 2 and listed.producedBy.inputCount == 5
    assert facet.truncated


def test_a_run_without_pipelines_has_no_pipelines_facet() -> None:
    start, end = processed_events([])

    assert "labmesh_pipelines" not in start["job"]["facets"]
    assert "labmesh_pipelines" not in end["job"]["facets"]


def test_refs_are_made_from_the_contracts_invocations_and_results() -> None:
    fastp = {"name": "fastp", "version": "1", "engine": "local", "command": ["fastp", "--in1", "{input}"]}
    omics = {
        "name": "align",
        "version": "3",
        "engine": "healthomics",
        "command": [],
        "healthomics": {"workflow_id": "1234567", "workflow_type": "READY2RUN"},
    }
    invocations = [
        {"invocation_id": "fastp-a", "pipeline": fastp},
        {"invocation_id": "fastp-b", "pipeline": fastp},
        {"invocation_id": "align-a", "pipeline": omics},
    ]
    results = [
        {"invocation_id": "fastp-a", "engine": "local", "tool_versions": {"fastp": "0.23.2"}},
        {"invocation_id": "fastp-b", "engine": "ecs", "tool_versions": {"fastp": "0.23.4"}},
    ]

    assert pipeline_refs(invocations, results) == [
        PipelineRef("align", "3", "healthomics", "HealthOmics READY2RUN workflow 1234567", {}, invocations=1),
        PipelineRef("fastp", "1", "ecs, local", "fastp --in1 '{input}'", {"fastp": "0.23.2, 0.23.4"}, invocations=2),
    ]


def test_refs_are_made_from_provenance_one_per_pipeline_and_version() -> None:
    s1_fastp = made_by("fastp", S1)
    s2_fastp = replace(s1_fastp, invocation_id="fastp-2", tool_versions={"fastp": "0.23.4"})
    given = [FASTP, made_by("multiqc", S1, S2), s2_fastp, s1_fastp, s1_fastp]

    assert pipelines_of(iter(given)) == (
        FASTP,
        PipelineRef("fastp", "1", "local", "fastp ...", {"fastp": "0.23.4, 1.0"}, invocations=2),
        PipelineRef("multiqc", "1", "local", "multiqc ...", {"multiqc": "1.0"}, invocations=1),
    )


class ListSink(LineageSink):
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, events: Sequence[dict[str, Any]]) -> list[str]:
        self.events += events
        return []


def test_the_pipelines_a_lineage_run_carries_reach_its_events() -> None:
    sink = ListSink()
    run = LineageRun(asset="processed_dataset", run_id="run-processed", sink=sink, started=T0, experiment=EXPERIMENT)
    run.inputs.append(DatasetRef(location(Zone.RAW), Zone.RAW, RAW))
    run.pipelines += [made_by("fastp", S1), made_by("multiqc", S1, S2)]

    assert run.start("EXP-1") == []
    run.outputs.append(DatasetRef(location(Zone.PROCESSED), Zone.PROCESSED, PROCESSED))
    assert run.record(ended=T0 + timedelta(minutes=1)) == []

    assert [event["eventType"] for event in sink.events] == ["START", "COMPLETE"]
    for event in sink.events:
        validate_event(event)
        listed = event["job"]["facets"]["labmesh_pipelines"]["pipelines"]
        assert [(item["name"], item["invocationCount"]) for item in listed] == [("fastp", 1), ("multiqc", 1)]
