"""Run events fold into one lineage graph whatever order they arrive in, and render as a readable tree.

Pinned here, on a raw -> processed -> final chain: dataset and job nodes and
the input -> job -> output edges; each run's state by event time, not arrival
(a COMPLETE that arrives before its START still wins, also at the same instant;
a retry's START and COMPLETE follow a FAIL of the same run; a later FAIL keeps
the last published version; OTHER events change no state); file-level edges
from the ``labmesh_files`` facet; the same graph from RunEvents, from their
JSON lines, from shuffled and duplicated streams; and the terminal rendering,
exactly, including failures, truncated file lists and other experiments.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.lineage.events import DatasetRef, event_to_dict, events_from_json_lines, events_to_json_lines
from labmesh_dagster.lineage.events import materialization_events as events
from labmesh_dagster.lineage.graph import DatasetId, Edge, FileEdge, JobId, build_graph, render_text
from labmesh_dagster_tests.lineage.samples import EXPERIMENT, PROCESSED, RAW, T0, chain, entry, events_for, ref

LANDING, RAW_ID = DatasetId("s3://lm-landing", "EXP-1"), DatasetId("s3://lm-raw", "EXP-1")
PROCESSED_ID, FINAL_ID = DatasetId("s3://lm-processed", "EXP-1"), DatasetId("s3://lm-final", "EXP-1")
RAW_JOB, PROCESSED_JOB, FINAL_JOB = (
    JobId("labmesh", name) for name in ("raw_dataset", "processed_dataset", "final_dataset")
)

CHAIN_TEXT = """\
EXP-1 lineage: Liver RNA-seq
[landing] s3://lm-landing/EXP-1
└─ raw_dataset: COMPLETE 2026-11-29 10:03 UTC (3m)
   └─ [raw] s3://lm-raw/EXP-1 · 2 files · 2.5 MB · version {raw}
      └─ processed_dataset: COMPLETE 2026-11-29 10:08 UTC (3m)
         └─ [processed] s3://lm-processed/EXP-1 · 3 files · 5.0 kB · version {processed}
            └─ final_dataset: FAIL 2026-11-29 11:03 UTC (3m) · error: OSError: [Errno 28] No space left on device
               └─ [final] s3://lm-final/EXP-1

file lineage
  landing/EXP-1/S1_R1.fastq.gz  ->  raw/EXP-1/S1_R1.fastq.gz
  landing/EXP-1/S2_R1.fastq.gz  ->  raw/EXP-1/S2_R1.fastq.gz
  raw/EXP-1/S1_R1.fastq.gz      ->  processed/EXP-1/qc/S1_R1.fastq.gz.qc.json
  raw/EXP-1/S2_R1.fastq.gz      ->  processed/EXP-1/qc/S2_R1.fastq.gz.qc.json
  raw/EXP-1/S1_R1.fastq.gz      ->  processed/EXP-1/qc/summary.json
  raw/EXP-1/S2_R1.fastq.gz      ->  processed/EXP-1/qc/summary.json
"""
DISK_FULL = "OSError: [Errno 28] No space left on device\nTraceback follows"


def test_the_chain_becomes_datasets_jobs_and_edges_through_the_jobs() -> None:
    graph = build_graph(chain())

    assert set(graph.datasets) == {LANDING, RAW_ID, PROCESSED_ID, FINAL_ID}
    assert set(graph.jobs) == {RAW_JOB, PROCESSED_JOB, FINAL_JOB}
    assert graph.edges == {
        Edge(LANDING, RAW_JOB),
        Edge(RAW_JOB, RAW_ID),
        Edge(RAW_ID, PROCESSED_JOB),
        Edge(PROCESSED_JOB, PROCESSED_ID),
        Edge(PROCESSED_ID, FINAL_JOB),
        Edge(FINAL_JOB, FINAL_ID),
    }
    assert {run.job.name: run.state for run in graph.runs.values()} == {
        "raw_dataset": "COMPLETE",
        "processed_dataset": "COMPLETE",
        "final_dataset": "COMPLETE",
    }
    raw = graph.datasets[RAW_ID]
    assert (raw.zone, raw.experiment_id, raw.version) == ("raw", "EXP-1", RAW.digest)
    assert "landing zone" in (graph.jobs[RAW_JOB].description or "")
    run = graph.latest_runs("EXP-1")[RAW_JOB]
    assert (run.inputs, run.outputs, run.dagster_run_id) == ((LANDING,), (RAW_ID,), "run-raw")
    assert run.started == T0 and run.ended == T0 + timedelta(minutes=3)


def test_file_edges_come_from_each_datasets_last_published_file_list() -> None:
    graph = build_graph(chain())

    assert len(graph.file_edges) == 7
    assert FileEdge("processed/EXP-1/qc/summary.json", "final/EXP-1/report.pdf", FINAL_ID) in graph.file_edges
    assert {edge.source for edge in graph.file_edges if edge.target == "processed/EXP-1/qc/summary.json"} == {
        "raw/EXP-1/S1_R1.fastq.gz",
        "raw/EXP-1/S2_R1.fastq.gz",
    }
    assert graph.datasets[FINAL_ID].files_run_id == graph.latest_runs("EXP-1")[FINAL_JOB].run_id


def test_the_graph_does_not_depend_on_arrival_order_duplicates_or_encoding() -> None:
    stream = chain(final_error=DISK_FULL)
    expected = build_graph(stream)
    shuffled = stream * 2
    random.Random(7).shuffle(shuffled)

    assert build_graph(reversed(stream)) == expected
    assert build_graph(shuffled) == expected
    assert build_graph(events_from_json_lines(events_to_json_lines(stream))) == expected
    assert build_graph([event_to_dict(event) for event in stream]) == expected


def test_a_run_that_only_started_is_running() -> None:
    start, _ = events_for("raw_dataset")
    graph = build_graph([start])

    (run,) = graph.runs.values()
    assert (run.state, run.ended) == ("START", None)
    assert "raw_dataset: RUNNING since 2026-11-29 10:00 UTC" in render_text(graph, "EXP-1")


def test_a_retry_that_completes_replaces_the_failure_of_the_same_run() -> None:
    failed = events_for("raw_dataset", error="ConnectionError: throttled")
    retried = events_for("raw_dataset", started=T0 + timedelta(minutes=5))
    graph = build_graph([*failed, *retried])

    (run,) = graph.runs.values()
    assert (run.state, run.error) == ("COMPLETE", None)
    assert run.started == T0 and run.ended == T0 + timedelta(minutes=8)


def test_a_retry_in_progress_is_running_again() -> None:
    failed = events_for("raw_dataset", error="ConnectionError: throttled")
    retry_start, _ = events_for("raw_dataset", started=T0 + timedelta(minutes=5))
    graph = build_graph([retry_start, *failed])

    (run,) = graph.runs.values()
    assert (run.state, run.error, run.ended) == ("START", None, None)


def test_a_materialization_that_took_no_time_still_completes() -> None:
    start, end = events_for("experiment", minutes=0)

    assert start.eventTime == end.eventTime
    assert [run.state for run in build_graph([end, start]).runs.values()] == ["COMPLETE"]


def test_other_events_add_facets_but_change_no_state() -> None:
    start, end = (event_to_dict(event) for event in events_for("raw_dataset"))
    other = {**end, "eventType": "OTHER", "eventTime": "2026-11-29T11:00:00Z", "inputs": [], "outputs": []}
    other["run"] = {"runId": end["run"]["runId"], "facets": {"note": {"text": "re-indexed"}}}

    (run,) = build_graph([start, end, other]).runs.values()

    assert run.state == "COMPLETE" and run.facets["note"] == {"text": "re-indexed"}
    assert run.experiment_id == "EXP-1"


def test_a_later_failed_rematerialization_keeps_the_published_version() -> None:
    first = events_for("raw_dataset", run_id="run-1")
    second = events_for("raw_dataset", run_id="run-2", started=T0 + timedelta(days=1), error="OSError: disk full")
    graph = build_graph([*second, *first])

    latest = graph.latest_runs("EXP-1")[RAW_JOB]
    assert (latest.dagster_run_id, latest.state, latest.error) == ("run-2", "FAIL", "OSError: disk full")
    assert graph.datasets[RAW_ID].version == RAW.digest
    assert graph.datasets[RAW_ID].files_run_id != latest.run_id
    assert "raw_dataset: FAIL 2026-11-30 10:03 UTC (3m) · latest of 2 runs · error: OSError: disk full" in (
        render_text(graph, "EXP-1")
    )


def test_the_chain_renders_as_a_tree_with_its_file_lineage() -> None:
    graph = build_graph(chain(final_error=DISK_FULL))

    text = render_text(graph, "EXP-1")

    assert text == CHAIN_TEXT.format(raw=RAW.digest[:12], processed=PROCESSED.digest[:12])


def test_local_datasets_render_as_paths() -> None:
    text = render_text(build_graph(chain(store="local")), "EXP-1")

    assert "└─ [final] /srv/lab data/zürich/final/EXP-1 · 1 file · 50.0 kB · version " in text
    assert "  processed/EXP-1/qc/summary.json  ->  final/EXP-1/report.pdf\n" in text


def test_a_run_with_two_inputs_is_shown_once() -> None:
    both = events(
        asset="final_dataset",
        run_id="r",
        experiment=EXPERIMENT,
        inputs=[ref(Zone.RAW), ref(Zone.PROCESSED)],
        outputs=[ref(Zone.FINAL)],
        started=T0,
        ended=T0,
    )
    text = render_text(build_graph(both), "EXP-1")

    assert text.count("final_dataset: COMPLETE") == 1
    assert "final_dataset (shown above)" in text


def test_the_folders_the_experiment_asset_provisions_hang_under_it() -> None:
    provisioned = events_for("experiment", run_id="run-exp", started=T0 - timedelta(minutes=10), minutes=0)
    text = render_text(build_graph([*provisioned, *chain()]), "EXP-1")

    assert text.startswith("EXP-1 lineage: Liver RNA-seq\n└─ experiment: COMPLETE 2026-11-29 09:50 UTC (0s)\n")
    assert "   ├─ [landing] s3://lm-landing/EXP-1\n   │  └─ raw_dataset: COMPLETE" in text
    assert "   └─ [final] s3://lm-final/EXP-1 (shown above)\n" in text


def test_other_experiments_and_other_producers_stay_out_of_an_experiments_view() -> None:
    other = EXPERIMENT.__class__(id="EXP-2", title="Kidney")
    foreign = {
        "eventType": "COMPLETE",
        "eventTime": "2026-11-29T12:00:00Z",
        "run": {"runId": "0b9a5c9e-9a6a-4c52-8f0e-5a1cc2f8b0a1"},
        "job": {"namespace": "spark", "name": "nightly"},
        "inputs": [{"namespace": "s3://lm-final", "name": "EXP-1"}],
        "outputs": [{"namespace": "s3://warehouse", "name": "reports"}],
    }
    dataset_event = {"eventTime": "2026-11-29T12:00:00Z", "dataset": {"namespace": "s3://x", "name": "y"}}
    ours = [*chain(), *events_for("raw_dataset", experiment=other, run_id="run-2")]
    stream = [*(event_to_dict(event) for event in ours), foreign, dataset_event]

    graph = build_graph(stream)

    assert len(graph.runs) == 5 and JobId("spark", "nightly") in graph.jobs
    assert graph.run_experiment(graph.runs["0b9a5c9e-9a6a-4c52-8f0e-5a1cc2f8b0a1"]) is None
    text = render_text(graph, "EXP-1")
    assert "EXP-2" not in text and "nightly" not in text
    assert render_text(graph, "EXP-2").startswith("EXP-2 lineage: Kidney\n[landing] s3://lm-landing/EXP-2\n")
    assert render_text(graph, "EXP-3") == "EXP-3 lineage\n  no lineage events for EXP-3\n"


def test_a_run_event_without_a_job_is_refused_by_name() -> None:
    broken = event_to_dict(events_for("raw_dataset")[0])
    del broken["job"]

    with pytest.raises(ValueError, match=f"run {broken['run']['runId']}: the event names no job"):
        build_graph([broken])


def test_long_file_lineage_is_cut_and_truncated_lists_point_at_the_manifest() -> None:
    many = Manifest.build(
        "EXP-1",
        "raw",
        [entry(f"raw/EXP-1/{n:04}.fastq", 1, "fastq", f"landing/EXP-1/{n:04}.fastq") for n in range(1_500)],
    )
    stream = events(
        asset="raw_dataset",
        run_id="r",
        experiment=EXPERIMENT,
        inputs=[ref(Zone.LANDING)],
        outputs=[DatasetRef("s3://lm-raw/EXP-1/", Zone.RAW, many)],
        started=T0,
        ended=T0,
    )

    graph = build_graph(stream)
    text = render_text(graph, "EXP-1", file_limit=3)

    listed = len(graph.datasets[RAW_ID].files["files"])  # type: ignore[index]
    assert 500 < listed < 1_500
    assert f"  landing/EXP-1/0002.fastq  ->  raw/EXP-1/0002.fastq\n  … and {listed - 3} more\n" in text
    assert text.endswith(
        f"  s3://lm-raw/EXP-1: the event lists {listed:,} of 1,500 files; all are in "
        "s3://lm-raw/EXP-1/_labmesh/manifest.json\n"
    )
