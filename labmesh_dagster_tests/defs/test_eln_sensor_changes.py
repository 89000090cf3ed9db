"""`eln_sensor` on a folder ELN: a tick reads and requests what changed since its cursor, nothing more.

Pinned by counting the record files read (never by timing): a tick after the first reads nothing while the
folder is unchanged; a record edited after the cursor is the one file read and
the one experiment requested again, under a run key naming the change; a tick
whose cursor Dagster never stored is replayed from the previous cursor with the
same request (so nothing is lost, and nothing starts twice); a deleted record
file requests nothing; a pushed event reads the one file it names. The
partitions a tick adds are those Dagster lacks, whether it asks about each of a
few experiments or reads every partition once for a whole ELN.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

import dagster as dg
import pytest

from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.eln.base import ElnEvent, ElnSource
from labmesh_dagster.connectors.eln.folder import FolderEln, read_record_file
from labmesh_dagster.core.errors import RecordError
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.defs.experiment_assets import ELN_SOURCE_TAG
from labmesh_dagster.defs.partitions import EXPERIMENTS
from labmesh_dagster.defs.resources import ElnResource, RegistryCatalogResource, SqliteInboxResource
from labmesh_dagster.defs.sensors.eln import eln_sensor, new_partitions
from labmesh_dagster.ports import open_sqlite_inbox
from labmesh_dagster.steps.intake import ONE_BY_ONE_LOOKUPS
from labmesh_dagster_tests.conftest import ShiftedClock


class Lab:
    """A records folder read through a counting reader, a catalog, an inbox, and the sensor evaluated by hand."""

    def __init__(self, root: Path, instance: dg.DagsterInstance) -> None:
        self.records = root / "eln"
        self.records.mkdir()
        self.outbox = root / "outbox"
        self.instance = instance
        self.read: list[str] = []
        self.catalog_path = root / "catalog.sqlite"
        self.catalog = RegistryCatalogResource(path=str(self.catalog_path))
        self.clock = ShiftedClock()
        self.inbox = SqliteInboxResource(path=str(root / "inbox.sqlite"), clock=self.clock)

    def reader(self, path: Path) -> tuple[list[ExperimentRecord], list[RecordError]]:
        self.read.append(path.name)
        return read_record_file(path)

    def get_eln(self) -> ElnSource:
        return FolderEln(self.records, self.outbox, reader=self.reader)

    def write(self, name: str, text: str) -> None:
        path = self.records / name
        existed = path.stat().st_mtime_ns if path.exists() else None
        path.write_text(text, encoding="utf-8")
        if existed is not None:  # a later save, on a clock coarser than the test
            os.utime(path, ns=(existed, existed + 1_000_000_000))

    def tick(self, cursor: str | None) -> dg.SensorResult:
        self.read.clear()
        context = dg.build_sensor_context(instance=self.instance, cursor=cursor)
        return eln_sensor(context, eln=cast(ElnResource, self), catalog=self.catalog, eln_inbox=self.inbox)

    def register_all(self) -> None:
        """What the requested runs do to the catalog: each record as the folder holds it now."""
        catalog = SqliteCatalog(self.catalog_path)
        for path in sorted(self.records.iterdir()):
            for record in read_record_file(path)[0]:
                catalog.upsert_experiment(record, {})


@pytest.fixture
def lab(tmp_path: Path, instance: dg.DagsterInstance) -> Lab:
    lab = Lab(tmp_path, instance)
    for number in range(12):
        lab.write(f"EXP-{number:02}.yaml", f"id: EXP-{number:02}\ntitle: Experiment {number}\n")
    return lab


def requested(result: dg.SensorResult) -> list[tuple[str | None, str | None]]:
    return [(request.partition_key, request.run_key) for request in result.run_requests or []]


def test_an_unchanged_folder_is_not_read_on_later_ticks(lab: Lab) -> None:
    first = lab.tick(None)
    assert len(requested(first)) == 12 and len(lab.read) == 12
    lab.register_all()

    later = lab.tick(first.cursor)

    assert lab.read == [] and requested(later) == []
    assert "no ELN record changed" in str(later.skip_reason)


def test_a_record_edited_after_the_cursor_is_read_alone_and_registered_again(lab: Lab) -> None:
    first = lab.tick(None)
    lab.register_all()
    settled = lab.tick(first.cursor)
    before = SqliteCatalog(lab.catalog_path).experiment_fingerprints()["EXP-07"]

    lab.write("EXP-07.yaml", "id: EXP-07\ntitle: Experiment 7, with its samples\nsamples: [S1, S2]\n")
    edited = lab.tick(settled.cursor)

    assert lab.read == ["EXP-07.yaml"]
    [(partition, run_key)] = requested(edited)
    assert partition == "EXP-07"
    assert run_key is not None and run_key.startswith(f"experiment:EXP-07:{before}->")
    # The run is told where the record was read, so it goes to that file (or entry) without searching.
    [request] = edited.run_requests or []
    assert request.tags[ELN_SOURCE_TAG] == str(lab.records / "EXP-07.yaml")


def test_a_tick_whose_cursor_was_never_stored_is_replayed_with_the_same_request(lab: Lab) -> None:
    first = lab.tick(None)
    lab.register_all()
    settled = lab.tick(first.cursor)
    lab.write("EXP-12.yaml", "id: EXP-12\ntitle: Edited while the daemon went down\n")

    lost = lab.tick(settled.cursor)  # evaluated, then the daemon died before storing the tick
    replayed = lab.tick(settled.cursor)

    assert requested(lost) == requested(replayed) and [p for p, _ in requested(replayed)] == ["EXP-12"]
    assert lab.read == ["EXP-12.yaml"]


def test_a_deleted_record_file_requests_nothing_and_reads_nothing(lab: Lab) -> None:
    first = lab.tick(None)
    lab.register_all()

    (lab.records / "EXP-05.yaml").unlink()
    after = lab.tick(first.cursor)

    assert requested(after) == [] and lab.read == []
    assert SqliteCatalog(lab.catalog_path).get_experiment("EXP-05") is not None, "its data and entry stay"


def test_a_pushed_event_reads_the_one_file_it_names(lab: Lab) -> None:
    first = lab.tick(None)
    lab.register_all()
    settled = lab.tick(first.cursor)
    lab.write("EXP-20.yaml", "id: EXP-20\ntitle: Pushed by the LIMS\n")
    open_sqlite_inbox(lab.inbox.path, lab.clock).put(
        ElnEvent("folder", "lims:1", "EXP-20", "changed", "2026-12-06T03:00:00Z")
    )

    pushed = lab.tick(settled.cursor)

    assert [p for p, _ in requested(pushed)] == ["EXP-20"]
    # Once for the event, once by the poll that finds the file changed: never the other 11.
    assert lab.read == ["EXP-20.yaml", "EXP-20.yaml"]


@pytest.mark.parametrize("count", [3, ONE_BY_ONE_LOOKUPS + 1])
def test_the_partitions_a_tick_adds_are_those_dagster_lacks(instance: dg.DagsterInstance, count: int) -> None:
    instance.add_dynamic_partitions(EXPERIMENTS, ["EXP-0001", "EXP-0002"])
    wanted = [f"EXP-{number:04}" for number in range(count)]

    [request] = new_partitions(instance, wanted)

    assert request.partition_keys == [key for key in wanted if key not in {"EXP-0001", "EXP-0002"}]
