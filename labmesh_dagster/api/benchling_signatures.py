"""Benchling app webhook signatures: ECDSA P-256 over ``id.timestamp.body``, checked with the app's published keys.

A Benchling app's webhooks are not signed with a shared secret: Benchling signs
them with a key pair it keeps for the app definition, rotates that pair often,
and publishes the public keys as a JWKS. So the keys are fetched, never
configured. They are cached for an hour (Benchling asks for a refresh at least
every six), and a signature no cached key verifies triggers one refetch in case
the keys have just rotated, but at most one fetch per app a minute, so a stream
of forged requests cannot make labmesh hammer Benchling. When the keys cannot
be had the request is not called unsigned: `JwksUnavailable` becomes "retry
later", and Benchling delivers the event again.

The checks follow benchling-sdk's ``verify``: the three ``webhook-*`` headers,
a timestamp within five minutes, and any ``v1bder,<base64 DER>`` entry of
``webhook-signature`` verifying under any P-256 key of the set; entries of
other versions belong to other schemes and are ignored here.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from labmesh_dagster.connectors.eln.base import ElnRequestRefused, ElnUnavailable
from labmesh_dagster.connectors.http import RetryingHttp
from labmesh_dagster.core.errors import LabmeshError
from labmesh_dagster.settings import DEFAULT_BENCHLING_JWKS_URL

log = logging.getLogger(__name__)

SIGNATURE_VERSION = "v1bder"
TOLERANCE_SECONDS = 5 * 60
KEYS_TTL_SECONDS = 3600.0
REFETCH_INTERVAL_SECONDS = 60.0

PublicKeys = tuple[ec.EllipticCurvePublicKey, ...]


class SignatureRefused(LabmeshError):
    """The request is not signed by one of the app's current keys, or not recently: the sender is not believed."""


class JwksUnavailable(LabmeshError):
    """The app's keys could not be fetched (or were not asked for again so soon): nothing can be judged now."""


def app_signatures(header: str) -> list[bytes]:
    """The DER signatures in a ``webhook-signature`` header: its ``v1bder`` entries, those that decode."""
    signatures = []
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            signatures.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue  # one garbled entry does not spoil the others
    return signatures


def signed_content(webhook_id: str, timestamp: str, body: bytes) -> bytes:
    """What Benchling signs: ``{webhook-id}.{webhook-timestamp}.{body}``, with the body's raw bytes."""
    return f"{webhook_id}.{timestamp}.".encode() + body


def check_timestamp(timestamp: str, now: float) -> None:
    """Refuse a ``webhook-timestamp`` that is not unix seconds within five minutes of ``now`` (either way)."""
    try:
        sent = int(timestamp)
    except ValueError as exc:
        raise SignatureRefused(f"webhook-timestamp {timestamp!r} is not a unix time in seconds") from exc
    if abs(now - sent) > TOLERANCE_SECONDS:
        raise SignatureRefused("the webhook-timestamp is more than 5 minutes away from now")


def signed_by_any(keys: Iterable[ec.EllipticCurvePublicKey], content: bytes, signatures: Iterable[bytes]) -> bool:
    signatures = list(signatures)
    for key in keys:
        for signature in signatures:
            try:
                key.verify(signature, content, ec.ECDSA(hashes.SHA256()))
            except (InvalidSignature, ValueError):
                continue
            return True
    return False


def p256_keys(jwks: Any) -> PublicKeys:
    """The EC P-256 public signing keys of a JWKS document; keys of any other kind or curve are ignored."""
    if not isinstance(jwks, dict):
        raise ValueError("the JWKS is not a JSON object")
    try:
        keys = jwt.PyJWKSet.from_dict(jwks)
    except jwt.PyJWTError as exc:
        raise ValueError(f"the JWKS holds no usable key: {exc}") from exc
    usable = tuple(
        jwk.key
        for jwk in keys
        if jwk.public_key_use in (None, "sig")
        and isinstance(jwk.key, ec.EllipticCurvePublicKey)
        and isinstance(jwk.key.curve, ec.SECP256R1)
    )
    if not usable:
        raise ValueError("the JWKS holds no EC P-256 public key")
    return usable


@dataclass
class _AppKeys:
    lock: threading.Lock
    keys: PublicKeys = ()
    fetched_at: float | None = None  # the last successful fetch
    attempted_at: float | None = None  # the last fetch, successful or not
    failure: str = ""


class JwksCache:
    """Each app definition's current keys, fetched when first needed, kept for ``ttl_seconds``.

    No app is fetched more than once every ``refetch_interval_seconds``, whether
    the fetch is a rotation check or a retry after a failure. Requests for the
    same app wait on one fetch rather than each making their own. ``clock`` is
    monotonic seconds, injectable so tests can let hours pass.
    """

    def __init__(
        self,
        url_template: str = DEFAULT_BENCHLING_JWKS_URL,
        *,
        http: RetryingHttp | None = None,
        ttl_seconds: float = KEYS_TTL_SECONDS,
        refetch_interval_seconds: float = REFETCH_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # A webhook waits on this fetch, so it is short: two attempts of five seconds, no long Retry-After waits.
        self.http = http or RetryingHttp(
            "", timeout=5.0, attempts=2, backoff_seconds=0.25, max_retry_after_seconds=1.0, service="Benchling JWKS"
        )
        self.url_template = url_template
        self.ttl_seconds = ttl_seconds
        self.refetch_interval_seconds = refetch_interval_seconds
        self.clock = clock
        self._apps: dict[str, _AppKeys] = {}
        self._guard = threading.Lock()

    def url(self, app_definition_id: str) -> str:
        return self.url_template.replace("{app_definition_id}", quote(app_definition_id, safe=""))

    def keys(self, app_definition_id: str) -> PublicKeys:
        """The app's keys: the cached ones while fresh, else fetched now; `JwksUnavailable` if they cannot be."""
        app = self._app(app_definition_id)
        with app.lock:
            now = self.clock()
            if app.keys and app.fetched_at is not None and now - app.fetched_at < self.ttl_seconds:
                return app.keys
            if self._too_soon(app, now):
                raise JwksUnavailable(
                    f"the keys of Benchling app {app_definition_id} could not be fetched ({app.failure}); "
                    f"they are asked for at most once every {self.refetch_interval_seconds:.0f} s"
                )
            return self._fetch(app_definition_id, app, now)

    def newer_than(self, app_definition_id: str, stale: PublicKeys) -> PublicKeys | None:
        """Keys newer than ``stale`` (after a rotation): fetched if allowed yet, else None (or those another took)."""
        app = self._app(app_definition_id)
        with app.lock:
            if app.keys is not stale:
                return app.keys  # another request refetched while this one waited
            now = self.clock()
            if self._too_soon(app, now):
                return None
            return self._fetch(app_definition_id, app, now)

    def _app(self, app_definition_id: str) -> _AppKeys:
        with self._guard:
            return self._apps.setdefault(app_definition_id, _AppKeys(threading.Lock()))

    def _too_soon(self, app: _AppKeys, now: float) -> bool:
        return app.attempted_at is not None and now - app.attempted_at < self.refetch_interval_seconds

    def _fetch(self, app_definition_id: str, app: _AppKeys, now: float) -> PublicKeys:
        app.attempted_at = now
        url = self.url(app_definition_id)
        try:
            response = self.http.request("GET", url, headers={"Accept": "application/json"})
            keys = p256_keys(response.json())
        except (ElnUnavailable, ElnRequestRefused, ValueError) as exc:
            app.failure = str(exc)
            log.warning("cannot fetch the JWKS of Benchling app %s from %s: %s", app_definition_id, url, exc)
            raise JwksUnavailable(f"the keys of Benchling app {app_definition_id} could not be fetched: {exc}") from exc
        app.keys, app.fetched_at, app.failure = keys, now, ""
        return keys


def verify_app_webhook(
    jwks: JwksCache,
    app_definition_id: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: Callable[[], float] = time.time,
) -> None:
    """Return if one of the app's keys signed this exact body recently; else `SignatureRefused`.

    ``headers`` are lower-cased. The timestamp is checked before any key is
    fetched, so a stale or unsigned request costs Benchling nothing.
    """
    check_timestamp(headers["webhook-timestamp"], now())
    signatures = app_signatures(headers["webhook-signature"])
    if not signatures:
        raise SignatureRefused(f"webhook-signature has no {SIGNATURE_VERSION} entry (a Benchling app signature)")
    content = signed_content(headers["webhook-id"], headers["webhook-timestamp"], body)
    keys = jwks.keys(app_definition_id)
    if signed_by_any(keys, content, signatures):
        return
    rotated = jwks.newer_than(app_definition_id, keys)
    if rotated is not None and signed_by_any(rotated, content, signatures):
        return
    raise SignatureRefused(f"signature does not match any current key of Benchling app {app_definition_id}")
