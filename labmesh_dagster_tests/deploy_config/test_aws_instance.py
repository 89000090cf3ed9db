"""The aws profile's ``deploy/aws/dagster.yaml`` is an instance Dagster itself accepts and builds.

Dagster loads the file the way every ECS task does (``DagsterInstance.from_config``
over ``$DAGSTER_HOME``), on a PostgreSQL database of the test's own, with AWS
settings in the environment and no AWS call: EcsRunLauncher only describes a task
definition when one is named, and this file lets each run take the daemon's own.
The instance must then launch runs as ECS tasks, keep step logs in S3, store
everything in PostgreSQL, and keep labmesh's one-run-per-experiment rule.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster_aws.ecs import EcsRunLauncher
from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

from labmesh_dagster.deploy.instance import DAGSTER_DATABASE_URL_VARIABLE, INSTANCE_POLICY, dagster_database_url

AWS_DAGSTER_YAML = Path(__file__).resolve().parents[2] / "deploy" / "aws" / "dagster.yaml"


@pytest.fixture
def aws_instance(tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    shutil.copy(AWS_DAGSTER_YAML, tmp_path / "dagster.yaml")
    monkeypatch.setenv("LABMESH_DAGSTER_DATABASE_URL", dagster_database_url(postgres_url))
    monkeypatch.setenv("LABMESH_COMPUTE_LOGS_BUCKET", "lab-dagster-logs")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    yield instance
    instance.dispose()


def test_runs_are_ecs_tasks_sized_by_tags_with_a_default(aws_instance: dg.DagsterInstance) -> None:
    launcher = aws_instance.run_launcher
    assert isinstance(launcher, EcsRunLauncher)
    assert launcher.use_current_ecs_task_config
    assert launcher.run_resources == {"cpu": "1024", "memory": "2048"}
    assert launcher.supports_check_run_worker_health


def test_step_logs_go_to_the_bucket_the_environment_names(aws_instance: dg.DagsterInstance) -> None:
    manager = aws_instance.compute_log_manager
    assert isinstance(manager, S3ComputeLogManager)
    assert manager.inst_data is not None
    assert manager.inst_data.config_dict["bucket"] == {"env": "LABMESH_COMPUTE_LOGS_BUCKET"}


def test_runs_and_events_are_stored_in_postgres(aws_instance: dg.DagsterInstance) -> None:
    assert isinstance(aws_instance.run_storage, PostgresRunStorage)
    assert isinstance(aws_instance.event_log_storage, PostgresEventLogStorage)
    aws_instance.report_runless_asset_event(dg.AssetMaterialization("raw_dataset", partition="EXP-1"))
    assert aws_instance.get_latest_materialization_event(dg.AssetKey("raw_dataset")) is not None


def test_one_run_at_a_time_per_experiment_and_monitoring_without_resume() -> None:
    config = yaml.safe_load(AWS_DAGSTER_YAML.read_text(encoding="utf-8"))
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_monitoring"]["max_resume_run_attempts"] == 0


def test_runs_are_handled_as_in_every_labmesh_instance() -> None:
    """Retries, the per-experiment limit and the pools' default are labmesh's policy; only the launcher differs."""
    aws = yaml.safe_load(AWS_DAGSTER_YAML.read_text(encoding="utf-8"))
    policy = yaml.safe_load(INSTANCE_POLICY)
    assert aws["run_retries"] == policy["run_retries"]
    assert (
        aws["concurrency"]["runs"]["tag_concurrency_limits"] == policy["concurrency"]["runs"]["tag_concurrency_limits"]
    )
    assert aws["concurrency"]["pools"] == policy["concurrency"]["pools"]
    assert aws["run_monitoring"]["max_resume_run_attempts"] == policy["run_monitoring"]["max_resume_run_attempts"]


def test_nothing_secret_is_written_in_the_file() -> None:
    config = yaml.safe_load(AWS_DAGSTER_YAML.read_text(encoding="utf-8"))
    assert config["storage"]["postgres"]["postgres_url"] == {"env": DAGSTER_DATABASE_URL_VARIABLE}
    assert "postgresql://" not in AWS_DAGSTER_YAML.read_text(encoding="utf-8")
