"""One HTTP client for the ELN and LIMS connectors: retries in one place, failures named clearly.

ELN servers throttle (429 with ``Retry-After``, or from Benchling with
``x-rate-limit-reset``, the seconds left in its rate-limit window), restart
behind their proxies (502, 503, 504) and drop connections; none of that is the caller's
fault, so it is retried with jittered exponential backoff. A request the server
refuses on its merits (400, 401, 403, 404, 422) will be refused again, so it
fails at once with the server's own message. When the retries run out, the error
names the method, the path and what happened last, because that is what a
person reading a sensor log needs to act on.
"""

from __future__ import annotations

import email.utils
import functools
import math
import random
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from labmesh_dagster.connectors.eln.base import ElnRequestRefused, ElnUnavailable
from labmesh_dagster.core.defaults import ELN_TIMEOUT_SECONDS

DEFAULT_ATTEMPTS = 5
DEFAULT_TIMEOUT_SECONDS = ELN_TIMEOUT_SECONDS
DEFAULT_BACKOFF_SECONDS = 0.5
DEFAULT_MAX_BACKOFF_SECONDS = 30.0
# A server asking for minutes of patience is not waited for inside one sensor tick.
DEFAULT_MAX_RETRY_AFTER_SECONDS = 60.0


def server_message(response: httpx.Response) -> str:
    """What the server said went wrong, from a JSON error body (eLabFTW: message, description) or its text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        body = body["error"]
    if isinstance(body, Mapping):
        keys = ("message", "description", "detail", "error")
        parts = [str(body[key]).strip() for key in keys if isinstance(body.get(key), (str, int)) and body[key] != ""]
        if parts:
            return "; ".join(dict.fromkeys(part for part in parts if part))
    text = response.text.strip()
    return text[:300] if text else response.reason_phrase or "no message"


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds to wait: a number of seconds or an HTTP-date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def rate_limit_reset_seconds(value: str | None) -> float | None:
    """``x-rate-limit-reset`` (Benchling: whole seconds left in the rate-limit window) as seconds to wait.

    One second more than it says: the count is whole seconds, so the window may
    still be open for a fraction of one when it reads 0, and a retry then would
    only be throttled again.
    """
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if math.isnan(seconds):
        return None
    return max(0.0, seconds) + 1.0


@functools.cache
def tls_context(cafile: str | None = None) -> ssl.SSLContext:
    """The process's TLS context for one trust store: httpx's default (certifi, or ``SSL_CERT_FILE``), or ``cafile``.

    Building one reads every CA certificate, about 30 ms, which a sensor that opens its ELN client each
    tick would otherwise pay each tick; a context is safe to share between clients and threads.
    """
    return ssl.create_default_context(cafile=cafile) if cafile else httpx.create_ssl_context()


def http_client(verify: bool | str = True) -> httpx.Client:
    """A connection pool on the shared TLS context: ``verify`` False skips the check, a path trusts that CA file."""
    if verify is False:
        return httpx.Client(verify=False)
    return httpx.Client(verify=tls_context(verify if isinstance(verify, str) else None))


class RetryingHttp:
    """An ``httpx.Client`` with a base URL, default headers and a timeout, whose requests retry what can pass.

    ``sleep`` and ``jitter`` (a ``random.random``-like callable) are injectable so
    tests run instantly and can assert on the waits.
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
        max_backoff_seconds: float = DEFAULT_MAX_BACKOFF_SECONDS,
        max_retry_after_seconds: float = DEFAULT_MAX_RETRY_AFTER_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        client: httpx.Client | None = None,
        service: str = "ELN",
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        # The client is only the connection pool: URL, headers and timeout are applied per request,
        # so an injected client (a test transport, a shared pool) behaves exactly like the default one.
        self.client = client or http_client()
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.max_retry_after_seconds = max_retry_after_seconds
        self.sleep = sleep
        self.jitter = jitter
        self.service = service

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RetryingHttp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        """``path`` under the base URL (an absolute URL is taken as it is)."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def backoff(self, attempt: int) -> float:
        """Equal jitter: half the exponential delay for sure, the other half at random, so clients spread out."""
        delay = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        return delay / 2 + self.jitter() * delay / 2

    def _wait_for(self, response: httpx.Response | None, attempt: int) -> float:
        if response is not None and response.status_code == 429:
            asked = retry_after_seconds(response.headers.get("Retry-After"))
            if asked is None:
                asked = rate_limit_reset_seconds(response.headers.get("x-rate-limit-reset"))
            if asked is not None:
                return min(asked, self.max_retry_after_seconds)
        return self.backoff(attempt)

    def request(self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any) -> httpx.Response:
        """Send one request, retrying 429, 5xx, timeouts and network errors; the 2xx or 3xx response.

        ``idempotent=False`` retries only what the server cannot have acted on (a
        429, a connection that never opened), so a create is never sent twice.
        Raises `ElnRequestRefused` for any other 4xx and `ElnUnavailable` when the
        attempts run out.
        """
        method = method.upper()
        options = {**kwargs, "headers": {**self.headers, **dict(kwargs.get("headers") or {})}}
        options.setdefault("timeout", self.timeout)
        last = "no attempt made"
        for attempt in range(1, self.attempts + 1):
            response: httpx.Response | None = None
            try:
                response = self.client.request(method, self.url(path), **options)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last = f"could not connect: {type(exc).__name__}: {exc}"
            except httpx.TimeoutException as exc:
                last = f"timed out: {type(exc).__name__}: {exc}"
                if not idempotent:
                    break
            except httpx.TransportError as exc:
                last = f"connection failed: {type(exc).__name__}: {exc}"
                if not idempotent:
                    break
            else:
                status = response.status_code
                if status != 429 and status < 500:
                    if status >= 400:
                        raise ElnRequestRefused(method, path, status, server_message(response))
                    return response
                last = f"HTTP {status}: {server_message(response)}"
                if status != 429 and not idempotent:
                    break
            if attempt < self.attempts:
                self.sleep(self._wait_for(response, attempt))
        raise ElnUnavailable(
            f"{self.service} {method} {path} failed after {attempt} attempt{'s' if attempt > 1 else ''}; last: {last}"
        )
