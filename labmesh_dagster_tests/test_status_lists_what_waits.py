"""`labmesh status` lists every input the flow will not take until someone acts, for as long as it waits.

Pinned here: an ELN record the sensor rejected is listed with its reason on
every status after the tick that logged it, and no longer once it reads fine;
symlinks and FIFOs in landing, which the store's listing never shows, are
listed with what they are; files of an experiment no ELN record announced
are listed with the moment they may be quarantined, computed by the landing
sensor's rule and setting, which the sensor indeed keeps to.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from labmesh_dagster import cli
from labmesh_dagster.core.keys import Zone
from labmesh_dagster_tests.conftest import Lab, make_settings


def status(lab: Lab, capsys: pytest.CaptureFixture[str]) -> str:
    assert cli.main(["status"], settings=lab.settings) == 0
    return capsys.readouterr().out


def test_a_rejected_eln_record_is_listed_until_it_reads_fine(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    lab.write_record("good.yaml", {"id": "EXP-1", "title": "Fine"})
    bad = lab.write_record("broken.yaml", "id: EXP-2\ntitle: [unclosed\n")
    lab.run_sensor("eln_sensor")
    lab.run_sensor("eln_sensor")  # a later tick finds nothing new: the rejection is not logged again

    listed = status(lab, capsys)

    assert "Rejected ELN records (1)" in listed
    [line] = [line for line in listed.splitlines() if str(bad) in line]
    assert "cannot be read" in line

    lab.write_record("broken.yaml", {"id": "EXP-2", "title": "Fixed"})
    lab.run_sensor("eln_sensor")

    listed = status(lab, capsys)
    assert "Rejected ELN records" not in listed and str(bad) not in listed
    assert "EXP-2" in listed  # registered now


def test_one_bad_record_of_a_list_is_listed_alone_and_cleared_with_its_file(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    lab.write_record("export.json", [{"id": "EXP-1", "title": "Fine"}, {"title": "no id"}])
    lab.run_sensor("eln_sensor")

    assert "export.json[1]" in status(lab, capsys)

    lab.write_record("export.json", [{"id": "EXP-1", "title": "Fine"}, {"id": "EXP-3", "title": "Now with an id"}])
    lab.run_sensor("eln_sensor")

    assert "Rejected ELN records" not in status(lab, capsys)


def test_a_rejected_record_whose_file_was_deleted_is_not_listed(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    bad = lab.write_record("broken.yaml", "title: [unclosed\n")
    lab.run_sensor("eln_sensor")
    bad.unlink()
    lab.run_sensor("eln_sensor")

    assert "Rejected ELN records" not in status(lab, capsys)


def test_symlinks_and_fifos_in_landing_are_listed(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = lab.settings.store_dir / "landing" / "EXP-1" / "run1"
    folder.mkdir(parents=True)
    (tmp_path / "reads.fastq").write_bytes(b"@r\nACGT\n+\nIIII\n")
    (folder / "S1_R1.fastq").symlink_to(tmp_path / "reads.fastq")
    os.mkfifo(folder / "S1_R2.fastq")
    lab.run_sensor("landing_sensor")  # the sensor never sees them: they stay, unreported by it

    listed = status(lab, capsys)

    assert "Not regular files in landing (2)" in listed
    assert f"landing/EXP-1/run1/S1_R1.fastq -> {tmp_path / 'reads.fastq'}  (symlink)" in listed
    assert "landing/EXP-1/run1/S1_R2.fastq  (FIFO (named pipe))" in listed


def test_files_of_an_unannounced_experiment_are_listed_with_when_they_may_be_quarantined(
    tmp_path: Path, instance: dg.DagsterInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(
        tmp_path / "home", LABMESH_LANDING_SETTLE_SECONDS="10", LABMESH_UNKNOWN_EXPERIMENT_GRACE_SECONDS="900"
    )
    lab = Lab(settings, instance)
    lab.land("EXP-9", "run1/a.fastq", b"@r\nACGT\n+\nIIII\n")
    lab.land("EXP-9", "run1/b.fastq", b"@r\nACGT\n+\nIIII\n")
    lab.land("EXP-OLD", "c.fastq", b"@r\nACGT\n+\nIIII\n")
    written = datetime.now(UTC).replace(microsecond=0)
    for name in ("run1/a.fastq", "run1/b.fastq"):
        path = settings.store_dir / "landing" / "EXP-9" / name
        os.utime(path, (written.timestamp(), written.timestamp()))
    old = settings.store_dir / "landing" / "EXP-OLD" / "c.fastq"
    os.utime(old, (0, 0))
    quarantine_from = datetime.fromtimestamp(written.timestamp() + 10 + 900, UTC)

    listed = status(lab, capsys)

    assert "Waiting for an ELN record (2)" in listed
    assert f"EXP-9: 2 file(s), 30 B; quarantined from {quarantine_from:%Y-%m-%d %H:%M} UTC" in listed
    assert "EXP-OLD: 1 file(s), 15 B; quarantine due at the landing sensor's next tick" in listed

    # The landing sensor keeps to that date, to the minute printed: it first sees the files once settled,
    # and they wait the grace from then.
    def tick_at(moment: datetime) -> list[str]:
        lab.clock.advance((moment - lab.clock()).total_seconds())
        lab.run_sensor("landing_sensor")
        return lab.keys(Zone.LANDING, "EXP-9")

    waiting = ["EXP-9/run1/a.fastq", "EXP-9/run1/b.fastq"]
    assert tick_at(quarantine_from - timedelta(seconds=900)) == waiting  # settled: first seen now
    assert tick_at(quarantine_from - timedelta(seconds=60)) == waiting
    assert tick_at(quarantine_from + timedelta(seconds=60)) == []
