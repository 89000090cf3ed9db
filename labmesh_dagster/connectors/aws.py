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
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from labmesh_dagster.core.defaults import AWS_MAX_ATTEMPTS

DEFAULT_MAX_ATTEMPTS = AWS_MAX_ATTEMPTS


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


RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "InternalServerException",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)


def is_retryable(error: ClientError) -> bool:
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return error_code(error) in RETRYABLE_CODES or status == 429 or status >= 500


# S3's answers to two conditional writes racing for one key (409): the loser may simply try again.
CONFLICT_CODES = frozenset({"OperationAborted", "ConditionalRequestConflict"})


def retry_conflicts(
    call: Callable[[], Any],
    *,
    attempts: int = 5,
    base_delay: float = 0.1,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """``call()``, tried again with jittered backoff while S3 answers 409 for a conflicting conditional operation.

    botocore's retry modes leave 409 alone, since most conflicts are final;
    these two are not ("a conflicting conditional operation is currently in
    progress ... try again"), and waiting for the next run would cost the
    sensor's whole retry period. The last conflict is raised as it came.
    """
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except ClientError as exc:
            if attempt == attempts or error_code(exc) not in CONFLICT_CODES:
                raise
            delay = base_delay * 2 ** (attempt - 1)
            sleep(delay / 2 + random.uniform(0, delay / 2))
    raise AssertionError("unreachable")  # the loop returns or raises


class PacedCaller:
    """One client's calls, paced under a rate and retried with backoff on throttling and 5xx.

    DataZone allows about 20 calls a second per account and Kendra fewer;
    botocore's adaptive retries react to throttling only after it happens, so
    the pace is kept below the quota up front, and what throttling still comes
    (other clients share the quota) is retried here with jittered exponential
    backoff, whichever client (boto3 or a test fake) raised it. After
    ``attempts`` tries the service's own error is raised.
    """

    def __init__(
        self,
        client: Any,
        *,
        max_per_second: float,
        attempts: int = DEFAULT_MAX_ATTEMPTS,
        base_delay: float = 0.2,
        max_delay: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_per_second <= 0 or attempts < 1:
            raise ValueError("max_per_second must be positive and attempts at least 1")
        self.client = client
        self.interval = 1.0 / max_per_second
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.clock = clock
        self.sleep = sleep
        self._next_slot = 0.0
        self._lock = threading.Lock()
        self.retries = 0

    def _wait_for_slot(self) -> None:
        with self._lock:
            now = self.clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
        if slot > now:
            self.sleep(slot - now)

    def __call__(self, operation: str, **params: Any) -> Any:
        method = getattr(self.client, operation)
        for attempt in range(1, self.attempts + 1):
            self._wait_for_slot()
            try:
                return method(**params)
            except ClientError as exc:
                if attempt == self.attempts or not is_retryable(exc):
                    raise
                self.retries += 1
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
                self.sleep(delay / 2 + random.uniform(0, delay / 2))
        raise AssertionError("unreachable")  # the loop returns or raises
