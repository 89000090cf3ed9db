"""Shared set-up for the AWS benchmarks: moto's server on 127.0.0.1 and fake credentials."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from labmesh_dagster.connectors.aws import make_client
from labmesh_dagster_tests.aws_fakes import FAKE_AWS_ENV
from labmesh_dagster_tests.aws_fakes import moto_server as tests_moto_server


@contextmanager
def moto_server() -> Iterator[str]:
    """The tests' moto server, with the tests' fake credentials in this process's environment."""
    os.environ.update(FAKE_AWS_ENV)
    with tests_moto_server() as endpoint:
        yield endpoint


def buckets(endpoint: str) -> dict[str, str]:
    s3 = make_client("s3", endpoint_url=endpoint, region_name="us-east-1")
    suffix = uuid.uuid4().hex[:8]
    names = {zone: f"bench-{zone}-{suffix}" for zone in ("landing", "raw", "processed", "final")}
    for name in names.values():
        s3.create_bucket(Bucket=name)
    return names
