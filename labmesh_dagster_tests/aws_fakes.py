"""Stand-ins for AWS that tests and benchmarks share: fake credentials, moto's server on loopback, a client factory.

The credentials are fake and the shared config files empty, so no client can
reach real AWS or its instance-metadata service by accident.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from labmesh_dagster.ports import boto3_clients
from labmesh_dagster.settings import AwsConnection

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3/SQS server on 127.0.0.1, over real HTTP; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class ServiceClients:
    """A client factory for `Ports` and `build_definitions`: the fakes given, boto3 (moto's server) for the rest.

    Every operation a boto3 client it made sends is recorded in ``calls``,
    through botocore's own ``before-call`` event: nothing is patched. ``fakes``
    may be filled in after the lab is built; each client is asked for when a
    port is opened.
    """

    def __init__(self, fakes: Mapping[str, Any] | None = None) -> None:
        self.fakes: dict[str, Any] = dict(fakes or {})
        self.calls: list[str] = []

    def __call__(self, service: str, connection: AwsConnection) -> Any:
        if service in self.fakes:
            return self.fakes[service]
        client = boto3_clients(service, connection)
        client.meta.events.register("before-call", self._record)
        return client

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)
