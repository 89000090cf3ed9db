"""`eln_sensor` on eLabFTW and Benchling: a tick asks the ELN about what changed, not about every entry it holds.

Pinned by counting the requests the fake servers receive (never by timing),
for a lab of 20 entries and one of 70 (a listing pages by 50, so reading the
larger lab would take two pages): once the sensor has caught up, an
unchanged tick is one request; a new entry, and three edited ones, add the
reads of those entries and nothing else, the same at both sizes. With
eLabFTW that is the ``lastchange`` listing's first page and each changed
entry; with Benchling the event feed after the cursor and one bulk read of the
entries it names, plus one for the webhooks in the inbox.
`benchmarks/eln_api_scale.py` measures the same ticks at 100,000 entries.

The fake eLabFTW serves that listing from its last-change order: it is pinned
here to be the order the full sort gives, ties and archived or deleted entries included.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import httpx
import pytest
from pytest_httpserver import HTTPServer

from labmesh_dagster.connectors.eln.base import ElnEvent
from labmesh_dagster.defs.resources import (
    BenchlingElnResource,
    ElabFtwElnResource,
    ElnResource,
    RegistryCatalogResource,
    SqliteInboxResource,
)
from labmesh_dagster.defs.sensors.eln import eln_sensor
from labmesh_dagster.ports import open_sqlite_inbox
from labmesh_dagster_tests.eln.benchling_server import API_KEY as BENCHLING_KEY
from labmesh_dagster_tests.eln.benchling_server import FakeBenchling, text_field
from labmesh_dagster_tests.eln.elabftw_server import API_KEY as ELABFTW_KEY
from labmesh_dagster_tests.eln.elabftw_server import FakeElabFtw
from labmesh_dagster_tests.eln.fake_http import API_ROOT, FakeHttpService

SIZES = (20, 70)


class Sensor:
    """`eln_sensor` evaluated by hand against one ELN, with its cursor, an empty catalog and an inbox."""

    def __init__(self, eln: ElnResource, fake: FakeHttpService, root: Path, instance: dg.DagsterInstance) -> None:
        self.eln = eln
        self.fake = fake
        self.catalog = RegistryCatalogResource(path=str(root / "catalog.sqlite"))
        self.inbox = SqliteInboxResource(path=str(root / "inbox.sqlite"))
        self.instance = instance
        self.cursor: str | None = None

    def tick(self) -> tuple[dg.SensorResult, list[str]]:
        """The tick's result, and the requests the ELN received meanwhile (method, path and the resume point)."""
        before = len(self.fake.requests)
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor)
        result = eln_sensor(context, eln=self.eln, catalog=self.catalog, eln_inbox=self.inbox)
        self.cursor = result.cursor
        asked = []
        for request in self.fake.requests[before:]:
            offset = [f"offset={request.query['offset'][-1]}"] if "offset" in request.query else []
            asked.append(" ".join([request.method, request.path[len(API_ROOT) :], *offset]))
        return result, asked

    def settle(self) -> None:
        """Ticks until one finds nothing changed: the first reads the whole ELN."""
        for _ in range(10):
            result, _ = self.tick()
            if "no ELN record changed" in str(result.skip_reason):
                return
        raise AssertionError("the sensor did not settle")

    def push(self, entry_id: str, event_id: str) -> None:
        event = ElnEvent("benchling", event_id, entry_id, "changed", "2026-12-06T03:00:00Z")
        assert open_sqlite_inbox(self.inbox.path).put(event)


def requested(result: dg.SensorResult) -> list[str]:
    return sorted(str(request.partition_key) for request in result.run_requests or [])


@pytest.mark.parametrize("size", SIZES)
def test_an_elabftw_tick_reads_the_first_page_and_the_changed_entries(
    http_server: HTTPServer, instance: dg.DagsterInstance, tmp_path: Path, size: int
) -> None:
    lab = FakeElabFtw(http_server)
    for number in range(size):
        lab.tick(60)
        lab.add_experiment(f"Run {number}", extra_fields={"Experiment ID": {"type": "text", "value": f"EXP-{number}"}})
    resource = ElabFtwElnResource(
        base_url=lab.url, api_key=ELABFTW_KEY, mapping_path=None, scope=2, verify_tls=False, timeout_seconds=5.0
    )
    sensor = Sensor(resource, lab, tmp_path, instance)
    sensor.settle()

    unchanged, asked = sensor.tick()
    assert "no ELN record changed" in str(unchanged.skip_reason)
    assert asked == ["GET /experiments offset=0"]

    lab.tick()
    new = lab.add_experiment("A new run", extra_fields={"Experiment ID": {"type": "text", "value": "EXP-NEW"}})
    added, asked = sensor.tick()
    assert requested(added) == ["EXP-NEW"]
    assert asked == ["GET /experiments offset=0", f"GET /experiments/{new}"]

    lab.tick()
    for entry_id in (3, 10, 17):
        lab.set_extra(entry_id, "Samples", "S1, S2")
    edited, asked = sensor.tick()
    assert requested(edited) == ["EXP-16", "EXP-2", "EXP-9"]
    assert asked == ["GET /experiments offset=0", "GET /experiments/3", "GET /experiments/10", "GET /experiments/17"]


@pytest.mark.parametrize("size", SIZES)
def test_a_benchling_tick_reads_the_events_after_its_cursor_and_the_entries_they_name(
    http_server: HTTPServer, instance: dg.DagsterInstance, tmp_path: Path, size: int
) -> None:
    lab = FakeBenchling(http_server, check_every_event=False)
    for number in range(size):
        lab.add_entry(f"Run {number}", {"Experiment ID": text_field(f"EXP-{number}")})
    resource = BenchlingElnResource(
        base_url=lab.url,
        api_key=BENCHLING_KEY,
        location_field="labmesh data location",
        schema_id=None,
        mapping_path=None,
        timeout_seconds=5.0,
    )
    sensor = Sensor(resource, lab, tmp_path, instance)
    sensor.settle()

    unchanged, asked = sensor.tick()
    assert "no ELN record changed" in str(unchanged.skip_reason)
    assert asked == ["GET /events"]

    new = lab.add_entry("A new run", {"Experiment ID": text_field("EXP-NEW")})
    sensor.push(new, "webhook-new")
    added, asked = sensor.tick()
    assert requested(added) == ["EXP-NEW"]
    assert asked == ["GET /entries:bulk-get", "GET /events", "GET /entries:bulk-get"]

    for number in (2, 9, 16):
        entry_id = f"etr_{number + 1:06d}"
        lab.set_field(entry_id, "Samples", "S1, S2")
        sensor.push(entry_id, f"webhook-{number}")
    edited, asked = sensor.tick()
    assert requested(edited) == ["EXP-16", "EXP-2", "EXP-9"]
    assert asked == ["GET /entries:bulk-get", "GET /events", "GET /entries:bulk-get"]


def test_the_fake_elabftw_lists_by_last_change_in_the_order_a_full_sort_gives(http_server: HTTPServer) -> None:
    lab = FakeElabFtw(http_server)
    for number in range(12):
        lab.add_experiment(f"Run {number}")
        if number % 3 == 2:
            lab.tick()  # three entries a second: ties, in id order
    lab.tick()
    for entry_id in (11, 2, 7):
        lab.set_extra(entry_id, "Samples", "S1")  # three edits within one second
    lab.archive(5)
    lab.tick()
    lab.delete(9)
    lab.edit(1, title="Run 1, renamed")

    for states in ("1", "1,2", "1,2,3"):
        # The full sort the fake did for every listing: by id, then newest change first (a stable sort keeps ties).
        expected = sorted((e for e in lab.experiments.values() if str(e["state"]) in states), key=lambda e: e["id"])
        expected.sort(key=lambda entity: entity["modified_at"], reverse=True)
        for offset, limit in ((0, 50), (0, 4), (4, 4), (9, 4), (40, 4)):
            listed = httpx.get(
                f"{lab.url}{API_ROOT}/experiments",
                params={"order": "lastchange", "sort": "desc", "state": states, "offset": offset, "limit": limit},
                headers={"Authorization": ELABFTW_KEY},
            )
            ids = [entity["id"] for entity in listed.json()]
            assert ids == [entity["id"] for entity in expected[offset : offset + limit]], (states, offset, limit)
