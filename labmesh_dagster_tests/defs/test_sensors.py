"""The sensors as functions: each is imported from its module and evaluated on a clock the test moves.

Contract: files of an experiment no record announced wait out the grace
period, however often the sensor looks, then go to quarantine, and the
cursor remembers their folder, not each file, until nothing is left there;
final files still being
written are left until they settle, then published under the run key of
their fingerprint; an ELN cursor saved before the inbox existed keeps its
poll cursor (nothing is polled twice) and is saved in the one format.
Nothing here sleeps: time passes when the test says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.defs.resources import (
    FolderElnResource,
    LandingPolicyResource,
    LocalStoreResource,
    RegistryCatalogResource,
    SqliteInboxResource,
    StoreEventsResource,
)
from labmesh_dagster.defs.sensors.eln import eln_sensor
from labmesh_dagster.defs.sensors.final import final_sensor
from labmesh_dagster.defs.sensors.landing import landing_sensor
from labmesh_dagster.ports import open_store
from labmesh_dagster.steps.final_zone import final_run_key
from labmesh_dagster.steps.landing import list_quarantine
from labmesh_dagster_tests.conftest import ShiftedClock

GRACE, SETTLE = 900, 10


class Place:
    """A lab's folders and the resources a sensor takes, built by hand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.clock = ShiftedClock()
        self.store = LocalStoreResource(root=str(root / "store"))
        self.catalog = RegistryCatalogResource(path=str(root / "catalog.sqlite"))
        self.policy = LandingPolicyResource(
            settle_seconds=SETTLE, unknown_experiment_grace_seconds=GRACE, retry_seconds=3600
        )
        self.objects = open_store(self.store.store_config())

    def put(self, zone: Zone, path: str, content: bytes = b"data\n") -> None:
        self.objects.put(ObjectKey(zone, path), content)

    def register(self, experiment_id: str) -> None:
        SqliteCatalog(self.root / "catalog.sqlite").upsert_experiment(ExperimentRecord(id=experiment_id, title="x"), {})


@pytest.fixture
def place(tmp_path: Path) -> Place:
    return Place(tmp_path)


def tick(
    sensor: Callable[..., dg.SensorResult], place: Place, instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult:
    """One evaluation of a zone sensor, given the place's resources by hand and its clock."""
    return sensor(
        dg.build_sensor_context(instance=instance, cursor=cursor),
        store=place.store,
        catalog=place.catalog,
        landing_policy=place.policy,
        store_events=StoreEventsResource(),
        clock=place.clock,
    )


def test_unannounced_files_wait_out_their_grace_then_go_to_quarantine(
    place: Place, instance: dg.DagsterInstance
) -> None:
    for number in range(50):
        place.put(Zone.LANDING, f"EXP-LATE/run1/{number:02}.fastq")
    place.clock.advance(SETTLE + 1)

    first = tick(landing_sensor, place, instance, None)
    place.clock.advance(GRACE - 60)
    still = tick(landing_sensor, place, instance, first.cursor)
    place.clock.advance(61)
    over = tick(landing_sensor, place, instance, still.cursor)

    assert not first.run_requests and not still.run_requests and not over.run_requests
    assert json.loads(still.cursor or "")["pending"] == json.loads(first.cursor or "")["pending"]
    assert list(json.loads(first.cursor or "")["pending"]) == ["EXP-LATE"]  # the folder, not its 50 files
    assert len(list_quarantine(place.objects)) == 50
    assert json.loads(tick(landing_sensor, place, instance, over.cursor).cursor or "")["pending"] == {}  # nothing left


def test_a_registered_experiments_settled_files_make_one_run_keyed_by_their_fingerprint(
    place: Place, instance: dg.DagsterInstance
) -> None:
    place.register("EXP-1")
    place.put(Zone.LANDING, "EXP-1/a.fastq")

    writing = tick(landing_sensor, place, instance, None)
    place.clock.advance(SETTLE + 1)
    settled = tick(landing_sensor, place, instance, writing.cursor)

    assert writing.run_requests == [] and "1 file(s) waiting" in str(writing.skip_reason)
    [request] = settled.run_requests or []
    assert request.partition_key == "EXP-1" and request.run_key.startswith("raw:EXP-1:")


def test_final_files_still_being_written_are_published_once_they_settle(
    place: Place, instance: dg.DagsterInstance
) -> None:
    place.register("EXP-1")
    place.put(Zone.FINAL, "EXP-1/report.md", b"# Report\n")

    writing = tick(final_sensor, place, instance, None)
    place.clock.advance(SETTLE + 1)
    settled = tick(final_sensor, place, instance, writing.cursor)

    assert writing.run_requests == []
    [request] = settled.run_requests or []
    files = list(place.objects.list(Zone.FINAL, "EXP-1/"))
    key = final_run_key("EXP-1", files, revision=0, now=place.clock(), retry_seconds=3600)
    assert (request.partition_key, request.run_key) == ("EXP-1", key)


def test_final_files_of_an_experiment_not_yet_registered_warn_only_once_their_grace_is_over(
    place: Place, instance: dg.DagsterInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    place.put(Zone.FINAL, "EXP-SOON/report.md", b"# Report\n")
    place.clock.advance(SETTLE + 1)

    def logged() -> list[str]:
        """The sensor's log lines about the folder (Dagster's log handler writes to stderr)."""
        return [line for line in capsys.readouterr().err.splitlines() if "final/EXP-SOON/" in line]

    first = tick(final_sensor, place, instance, None)
    place.clock.advance(GRACE - 60)
    within = tick(final_sensor, place, instance, first.cursor)
    quiet = logged()
    place.clock.advance(61)
    tick(final_sensor, place, instance, within.cursor)
    [over] = logged()

    assert len(quiet) == 2 and all(" - INFO - " in line for line in quiet), quiet
    assert " - WARNING - " in over
    assert "holds files but experiment EXP-SOON is not registered (waiting 901 s of 900 s)" in over
    assert place.objects.exists(ObjectKey(Zone.FINAL, "EXP-SOON/report.md"))


def test_an_eln_cursor_from_before_the_inbox_keeps_its_poll_and_is_saved_in_the_one_format(
    place: Place, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    (tmp_path / "eln").mkdir()
    (tmp_path / "eln" / "exp.yaml").write_text("id: EXP-1\ntitle: Soil cores\n", encoding="utf-8")
    eln = FolderElnResource(records_dir=str(tmp_path / "eln"), outbox_dir=str(tmp_path / "outbox"))
    inbox = SqliteInboxResource(path=str(tmp_path / "inbox.sqlite"), clock=place.clock)

    def eln_tick(cursor: str | None) -> dg.SensorResult:
        context = dg.build_sensor_context(instance=instance, cursor=cursor)
        return eln_sensor(context, eln=eln, catalog=place.catalog, eln_inbox=inbox)

    first = eln_tick(None)
    old_style = json.loads(first.cursor or "")["poll"]  # what the sensor saved before events were pushed
    upgraded = eln_tick(old_style)

    assert [request.partition_key for request in first.run_requests or []] == ["EXP-1"]
    assert upgraded.run_requests == [] and "no ELN record changed" in str(upgraded.skip_reason)
    assert json.loads(upgraded.cursor or "") == {"poll": old_style, "receipts": []}
