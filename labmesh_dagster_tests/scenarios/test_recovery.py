"""Recovering without a person: failed runs, a reset Dagster instance, data that arrives before its record.

Contract: a registration that failed is tried again by the recovery sensor, with
nothing else changing, and a write-back the ELN does not show until it does; an
edit made, reverted and made again is registered each time; after Dagster's own
storage is lost the sensors re-add the partitions from what the ELN and the
catalog know and ingestion carries on; files copied with old timestamps for an
experiment not yet in the ELN wait their grace period from when labmesh first
saw them, then flow once the record arrives.
"""

from __future__ import annotations

import os
import time

import dagster as dg
import pytest

from labmesh_dagster.core.keys import Zone
from labmesh_dagster.steps.landing import list_quarantine
from labmesh_dagster_tests.conftest import Lab, make_settings

RECORD = {"id": "EXP-1", "title": "Recovery", "samples": ["S1"]}


def test_a_registration_that_failed_is_tried_again_with_nothing_else_changing(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog

    lab.write_record("exp.yaml", RECORD)

    def locked(self, record, locations, *, run_id=None):  # type: ignore[no-untyped-def]
        raise RuntimeError("database is locked")

    with monkeypatch.context() as patch:
        patch.setattr(SqliteCatalog, "upsert_experiment", locked)
        [failed] = lab.run_sensor("eln_sensor", raise_on_error=False)
        assert not failed.success
    # The ELN sensor alone sees nothing new: the record is as it was when the run was requested.
    assert lab.run_sensor("eln_sensor") == [] and lab.catalog.get_experiment("EXP-1") is None

    runs = lab.run_sensor("unfinished_work_sensor")

    assert [run.success for run in runs] == [True] and lab.catalog.get_experiment("EXP-1") is not None
    assert lab.run_sensor("unfinished_work_sensor") == []


def test_a_write_back_the_eln_does_not_show_is_tried_again_until_it_does(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labmesh_dagster.connectors.eln.folder import FolderEln

    lab.write_record("exp.yaml", RECORD)
    with monkeypatch.context() as patch:
        patch.setattr(FolderEln, "write_back", lambda self, experiment_id, locations: None)  # accepted, not kept
        [failed] = lab.run_sensor("eln_sensor", raise_on_error=False)
    assert not failed.success and lab.ports.eln().read_back("EXP-1") == {}
    assert lab.catalog.get_experiment("EXP-1") is not None, "the catalog is ahead of the ELN"

    [resumed] = lab.run_sensor("unfinished_work_sensor")

    assert resumed.success and lab.ports.eln().read_back("EXP-1") == lab.catalog.experiment_locations("EXP-1")


def test_work_that_keeps_failing_is_retried_with_a_growing_pause(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog

    def locked(self, record, locations, *, run_id=None):  # type: ignore[no-untyped-def]
        raise RuntimeError("database is locked")

    lab.write_record("exp.yaml", RECORD)
    monkeypatch.setattr(SqliteCatalog, "upsert_experiment", locked)
    lab.run_sensor("eln_sensor", raise_on_error=False)
    [again] = lab.run_sensor("unfinished_work_sensor", raise_on_error=False)  # the first retry is immediate
    assert not again.success

    assert lab.run_sensor("unfinished_work_sensor") == []
    lab.clock.advance(61)
    assert len(lab.run_sensor("unfinished_work_sensor", raise_on_error=False)) == 1
    lab.clock.advance(61)
    assert lab.run_sensor("unfinished_work_sensor") == [], "the pause doubled"


def test_an_edit_made_reverted_and_made_again_is_registered_each_time(lab: Lab) -> None:
    path = lab.write_record("exp.yaml", RECORD)
    lab.run_sensor("eln_sensor")
    for title in ("Edited", "Recovery", "Edited"):
        lab.write_record(path.name, {**RECORD, "title": title})
        lab.run_sensor("eln_sensor")
        assert lab.catalog.get_experiment("EXP-1").title == title


def test_sensors_rebuild_partitions_after_dagster_storage_is_lost(lab: Lab) -> None:
    lab.write_record("exp.yaml", RECORD)
    lab.run_sensor("eln_sensor")

    with dg.instance_for_test() as fresh_instance:
        fresh = Lab(lab.settings, fresh_instance)
        assert fresh.run_sensor("eln_sensor") == []  # the catalog is current: nothing to register
        assert fresh.partitions() == ["EXP-1"]
        fresh.land("EXP-1", "S1.fastq", b"@r\nACGT\n+\nIIII\n")
        [run] = fresh.run_sensor("landing_sensor")
        assert run.success and fresh.keys(Zone.LANDING) == []


def test_old_timestamped_files_wait_for_their_record_from_first_sight(settings, instance) -> None:
    lab = Lab(make_settings(settings.home, LABMESH_UNKNOWN_EXPERIMENT_GRACE_SECONDS="3600"), instance)
    key = lab.land("EXP-LATE", "S1.fastq", b"@r\nACGT\n+\nIIII\n")
    last_year = time.time() - 365 * 24 * 3600
    os.utime(lab.store.path(key), (last_year, last_year))

    assert lab.run_sensor("landing_sensor") == []
    assert lab.run_sensor("landing_sensor") == []
    assert list_quarantine(lab.store) == [] and lab.keys(Zone.LANDING) == ["EXP-LATE/S1.fastq"]

    lab.write_record("late.yaml", {"id": "EXP-LATE", "title": "Record after data"})
    lab.run_sensor("eln_sensor")
    [run] = lab.run_sensor("landing_sensor")
    assert run.success and lab.keys(Zone.LANDING) == []


def test_landing_files_whose_run_failed_are_tried_again_each_retry_period(tmp_path, instance) -> None:
    """Listing finds the file every tick, but its run key is spent: only a new retry period gives it a new run."""
    lab = Lab(make_settings(tmp_path / "home", LABMESH_LANDING_RETRY_SECONDS="3600"), instance)
    lab.clock.clear_of_period_end(3600)  # the ticks below share one retry period, however slow they are
    lab.write_record("exp1.yaml", RECORD)
    lab.run_sensor("eln_sensor")
    lab.land("EXP-1", "S1.fastq", b"@r\nACGT\n+\nIIII\n")
    [lost] = lab.tick("landing_sensor").run_requests
    lab.run_keys.add(lost.run_key)  # the run failed after every retry

    assert lab.run_sensor("landing_sensor") == []
    lab.clock.advance(3600.2)
    [result] = lab.run_sensor("landing_sensor")

    assert result.success and lab.keys(Zone.LANDING) == []
    assert "EXP-1/S1.fastq" in lab.keys(Zone.RAW, "EXP-1")


def test_runs_that_only_new_input_can_fix_leave_nothing_to_resume(lab: Lab) -> None:
    """Registering the experiment, or raw data arriving, starts the run again; retrying hourly would not help."""
    lab.instance.add_dynamic_partitions("experiments", ["EXP-9"])
    assert not lab.materialize("raw_dataset", partition="EXP-9", raise_on_error=False).success
    lab.write_record("exp.yaml", RECORD)
    lab.run_sensor("eln_sensor")
    assert not lab.materialize("processed_dataset", partition="EXP-1", raise_on_error=False).success

    lab.clock.advance(7200)

    assert lab.run_sensor("unfinished_work_sensor") == []
