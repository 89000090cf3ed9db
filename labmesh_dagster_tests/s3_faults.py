"""S3 error answers injected over HTTP (botocore's ``before-send``): botocore and labmesh see a real reply."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape


class ErrorAnswer:
    """A before-send hook answering the first ``times`` calls of an operation with an S3 error.

    Registered per operation (``before-send.s3.CopyObject``); the request never
    reaches the server, as when S3 refuses it.
    """

    def __init__(self, times: int, status: int, code: str, message: str) -> None:
        self.times = times
        self.status = status
        self.body = f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>".encode()
        self.sent = 0

    def __call__(self, request: Any, **_: Any) -> Any:
        if self.sent >= self.times:
            return None
        self.sent += 1
        return error_response(request.url, self.status, self.body)


def error_response(url: str, status: int, body: bytes) -> Any:
    from botocore.awsrequest import AWSResponse

    class Raw:
        def stream(self, **__: Any) -> Any:
            yield body

        def read(self, *__: Any) -> bytes:
            return body

    return AWSResponse(url, status, {"Content-Type": "application/xml"}, Raw())
