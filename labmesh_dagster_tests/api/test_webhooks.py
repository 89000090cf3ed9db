"""`POST /eln/events/{source}`: every bad request refused with a clear 4xx before anything is written.

Contract: a correctly signed event (Standard Webhooks, any of the source's
secrets, any of several ``v1,`` signatures) is stored in the inbox and answered
202; the same event id again is 409 and writes nothing; a bad signature, a
stale or future timestamp, missing headers, a body that is not JSON, an event
without an entry, an experiment id that fails validation and an unknown source
are each refused with their own status and reason, and leave the inbox empty.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from labmesh_dagster.api.app import create_app
from labmesh_dagster.api.webhooks import WebhookSource
from labmesh_dagster.connectors.eln.inbox import SqliteInbox
from labmesh_dagster_tests.conftest import ShiftedClock

SECRET = "whsec_" + base64.b64encode(b"lims-shared-secret-0123456789abc").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"the-secret-before-rotation-00000").decode()
EVENT = {"entry_id": "EXP-7", "kind": "changed", "occurred_at": "2026-11-29T10:00:00Z"}


def signed(body: bytes, *, event_id: str = "msg_1", secret: str = SECRET, at: datetime | None = None) -> dict[str, str]:
    moment = at or datetime.now(UTC)
    signature = Webhook(secret).sign(event_id, moment, body.decode())
    return {"webhook-id": event_id, "webhook-timestamp": str(int(moment.timestamp())), "webhook-signature": signature}


@pytest.fixture
def inbox(tmp_path: Path) -> SqliteInbox:
    return SqliteInbox(tmp_path / "inbox.sqlite")


@pytest.fixture
def client(inbox: SqliteInbox) -> TestClient:
    sources = {
        "lims": WebhookSource("lims", (SECRET, OLD_SECRET)),
        "benchling": WebhookSource("benchling", (SECRET,), payload="benchling"),
    }
    return TestClient(create_app(inbox, sources))


def post(client: TestClient, body: bytes, headers: dict[str, str], source: str = "lims"):  # type: ignore[no-untyped-def]
    return client.post(f"/eln/events/{source}", content=body, headers={**headers, "content-type": "application/json"})


def test_a_signed_event_is_kept_and_answered_at_once(client: TestClient, inbox: SqliteInbox) -> None:
    body = json.dumps(EVENT).encode()

    response = post(client, body, signed(body))

    assert response.status_code == 202 and response.json() == {"accepted": True, "events": 1}
    [message] = inbox.receive(max_messages=10, visibility_seconds=60)
    assert (message.event.source, message.event.event_id, message.event.entry_id) == ("lims", "msg_1", "EXP-7")


def test_an_event_delivered_three_times_is_kept_once(client: TestClient, inbox: SqliteInbox) -> None:
    body = json.dumps(EVENT).encode()

    statuses = [post(client, body, signed(body)).status_code for _ in range(3)]

    assert statuses == [202, 409, 409] and inbox.pending() == 1


def test_events_signed_with_the_previous_key_or_among_several_signatures_pass(client: TestClient) -> None:
    body = json.dumps(EVENT).encode()
    old = signed(body, event_id="msg_2", secret=OLD_SECRET)
    several = signed(body, event_id="msg_3")
    several["webhook-signature"] = "v1,bm90LXRoZS1zaWduYXR1cmU= " + several["webhook-signature"]

    assert post(client, body, old).status_code == 202
    assert post(client, body, several).status_code == 202


def bad_requests() -> list[tuple[str, bytes, dict[str, str], str, int, str]]:
    body = json.dumps(EVENT).encode()
    tampered = signed(body)
    wrong_key = signed(body, secret="whsec_" + base64.b64encode(b"somebody-else-entirely-000000000").decode())
    stale = signed(body, at=datetime.now(UTC) - timedelta(minutes=6))
    future = signed(body, at=datetime.now(UTC) + timedelta(minutes=6))
    not_json = b"{not json"
    no_entry = json.dumps({"kind": "changed", "occurred_at": "2026-11-29T10:00:00Z"}).encode()
    bad_id = json.dumps({**EVENT, "experiment_id": "../etc/passwd"}).encode()
    return [
        ("tampered body", body.replace(b"EXP-7", b"EXP-8"), tampered, "lims", 401, "signature"),
        ("wrong key", body, wrong_key, "lims", 401, "signature"),
        ("stale timestamp", body, stale, "lims", 401, "5 minutes"),
        ("future timestamp", body, future, "lims", 401, "5 minutes"),
        ("missing headers", body, {}, "lims", 401, "webhook-id"),
        ("garbled signature", body, {**signed(body), "webhook-signature": "nonsense"}, "lims", 401, "signature"),
        ("not JSON", not_json, signed(not_json), "lims", 400, "not JSON"),
        ("no entry", no_entry, signed(no_entry), "lims", 422, "entry_id"),
        ("invalid experiment id", bad_id, signed(bad_id), "lims", 422, "experiment id"),
        ("unknown source", body, signed(body), "labarchives", 404, "no webhook source"),
    ]


@pytest.mark.parametrize("case", [case for case, *_ in bad_requests()])
def test_bad_requests_are_refused_with_a_clear_reason_and_nothing_written(
    client: TestClient, inbox: SqliteInbox, case: str
) -> None:
    # Signed now, not when the tests were collected: a signature is only good for five minutes.
    [(body, headers, source, status, reason)] = [request for name, *request in bad_requests() if name == case]

    response = post(client, body, headers, source)

    assert response.status_code == status, case
    assert response.json()["accepted"] is False and reason in response.json()["reason"]
    assert inbox.pending() == 0


def test_benchling_entry_events_are_kept_and_its_other_events_ignored(client: TestClient, inbox: SqliteInbox) -> None:
    entry = {
        "message": {"type": "v2.entry.updated.fields", "resourceId": "etr_A1b2C3", "timestamp": "2026-11-29T10:00:00Z"}
    }
    archived = {"message": {"type": "v2.entry.archived", "resourceId": "etr_Z9", "timestamp": "2026-11-29T11:00:00Z"}}
    request = {"message": {"type": "v2.request.created", "resourceId": "req_1"}}

    for number, payload in enumerate((entry, archived, request)):
        body = json.dumps(payload).encode()
        assert post(client, body, signed(body, event_id=f"evt_{number}"), "benchling").status_code == 202

    kept = [(m.event.entry_id, m.event.kind) for m in inbox.receive(max_messages=10, visibility_seconds=60)]
    assert kept == [("etr_A1b2C3", "changed"), ("etr_Z9", "archived")]


def test_the_inbox_hands_events_out_again_until_acknowledged(tmp_path: Path) -> None:
    from labmesh_dagster.connectors.eln.base import ElnEvent

    clock = ShiftedClock()
    inbox = SqliteInbox(tmp_path / "inbox.sqlite", clock=clock)
    inbox.put(ElnEvent("lims", "e1", "EXP-1", "changed", "2026-11-29T10:00:00Z"))
    [first] = inbox.receive(max_messages=10, visibility_seconds=30)
    clock.advance(31)
    [again] = inbox.receive(max_messages=10, visibility_seconds=60)
    assert inbox.receive(max_messages=10, visibility_seconds=60) == []

    inbox.acknowledge([again.receipt])

    assert first.event == again.event and inbox.pending() == 0
    assert not inbox.put(ElnEvent("lims", "e1", "EXP-1", "changed", "2026-11-29T10:00:00Z"))


def test_a_source_with_neither_a_secret_nor_a_benchling_app_cannot_be_configured() -> None:
    with pytest.raises(ValueError, match="needs a secret or a Benchling app definition id"):
        WebhookSource("lims", ())
    with pytest.raises(ValueError, match="benchling payload shape"):
        WebhookSource("lims", (), "labmesh", benchling_app_definition_id="appdef_1")
