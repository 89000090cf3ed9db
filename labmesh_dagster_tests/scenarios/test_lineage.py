"""Every materialization leaves its OpenLineage run: valid events chaining landing -> raw -> processed -> final.

Contract, on both profiles: after the skeleton's flow, each of `experiment`,
`raw_dataset`, `processed_dataset` and `final_dataset` recorded a START and a
COMPLETE that validate against the official OpenLineage schema; the graph
links each zone to the next through its asset, with file-level edges from the
manifests; rematerializing everything adds runs, never an edge or a dataset;
a failed materialization is recorded as FAIL with its error; and
`labmesh lineage` prints the tree or the events as JSON lines.
"""

from __future__ import annotations

import errno
import json
from typing import Any

import pytest

from labmesh_dagster import cli
from labmesh_dagster.connectors.lineage.sqlite import SqliteLineageLog
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.keys import ObjectKey
from labmesh_dagster.lineage.graph import build_graph
from labmesh_dagster_tests.conftest import Lab
from labmesh_dagster_tests.lineage.schemas import validate_event
from labmesh_dagster_tests.scenarios.test_end_to_end import run_flow

ASSETS = ["experiment", "raw_dataset", "processed_dataset", "final_dataset"]


def lineage_events(lab: Lab) -> list[dict]:
    return SqliteLineageLog(lab.settings.catalog_path).events("EXP-42")


def zone_chain(lab: Lab) -> list[tuple[str, str, str]]:
    """(input zone, job, output zone) for every dataset edge through a job."""
    graph = build_graph(lineage_events(lab))
    chain = set()
    for run in graph.runs.values():
        for source in run.inputs or [None]:
            for target in run.outputs:
                source_zone = graph.datasets[source].zone if source else "-"
                chain.add((source_zone, run.job.name, graph.datasets[target].zone))
    return sorted(chain)


def test_each_materialization_records_schema_valid_start_and_complete(any_lab: Lab) -> None:
    run_flow(any_lab)
    events = lineage_events(any_lab)

    assert sorted((e["job"]["name"], e["eventType"]) for e in events) == sorted(
        (asset, state) for asset in ASSETS for state in ("START", "COMPLETE")
    )
    for event in events:
        assert "labmesh_run" in validate_event(event)  # raises on anything the schemas refuse
    assert zone_chain(any_lab) == [
        ("-", "experiment", "landing"),
        ("landing", "raw_dataset", "raw"),
        ("processed", "final_dataset", "final"),
        ("raw", "processed_dataset", "processed"),
    ]
    file_edges = {(edge.source, edge.target) for edge in build_graph(events).file_edges}
    assert ("landing/EXP-42/run1/S-001_R1.fastq.gz", "raw/EXP-42/run1/S-001_R1.fastq.gz") in file_edges
    assert any(
        source == "raw/EXP-42/run1/S-001_R1.fastq.gz" and target.startswith("processed/EXP-42/")
        for source, target in file_edges
    )


@pytest.mark.slow
def test_rematerializing_adds_runs_but_no_edge_or_dataset(any_lab: Lab) -> None:
    run_flow(any_lab)
    before = build_graph(lineage_events(any_lab))

    for asset in ASSETS:
        result = any_lab.materialize(asset, partition="EXP-42")
        assert result.success
        [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "lineage_recorded"]
        assert check.passed
    after = build_graph(lineage_events(any_lab))

    assert len(after.runs) == len(before.runs) + len(ASSETS)
    assert after.edges == before.edges and set(after.datasets) == set(before.datasets)
    assert {(e.source, e.target) for e in after.file_edges} == {(e.source, e.target) for e in before.file_edges}


def test_a_failed_materialization_is_recorded_as_fail_with_its_error(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    run_flow(lab)
    lab.put_final("EXP-42", "report/addendum.md", b"# Addendum\n")
    real_put = LocalObjectStore.put

    def disk_full_for_manifests(self: LocalObjectStore, key: ObjectKey, data: Any) -> Any:
        if key.is_labmesh_internal:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_put(self, key, data)

    monkeypatch.setattr(LocalObjectStore, "put", disk_full_for_manifests)
    result = lab.materialize("final_dataset", partition="EXP-42", raise_on_error=False)

    assert not result.success
    [failed] = [e for e in lineage_events(lab) if e["eventType"] == "FAIL"]
    assert failed["job"]["name"] == "final_dataset"
    assert "No space left on device" in failed["run"]["facets"]["errorMessage"]["message"]
    assert "errorMessage" in validate_event(failed)


def test_labmesh_lineage_prints_the_tree_and_the_events(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_flow(lab)
    monkeypatch.setenv("LABMESH_HOME", str(lab.settings.home))

    assert cli.main(["lineage", "EXP-42"]) == 0
    tree = capsys.readouterr().out
    assert cli.main(["lineage", "EXP-42", "--format", "openlineage"]) == 0
    lines = capsys.readouterr().out.splitlines()

    assert "EXP-42 lineage" in tree and "raw_dataset: COMPLETE" in tree and "final_dataset: COMPLETE" in tree
    assert "raw/EXP-42/run1/S-001_R1.fastq.gz" in tree
    assert len(lines) == 8 and all(json.loads(line)["eventType"] in {"START", "COMPLETE"} for line in lines)
    assert cli.main(["lineage", "EXP-7"]) == 1
    assert cli.main(["lineage", "not an id!"]) == 2


def test_the_lineage_check_is_declared_on_every_asset(lab: Lab) -> None:
    checks = {(key.asset_key.to_user_string(), key.name) for key in lab.defs.resolve_asset_graph().asset_check_keys}
    assert {(asset, "lineage_recorded") for asset in ASSETS} <= checks
