"""Changing a pipeline's version marks its processed datasets stale in Dagster; rematerializing makes them current.

Contract: the pipelines file is `processed_dataset`'s code version, so a bumped
version shows every processed partition made before as STALE, with a
code-version cause, through Dagster's own staleness API (the GraphQL
``staleStatus`` the UI shows). Rematerializing one experiment runs only the
pipeline whose version changed (the others are reused from their receipts),
records the new version in each output's provenance, and makes that partition
FRESH while an experiment not yet rematerialized stays STALE.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql

from labmesh_dagster.core.keys import Zone, manifest_key
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster_tests.conftest import Lab, make_settings

pytestmark = pytest.mark.slow  # each staleness read loads the code location in a gRPC server of its own

PIPELINES = """
version: 1
pipelines:
  - name: copy
    version: "{copy_version}"
    command: [cp, "{{input}}", "{{output_dir}}/{{name}}.copy"]
    outputs: ["*.copy"]
    takes: {{formats: [fastq]}}
  - name: gather
    version: "1"
    per: experiment
    command: [cp, "{{inputs}}", "{{output_dir}}"]
    outputs: ["*.fastq"]
    takes: {{formats: [fastq]}}
"""

STALENESS = """
query Staleness($partitions: [String!]!) {
  assetNodes(assetKeys: [{path: ["processed_dataset"]}]) {
    staleStatusByPartition(partitions: $partitions)
    staleCausesByPartition(partitions: $partitions) { category reason }
  }
}
"""

DEFINITIONS = """
from labmesh_dagster.definitions import build_definitions
from labmesh_dagster.settings import Settings

defs = build_definitions(Settings.from_env())
"""


def write_pipelines(path: Path, copy_version: str) -> None:
    path.write_text(textwrap.dedent(PIPELINES.format(copy_version=copy_version)), encoding="utf-8")


@pytest.fixture
def pipelines_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "pipelines.yaml"
    write_pipelines(path, "1")
    monkeypatch.setenv("LABMESH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LABMESH_PIPELINES", str(path))
    monkeypatch.setenv("LABMESH_DEMO", "0")
    yield path


def lab_for(tmp_path: Path, pipelines: Path, instance: dg.DagsterInstance) -> Lab:
    return Lab(make_settings(tmp_path / "home", LABMESH_PIPELINES=str(pipelines)), instance)


def staleness(tmp_path: Path, instance: dg.DagsterInstance, partitions: list[str]) -> dict[str, tuple[str, set[str]]]:
    """Each partition's stale status and causes, as Dagster's GraphQL API reports them for the code as it is now."""
    module = tmp_path / "lab_definitions.py"
    module.write_text(DEFINITIONS, encoding="utf-8")
    with define_out_of_process_context(str(module), "defs", instance) as context:
        result = execute_dagster_graphql(context, STALENESS, {"partitions": partitions})
    assert not result.errors, result.errors
    [node] = result.data["assetNodes"]
    return {
        partition: (status, {cause["category"] for cause in causes})
        for partition, status, causes in zip(
            partitions, node["staleStatusByPartition"], node["staleCausesByPartition"], strict=True
        )
    }


def processed(lab: Lab, experiment_id: str) -> Manifest:
    return Manifest.from_json(lab.store.read_bytes(manifest_key(Zone.PROCESSED, experiment_id)))


def test_a_new_pipeline_version_shows_stale_until_rematerialized(
    tmp_path: Path, pipelines_file: Path, instance: dg.DagsterInstance
) -> None:
    lab = lab_for(tmp_path, pipelines_file, instance)
    for experiment_id in ("EXP-1", "EXP-2"):
        lab.write_record(f"{experiment_id}.yaml", {"id": experiment_id, "title": "versions", "samples": ["S1"]})
    lab.run_sensor("eln_sensor")
    for experiment_id in ("EXP-1", "EXP-2"):
        lab.land(experiment_id, "S1.fastq", b"@r1\nACGT\n+\nIIII\n")
    lab.run_sensor("landing_sensor")
    for experiment_id in ("EXP-1", "EXP-2"):
        assert lab.materialize("processed_dataset", partition=experiment_id).success
    assert staleness(tmp_path, instance, ["EXP-1", "EXP-2"]) == {
        "EXP-1": ("FRESH", set()),
        "EXP-2": ("FRESH", set()),
    }

    write_pipelines(pipelines_file, "2")
    after = staleness(tmp_path, instance, ["EXP-1", "EXP-2"])
    assert after["EXP-1"][0] == "STALE" and "CODE" in after["EXP-1"][1]
    assert after["EXP-2"][0] == "STALE"

    bumped = lab_for(tmp_path, pipelines_file, instance)
    result = bumped.materialize("processed_dataset", partition="EXP-1")
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert (metadata["pipelines_ran"].value, metadata["pipelines_reused"].value) == (1, 1)
    copy = processed(bumped, "EXP-1").entry("processed/EXP-1/copy/S1.copy")
    assert copy is not None and copy.produced_by is not None and copy.produced_by.version == "2"
    assert staleness(tmp_path, instance, ["EXP-1", "EXP-2"])["EXP-1"] == ("FRESH", set())
    assert staleness(tmp_path, instance, ["EXP-1", "EXP-2"])["EXP-2"][0] == "STALE"
