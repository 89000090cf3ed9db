"""Shared set-up for the AWS benchmarks: moto's server on 127.0.0.1 and fake credentials."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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


class ApiCalls:
    """Counts AWS operations made by any client, through botocore's single call path."""

    def __init__(self) -> None:
        import botocore.client

        self.calls: list[str] = []
        self._client = botocore.client.BaseClient
        self._real = self._client._make_api_call
        calls = self.calls
        real = self._real

        def recording(client: Any, operation: str, params: Any) -> Any:
            calls.append(operation)
            return real(client, operation, params)

        self._client._make_api_call = recording  # type: ignore[method-assign]

    def close(self) -> None:
        self._client._make_api_call = self._real  # type: ignore[method-assign]
