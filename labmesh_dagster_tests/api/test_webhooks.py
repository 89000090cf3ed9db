"""`POST /eln/events/{source}`: every bad request refused with a clear 4xx before anything is written.

Contract: a correctly signed event (Standard Webhooks, any of the source's
secrets, any of several ``v1,`` signatures) is stored in the inbox, addressed
to the ELN that reads it, and answered 202; the same event id again is 409 and
writes nothing; a bad signature, a stale or future timestamp, missing headers,
an over-long ``webhook-id``, a body that is not JSON, an event without an
entry, an entry id the reading ELN cannot have (per connector: experiment id
rules for the folder, an integer for eLabFTW, ``etr_...`` for Benchling) and
an unknown source are each refused with their own status and reason, and leave
the inbox empty. Benchling's webhooks are read as Benchling's webhook schema
has them, their time from ``createdAt``.
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
from labmesh_dagster_tests.eln.benchling_spec import entry_webhook, webhook_envelope

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
        "lims": WebhookSource("lims", (SECRET, OLD_SECRET), eln="folder"),
        "elab-relay": WebhookSource("elab-relay", (SECRET,), eln="elabftw"),
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
    # Kept for the folder ELN, which reads it; the sender's name keeps its ids apart from other senders'.
    assert (message.event.source, message.event.event_id, message.event.entry_id) == ("folder", "lims:msg_1", "EXP-7")


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
        ("over-long webhook-id", body, signed(body, event_id="m" * 257), "lims", 400, "webhook-id"),
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


def test_benchling_entry_events_are_kept_with_their_time_and_its_other_events_ignored(
    client: TestClient, inbox: SqliteInbox
) -> None:
    # Seen: the event time was read from "timestamp", which Benchling's messages do not carry; it was kept empty.
    created = entry_webhook("v2.entry.created", "etr_A1b2C3", event_id="evt_1")
    updated = entry_webhook("v2.entry.updated.fields", "etr_Z9", event_id="evt_2")
    request = {"type": "v2.request.created", "id": "evt_3", "resourceId": "req_1", "deprecated": False}

    for message in (created, updated, request):
        body = json.dumps(webhook_envelope(message)).encode()
        assert post(client, body, signed(body, event_id=message["id"]), "benchling").status_code == 202

    kept = [(m.event.entry_id, m.event.occurred_at) for m in inbox.receive(max_messages=10, visibility_seconds=60)]
    assert kept == [("etr_A1b2C3", created["createdAt"]), ("etr_Z9", updated["createdAt"])]


# Seen: each of the first four was answered 202 and kept in the inbox.
UNREADABLE_ENTRY_IDS = [
    ("lims", "../../etc", "an experiment id"),
    ("lims", "EXP 1", "an experiment id"),
    ("lims", "EXP\x001", "an experiment id"),
    ("lims", "E" * 10_000, "an experiment id"),
    ("elab-relay", "EXP-7", "an eLabFTW entry id"),
    ("elab-relay", "0", "an eLabFTW entry id"),
    ("elab-relay", "\u00b2", "an eLabFTW entry id"),  # a superscript two: a digit to str.isdigit, not to int()
    ("elab-relay", "9" * 10_000, "an eLabFTW entry id"),
    ("benchling", "etr_x/../../../users", "a Benchling entry id"),
    ("benchling", "42", "a Benchling entry id"),
]


@pytest.mark.parametrize(("source", "entry_id", "rule"), UNREADABLE_ENTRY_IDS, ids=lambda value: str(value)[:24])
def test_an_entry_id_the_reading_eln_cannot_have_is_refused(
    client: TestClient, inbox: SqliteInbox, source: str, entry_id: str, rule: str
) -> None:
    if source == "benchling":
        payload = webhook_envelope(entry_webhook("v2.entry.updated.fields", entry_id))
    else:
        payload = {**EVENT, "entry_id": entry_id}
    body = json.dumps(payload).encode()

    response = post(client, body, signed(body), source)

    assert response.status_code == 422 and rule in response.json()["reason"]
    assert len(response.json()["reason"]) < 300  # the id is not echoed whole
    assert inbox.pending() == 0


def test_entry_ids_each_eln_can_have_are_kept(client: TestClient, inbox: SqliteInbox) -> None:
    for number, (source, entry_id) in enumerate([("lims", "EXP-2026.7_a"), ("elab-relay", "1234")]):
        body = json.dumps({**EVENT, "entry_id": entry_id}).encode()
        assert post(client, body, signed(body, event_id=f"msg_{number}"), source).status_code == 202
    body = json.dumps(webhook_envelope(entry_webhook("v2.entry.created", "etr_tv7m7B78"))).encode()
    assert post(client, body, signed(body, event_id="msg_b"), "benchling").status_code == 202

    kept = [(m.event.source, m.event.entry_id) for m in inbox.receive(max_messages=10, visibility_seconds=60)]
    assert kept == [("folder", "EXP-2026.7_a"), ("elabftw", "1234"), ("benchling", "etr_tv7m7B78")]


def test_a_webhook_id_of_the_longest_allowed_length_is_kept(client: TestClient, inbox: SqliteInbox) -> None:
    body = json.dumps(EVENT).encode()
    assert post(client, body, signed(body, event_id="m" * 256)).status_code == 202


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
        WebhookSource("lims", (), eln="folder")
    with pytest.raises(ValueError, match="benchling payload shape"):
        WebhookSource("lims", (), "labmesh", benchling_app_definition_id="appdef_1", eln="benchling")


def test_a_source_no_eln_reads_cannot_be_configured() -> None:
    with pytest.raises(ValueError, match="no ELN connector 'lims' reads its events"):
        WebhookSource("lims", (SECRET,))
    with pytest.raises(ValueError, match="the folder ELN cannot read them"):
        WebhookSource("benchling", (SECRET,), "benchling", eln="folder")
