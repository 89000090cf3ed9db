"""Faults injected into S3 calls at the HTTP layer, on a seeded schedule, each kind within a budget.

Kinds a lab meets on a bad night: 503 SlowDown, 500, 429, a connection that
times out before the request is sent, a response lost after S3 did the work
(the request is sent, then a read timeout is raised, so the retry repeats
work already done), 409 for a conflicting conditional operation, and a
spurious 412 on a conditional delete (one that carries ``If-Match``).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

from labmesh_dagster_tests.s3_faults import error_response

CONDITIONAL = frozenset({"CopyObject", "DeleteObject", "CompleteMultipartUpload"})
REPEATABLE = frozenset({"PutObject", "CopyObject", "DeleteObject", "HeadObject", "GetObject", "ListObjectsV2"})


def _error(status: int, code: str) -> tuple[int, bytes]:
    return status, f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()


ANSWERS = {
    "503 SlowDown": _error(503, "SlowDown"),
    "500 InternalError": _error(500, "InternalError"),
    "429 TooManyRequests": _error(429, "TooManyRequestsException"),
    "409 OperationAborted": _error(409, "OperationAborted"),
    "412 PreconditionFailed": _error(412, "PreconditionFailed"),
}


class S3FaultPlan:
    """A ``before-send.s3`` hook: each call has ``rate`` chance of a fault its operation can meet."""

    def __init__(self, *, seed: int, rate: float, budget: dict[str, int]) -> None:
        self.random = random.Random(seed)
        self.rate = rate
        self.budget = dict(budget)
        self.injected: Counter[str] = Counter()
        self.enabled = True
        self._session = URLLib3Session()

    def kinds_for(self, operation: str, *, conditional: bool) -> list[str]:
        kinds = ["503 SlowDown", "500 InternalError", "429 TooManyRequests", "timeout before sending"]
        if operation in REPEATABLE:
            kinds.append("response lost after the work was done")
        if operation in CONDITIONAL:
            kinds.append("409 OperationAborted")
        if operation == "DeleteObject" and conditional:
            kinds.append("412 PreconditionFailed")
        return [kind for kind in kinds if self.budget.get(kind, 0) > self.injected[kind]]

    def __call__(self, request: Any, event_name: str, **_: Any) -> Any:
        operation = event_name.rsplit(".", 1)[-1]
        if not self.enabled or self.random.random() >= self.rate:
            return None
        headers = {name.lower() for name in request.headers}
        kinds = self.kinds_for(operation, conditional=bool(headers & {"if-match", "if-none-match"}))
        if not kinds:
            return None
        kind = self.random.choice(kinds)
        self.injected[kind] += 1
        if kind == "timeout before sending":
            raise ConnectTimeoutError(endpoint_url=request.url)
        if kind == "response lost after the work was done":
            self._session.send(request)
            raise ReadTimeoutError(endpoint_url=request.url)
        status, body = ANSWERS[kind]
        return error_response(request.url, status, body)
