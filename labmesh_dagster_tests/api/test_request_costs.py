"""A bad request costs `labmesh api` nothing it could not spare, and a slow inbox stalls no other request.

Contract: a body whose ``Content-Length`` says more than the limit is refused
with 413 before a byte of it is read, signed or not; a body that says nothing
of its length (chunked) or too little is read only up to the limit and one
chunk, then refused with 413; inbox writes run in a worker thread, never on
the event loop that answers every other request (the health check among
them); and there is no ``/docs`` page pulling Swagger UI from a CDN.

The body tests drive the ASGI app directly with a ``receive`` that hands out
the body chunk by chunk, as a server does, and count the chunks the app asks
for: the test client would read the whole body before the app saw any of it.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from labmesh_dagster.api.app import MAX_BODY_BYTES, create_app
from labmesh_dagster.api.webhooks import WebhookSource
from labmesh_dagster.connectors.eln.base import ElnEvent
from labmesh_dagster.connectors.eln.inbox import SqliteInbox
from labmesh_dagster_tests.api.test_webhooks import signed

SECRET = "whsec_" + base64.b64encode(b"lims-shared-secret-0123456789abc").decode()
CHUNK = 64 * 1024  # what uvicorn hands an app at a time
BIG = 200 * 1024 * 1024


@pytest.fixture
def inbox(tmp_path: Path) -> SqliteInbox:
    return SqliteInbox(tmp_path / "inbox.sqlite")


@pytest.fixture
def app(inbox: SqliteInbox) -> FastAPI:
    return create_app(inbox, {"lims": WebhookSource("lims", (SECRET,), eln="folder")})


def chunks(total: int) -> Iterator[bytes]:
    """A body of ``total`` bytes, made only as it is asked for."""
    for start in range(0, total, CHUNK):
        yield b"x" * min(CHUNK, total - start)


def post_streamed(app: FastAPI, headers: dict[str, str], body: Iterator[bytes]) -> tuple[int, int]:
    """POST ``body`` to ``/eln/events/lims`` chunk by chunk; the answer's status and how many chunks the app read."""
    read = 0

    async def receive() -> dict[str, Any]:
        nonlocal read
        chunk = next(body, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        read += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/eln/events/lims",
        "raw_path": b"/eln/events/lims",
        "query_string": b"",
        "root_path": "",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return statuses[0], read


def test_an_unsigned_200_mib_post_is_refused_before_its_body_is_read(app: FastAPI, inbox: SqliteInbox) -> None:
    # Seen: the server read all 200 MiB (163 MB -> 555 MB) before answering 413.
    status, read = post_streamed(app, {"content-length": str(BIG)}, chunks(BIG))

    assert (status, read) == (413, 0) and inbox.pending() == 0


def test_a_signed_body_declared_too_large_is_refused_before_it_is_read(app: FastAPI) -> None:
    headers = {**signed(b"{}"), "content-length": str(MAX_BODY_BYTES + 1)}

    assert post_streamed(app, headers, chunks(MAX_BODY_BYTES + 1)) == (413, 0)


def test_a_chunked_body_is_read_only_up_to_the_limit(app: FastAPI, inbox: SqliteInbox) -> None:
    # No Content-Length (chunked): the body is counted as it arrives, and reading stops one chunk past the limit.
    status, read = post_streamed(app, signed(b"{}"), chunks(16 * MAX_BODY_BYTES))

    assert (status, read) == (413, MAX_BODY_BYTES // CHUNK + 1) and inbox.pending() == 0


def test_a_body_that_understates_its_length_is_read_only_up_to_the_limit(app: FastAPI) -> None:
    headers = {**signed(b"{}"), "content-length": "2"}

    assert post_streamed(app, headers, chunks(16 * MAX_BODY_BYTES)) == (413, MAX_BODY_BYTES // CHUNK + 1)


class WatchedInbox(SqliteInbox):
    """The SQLite inbox, noting for each write whether it ran on an event loop's thread."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.on_event_loop: list[bool] = []

    def put(self, event: ElnEvent) -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.on_event_loop.append(False)
        else:
            self.on_event_loop.append(True)
        return super().put(event)


def test_inbox_writes_run_off_the_event_loop(tmp_path: Path) -> None:
    # Seen: a write waiting on the inbox's lock held the event loop; the health check took 3.5 s meanwhile.
    inbox = WatchedInbox(tmp_path / "inbox.sqlite")
    client = TestClient(create_app(inbox, {"lims": WebhookSource("lims", (SECRET,), eln="folder")}))
    body = json.dumps({"entry_id": "EXP-7", "kind": "changed", "occurred_at": "2026-11-29T10:00:00Z"}).encode()

    assert client.post("/eln/events/lims", content=body, headers=signed(body)).status_code == 202
    assert inbox.on_event_loop == [False]


def test_there_is_no_docs_page_to_load_from_a_cdn(app: FastAPI) -> None:
    # Seen: /docs loaded Swagger UI's script and styles from cdn.jsdelivr.net.
    client = TestClient(app)

    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        response = client.get(path)
        assert response.status_code == 404 and "cdn" not in response.text
    assert client.get("/healthz").json() == {"status": "ok"}
