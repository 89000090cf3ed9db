"""Fixtures the scenarios share: a fake eLabFTW on a local HTTP server, and an aws lab driven by SQS events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from pytest_httpserver import HTTPServer

from labmesh_dagster.connectors.aws import make_client
from labmesh_dagster_tests.aws_fakes import ServiceClients
from labmesh_dagster_tests.conftest import Lab, aws_settings
from labmesh_dagster_tests.eln.elabftw_server import FakeElabFtw


@pytest.fixture
def elabftw() -> Iterator[FakeElabFtw]:
    server = HTTPServer(threaded=True)
    server.start()
    yield FakeElabFtw(server)
    server.clear()
    server.stop()


@pytest.fixture
def queues(moto_endpoint: str, s3_buckets: dict[str, str]) -> dict[str, str]:
    sqs = make_client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    suffix = s3_buckets["landing"].rsplit("-", 1)[1]
    return {zone: sqs.create_queue(QueueName=f"lm-{zone}-events-{suffix}")["QueueUrl"] for zone in ("landing", "final")}


@pytest.fixture
def clients() -> ServiceClients:
    """boto3 clients over moto's server, every AWS operation the lab makes recorded."""
    return ServiceClients()


@pytest.fixture
def aws_lab(
    tmp_path: Path,
    moto_endpoint: str,
    s3_buckets: dict[str, str],
    queues: dict[str, str],
    instance: dg.DagsterInstance,
    clients: ServiceClients,
) -> Lab:
    settings = aws_settings(
        tmp_path / "home",
        moto_endpoint,
        s3_buckets,
        LABMESH_SQS_LANDING_QUEUE_URL=queues["landing"],
        LABMESH_SQS_FINAL_QUEUE_URL=queues["final"],
    )
    return Lab(settings, instance, clients)
