"""The README's webhook setup, followed to the letter, brings every pushed experiment in.

Contract: with the variables the README's "Pushed ELN events" section exports
(a LIMS source on the default folder ELN) and the path it tells the sender to
post to, `labmesh api` as configured accepts signed events, and `eln_sensor`
reads every one of them and registers its experiment. A source the running
ELN cannot read (Benchling's envelope on the folder ELN) stops the configured
app from being made, naming the variable to change.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from labmesh_dagster.api.app import create_app_from_settings
from labmesh_dagster.connectors.eln.base import ElnPoll
from labmesh_dagster.connectors.eln.folder import FolderEln
from labmesh_dagster.connectors.eln.inbox import SqliteInbox
from labmesh_dagster.settings import SettingsError
from labmesh_dagster_tests.conftest import Lab, make_settings

README = Path(__file__).resolve().parents[2] / "README.md"
EXPERIMENTS = ("EXP-101", "EXP-102", "EXP-103")


def readme_setup() -> tuple[dict[str, str], str]:
    """The variables the README's webhook section exports, and the path it points the sender at."""
    section = README.read_text(encoding="utf-8").split("## Pushed ELN events", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    exports = dict(re.findall(r"^export (LABMESH_\w+)=(\S+)", block, flags=re.MULTILINE))
    [path] = re.findall(r"https://<your host>(/eln/events/\w+)", block)
    return exports, path


@pytest.fixture
def lab(tmp_path: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> Lab:
    exports, _ = readme_setup()
    # Only the pushed events can bring the experiments in: the folder's own poll is made to find nothing.
    monkeypatch.setattr(FolderEln, "poll", lambda self, cursor: ElnPoll(cursor=cursor, unchanged=True))
    return Lab(make_settings(tmp_path / "home", **exports), instance)


def test_every_event_sent_as_the_readme_says_registers_its_experiment(lab: Lab) -> None:
    # Seen: each event was answered 202, then acknowledged and dropped by the sensor, which read only
    # events named after its connector ("folder"): 23 of 23 were lost.
    exports, path = readme_setup()
    [secret] = exports["LABMESH_WEBHOOK_LIMS_SECRETS"].split(",")
    for experiment_id in EXPERIMENTS:
        lab.write_record(f"{experiment_id}.yaml", {"id": experiment_id, "title": "Pushed", "samples": ["S1"]})
    client = TestClient(create_app_from_settings(lab.settings, SqliteInbox(lab.settings.inbox_path)))

    for number, experiment_id in enumerate(EXPERIMENTS):
        body = json.dumps({"entry_id": experiment_id, "kind": "changed", "occurred_at": "2026-11-29T10:00:00Z"})
        now = datetime.now(UTC)
        headers = {
            "webhook-id": f"msg_{number}",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(f"msg_{number}", now, body),
        }
        assert client.post(path, content=body, headers=headers).status_code == 202
    runs = lab.run_sensor("eln_sensor")
    lab.run_sensor("eln_sensor")  # acknowledges what the first tick acted on

    assert [run.success for run in runs] == [True] * len(EXPERIMENTS)
    assert all(lab.catalog.get_experiment(experiment_id) is not None for experiment_id in EXPERIMENTS)
    assert SqliteInbox(lab.settings.inbox_path).pending() == 0


def test_a_source_the_running_eln_cannot_read_stops_the_api_at_startup(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", LABMESH_WEBHOOK_BENCHLING_SECRETS="whsec_b")  # the folder ELN

    with pytest.raises(SettingsError, match="folder ELN cannot read them.*LABMESH_WEBHOOK_BENCHLING_PAYLOAD"):
        create_app_from_settings(settings, SqliteInbox(settings.inbox_path))
