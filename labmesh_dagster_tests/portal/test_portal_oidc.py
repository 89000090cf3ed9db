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

Signing out (RP-Initiated Logout 1.0): with a provider that publishes an
``end_session_endpoint``, ``/logout`` drops the portal's session and sends
the browser there with this sign-in's ID token as the hint, the client id and
the portal's ``/login`` (or LABMESH_OIDC_POST_LOGOUT_URL) to come back to;
the provider ends its session, so the next sign-in asks for the password
again, where without signing out it is silent. A hint kept for another
session is not sent. A provider with no such endpoint, or one that cannot be
reached, leaves its session; the login page says so. Sign-out is audited
either way.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from pytest_httpserver import HTTPServer

from labmesh_dagster.access.audit import AuditFilter, AuditKind
from labmesh_dagster.access.oidc_provider import OidcProvider
from labmesh_dagster.access.stores import AccessStores
from labmesh_dagster.connectors.http import RetryingHttp
from labmesh_dagster.portal.app import PortalContext, mount_portal
from labmesh_dagster.portal.oidc_login import LOGOUT_COOKIE
from labmesh_dagster.portal.sessions import COOKIE, SessionSigner
from labmesh_dagster.settings import AccessSettings
from labmesh_dagster_tests.portal.fake_provider import (
    CLIENT_ID,
    PASSWORD,
    PORTAL_LOGIN,
    SESSION_COOKIE,
    FakeProvider,
    new_key,
)
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
        self.provider = provider = OidcProvider(
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


def at_provider(url: str, browser: httpx.Client | None = None) -> str:
    """The person signs in at the provider (giving their password if it asks), which redirects the browser back:
    the portal's callback URL. ``browser`` keeps the provider's cookie between sign-ins; without one, a new
    browser every time."""
    browser = browser or httpx.Client()
    answer = browser.get(url, follow_redirects=False)
    if answer.status_code == 200:  # the provider's credentials form
        pending = answer.text.split('name="pending" value="', 1)[1].split('"', 1)[0]
        login = f"{url.split('/authorize', 1)[0]}/login"
        answer = browser.post(login, data={"pending": pending, "username": "carol", "password": PASSWORD})
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


def sign_out(client: TestClient) -> httpx.Response:
    """The person presses "Sign out": the form posts the session's CSRF token to /logout."""
    csrf = client.get("/").text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return client.post("/logout", data={"csrf": csrf}, follow_redirects=False)


def test_a_second_sign_in_in_the_same_browser_is_silent_while_the_provider_session_lasts(
    portal: OidcPortal, idp: FakeProvider
) -> None:
    client, browser = TestClient(portal.app), httpx.Client()
    client.get(at_provider(start(client), browser))
    client.cookies.delete(COOKIE)  # the portal's session ends (it expired), the provider's does not

    client.get(at_provider(start(client), browser))

    assert idp.prompts == 1  # the provider did not ask again
    assert experiments_in(client.get("/?q=fibrosis").text) == {"EXP-1"}


def test_signing_out_ends_the_providers_session_so_the_next_sign_in_asks_again(
    portal: OidcPortal, idp: FakeProvider
) -> None:
    client, browser = TestClient(portal.app), httpx.Client()
    client.get(at_provider(start(client), browser))

    answer = sign_out(client)
    to_provider = answer.headers["location"]
    asked = parse_qs(urlsplit(to_provider).query)
    back = browser.get(to_provider, follow_redirects=False)
    client.get(at_provider(start(client), browser))

    assert answer.status_code == 303 and to_provider.startswith(f"{idp.issuer}/logout?")
    assert asked["client_id"] == [CLIENT_ID] and asked["post_logout_redirect_uri"] == [PORTAL_LOGIN]
    hint = jwt.decode(asked["id_token_hint"][0], idp.key).claims  # the ID token of this very sign-in
    assert hint["sub"] == "u-1001" and hint["aud"] == CLIENT_ID and hint["nonce"]
    assert back.status_code == 302 and back.headers["location"] == PORTAL_LOGIN
    assert idp.prompts == 2  # asked for the password again: the provider's session had ended
    assert experiments_in(client.get("/?q=fibrosis").text) == {"EXP-1"}
    assert portal.audited(AuditKind.LOGOUT) == [("carol", None)]


def test_the_provider_ends_no_session_for_an_unregistered_return_address(
    lab: PortalLab, tmp_path: Path, idp: FakeProvider
) -> None:
    elsewhere = "https://elsewhere.example.org/signed-out"
    portal = OidcPortal(lab, tmp_path / "home", idp.issuer, LABMESH_OIDC_POST_LOGOUT_URL=elsewhere)
    client, browser = TestClient(portal.app), httpx.Client()
    client.get(at_provider(start(client), browser))

    to_provider = sign_out(client).headers["location"]
    refused = browser.get(to_provider, follow_redirects=False)

    assert parse_qs(urlsplit(to_provider).query)["post_logout_redirect_uri"] == [elsewhere]
    assert refused.status_code == 400 and "unregistered post_logout_redirect_uri" in refused.text
    assert browser.cookies.get(SESSION_COOKIE) in idp.sessions  # still signed in at the provider
    assert signed_out(client)  # but not in the portal


def test_a_hint_kept_for_another_session_is_not_sent(portal: OidcPortal) -> None:
    first, second = TestClient(portal.app), TestClient(portal.app)
    first.get(at_provider(start(first)))
    second.get(at_provider(start(second)))
    [kept] = [cookie for cookie in first.cookies.jar if cookie.name == LOGOUT_COOKIE]
    second.cookies.jar.set_cookie(kept)  # replaces second's own: same name, domain and path

    asked = parse_qs(urlsplit(sign_out(second).headers["location"]).query)

    assert "id_token_hint" not in asked and asked["client_id"] == [CLIENT_ID]


@pytest.mark.parametrize("unreachable", [False, True], ids=["no end_session_endpoint", "unreachable at sign-out"])
def test_without_an_end_session_endpoint_the_provider_session_remains_and_the_login_page_says_so(
    lab: PortalLab, tmp_path: Path, httpserver: HTTPServer, unreachable: bool
) -> None:
    idp = FakeProvider(httpserver, end_session=unreachable)
    portal = OidcPortal(lab, tmp_path / "home", idp.issuer)
    client, browser = TestClient(portal.app), httpx.Client()
    client.get(at_provider(start(client), browser))
    if unreachable:
        portal.seconds += 3601  # the discovery document is fetched again at sign-out, and the provider is gone
        httpserver.clear()

    answer = sign_out(client)
    page = client.get(answer.headers["location"])

    assert answer.status_code == 303 and answer.headers["location"] == "/login?signed_out=here"
    assert signed_out(client) and LOGOUT_COOKIE not in client.cookies
    assert "your session there" in page.text and "remains" in page.text
    assert portal.audited(AuditKind.LOGOUT) == [("carol", None)]
    if not unreachable:
        client.get(at_provider(start(client), browser))
        assert idp.prompts == 1  # silent: the provider's session was never ended


def test_an_id_token_too_big_for_a_cookie_is_not_kept_and_sign_out_names_the_client_alone(
    portal: OidcPortal, idp: FakeProvider
) -> None:
    idp.overrides = {"picture": secrets.token_urlsafe(3000)}  # some providers put a whole photo in the token
    client, browser = TestClient(portal.app), httpx.Client()
    client.get(at_provider(start(client), browser))
    kept = LOGOUT_COOKIE in client.cookies

    to_provider = sign_out(client).headers["location"]
    back = browser.get(to_provider, follow_redirects=False)

    assert not kept and experiments_in(client.get("/?q=fibrosis").text) == set()
    assert "id_token_hint" not in parse_qs(urlsplit(to_provider).query)
    assert back.status_code == 302 and idp.sessions == {}
