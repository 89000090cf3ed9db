"""labmesh's own state on PostgreSQL: a demo experiment's pushed ELN event, a record that fails, and the lineage.

Contract: with ``LABMESH_DATABASE_URL`` set, the webhook keeps a pushed ELN
event in PostgreSQL, `eln_sensor` takes it from there, registers the
experiment and acknowledges it; a record that cannot be read is what
`labmesh status` lists, from PostgreSQL; the experiment is registered in the
PostgreSQL catalog and its lineage is read back from PostgreSQL; and no SQLite
file holds any of it.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from labmesh_dagster.api.app import create_app
from labmesh_dagster.api.webhooks import WebhookSource
from labmesh_dagster.connectors.catalog.postgres import PostgresCatalog
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.lineage.sqlite import SqliteLineageLog
from labmesh_dagster.demo import RECORDS
from labmesh_dagster_tests.conftest import Lab, make_settings

SECRET = "whsec_" + base64.b64encode(b"lims-shared-secret-0123456789abc").decode()
DEMO = RECORDS[0]


def push(lab: Lab, entry_id: str) -> int:
    """What the LIMS does: post a signed event naming the entry that changed to `labmesh api`."""
    source = lab.ports.eln().name
    app = create_app(lab.ports.inbox(), {source: WebhookSource(source, (SECRET,))})
    body = json.dumps({"entry_id": entry_id, "kind": "changed", "occurred_at": "2026-11-02T10:00:00Z"})
    now = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SECRET).sign("msg_1", now, body),
    }
    with TestClient(app) as client:
        return client.post(f"/eln/events/{source}", content=body, headers=headers).status_code


@pytest.mark.slow  # a Dagster run in process: seconds
def test_a_demo_experiment_pushed_registered_and_traced_keeps_its_state_in_postgres(
    tmp_path: Path, instance: dg.DagsterInstance, postgres_url: str
) -> None:
    lab = Lab(make_settings(tmp_path / "home", LABMESH_DATABASE_URL=postgres_url), instance)
    lab.write_record(f"{DEMO['id']}.yaml", DEMO)
    broken = lab.write_record("broken.yaml", "id: [unclosed")

    assert push(lab, DEMO["id"]) == 202 and lab.ports.inbox().pending() == 1
    [registration] = lab.run_sensor("eln_sensor")
    lab.run_sensor("eln_sensor")  # acknowledges what the last tick acted on

    assert registration.success and lab.catalog.get_experiment(DEMO["id"]) is not None
    assert lab.ports.inbox().pending() == 0
    assert [rejection.source for rejection in lab.ports.eln_rejections().standing()] == [str(broken)]
    lineage = lab.ports.lineage_log().events(DEMO["id"])
    assert [(event["job"]["name"], event["eventType"]) for event in lineage] == [
        ("experiment", "START"),
        ("experiment", "COMPLETE"),
    ]
    assert not lab.settings.inbox_path.exists()
    assert SqliteLineageLog(lab.settings.catalog_path).count() == 0
    assert isinstance(lab.catalog, PostgresCatalog) and lab.catalog.summaries()
    assert SqliteCatalog(lab.settings.catalog_path).get_experiment(DEMO["id"]) is None
