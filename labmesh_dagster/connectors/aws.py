"""boto3 clients configured once for every AWS connector: retries, checksums, endpoints.

Retries use botocore's adaptive mode, which backs off on throttling (503
SlowDown, ThrottlingException) and 5xx with a client-side rate limiter before
giving up with the service's error. Checksums are computed and validated only
where an operation requires them: the default since botocore 1.36 ("when
supported") adds CRC trailers that S3-compatible stores and older endpoints
reject, and labmesh asks for the SHA-256 it needs explicitly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_MAX_ATTEMPTS = 8


def client_config(max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Config:
    return Config(
        retries={"mode": "adaptive", "max_attempts": max_attempts},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def make_client(
    service: str,
    *,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    session: boto3.session.Session | None = None,
) -> Any:
    """A client for ``service``; ``endpoint_url`` points it at moto, MinIO or any compatible endpoint."""
    return (session or boto3.session.Session()).client(
        service, endpoint_url=endpoint_url, region_name=region_name, config=client_config(max_attempts)
    )


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def clear_failure(
    service: str, action: str, error: type[Exception], *, passthrough: frozenset[str] = frozenset()
) -> Iterator[None]:
    """Turn what is left after botocore's retries into ``error``, naming the service and what was being done.

    Error codes in ``passthrough`` are re-raised as they are, for the caller to
    map to their own meaning (a missing object, a failed precondition).
    """
    try:
        yield
    except ClientError as exc:
        if error_code(exc) in passthrough:
            raise
        message = exc.response.get("Error", {}).get("Message", "")
        raise error(f"{service} failed to {action}: {error_code(exc)}: {message} ({exc})") from exc
    except BotoCoreError as exc:
        raise error(f"{service} could not be reached to {action}: {exc}") from exc
