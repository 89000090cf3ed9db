"""Signing in to the portal through an OpenID provider (LABMESH_LOGIN=oidc), against a provider run in the test.

Pinned here: the login page offers the provider instead of a password form,
and the password form is refused; the browser goes to the provider with a
state, a nonce and a PKCE challenge, and comes back signed in with the
portal's own session, named and grouped by the configured claims, seeing only
its groups' experiments; every sign-in, made or failed, is audited. A wrong
state, a sign-in not started here, a refusal by the provider, an ID token with
the wrong nonce, for another audience, expired or not signed by the provider,
and a provider that cannot be reached each end on the login page with what
went wrong, and with no session. Discovery is retried before it fails, the
code exchange is not (a code is good for one try), and keys the provider
rotated are fetched again.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pytest_httpserver import HTTPServer

from labmesh_dagster.access.audit import AuditFilter, AuditKind
from labmesh_dagster.access.oidc_provider import OidcProvider
from labmesh_dagster.access.stores import AccessStores
from labmesh_dagster.connectors.http import RetryingHttp
from labmesh_dagster.portal.app import PortalContext, mount_portal
from labmesh_dagster.portal.sessions import COOKIE, SessionSigner
from labmesh_dagster.settings import AccessSettings
from labmesh_dagster_tests.portal.fake_provider import CLIENT_ID, FakeProvider, new_key
from labmesh_dagster_tests.portal.lab import PortalLab, build_lab
from labmesh_dagster_tests.portal.test_portal_pages import experiments_in


class OidcPortal:
    """The lab's catalog behind a portal that signs in through ``issuer``."""

    def __init__(self, lab: PortalLab, home: Path, issuer: str, **env: str) -> None:
        settings = AccessSettings.from_env(
            {"LABMESH_LOGIN": "oidc", "LABMESH_OIDC_ISSUER": issuer, "LABMESH_OIDC_CLIENT_ID": CLIENT_ID, **env},
            home,
        )
        assert settings.oidc is not None
        self.access = AccessStores.open(settings)
        self.retried: list[float] = []
        self.seconds = 0.0  # the provider's monotonic clock, moved by hand
        provider = OidcProvider(
            settings.oidc,
            http=RetryingHttp(settings.oidc.issuer, attempts=3, timeout=5.0, sleep=self.retried.append, service="IdP"),
            monotonic=lambda: self.seconds,
        )
        self.app = FastAPI()
        context = PortalContext(
            catalog=lambda: lab.catalog,
            store=lambda: lab.store,
            access=self.access,
            signer=SessionSigner("test-secret"),
            secure_cookies=False,
        )
        mount_portal(self.app, context, oidc_provider=provider)

    def audited(self, kind: AuditKind) -> list[tuple[str | None, str | None]]:
        return [
            (entry.event.user, entry.event.detail)
            for entry in self.access.audit.read(AuditFilter(kinds=frozenset({kind})))
        ]


@pytest.fixture
def lab(tmp_path: Path) -> PortalLab:
    return build_lab(tmp_path / "home")


@pytest.fixture
def idp(httpserver: HTTPServer) -> FakeProvider:
    return FakeProvider(httpserver)


@pytest.fixture
def portal(lab: PortalLab, tmp_path: Path, idp: FakeProvider) -> OidcPortal:
    return OidcPortal(lab, tmp_path / "home", idp.issuer)


def start(client: TestClient) -> str:
    """The browser follows the login page's button; the provider's URL it is sent to."""
    page = client.get("/login?next=/%3Fq%3Dfibrosis")
    button = page.text.split('class="button" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    answer = client.get(button, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def at_provider(url: str) -> str:
    """The person signs in at the provider, which redirects the browser back: the portal's callback URL."""
    answer = httpx.get(url, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def signed_out(client: TestClient) -> bool:
    return COOKIE not in client.cookies and client.get("/", follow_redirects=False).status_code == 303


def test_the_login_page_offers_the_provider_and_no_password_form(portal: OidcPortal) -> None:
    client = TestClient(portal.app)

    page = client.get("/login")

    assert "Sign in with localhost" in page.text and 'type="password"' not in page.text
    assert client.post("/login", data={"name": "ada", "password": "a long enough password"}).status_code == 404


def test_a_person_signs_in_at_the_provider_and_sees_their_groups_experiments(
    portal: OidcPortal, idp: FakeProvider
) -> None:
    client = TestClient(portal.app)

    provider_url = start(client)
    asked = parse_qs(urlsplit(provider_url).query)
    back = client.get(at_provider(provider_url), follow_redirects=False)

    assert provider_url.startswith(f"{idp.issuer}/authorize?")
    assert asked["code_challenge_method"] == ["S256"] and asked["state"] and asked["nonce"]
    assert back.status_code == 303 and back.headers["location"] == "/?q=fibrosis"
    assert "httponly" in back.headers["set-cookie"].lower()
    assert len(idp.redeemed) == 1  # the code was exchanged with the right PKCE verifier
    assert experiments_in(client.get("/?q=fibrosis").text) == {"EXP-1"}
    assert portal.audited(AuditKind.LOGIN) == [("carol", "oidc")]


def test_groups_come_from_the_configured_claim(lab: PortalLab, tmp_path: Path, idp: FakeProvider) -> None:
    portal = OidcPortal(lab, tmp_path / "home", idp.issuer, LABMESH_OIDC_GROUPS_CLAIM="realm_access.roles")
    idp.claims = {"sub": "u-7", "preferred_username": "dan", "realm_access": {"roles": ["Proteomics"]}}
    client = TestClient(portal.app)

    client.get(at_provider(start(client)))

    assert experiments_in(client.get("/?q=fibrosis").text) == {"EXP-2"}
    assert client.get("/api/experiments/EXP-1").status_code == 404


def test_an_answer_with_another_state_signs_nobody_in(portal: OidcPortal, idp: FakeProvider) -> None:
    client = TestClient(portal.app)
    back = urlsplit(at_provider(start(client)))
    forged = f"{back.path}?{urlencode({'code': parse_qs(back.query)['code'][0], 'state': 'forged'})}"

    answer = client.get(forged)

    assert answer.status_code == 400 and "(state)" in answer.text and "Sign in with" in answer.text
    assert idp.redeemed == []  # the code was never exchanged
    assert signed_out(client)
    assert portal.audited(AuditKind.LOGIN_FAILED)[0][0] is None


def test_a_callback_for_a_sign_in_not_started_here_signs_nobody_in(portal: OidcPortal) -> None:
    client = TestClient(portal.app)
    callback = at_provider(start(client))
    stranger = TestClient(portal.app)  # another browser: no cookie of the sign-in under way

    answer = stranger.get(callback)

    assert answer.status_code == 400 and "not started here" in answer.text
    assert signed_out(stranger)


def test_the_providers_refusal_is_shown(portal: OidcPortal) -> None:
    client = TestClient(portal.app)
    state = parse_qs(urlsplit(start(client)).query)["state"][0]

    answer = client.get(
        "/auth/callback?" + urlencode({"state": state, "error": "access_denied", "error_description": "not allowed"})
    )

    assert answer.status_code == 401 and "access_denied: not allowed" in answer.text
    assert signed_out(client)


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        ({"nonce": "a nonce from another sign-in"}, "does not belong to this sign-in (nonce)"),
        ({"aud": "another-application"}, "issued for another application"),
        ({"iss": "https://impostor.example.org"}, "issued by another provider"),
        ({"exp": 1_700_000_000, "iat": 1_699_999_000}, "it has expired"),
    ],
)
def test_an_id_token_that_fails_a_check_signs_nobody_in(
    portal: OidcPortal, idp: FakeProvider, spoil: dict[str, object], message: str
) -> None:
    idp.overrides = spoil
    client = TestClient(portal.app)

    answer = client.get(at_provider(start(client)))

    assert answer.status_code == 401 and message in answer.text
    assert signed_out(client)
    assert portal.audited(AuditKind.LOGIN) == []
    [(user, detail)] = portal.audited(AuditKind.LOGIN_FAILED)
    assert user is None and detail and detail.startswith("oidc: the identity provider's ID token was refused")


def test_an_id_token_not_signed_by_the_providers_key_signs_nobody_in(portal: OidcPortal, idp: FakeProvider) -> None:
    idp.signing_key = new_key(kid=idp.key.kid or "key-1")  # the same key id, another key
    client = TestClient(portal.app)

    answer = client.get(at_provider(start(client)))

    assert answer.status_code == 401 and "its signature is not the provider" in answer.text
    assert signed_out(client)


def test_keys_rotated_by_the_provider_are_fetched_again(portal: OidcPortal, idp: FakeProvider) -> None:
    first = TestClient(portal.app)
    first.get(at_provider(start(first)))
    idp.key = idp.signing_key = new_key(kid="key-2")
    portal.seconds += 61  # keys are fetched again at most once a minute
    second = TestClient(portal.app)

    second.get(at_provider(start(second)))

    assert experiments_in(second.get("/?q=fibrosis").text) == {"EXP-1"}
    assert sum(1 for request, _ in idp.server.log if request.path == "/jwks") == 2


def test_discovery_is_retried_when_the_provider_stumbles(portal: OidcPortal, httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/.well-known/openid-configuration").respond_with_data("restarting", status=503)
    client = TestClient(portal.app)

    client.get(at_provider(start(client)))

    assert len(portal.retried) == 1
    assert experiments_in(client.get("/?q=fibrosis").text) == {"EXP-1"}


def test_a_provider_that_cannot_be_reached_gives_a_clear_error_and_no_session(lab: PortalLab, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    portal = OidcPortal(lab, tmp_path / "home", f"http://127.0.0.1:{port}")
    client = TestClient(portal.app)

    answer = client.get("/auth/login", follow_redirects=False)

    assert answer.status_code == 503
    assert f"the identity provider at http://127.0.0.1:{port} did not give its discovery document" in answer.text
    assert "after 3 attempts" in answer.text and len(portal.retried) == 2
    assert "labmesh_oidc" not in client.cookies
    assert signed_out(client)


def test_a_token_endpoint_that_fails_is_not_retried_and_signs_nobody_in(
    portal: OidcPortal, httpserver: HTTPServer
) -> None:
    httpserver.expect_oneshot_request("/token", method="POST").respond_with_data("<h1>Bad gateway</h1>", status=502)
    client = TestClient(portal.app)

    answer = client.get(at_provider(start(client)))

    assert answer.status_code == 503
    assert "token endpoint did not answer: HTTPError: 502 Server Error" in answer.text
    assert sum(1 for request, _ in httpserver.log if request.path == "/token") == 1  # a code is good for one try
    assert signed_out(client)
