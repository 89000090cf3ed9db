"""Shared fixtures: a temporary lab home, and a harness that drives the real Definitions.

The harness evaluates sensors on a `build_sensor_context` context,
applies their partition requests to the instance, and executes the runs they
request in process, the way the Dagster daemon would, so end-to-end tests
exercise the same code `make dev` runs. Its AWS clients come from a
`ServiceClients` factory (fakes where moto has no service) and its time from a
`ShiftedClock`, which tests move forward instead of sleeping.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.definitions import build_definitions
from labmesh_dagster.pipelines.spec import builtin_pipelines_path
from labmesh_dagster.ports import Ports
from labmesh_dagster.settings import Settings
from labmesh_dagster_tests.aws_fakes import FAKE_AWS_ENV, ServiceClients, moto_server

DATA = Path(__file__).parent / "data"
# The labs here run labmesh's own FASTQ QC as their pipeline (`data/pipelines/quick.yaml`): quick, and
# reproducible, so two labs compare byte for byte. Tests of the real tools ask for `builtin_pipelines()`,
# or mark themselves `real_tools` where they take the `lab` or `any_lab` fixture.
QUICK_PIPELINES = DATA / "pipelines" / "quick.yaml"


def builtin_pipelines() -> dict[str, str]:
    """Settings overrides for a lab that runs the built-in pipelines (fastp, seqkit, samtools, bcftools, MultiQC)."""
    return {"LABMESH_PIPELINES": str(builtin_pipelines_path())}


def make_settings(home: Path, **overrides: str) -> Settings:
    env = {
        "LABMESH_HOME": str(home),
        "LABMESH_LANDING_SETTLE_SECONDS": "0",
        "LABMESH_UNKNOWN_EXPERIMENT_GRACE_SECONDS": "0",
        "LABMESH_PIPELINES": str(QUICK_PIPELINES),
        **overrides,
    }
    return Settings.from_env(env)


def _pipelines_of(request: pytest.FixtureRequest) -> dict[str, str]:
    return builtin_pipelines() if request.node.get_closest_marker("real_tools") else {}


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home", **_pipelines_of(request))


class ShiftedClock:
    """The system clock, moved forward by hand: what waits on time is tested without sleeping.

    It follows real time (files written during a test carry real times) and
    adds whatever the test advanced it by.
    """

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)

    def clear_of_period_end(self, period: float, margin: float = 120) -> None:
        """Move past the start of the next ``period`` (counted from the epoch, as retry run keys are) when it
        would come within ``margin`` seconds: the next ticks then share one period however slow the machine."""
        into = self().timestamp() % period
        if into > period - margin:
            self.advance(period - into + 1)


class Lab:
    """A lab on the settings' profile, driven tick by tick."""

    def __init__(self, settings: Settings, instance: dg.DagsterInstance, clients: ServiceClients | None = None) -> None:
        self.settings = settings
        self.instance = instance
        self.clients = clients or ServiceClients()
        self.clock = ShiftedClock()
        self.defs = build_definitions(settings, clients=self.clients, clock=self.clock)
        self.resources = self.defs.resources or {}
        self.ports = Ports(settings, self.clients, self.clock)
        self.store = self.ports.store()
        self.catalog = self.ports.registry()
        self.cursors: dict[str, str | None] = {}
        self.run_keys: set[str] = set()

    def write_record(self, name: str, record: dict[str, Any] | list[Any] | str) -> Path:
        path = self.settings.eln_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(record, str):
            path.write_text(record, encoding="utf-8")
        elif name.endswith(".json"):
            path.write_text(json.dumps(record), encoding="utf-8")
        else:
            path.write_text(yaml.safe_dump(record), encoding="utf-8")
        return path

    def land(self, experiment_id_or_key: str, relative_path: str | None, content: bytes) -> ObjectKey:
        if relative_path is None:
            key = ObjectKey(Zone.LANDING, experiment_id_or_key)
        else:
            key = ObjectKey.for_experiment(Zone.LANDING, experiment_id_or_key, relative_path)
        self.store.put(key, content)
        return key

    def put_final(self, experiment_id: str, relative_path: str, content: bytes) -> ObjectKey:
        key = ObjectKey.for_experiment(Zone.FINAL, experiment_id, relative_path)
        self.store.put(key, content)
        return key

    def tick(self, sensor_name: str) -> Any:
        """Evaluate one sensor tick and apply its dynamic partition requests, as the daemon does."""
        sensor = self.defs.resolve_sensor_def(sensor_name)
        with dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursors.get(sensor_name),
            definitions=self.defs,
            resources=self.resources,
        ) as context:
            data = sensor(context)
        for request in data.dynamic_partitions_requests or []:
            if isinstance(request, dg.AddDynamicPartitionsRequest):
                self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        self.cursors[sensor_name] = data.cursor if data.cursor is not None else self.cursors.get(sensor_name)
        return data

    def run_sensor(self, sensor_name: str, *, raise_on_error: bool = True) -> list[dg.ExecuteInProcessResult]:
        """One tick, then every new run it requests (run keys already used are skipped, as the daemon does)."""
        data = self.tick(sensor_name)
        sensor = self.defs.resolve_sensor_def(sensor_name)
        results = []
        for request in data.run_requests or []:
            if request.run_key and request.run_key in self.run_keys:
                continue
            if request.run_key:
                self.run_keys.add(request.run_key)
            job = self.defs.resolve_job_def(sensor.job_name)
            results.append(
                job.execute_in_process(
                    instance=self.instance,
                    partition_key=request.partition_key,
                    asset_selection=request.asset_selection,
                    tags=request.tags,
                    raise_on_error=raise_on_error,
                )
            )
        return results

    def materialize(self, *asset_names: str, partition: str, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_implicit_global_asset_job_def()
        return job.execute_in_process(
            instance=self.instance,
            partition_key=partition,
            asset_selection=[dg.AssetKey(name) for name in asset_names],
            raise_on_error=raise_on_error,
        )

    def partitions(self) -> list[str]:
        return sorted(self.instance.get_dynamic_partitions("experiments"))

    def keys(self, zone: Zone, experiment_id: str | None = None) -> list[str]:
        prefix = f"{experiment_id}/" if experiment_id else ""
        return [info.key.path for info in self.store.list(zone, prefix)]


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def lab(settings: Settings, instance: dg.DagsterInstance) -> Lab:
    return Lab(settings, instance)


@pytest.fixture(scope="module")
def flowed_once(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A lab that ran the whole flow once, shared by a module's tests that only read it.

    The flow takes seconds; running it again for each test that only reads
    its outcome would be most of the quick loop's cost for those tests.
    """
    from labmesh_dagster_tests.scenarios.test_end_to_end import run_flow  # imports this module: import late

    with dg.instance_for_test() as shared_instance:
        lab = Lab(make_settings(tmp_path_factory.mktemp("flowed") / "home"), shared_instance)
        run_flow(lab)
        yield lab


def aws_settings(home: Path, endpoint: str, buckets: dict[str, str], **overrides: str) -> Settings:
    """Settings of the `aws` profile pointed at moto's server and the test's buckets."""
    bucket_env = {f"LABMESH_S3_BUCKET_{zone.upper()}": bucket for zone, bucket in buckets.items()}
    return make_settings(
        home,
        LABMESH_PROFILE="aws",
        LABMESH_AWS_ENDPOINT_URL=endpoint,
        LABMESH_AWS_REGION="us-east-1",
        **bucket_env,
        **overrides,
    )


# The aws twin of each flow runs on moto's server: in make test and CI, not in the quick loop.
@pytest.fixture(params=["local", pytest.param("aws", marks=pytest.mark.slow)])
def any_lab(request: pytest.FixtureRequest, tmp_path: Path, instance: dg.DagsterInstance) -> Lab:
    """The same lab on each profile: local folders, or S3 buckets on moto's server."""
    if request.param == "local":
        return Lab(make_settings(tmp_path / "home", **_pipelines_of(request)), instance)
    endpoint = request.getfixturevalue("moto_endpoint")
    buckets = request.getfixturevalue("s3_buckets")
    return Lab(aws_settings(tmp_path / "home", endpoint, buckets, **_pipelines_of(request)), instance)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3/SQS server on 127.0.0.1, over real HTTP, for the whole test session."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no shared config, so nothing can ever reach real AWS or its metadata service."""
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def s3_buckets(moto_endpoint: str, aws_environment: None) -> dict[str, str]:
    """Four fresh buckets, one per zone, with names unique to the test."""
    import uuid

    from labmesh_dagster.connectors.aws import make_client

    client = make_client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    suffix = uuid.uuid4().hex[:10]
    buckets = {zone.value: f"lm-{zone.value}-{suffix}" for zone in Zone}
    for bucket in buckets.values():
        client.create_bucket(Bucket=bucket)
    return buckets


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of the test's own (`labmesh_dagster_tests.postgres_databases`), dropped after it."""
    from labmesh_dagster_tests.postgres_databases import fresh_database

    with fresh_database() as url:
        yield url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files holding slow tests run first, each file's tests in their order.

    `make test`'s workers take runs of tests in this order and steal from each other's queues at the end:
    the long scenarios, started first, overlap the many short tests, instead of one of them running alone
    at the end while the other workers idle.
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
