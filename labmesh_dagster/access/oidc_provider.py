"""Talking to an OpenID provider: its discovery document and keys, the sign-in URL, the code exchange, the ID token,
and the sign-out URL that ends the provider's own session.

Authlib does the OAuth side: the authorization URL (with PKCE's S256
challenge, the state and the nonce) and the exchange of the returned code at
the token endpoint, authenticating the client as the provider asks. joserfc
(Authlib's JOSE library) checks the ID token's signature against the keys the
provider publishes, and Authlib's `CodeIDToken` its claims: the issuer, the
audience (this client), the expiry, the nonce of this very sign-in, and the
access token's hash when there is one. Only then are the claims handed on to
`labmesh_dagster.access.oidc`, which names the viewer.

The discovery document and the keys are fetched with retries (`RetryingHttp`:
a provider restarting behind its proxy is not a failed sign-in) and kept: the
document for an hour, the keys until a token names a key they lack, when
they are fetched again (the provider rotated them), at most once a minute so
forged tokens naming random keys cannot make the portal hammer the provider.
The code exchange is not retried: a code is good for one exchange, so a second
try would only be refused.

Signing out follows RP-Initiated Logout 1.0: when the discovery document
names an ``end_session_endpoint``, `end_session_url` is where the browser goes
so the provider ends its session too (else the next sign-in would be silent),
with the sign-in's ID token as ``id_token_hint``, the client id and where to
come back to. A provider that names none has no standard way to be told.

Every failure is one of two errors: `OidcUnavailable` (the provider could not
be reached or answered nonsense: nobody can sign in now) and
`OidcSignInRefused` (this sign-in cannot be trusted), each with a message a
person can act on.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from labmesh_dagster.access.errors import OidcSignInRefused, OidcUnavailable
from labmesh_dagster.connectors.eln.base import ElnRequestRefused, ElnUnavailable
from labmesh_dagster.connectors.http import RetryingHttp
from labmesh_dagster.core.clock import Clock, utc_now
from labmesh_dagster.settings import OidcSettings

DISCOVERY_PATH = "/.well-known/openid-configuration"
METADATA_TTL_SECONDS = 3600.0
KEYS_REFETCH_SECONDS = 60.0
# The portal's clock and the provider's may disagree by this much before a fresh token looks expired.
LEEWAY_SECONDS = 60
TIMEOUT_SECONDS = 10.0
# Signatures by the provider's published (public) keys only: never "none", never a secret shared with clients.
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")
_CLAIM_PROBLEMS = {
    "iss": "it was issued by another provider",
    "aud": "it was issued for another application",
    "azp": "it was issued for another application",
    "nonce": "it does not belong to this sign-in (nonce)",
    "exp": "it has expired",
    "nbf": "it is not valid yet",
    "iat": "its issue time is not a date",
    "at_hash": "it does not match the access token sent with it",
}


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and what must come back with it: kept by the portal until the callback."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class SignedIn:
    """A sign-in that passed every check: the ID token's claims, and the token itself (the hint at sign-out)."""

    claims: dict[str, Any]
    id_token: str


class OidcProvider:
    """One provider, as the settings name it. Thread-safe: the portal's requests share one.

    ``http`` (the discovery and key fetches) and ``clock`` (token expiry) are
    injectable so tests can point at a fake provider and run without sleeping.
    """

    def __init__(
        self,
        settings: OidcSettings,
        *,
        http: RetryingHttp | None = None,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        timeout_seconds: float = TIMEOUT_SECONDS,
    ) -> None:
        self.settings = settings
        # A person waits on these fetches: three short attempts, no long Retry-After waits.
        self.http = http or RetryingHttp(
            settings.issuer,
            timeout=timeout_seconds,
            attempts=3,
            backoff_seconds=0.5,
            max_retry_after_seconds=2.0,
            service="OpenID provider",
        )
        self.clock = clock
        self.monotonic = monotonic
        self.timeout_seconds = timeout_seconds
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0

    def metadata(self) -> Mapping[str, Any]:
        """The provider's discovery document, fetched when first needed and kept for an hour."""
        with self._lock:
            now = self.monotonic()
            if self._metadata is not None and now - self._metadata_at < METADATA_TTL_SECONDS:
                return self._metadata
            document = self._get_json(DISCOVERY_PATH, "discovery document")
            issuer = document.get("issuer")
            if not isinstance(issuer, str) or issuer.rstrip("/") != self.settings.issuer:
                raise OidcUnavailable(
                    f"the identity provider at {self.settings.issuer} names itself {issuer!r} in its discovery "
                    "document: set LABMESH_OIDC_ISSUER to exactly its issuer"
                )
            missing = [name for name in _ENDPOINTS if not isinstance(document.get(name), str)]
            if missing:
                raise OidcUnavailable(
                    f"the identity provider at {self.settings.issuer} gives no {', '.join(missing)} "
                    "in its discovery document"
                )
            self._metadata, self._metadata_at = document, now
            return document

    def keys(self, *, refresh: bool = False) -> KeySet:
        """The provider's signing keys; ``refresh`` fetches them again (a token named a key they lack)."""
        jwks_uri = str(self.metadata()["jwks_uri"])
        with self._lock:
            now = self.monotonic()
            if self._keys is not None and not (refresh and now - self._keys_at >= KEYS_REFETCH_SECONDS):
                return self._keys
            document = self._get_json(jwks_uri, "signing keys (JWKS)")
            try:
                keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
            except (JoseError, ValueError, KeyError, TypeError) as exc:
                raise OidcUnavailable(
                    f"the identity provider at {self.settings.issuer} publishes signing keys labmesh cannot read: {exc}"
                ) from exc
            self._keys, self._keys_at = keys, now
            return keys

    def authorization(self, redirect_uri: str) -> AuthorizationRequest:
        """A new sign-in: the provider's URL with a fresh state, nonce and PKCE challenge (S256)."""
        endpoint = str(self.metadata()["authorization_endpoint"])
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        with self._session(redirect_uri) as session:
            url, _ = session.create_authorization_url(endpoint, state=state, code_verifier=verifier, nonce=nonce)
        return AuthorizationRequest(url=url, state=state, nonce=nonce, code_verifier=verifier)

    def sign_in(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> SignedIn:
        """Exchange the code the provider sent back for tokens: the ID token and its claims, once they pass every
        check."""
        metadata = self.metadata()
        with self._session(redirect_uri, metadata) as session:
            try:
                token = session.fetch_token(
                    str(metadata["token_endpoint"]),
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                    timeout=self.timeout_seconds,
                )
            except OAuthError as exc:
                said = f"{exc.error}: {exc.description}" if exc.description else str(exc.error)
                raise OidcSignInRefused(f"the identity provider refused the sign-in code ({said})") from exc
            except requests.RequestException as exc:
                raise OidcUnavailable(
                    f"the identity provider's token endpoint did not answer: {type(exc).__name__}: {exc}"
                ) from exc
            except ValueError as exc:
                raise OidcUnavailable(f"the identity provider's token endpoint answered no tokens: {exc}") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcSignInRefused(
                "the identity provider sent no ID token: the client must be allowed the 'openid' scope"
            )
        access_token = token.get("access_token")
        claims = self.validated_claims(id_token, nonce=nonce, access_token=access_token or None)
        return SignedIn(claims=claims, id_token=id_token)

    def end_session_url(self, *, post_logout_redirect_uri: str, id_token_hint: str | None = None) -> str | None:
        """Where the browser goes so the provider ends its own session (RP-Initiated Logout 1.0); None when the
        provider's discovery document names no ``end_session_endpoint``.

        ``client_id`` goes along even with the hint: the provider checks that
        ``post_logout_redirect_uri`` is one registered for this client, and
        without a hint (it did not fit the cookie) it is how the client is known.
        """
        endpoint = self.metadata().get("end_session_endpoint")
        if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
            return None
        asked = {"client_id": self.settings.client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
        if id_token_hint:
            asked = {"id_token_hint": id_token_hint, **asked}
        # The endpoint may carry a query of its own (some providers name the tenant or policy there).
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(asked)}"

    def validated_claims(self, id_token: str, *, nonce: str, access_token: str | None = None) -> dict[str, Any]:
        """The ID token's claims: signed by one of the provider's keys, for this client, unexpired, this nonce."""
        metadata = self.metadata()
        offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [alg for alg in offered if alg in SIGNING_ALGORITHMS]
        registry = JWSRegistry(algorithms=algorithms, strict_check_header=False)
        try:
            try:
                decoded = jwt.decode(id_token, self.keys(), algorithms=algorithms, registry=registry)
            except InvalidKeyIdError:
                decoded = jwt.decode(id_token, self.keys(refresh=True), algorithms=algorithms, registry=registry)
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                {
                    "iss": {"essential": True, "value": str(metadata["issuer"])},
                    "aud": {"essential": True, "value": self.settings.client_id},
                },
                {"nonce": nonce, "client_id": self.settings.client_id, "access_token": access_token},
            )
            claims.validate(now=int(self.clock().timestamp()), leeway=LEEWAY_SECONDS)
        except JoseError as exc:
            raise OidcSignInRefused(f"the identity provider's ID token was refused: {_problem(exc)}") from exc
        if not nonce or claims.get("nonce") != nonce:
            raise OidcSignInRefused(
                f"the identity provider's ID token was refused: {_CLAIM_PROBLEMS['nonce']}"
            )  # CodeIDToken checks a nonce only when one is present; every sign-in here sends one
        return dict(claims)

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = self.http.request("GET", url, headers={"Accept": "application/json"})
            document = response.json()
        except (ElnUnavailable, ElnRequestRefused) as exc:
            raise OidcUnavailable(
                f"the identity provider at {self.settings.issuer} did not give its {what}: {exc}"
            ) from exc
        except ValueError as exc:
            raise OidcUnavailable(
                f"the identity provider at {self.settings.issuer} sent a {what} that is not JSON"
            ) from exc
        if not isinstance(document, dict):
            raise OidcUnavailable(f"the identity provider at {self.settings.issuer} sent a {what} that is no object")
        return document

    def _session(self, redirect_uri: str, metadata: Mapping[str, Any] | None = None) -> OAuth2Session:
        secret = self.settings.client_secret.value if self.settings.client_secret else None
        return OAuth2Session(
            client_id=self.settings.client_id,
            client_secret=secret,
            token_endpoint_auth_method=_client_auth(secret, metadata or {}),
            scope=" ".join(self.settings.scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
        )


def _client_auth(secret: str | None, metadata: Mapping[str, Any]) -> str:
    """How the client proves itself at the token endpoint: none (a public client, PKCE alone), else as offered."""
    if secret is None:
        return "none"
    offered = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    if "client_secret_basic" not in offered and "client_secret_post" in offered:
        return "client_secret_post"
    return "client_secret_basic"


def _problem(exc: JoseError) -> str:
    """Why a token was refused, in words: which check failed, not joserfc's error code."""
    if isinstance(exc, BadSignatureError):
        return "its signature is not the provider's"
    if isinstance(exc, InvalidKeyIdError):
        return "it is signed with a key the provider does not publish"
    if isinstance(exc, ExpiredTokenError):
        return _CLAIM_PROBLEMS["exp"]
    if isinstance(exc, InvalidClaimError):
        return _CLAIM_PROBLEMS.get(exc.claim, f"its {exc.claim!r} claim is wrong")
    if isinstance(exc, MissingClaimError):
        return f"it lacks the {exc.claim!r} claim"
    return f"it cannot be read ({exc.description or exc.error or type(exc).__name__})"
