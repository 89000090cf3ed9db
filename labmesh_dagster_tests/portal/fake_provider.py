"""A small OpenID provider for the portal's sign-in tests, on a `pytest_httpserver.HTTPServer`.

It serves what a real one does for the authorization code flow: the discovery
document, its public keys (an RSA key made here), ``/authorize`` (which signs
the person in at once and redirects back with a code) and ``/token`` (which
redeems a code once, checks the redirect URI and the PKCE verifier against the
S256 challenge, and answers with an ID token it signs). A test changes
``claims`` (who signs in), ``overrides`` (claims to spoil: audience, expiry,
nonce...) or ``signing_key`` (a key it does not publish).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

CLIENT_ID = "labmesh-portal"


def new_key(kid: str = "key-1") -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True)


@functools.cache
def provider_key() -> RSAKey:
    """One key for every test's provider: making a 2048-bit RSA key costs a tenth of a second."""
    return new_key()


class FakeProvider:
    def __init__(self, server: HTTPServer, *, client_id: str = CLIENT_ID) -> None:
        self.server = server
        self.issuer = server.url_for("/").rstrip("/")
        self.client_id = client_id
        self.key = provider_key()
        self.signing_key = self.key
        self.claims: dict[str, Any] = {"sub": "u-1001", "preferred_username": "carol", "groups": ["Genomics"]}
        self.overrides: dict[str, Any] = {}
        self.codes: dict[str, dict[str, str]] = {}
        self.redeemed: list[str] = []
        server.expect_request("/.well-known/openid-configuration").respond_with_json(self.discovery())
        server.expect_request("/jwks").respond_with_handler(self._jwks)
        server.expect_request("/authorize").respond_with_handler(self._authorize)
        server.expect_request("/token", method="POST").respond_with_handler(self._token)

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
        }

    def _jwks(self, request: Request) -> Response:
        return _json({"keys": [self.key.as_dict(private=False)]})

    def _authorize(self, request: Request) -> Response:
        asked = request.args
        if (
            asked.get("client_id") != self.client_id
            or asked.get("response_type") != "code"
            or asked.get("code_challenge_method") != "S256"
            or "openid" not in (asked.get("scope") or "").split()
        ):
            return _json({"error": "invalid_request", "asked": dict(asked)}, 400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "nonce": asked["nonce"],
            "challenge": asked["code_challenge"],
            "redirect_uri": asked["redirect_uri"],
        }
        back = f"{asked['redirect_uri']}?{urlencode({'code': code, 'state': asked['state']})}"
        return Response(status=302, headers={"Location": back})

    def _token(self, request: Request) -> Response:
        form = request.form
        issued = self.codes.pop(form.get("code", ""), None)  # a code is redeemed once
        if issued is None or form.get("grant_type") != "authorization_code":
            return _json({"error": "invalid_grant", "error_description": "unknown or used code"}, 400)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != issued["challenge"] or form.get("redirect_uri") != issued["redirect_uri"]:
            return _json({"error": "invalid_grant", "error_description": "PKCE or redirect_uri mismatch"}, 400)
        if form.get("client_id") != self.client_id:
            return _json({"error": "invalid_client"}, 401)
        self.redeemed.append(form["code"])
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": issued["nonce"],
            **self.claims,
            **self.overrides,
        }
        header = {"alg": "RS256", "kid": self.signing_key.kid or "key-1"}
        id_token = jwt.encode(header, claims, self.signing_key)
        return _json({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "id_token": id_token})


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")
