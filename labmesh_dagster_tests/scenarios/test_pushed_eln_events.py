"""Experiments pushed by webhook: accepted once, registered once, and never lost to a crash.

Contract: a LIMS posts a signed event naming an experiment its export folder
now holds; `eln_sensor` takes it from the inbox and `experiment` is
materialized; the event delivered three times starts one run; a tick that
read the event but whose cursor was never saved (a crash before the run was
recorded) leaves the event to be handed out again, and the run happens then.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from labmesh_dagster.api.app import create_app
from labmesh_dagster.api.webhooks import WebhookSource
from labmesh_dagster.connectors.eln.base import ElnPoll
from labmesh_dagster.connectors.eln.folder import FolderEln
from labmesh_dagster.connectors.eln.inbox import SqliteInbox
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.steps.store_event_intake import EVENT_VISIBILITY_SECONDS
from labmesh_dagster_tests.conftest import Lab

SECRET = "whsec_" + base64.b64encode(b"lims-shared-secret-0123456789abc").decode()
RECORD = {"id": "EXP-7", "title": "Pushed", "samples": ["S1"], "modified": "2026-11-29T10:00:00Z"}


@pytest.fixture(autouse=True)
def poll_finds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the pushed events can bring the experiment in, so these tests see the event path alone."""
    monkeypatch.setattr(FolderEln, "poll", lambda self, cursor: ElnPoll(cursor=cursor, unchanged=True))


def deliver(lab: Lab, event_id: str = "msg_1", times: int = 1) -> list[int]:
    # The LIMS's export folder is the ELN; the folder connector's name is its webhook source.
    source = lab.resources["eln"].get_eln().name
    app = create_app(SqliteInbox(lab.settings.inbox_path), {source: WebhookSource(source, (SECRET,))})
    body = json.dumps({"entry_id": "EXP-7", "kind": "changed", "occurred_at": "2026-11-29T10:00:00Z"})
    statuses = []
    with TestClient(app) as client:
        for _ in range(times):
            now = datetime.now(UTC)
            headers = {
                "webhook-id": event_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": Webhook(SECRET).sign(event_id, now, body),
            }
            statuses.append(client.post(f"/eln/events/{source}", content=body, headers=headers).status_code)
    return statuses


def test_an_event_delivered_three_times_registers_the_experiment_once(lab: Lab) -> None:
    lab.write_record("exp7.yaml", RECORD)
    assert lab.run_sensor("eln_sensor") == []  # nothing pushed yet, and the poll finds nothing

    assert deliver(lab, times=3) == [202, 409, 409]
    runs = lab.run_sensor("eln_sensor") + lab.run_sensor("eln_sensor")

    assert [run.success for run in runs] == [True]
    assert lab.catalog.get_experiment("EXP-7") is not None
    assert SqliteInbox(lab.settings.inbox_path).pending() == 0


def test_a_tick_lost_in_a_crash_hands_its_events_out_again(lab: Lab) -> None:
    lab.write_record("exp7.yaml", RECORD)
    deliver(lab)
    before = dict(lab.cursors)

    lab.tick("eln_sensor")  # the tick read the event, then the daemon died: no run, cursor not saved
    lab.cursors = before
    lab.clock.advance(EVENT_VISIBILITY_SECONDS + 1)  # the event is handed out again once its visibility lapses
    [run] = lab.run_sensor("eln_sensor")

    assert run.success and lab.catalog.get_experiment("EXP-7") is not None
    lab.run_sensor("eln_sensor")  # acknowledges what the last tick acted on
    assert SqliteInbox(lab.settings.inbox_path).pending() == 0


def deliver_archive(lab: Lab, event_id: str) -> int:
    source = lab.resources["eln"].get_eln().name
    app = create_app(SqliteInbox(lab.settings.inbox_path), {source: WebhookSource(source, (SECRET,))})
    body = json.dumps({"entry_id": "EXP-7", "kind": "archived", "occurred_at": "2026-11-30T10:00:00Z"})
    now = datetime.now(UTC)
    headers = {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SECRET).sign(event_id, now, body),
    }
    with TestClient(app) as client:
        return client.post(f"/eln/events/{source}", content=body, headers=headers).status_code


def test_an_archived_experiment_is_marked_and_keeps_its_data(lab: Lab) -> None:
    lab.write_record("exp7.yaml", RECORD)
    deliver(lab)
    lab.run_sensor("eln_sensor")
    lab.land("EXP-7", "S1.fastq", b"@r\nACGT\n+\nIIII\n")
    lab.run_sensor("landing_sensor")

    assert deliver_archive(lab, "msg_archive") == 202
    assert lab.run_sensor("eln_sensor") == []

    [summary] = lab.catalog.summaries()
    assert summary.archived and summary.datasets == {"raw": 1}
    assert lab.catalog.get_dataset("EXP-7", "raw") is not None
    assert "EXP-7/S1.fastq" in lab.keys(Zone.RAW, "EXP-7")
