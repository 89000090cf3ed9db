"""A small OpenID provider for the portal's sign-in tests, on a `pytest_httpserver.HTTPServer`.

It serves what a real one does for the authorization code flow: the discovery
document, its public keys (an RSA key made here), ``/authorize`` and
``/token`` (which redeems a code once, checks the redirect URI and the PKCE
verifier against the S256 challenge, and answers with an ID token it signs).
A test changes ``claims`` (who signs in), ``overrides`` (claims to spoil:
audience, expiry, nonce...) or ``signing_key`` (a key it does not publish).

Like a real provider it keeps a session of its own in the browser (a cookie,
``SESSION_COOKIE``): ``/authorize`` asks for credentials (a form posted to
``/login``, counted in ``prompts``) only when the browser has no session
there, and otherwise redirects back at once, silently. ``/logout`` is its
``end_session_endpoint`` (RP-Initiated Logout 1.0, published unless
``end_session`` is False): it checks the ``id_token_hint`` (signed by its key,
issued by it, for the ``client_id`` given; expiry does not matter), refuses a
``post_logout_redirect_uri`` not registered in ``post_logout_redirect_uris``,
ends the session and only then redirects back.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
import time
from html import escape
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

CLIENT_ID = "labmesh-portal"
SESSION_COOKIE = "fake_idp_session"
PASSWORD = "correct horse battery staple"
UNREGISTERED = "unregistered post_logout_redirect_uri"
PORTAL_LOGIN = "http://testserver/login"
"""The portal's login page as a `TestClient` names it: the post-logout redirect URI registered by default."""


def new_key(kid: str = "key-1") -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True)


@functools.cache
def provider_key() -> RSAKey:
    """One key for every test's provider: making a 2048-bit RSA key costs a tenth of a second."""
    return new_key()


class FakeProvider:
    def __init__(self, server: HTTPServer, *, client_id: str = CLIENT_ID, end_session: bool = True) -> None:
        self.server = server
        self.issuer = server.url_for("/").rstrip("/")
        self.client_id = client_id
        self.key = provider_key()
        self.signing_key = self.key
        self.claims: dict[str, Any] = {"sub": "u-1001", "preferred_username": "carol", "groups": ["Genomics"]}
        self.overrides: dict[str, Any] = {}
        self.codes: dict[str, dict[str, str]] = {}
        self.redeemed: list[str] = []
        self.end_session = end_session
        self.post_logout_redirect_uris = {PORTAL_LOGIN}
        self.sessions: dict[str, dict[str, Any]] = {}  # the browser's cookie -> who signed in, and the session's sid
        self.pending: dict[str, dict[str, str]] = {}  # sign-ins waiting for credentials
        self.prompts = 0  # how often a person was asked for credentials
        server.expect_request("/.well-known/openid-configuration").respond_with_json(self.discovery())
        server.expect_request("/jwks").respond_with_handler(self._jwks)
        server.expect_request("/authorize").respond_with_handler(self._authorize)
        server.expect_request("/login", method="POST").respond_with_handler(self._login)
        server.expect_request("/logout").respond_with_handler(self._logout)
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
            **({"end_session_endpoint": f"{self.issuer}/logout"} if self.end_session else {}),
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
        wanted = {name: asked[name] for name in ("nonce", "code_challenge", "redirect_uri", "state")}
        session = request.cookies.get(SESSION_COOKIE, "")
        if session in self.sessions:
            return self._back(wanted, session)
        self.prompts += 1
        pending = secrets.token_urlsafe(16)
        self.pending[pending] = wanted
        form = (
            '<form method="post" action="/login">'
            f'<input type="hidden" name="pending" value="{escape(pending)}">'
            '<label>User <input name="username"></label><label>Password <input name="password"></label></form>'
        )
        return Response(form, status=200, content_type="text/html")

    def _login(self, request: Request) -> Response:
        """The credentials form: a new session at the provider, then back to the client with a code."""
        wanted = self.pending.pop(request.form.get("pending", ""), None)
        if wanted is None or request.form.get("password") != PASSWORD:
            return _json({"error": "access_denied"}, 401)
        session = secrets.token_urlsafe(16)
        # The ID token names the session by an id of its own: the cookie's value never leaves the browser.
        self.sessions[session] = {"sub": self.claims.get("sub"), "sid": secrets.token_urlsafe(8)}
        response = self._back(wanted, session)
        response.set_cookie(SESSION_COOKIE, session, path="/", httponly=True)
        return response

    def _back(self, wanted: dict[str, str], session: str) -> Response:
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "nonce": wanted["nonce"],
            "challenge": wanted["code_challenge"],
            "redirect_uri": wanted["redirect_uri"],
            "sid": self.sessions[session]["sid"],
        }
        back = f"{wanted['redirect_uri']}?{urlencode({'code': code, 'state': wanted['state']})}"
        return Response(status=302, headers={"Location": back})

    def _logout(self, request: Request) -> Response:
        """RP-Initiated Logout 1.0's end_session_endpoint: check the hint and the return address, end the session."""
        if not self.end_session:
            return _json({"error": "not_found"}, 404)
        asked = request.args
        hint, client_id = asked.get("id_token_hint"), asked.get("client_id")
        back = asked.get("post_logout_redirect_uri")
        ended: set[str] = set()
        if hint:
            try:
                claims = jwt.decode(hint, self.key, algorithms=["RS256"]).claims
            except Exception as exc:  # noqa: BLE001 - any token this provider cannot read is refused alike
                return _json({"error": "invalid_request", "error_description": f"id_token_hint: {exc}"}, 400)
            audience = claims.get("aud")
            audiences = audience if isinstance(audience, list) else [audience]
            if claims.get("iss") != self.issuer or self.client_id not in audiences:
                return _json({"error": "invalid_request", "error_description": "id_token_hint is not mine"}, 400)
            if client_id is not None and client_id not in audiences:
                return _json({"error": "invalid_request", "error_description": "client_id is not the hint's"}, 400)
            if claims.get("sid"):
                ended.add(str(claims["sid"]))
        if client_id is not None and client_id != self.client_id:
            return _json({"error": "invalid_client"}, 400)
        if back is not None and (not (hint or client_id) or back not in self.post_logout_redirect_uris):
            return _json({"error": "invalid_request", "error_description": UNREGISTERED}, 400)
        browser = request.cookies.get(SESSION_COOKIE, "")
        for session, held in list(self.sessions.items()):
            if session == browser or held["sid"] in ended:
                del self.sessions[session]
        if back is None:
            response = Response("signed out", status=200, content_type="text/plain")
        else:
            state = {"state": asked["state"]} if asked.get("state") else {}
            response = Response(status=302, headers={"Location": f"{back}{'?' + urlencode(state) if state else ''}"})
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

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
            "sid": issued["sid"],
            **self.claims,
            **self.overrides,
        }
        header = {"alg": "RS256", "kid": self.signing_key.kid or "key-1"}
        id_token = jwt.encode(header, claims, self.signing_key)
        return _json({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "id_token": id_token})


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")
