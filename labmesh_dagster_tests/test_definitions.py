"""The Definitions Dagster loads: the asset graph, its partitions, automation, sensors and checks.

Contract: one code location with `experiment` -> `raw_dataset` ->
`processed_dataset` -> `final_dataset`, all partitioned by the `experiments`
dynamic partitions, described, grouped, owned and tagged with kinds;
`processed_dataset` follows raw eagerly; every sensor runs by default; the
environment is read when Dagster loads the location, not at import.
"""

from __future__ import annotations

import os

import dagster as dg
import pytest

from labmesh_dagster.definitions import build_definitions, defs
from labmesh_dagster.defs.pipeline_engines import PipelineEnginesResource
from labmesh_dagster.settings import Settings, SettingsError

ASSETS = ["experiment", "raw_dataset", "processed_dataset", "final_dataset"]


@pytest.fixture
def definitions(settings: Settings) -> dg.Definitions:
    return build_definitions(settings)


def test_every_asset_is_partitioned_by_experiment_and_documented(definitions: dg.Definitions) -> None:
    graph = definitions.resolve_asset_graph()
    for name in ASSETS:
        node = graph.get(dg.AssetKey(name))
        assert isinstance(node.partitions_def, dg.DynamicPartitionsDefinition)
        assert node.partitions_def.name == "experiments"
        assert node.description and node.group_name == "lab"
        assert node.owners == ["team:lab-informatics"]
        assert node.kinds


def test_every_asset_is_in_one_group_so_the_global_lineage_opens_expanded(definitions: dg.Definitions) -> None:
    """Dagster's global lineage boxes groups only when they vary, and opens those boxes collapsed."""
    graph = definitions.resolve_asset_graph()
    assert {graph.get(key).group_name for key in graph.get_all_asset_keys()} == {"lab"}


def test_datasets_descend_from_the_experiment_in_order(definitions: dg.Definitions) -> None:
    graph = definitions.resolve_asset_graph()
    parents = {name: {key.to_user_string() for key in graph.get(dg.AssetKey(name)).parent_keys} for name in ASSETS}
    assert parents == {
        "experiment": set(),
        "raw_dataset": {"experiment"},
        "processed_dataset": {"raw_dataset"},
        "final_dataset": {"processed_dataset"},
    }


def test_processed_dataset_follows_raw_by_eager_automation(definitions: dg.Definitions) -> None:
    graph = definitions.resolve_asset_graph()
    assert graph.get(dg.AssetKey("processed_dataset")).automation_condition == dg.AutomationCondition.eager()
    assert graph.get(dg.AssetKey("raw_dataset")).automation_condition is None


def test_every_job_runs_its_steps_in_the_run_process(definitions: dg.Definitions) -> None:
    """A step in a process of its own would import Dagster and labmesh a second time per run."""
    jobs = definitions.resolve_all_job_defs()
    assert {job.name for job in jobs} >= {"__ASSET_JOB", "content_vectors"}
    assert {job.name: job.executor_def.name for job in jobs} == {job.name: "in_process" for job in jobs}


def test_local_pipelines_keep_their_tools_versions_under_the_labmesh_home(
    definitions: dg.Definitions, settings: Settings
) -> None:
    engines = (definitions.resources or {})["pipeline_engines"]
    assert isinstance(engines, PipelineEnginesResource)
    assert engines.tool_versions_cache == str(settings.home / "cache" / "tool-versions.json")


def test_sensors_and_automation_run_by_default(definitions: dg.Definitions) -> None:
    sensors = {sensor.name: sensor for sensor in definitions.sensors or []}
    assert set(sensors) == {
        "eln_sensor",
        "landing_sensor",
        "final_sensor",
        "unfinished_work_sensor",
        "content_vectors_sensor",
        "labmesh_automation",
    }
    assert all(sensor.default_status == dg.DefaultSensorStatus.RUNNING for sensor in sensors.values())


def test_the_promised_asset_checks_exist(definitions: dg.Definitions) -> None:
    checks = {(key.asset_key.to_user_string(), key.name) for key in definitions.resolve_asset_graph().asset_check_keys}
    assert {
        ("raw_dataset", "raw_files_match_landing_checksums"),
        ("raw_dataset", "catalog_matches_manifest"),
        ("processed_dataset", "catalog_matches_manifest"),
        ("final_dataset", "catalog_matches_manifest"),
        ("experiment", "eln_knows_data_location"),
    } <= checks


def test_the_code_location_loads_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("LABMESH_HOME", str(tmp_path))
    loaded = defs()
    assert isinstance(loaded, dg.Definitions)
    assert {key.to_user_string() for key in loaded.resolve_all_asset_keys()} == set(ASSETS)
    dg.Definitions.validate_loadable(loaded)


def test_a_bad_setting_fails_when_dagster_loads_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABMESH_PROFILE", "mainframe")
    with pytest.raises(SettingsError, match="LABMESH_PROFILE='mainframe'"):
        defs()


def test_an_api_key_read_from_the_environment_reaches_the_ui_by_its_variable_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """Dagster shows resource configuration; a secret from the environment appears there as its `EnvVar`."""
    for name, value in {
        "LABMESH_HOME": str(tmp_path),
        "LABMESH_ELN": "elabftw",
        "LABMESH_ELABFTW_URL": "https://elab.example.org",
        "LABMESH_ELABFTW_API_KEY": "3-secret-key",
    }.items():
        monkeypatch.setenv(name, value)

    from_environment = (defs().resources or {})["eln"]
    from_mapping = (build_definitions(Settings.from_env(dict(os.environ))).resources or {})["eln"]

    assert isinstance(from_environment.api_key, dg.EnvVar) and from_environment.api_key == "LABMESH_ELABFTW_API_KEY"
    assert from_mapping.api_key == "3-secret-key"  # settings given as a mapping carry the value itself
