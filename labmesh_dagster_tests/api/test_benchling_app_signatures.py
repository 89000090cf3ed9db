"""Webhooks from a Benchling app: signed with the app's published keys, judged before anything is kept.

Contract: a webhook whose ``v1bder`` signature (ECDSA P-256 over
``id.timestamp.body``) verifies under a key of the app's JWKS is kept once and
answered 202 (409 for redeliveries); a changed body, a key the JWKS does not
hold, a stale timestamp or no app signature at all is 401. The keys come from a
local server standing in for Benchling's JWKS endpoint: they are fetched once
and cached, fetched again once when a signature matches none of them (a
rotation), but never more than once a minute however many bad signatures
arrive; when the endpoint is down the answer is 503 (Benchling redelivers), and
nothing is written for any refusal.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook
from werkzeug import Request, Response

from labmesh_dagster.api.app import create_app, create_app_from_settings
from labmesh_dagster.api.benchling_signatures import JwksCache
from labmesh_dagster.api.webhooks import WebhookSource
from labmesh_dagster.connectors.eln.inbox import SqliteInbox
from labmesh_dagster.connectors.http import RetryingHttp
from labmesh_dagster.settings import Settings

APP = "appdef_LabMesh1"
JWKS_PATH = f"/api/v1/apps/{APP}/jwks"
SECRET = "whsec_" + base64.b64encode(b"classic-benchling-webhook-secret").decode()
REFETCH_SECONDS = 60.0


class Clock:
    """Monotonic seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def jwks_of(*keys: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> dict[str, object]:
    """The public halves as Benchling publishes them: a JWKS, each key with a kid."""
    entries = []
    for number, key in enumerate(keys):
        public = key.public_key()
        jwk = (
            ECAlgorithm.to_jwk(public, as_dict=True)
            if isinstance(public, ec.EllipticCurvePublicKey)
            else RSAAlgorithm.to_jwk(public, as_dict=True)
        )
        entries.append({**jwk, "kid": f"key-{number}", "use": "sig"})
    return {"keys": entries}


def app_event(entry_id: str = "etr_A1b2C3", kind: str = "v2.entry.created") -> bytes:
    """A Benchling app webhook body: the app envelope around an entry message."""
    return json.dumps(
        {
            "version": "0",
            "baseURL": "https://acme.benchling.com",
            "tenantId": "ten_acme",
            "app": {"id": "app_installed1"},
            "appDefinition": {"id": APP},
            "channel": "events",
            "message": {
                "type": kind,
                "id": "evt_9xY",
                "resourceId": entry_id,
                "createdAt": "2026-11-29T10:00:00Z",
                "deprecated": False,
                "excludedProperties": [],
            },
        }
    ).encode()


def signature(key: ec.EllipticCurvePrivateKey, event_id: str, timestamp: str, body: bytes) -> str:
    der = key.sign(f"{event_id}.{timestamp}.".encode() + body, ec.ECDSA(hashes.SHA256()))
    return "v1bder," + base64.b64encode(der).decode()


def app_signed(
    body: bytes,
    *keys: ec.EllipticCurvePrivateKey,
    event_id: str = "wh_1",
    at: datetime | None = None,
) -> dict[str, str]:
    """Headers as Benchling sends them, with one ``v1bder`` signature per key, in order."""
    timestamp = str(int((at or datetime.now(UTC)).timestamp()))
    signatures = " ".join(signature(key, event_id, timestamp, body) for key in keys)
    return {"webhook-id": event_id, "webhook-timestamp": timestamp, "webhook-signature": signatures}


@pytest.fixture
def benchling() -> Iterator[HTTPServer]:
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def serve(server: HTTPServer, jwks: dict[str, object]) -> None:
    """From now on, the JWKS endpoint answers ``jwks``."""
    server.clear_all_handlers()
    server.expect_request(JWKS_PATH, method="GET").respond_with_json(jwks)


def jwks_requests(server: HTTPServer) -> int:
    return sum(1 for request, _ in server.log if request.path == JWKS_PATH)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def jwks(benchling: HTTPServer, clock: Clock) -> Iterator[JwksCache]:
    http = RetryingHttp("", attempts=2, timeout=5.0, sleep=lambda _: None, service="Benchling JWKS")
    yield JwksCache(
        benchling.url_for("/api/v1/apps/{app_definition_id}/jwks"),
        http=http,
        refetch_interval_seconds=REFETCH_SECONDS,
        clock=clock,
    )
    http.close()


@pytest.fixture
def inbox(tmp_path: Path) -> SqliteInbox:
    return SqliteInbox(tmp_path / "inbox.sqlite")


@pytest.fixture
def client(inbox: SqliteInbox, jwks: JwksCache) -> TestClient:
    sources = {
        "benchling": WebhookSource("benchling", payload="benchling", benchling_app_definition_id=APP),
        "both": WebhookSource("both", (SECRET,), "benchling", benchling_app_definition_id=APP, eln="benchling"),
    }
    return TestClient(create_app(inbox, sources, jwks))


def post(client: TestClient, body: bytes, headers: dict[str, str], source: str = "benchling"):  # type: ignore[no-untyped-def]
    return client.post(f"/eln/events/{source}", content=body, headers={**headers, "content-type": "application/json"})


def test_a_signed_app_webhook_delivered_three_times_is_kept_once_and_the_keys_fetched_once(
    client: TestClient, inbox: SqliteInbox, benchling: HTTPServer
) -> None:
    key = new_key()
    serve(benchling, jwks_of(key))
    body = app_event()

    responses = [post(client, body, app_signed(body, key)) for _ in range(3)]

    assert [r.status_code for r in responses] == [202, 409, 409]
    assert responses[0].json() == {"accepted": True, "events": 1}
    [message] = inbox.receive(max_messages=10, visibility_seconds=60)
    assert (message.event.source, message.event.event_id, message.event.entry_id) == ("benchling", "wh_1", "etr_A1b2C3")
    assert message.event.kind == "changed" and inbox.pending() == 1
    assert jwks_requests(benchling) == 1


def test_a_body_changed_after_signing_is_refused_and_nothing_kept(
    client: TestClient, inbox: SqliteInbox, benchling: HTTPServer
) -> None:
    key = new_key()
    serve(benchling, jwks_of(key))
    body = app_event()
    headers = app_signed(body, key)

    response = post(client, body.replace(b"etr_A1b2C3", b"etr_Evil99"), headers)

    assert response.status_code == 401 and "does not match" in response.json()["reason"]
    assert inbox.pending() == 0


def test_a_signature_from_a_key_the_jwks_does_not_hold_is_refused_after_one_refetch_at_most(
    client: TestClient, inbox: SqliteInbox, benchling: HTTPServer, clock: Clock
) -> None:
    key = new_key()
    serve(benchling, jwks_of(key))
    body = app_event()
    assert post(client, body, app_signed(body, key, event_id="wh_1")).status_code == 202
    clock.advance(REFETCH_SECONDS)  # long enough after the first fetch for a rotation check to be allowed

    response = post(client, body, app_signed(body, new_key(), event_id="wh_2"))

    assert response.status_code == 401 and APP in response.json()["reason"]
    assert jwks_requests(benchling) == 2  # the first fetch, and one more in case the keys had just rotated
    assert inbox.pending() == 1


def test_keys_fetched_a_moment_ago_are_not_fetched_again_for_an_unknown_signature(
    client: TestClient, inbox: SqliteInbox, benchling: HTTPServer
) -> None:
    serve(benchling, jwks_of(new_key()))
    body = app_event()

    response = post(client, body, app_signed(body, new_key()))

    assert response.status_code == 401 and jwks_requests(benchling) == 1
    assert inbox.pending() == 0


@pytest.mark.parametrize("minutes", [-6, 6], ids=["stale", "from the future"])
def test_a_timestamp_more_than_five_minutes_away_is_refused_without_asking_benchling(
    client: TestClient, inbox: SqliteInbox, benchling: HTTPServer, minutes: int
) -> None:
    key = new_key()
    serve(benchling, jwks_of(key))
    body = app_event()

    response = post(client, body, app_signed(body, key, at=datetime.now(UTC) + timedelta(minutes=minutes)))

    assert response.status_code == 401 and "5 minutes" in response.json()["reason"]
    assert jwks_requests(benchling) == 0 and inbox.pending() == 0


def test_several_signatures_pass_when_only_the_second_is_valid(
    client: TestClient, inbox: SqliteInbox, benchling: HTTPServer
) -> None:
    key = new_key()
    serve(benchling, jwks_of(key))
    body = app_event()
    headers = app_signed(body, new_key(), key)
    headers["webhook-signature"] = "v1,bm90LWFuLWhtYWM= " + headers["webhook-signature"]

    response = post(client, body, headers)

    assert response.status_code == 202 and inbox.pending() == 1


def test_requests_without_an_app_signature_are_refused_with_a_clear_reason(
    client: TestClient, inbox: SqliteInbox, benchling: HTTPServer
) -> None:
    serve(benchling, jwks_of(new_key()))
    body = app_event()
    hmac_only = {
        "webhook-id": "wh_1",
        "webhook-timestamp": str(int(datetime.now(UTC).timestamp())),
        "webhook-signature": Webhook(SECRET).sign("wh_1", datetime.now(UTC), body.decode()),
    }
    garbled = {**hmac_only, "webhook-signature": "v1bder,not*base64"}

    assert post(client, body, hmac_only).json()["reason"].startswith("webhook-signature has no v1bder entry")
    assert post(client, body, garbled).status_code == 401
    assert post(client, body, {}).json()["reason"].startswith("missing webhook-id")
    assert jwks_requests(benchling) == 0 and inbox.pending() == 0


def test_after_benchling_rotates_its_key_an_event_signed_with_the_new_one_passes_after_one_refetch(
    client: TestClient, inbox: SqliteInbox, benchling: HTTPServer, clock: Clock
) -> None:
    old, new = new_key(), new_key()
    serve(benchling, jwks_of(old))
    first = app_event("etr_First")
    assert post(client, first, app_signed(first, old, event_id="wh_1")).status_code == 202

    clock.advance(600)  # the cached keys are still fresh when Benchling rotates to the new key
    serve(benchling, jwks_of(new))
    second, third = app_event("etr_Second"), app_event("etr_Third")

    assert post(client, second, app_signed(second, new, event_id="wh_2")).status_code == 202
    assert jwks_requests(benchling) == 2
    assert post(client, third, app_signed(third, new, event_id="wh_3")).status_code == 202
    assert jwks_requests(benchling) == 2  # the new key is cached now
    retired = post(client, third, app_signed(third, old, event_id="wh_4"))
    assert retired.status_code == 401  # the old key is no longer published
    assert inbox.pending() == 3


def test_keys_are_fetched_again_once_they_are_an_hour_old(
    client: TestClient, benchling: HTTPServer, clock: Clock
) -> None:
    key = new_key()
    serve(benchling, jwks_of(key))
    body = app_event()

    assert post(client, body, app_signed(body, key, event_id="wh_1")).status_code == 202
    clock.advance(3599)
    assert post(client, body, app_signed(body, key, event_id="wh_2")).status_code == 202
    assert jwks_requests(benchling) == 1
    clock.advance(2)
    assert post(client, body, app_signed(body, key, event_id="wh_3")).status_code == 202
    assert jwks_requests(benchling) == 2


def test_while_the_jwks_endpoint_is_down_events_are_answered_503_and_kept_once_it_is_back(
    client: TestClient, inbox: SqliteInbox, benchling: HTTPServer, clock: Clock
) -> None:
    key = new_key()
    serve(benchling, jwks_of(key))
    body = app_event()
    benchling.stop()

    down = post(client, body, app_signed(body, key))

    assert down.status_code == 503 and "retry later" in down.json()["reason"]
    assert inbox.pending() == 0

    benchling.start()
    again_at_once = post(client, body, app_signed(body, key))
    assert again_at_once.status_code == 503 and jwks_requests(benchling) == 0  # not asked again within the minute
    clock.advance(REFETCH_SECONDS)
    back = post(client, body, app_signed(body, key))

    assert back.status_code == 202 and inbox.pending() == 1
    assert jwks_requests(benchling) == 1


def test_a_jwks_answering_errors_or_holding_no_p256_key_gives_503(
    client: TestClient, inbox: SqliteInbox, benchling: HTTPServer, clock: Clock
) -> None:
    key = new_key()
    body = app_event()
    benchling.expect_request(JWKS_PATH).respond_with_data("upstream broke", status=502)

    assert post(client, body, app_signed(body, key)).status_code == 503
    assert jwks_requests(benchling) == 2  # the client's two attempts

    clock.advance(REFETCH_SECONDS)
    serve(benchling, jwks_of(ec.generate_private_key(ec.SECP384R1()), rsa.generate_private_key(65537, 2048)))
    response = post(client, body, app_signed(body, key))

    assert response.status_code == 503 and "P-256" in response.json()["reason"]
    assert inbox.pending() == 0


def test_keys_of_other_curves_in_the_jwks_are_ignored(
    client: TestClient, inbox: SqliteInbox, benchling: HTTPServer
) -> None:
    good, p384 = new_key(), ec.generate_private_key(ec.SECP384R1())
    serve(benchling, jwks_of(p384, rsa.generate_private_key(65537, 2048), good))
    body = app_event()
    timestamp = str(int(datetime.now(UTC).timestamp()))
    der = p384.sign(f"wh_9.{timestamp}.".encode() + body, ec.ECDSA(hashes.SHA256()))
    by_p384 = {
        "webhook-id": "wh_9",
        "webhook-timestamp": timestamp,
        "webhook-signature": f"v1bder,{base64.b64encode(der).decode()}",
    }

    assert post(client, body, by_p384).status_code == 401
    assert post(client, body, app_signed(body, good)).status_code == 202
    assert inbox.pending() == 1


def test_a_burst_of_bad_signatures_makes_benchling_serve_at_most_one_refetch_a_minute(
    client: TestClient, inbox: SqliteInbox, benchling: HTTPServer, clock: Clock
) -> None:
    key, forger = new_key(), new_key()
    serve(benchling, jwks_of(key))
    body = app_event()
    assert post(client, body, app_signed(body, key, event_id="wh_ok")).status_code == 202
    clock.advance(REFETCH_SECONDS)

    first_burst = {post(client, body, app_signed(body, forger, event_id=f"wh_{n}")).status_code for n in range(20)}
    after_first = jwks_requests(benchling)
    clock.advance(REFETCH_SECONDS)
    second_burst = {post(client, body, app_signed(body, forger, event_id=f"wh_x{n}")).status_code for n in range(20)}

    assert first_burst == second_burst == {401}
    assert after_first == 2  # the first fetch and a single refetch for the whole burst
    assert jwks_requests(benchling) == 3  # one more refetch for the next minute's burst
    assert inbox.pending() == 1


def test_a_source_with_a_secret_and_an_app_accepts_either_and_hmac_never_waits_on_benchling(
    client: TestClient, inbox: SqliteInbox, benchling: HTTPServer
) -> None:
    key = new_key()
    serve(benchling, jwks_of(key))
    hmac_body, app_body = app_event("etr_Hmac"), app_event("etr_App")
    now = datetime.now(UTC)
    hmac_signed = {
        "webhook-id": "wh_h",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SECRET).sign("wh_h", now, hmac_body.decode()),
    }

    assert post(client, hmac_body, hmac_signed, "both").status_code == 202
    assert jwks_requests(benchling) == 0
    assert post(client, app_body, app_signed(app_body, key, event_id="wh_a"), "both").status_code == 202
    assert post(client, app_body, app_signed(app_body, new_key(), event_id="wh_b"), "both").status_code == 401
    assert sorted(m.event.entry_id for m in inbox.receive(max_messages=10, visibility_seconds=60)) == [
        "etr_App",
        "etr_Hmac",
    ]


def test_app_lifecycle_messages_are_accepted_and_ignored_and_entry_ids_read_from_either_field(
    client: TestClient, inbox: SqliteInbox, benchling: HTTPServer
) -> None:
    key = new_key()
    serve(benchling, jwks_of(key))
    installed = json.dumps({"version": "2.0", "appDefinition": {"id": APP}, "message": {"type": "v2.app.installed"}})
    by_entry_id = json.dumps({"message": {"type": "v2.entry.updated.fields", "id": "evt_2", "entryId": "etr_Q7"}})

    ignored = post(client, installed.encode(), app_signed(installed.encode(), key, event_id="wh_1"))
    kept = post(client, by_entry_id.encode(), app_signed(by_entry_id.encode(), key, event_id="wh_2"))

    assert (ignored.status_code, ignored.json()["events"]) == (202, 0)
    assert (kept.status_code, kept.json()["events"]) == (202, 1)
    assert [m.event.entry_id for m in inbox.receive(max_messages=10, visibility_seconds=60)] == ["etr_Q7"]


def test_the_configured_api_checks_app_signatures_against_the_configured_jwks_url(
    tmp_path: Path, inbox: SqliteInbox, benchling: HTTPServer
) -> None:
    key = new_key()
    serve(benchling, jwks_of(key))
    settings = Settings.from_env(
        {
            "LABMESH_HOME": str(tmp_path),
            "LABMESH_ELN": "benchling",
            "LABMESH_BENCHLING_URL": "https://acme.benchling.com",
            "LABMESH_BENCHLING_API_KEY": "sk_unused",
            "LABMESH_WEBHOOK_BENCHLING_BENCHLING_APP_DEFINITION_ID": APP,
            "LABMESH_BENCHLING_JWKS_URL": benchling.url_for("/api/v1/apps/{app_definition_id}/jwks"),
        }
    )
    client = TestClient(create_app_from_settings(settings, inbox))
    body = app_event()

    assert post(client, body, app_signed(body, new_key(), event_id="wh_bad")).status_code == 401
    assert post(client, body, app_signed(body, key, event_id="wh_good")).status_code == 202
    assert inbox.pending() == 1


def test_requests_arriving_together_on_a_cold_cache_wait_for_one_fetch(benchling: HTTPServer, jwks: JwksCache) -> None:
    key = new_key()
    document = json.dumps(jwks_of(key))

    def slow_jwks(request: Request) -> Response:
        time.sleep(0.3)  # long enough for every thread to be waiting
        return Response(document, content_type="application/json")

    benchling.expect_request(JWKS_PATH).respond_with_handler(slow_jwks)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: jwks.keys(APP), range(8)))

    assert jwks_requests(benchling) == 1
    assert all(result == (key.public_key(),) for result in results)
