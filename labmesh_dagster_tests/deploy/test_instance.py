"""A deployment's Dagster instance: on PostgreSQL, with the very run policy `labmesh dev` has.

Pinned here: the ``dagster.yaml`` `labmesh deploy` writes loads as a Dagster
instance whose runs, event log and schedules are in the PostgreSQL database
its environment names (a run executed through it is a row in that
database), and no URL or password is in the file; it says exactly what
`labmesh dev`'s SQLite instance says about retries, the run launcher, run
monitoring, the one-run-per-experiment limit and the pools; and the URL
Dagster is given is labmesh's own, through the driver dagster-postgres needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from labmesh_dagster.deploy.instance import (
    DAGSTER_DATABASE_URL_VARIABLE,
    DEV_DAGSTER_YAML,
    INSTANCE_POLICY,
    dagster_database_url,
    deployment_dagster_yaml,
)

ONE_RUN_PER_EXPERIMENT = {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}


def load(folder: Path, text: str) -> dg.DagsterInstance:
    folder.mkdir(parents=True)
    (folder / "dagster.yaml").write_text(text, encoding="utf-8")
    return dg.DagsterInstance.from_config(str(folder))


@pytest.fixture
def deployed(tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    """The deployment's instance, on a fresh database, as a process `labmesh deploy local` started loads it."""
    monkeypatch.setenv(DAGSTER_DATABASE_URL_VARIABLE, dagster_database_url(postgres_url))
    instance = load(tmp_path / "deploy", deployment_dagster_yaml())
    try:
        yield instance
    finally:
        instance.dispose()


@dg.op
def nothing() -> None:
    """A step that does nothing: the run is what the test needs."""


@dg.job
def one_step() -> None:
    nothing()


@pytest.mark.slow  # creating Dagster's tables in a new database takes a few seconds
def test_runs_event_log_and_schedules_are_in_the_named_postgres_database(
    deployed: dg.DagsterInstance, postgres_url: str
) -> None:
    assert isinstance(deployed.run_storage, PostgresRunStorage)
    assert isinstance(deployed.event_log_storage, PostgresEventLogStorage)
    assert isinstance(deployed.schedule_storage, PostgresScheduleStorage)

    result = one_step.execute_in_process(instance=deployed)

    assert result.success
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute("SELECT run_id, status FROM runs").fetchall()
    assert rows == [(result.run_id, "SUCCESS")]


@pytest.mark.slow
def test_the_deployment_keeps_labmesh_devs_run_policy(deployed: dg.DagsterInstance, tmp_path: Path) -> None:
    dev = load(tmp_path / "dev", DEV_DAGSTER_YAML)
    try:
        for name in ("run_monitoring", "run_retries", "telemetry", "nux"):
            assert deployed.get_settings(name) == dev.get_settings(name), name
        assert deployed.get_settings("run_monitoring")["enabled"] is True
        assert type(deployed.run_launcher) is type(dev.run_launcher)
        assert deployed.run_launcher.supports_check_run_worker_health
        assert deployed.get_concurrency_config() == dev.get_concurrency_config()
    finally:
        dev.dispose()
    concurrency = deployed.get_concurrency_config()
    assert isinstance(deployed.run_coordinator, dg.QueuedRunCoordinator)
    assert concurrency.run_queue_config is not None
    assert list(concurrency.run_queue_config.tag_concurrency_limits) == [ONE_RUN_PER_EXPERIMENT]
    assert concurrency.pool_config.default_pool_limit == 2


def test_the_file_names_the_variable_and_holds_no_url() -> None:
    config = yaml.safe_load(deployment_dagster_yaml())

    assert config["storage"] == {"postgres": {"postgres_url": {"env": DAGSTER_DATABASE_URL_VARIABLE}}}


def test_both_files_share_one_policy_and_differ_only_in_storage() -> None:
    assert DEV_DAGSTER_YAML.endswith(INSTANCE_POLICY)
    assert deployment_dagster_yaml().endswith(INSTANCE_POLICY)
    assert "storage:" not in DEV_DAGSTER_YAML
    assert "storage:\n  postgres:" in deployment_dagster_yaml()


def test_dagster_is_given_labmeshs_url_through_psycopg2() -> None:
    assert (
        dagster_database_url("postgresql://lab:s3cret@db.internal:5432/labmesh?sslmode=require")
        == "postgresql+psycopg2://lab:s3cret@db.internal:5432/labmesh?sslmode=require"
    )
    assert dagster_database_url("postgres://lab@db/labmesh") == "postgresql+psycopg2://lab@db/labmesh"
    with pytest.raises(ValueError, match="postgresql://"):
        dagster_database_url("sqlite:///catalog.sqlite")
