"""A Benchling entry announced by a signed webhook becomes a registered experiment, told where its data lives.

Against a local HTTP server that behaves like Benchling's API v2: the webhook
(delivered three times) is accepted once; `eln_sensor` reads the entry it
names, adds its partition and materializes `experiment`; the locations are
written back into the entry's field (`fields`, as Benchling's update takes)
and read back by the check; archiving the entry marks the experiment archived.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook

from labmesh_dagster.api.app import create_app
from labmesh_dagster.api.webhooks import WebhookSource
from labmesh_dagster.connectors.eln.inbox import SqliteInbox
from labmesh_dagster.core.keys import Zone
from labmesh_dagster_tests.conftest import Lab, make_settings
from labmesh_dagster_tests.eln.benchling_server import API_KEY, FakeBenchling, text_field

SECRET = "whsec_" + base64.b64encode(b"benchling-app-secret-0123456789a").decode()


@pytest.fixture
def benchling() -> Iterator[FakeBenchling]:
    server = HTTPServer(threaded=True)
    server.start()
    yield FakeBenchling(server)
    server.clear()
    server.stop()


@pytest.fixture
def lab(tmp_path: Path, instance: dg.DagsterInstance, benchling: FakeBenchling) -> Lab:
    settings = make_settings(
        tmp_path / "home",
        LABMESH_ELN="benchling",
        LABMESH_BENCHLING_URL=benchling.url,
        LABMESH_BENCHLING_API_KEY=API_KEY,
    )
    return Lab(settings, instance)


def webhook(lab: Lab, entry_id: str, kind: str, event_id: str, times: int = 1) -> list[int]:
    app = create_app(
        SqliteInbox(lab.settings.inbox_path), {"benchling": WebhookSource("benchling", (SECRET,), "benchling")}
    )
    body = json.dumps({"message": {"type": kind, "resourceId": entry_id, "timestamp": datetime.now(UTC).isoformat()}})
    statuses = []
    with TestClient(app) as client:
        for _ in range(times):
            now = datetime.now(UTC)
            headers = {
                "webhook-id": event_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": Webhook(SECRET).sign(event_id, now, body),
            }
            statuses.append(client.post("/eln/events/benchling", content=body, headers=headers).status_code)
    return statuses


def test_a_webhook_for_a_new_entry_registers_it_once_and_writes_the_locations_back(
    lab: Lab, benchling: FakeBenchling
) -> None:
    assert lab.run_sensor("eln_sensor") == []  # the first poll: nothing in Benchling yet
    entry = benchling.add_entry(
        "Liver RNA-seq, batch 4",
        {"Experiment ID": text_field("EXP-400"), "Samples": text_field("LIV-41"), "Instrument": text_field("NovaSeq")},
    )

    assert webhook(lab, entry, "v2.entry.created", "evt_1", times=3) == [202, 409, 409]
    runs = lab.run_sensor("eln_sensor") + lab.run_sensor("eln_sensor")

    assert [run.success for run in runs] == [True] and lab.partitions() == ["EXP-400"]
    assert "raw: " + lab.store.location(Zone.RAW, "EXP-400") in benchling.field_value(entry, "labmesh data location")
    [check] = [c for c in runs[0].get_asset_check_evaluations() if c.check_name == "eln_knows_data_location"]
    assert check.passed
    assert not any("customFields" in json.dumps(r.body) for r in benchling.requests_to("PATCH", "/api/v2/entries"))


def test_an_archived_entry_marks_the_experiment_archived(lab: Lab, benchling: FakeBenchling) -> None:
    lab.run_sensor("eln_sensor")
    entry = benchling.add_entry("Plate assay", {"Experiment ID": text_field("EXP-401")})
    webhook(lab, entry, "v2.entry.created", "evt_1")
    lab.run_sensor("eln_sensor")

    benchling.archive(entry)
    webhook(lab, entry, "v2.entry.archived", "evt_2")
    lab.run_sensor("eln_sensor")

    assert [summary.archived for summary in lab.catalog.summaries()] == [True]
