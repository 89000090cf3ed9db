"""What every fake ELN server in these tests does alike: record each request, inject faults, refuse, route.

The eLabFTW and Benchling fakes differ in their data and their answers, not
in how a test drives them: queue a 429 with ``Retry-After`` or a slow answer
for the next matching requests, then look at what the connector sent. That
part lives here once; each fake says how it refuses a request and how it
routes one.
"""

from __future__ import annotations

import json
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

API_ROOT = "/api/v2"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    authorization: str | None


@dataclass
class Fault:
    """A canned failure for ``times`` matching requests, after ``skip`` of them pass: a status and/or a delay."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    times: int = 1
    skip: int = 0
    method: str | None = None
    path: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or path.startswith(self.path))


def json_response(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json")


class FakeHttpService(ABC):
    """A fake API on ``server``: every request recorded, queued faults first, then ``refuse``, then ``route``.

    ``route`` runs under the fake's lock, so a test's edits and the
    connector's requests never interleave halfway. ``also_record_to`` is a
    list every request is appended to as well (a session-wide record).
    """

    also_record_to: list[RecordedRequest] | None = None

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        server.clear()
        server.expect_request(re.compile(r"^/.*")).respond_with_handler(self._handle)

    @property
    def url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    # What a test does: queue faults, read the record.

    def fail(
        self, status: int, *, times: int = 1, skip: int = 0, headers: Mapping[str, str] | None = None, **where: Any
    ) -> None:
        """Answer ``times`` requests (matching ``method``/``path`` when given) with ``status``, after ``skip`` pass."""
        self.faults.append(Fault(status=status, headers=dict(headers or {}), times=times, skip=skip, **where))

    def slow(self, seconds: float, *, times: int = 1, **where: Any) -> None:
        """Hold the next ``times`` matching requests for ``seconds`` before answering them."""
        self.faults.append(Fault(delay=seconds, times=times, **where))

    def requests_to(self, method: str, path_prefix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path.startswith(API_ROOT + path_prefix)]

    # What each fake says.

    @abstractmethod
    def error(self, status: int, message: str) -> Response:
        """An error answer in the service's own shape."""

    @abstractmethod
    def refuse(self, record: RecordedRequest) -> Response | None:
        """The answer to a request the service would refuse (no key, a parameter it lacks), else None."""

    @abstractmethod
    def route(self, method: str, path: str, record: RecordedRequest) -> Response:
        """Serve a request that passed; ``path`` is relative to the API root."""

    # The server's side.

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.matches(method, path):
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                fault.times -= 1
                return fault
        return None

    def _handle(self, request: Request) -> Response:
        path = urlsplit(request.url).path
        body = request.get_json(silent=True) if request.data else None
        query = {key: request.args.getlist(key) for key in request.args}
        record = RecordedRequest(request.method, path, query, body, request.headers.get("Authorization"))
        relative = path[len(API_ROOT) :] if path.startswith(API_ROOT + "/") else None
        with self._lock:
            self.requests.append(record)
            if self.also_record_to is not None:
                self.also_record_to.append(record)
            fault = self._take_fault(request.method, relative if relative is not None else path)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            response = self.error(fault.status, f"injected {fault.status}")
            response.headers.update(fault.headers)
            return response
        refusal = self.refuse(record)
        if refusal is not None:
            return refusal
        if relative is None:
            return self.error(404, f"no route {path}")
        with self._lock:
            return self.route(request.method, relative, record)
