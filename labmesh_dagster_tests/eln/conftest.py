"""Fixtures every ELN connector test shares: one local HTTP server a module, and a record of back-off sleeps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer


@pytest.fixture(scope="module")
def http_server() -> Iterator[HTTPServer]:
    # Threaded, so that a deliberately slow answer does not hold up the client's retry.
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def sleeps() -> list[float]:
    """The back-off pauses a connector asked for, recorded instead of slept."""
    return []
