"""`labmesh files` lists a dataset's files with locations a person can paste, as the Dagster UI tells them to.

Pinned here: `files EXP raw` prints the dataset, its folder, and each file
with its format, size, samples and its plain path (never a ``file://`` link),
exit 0; without a zone every published dataset is listed; `--json` gives the
same as data; an experiment that is not registered, an invalid id, a zone
that is not one and landing (which holds no dataset) are each refused with a
message saying why (exit 2); a registered experiment whose dataset is not
published yet says so (exit 1, and `[]` with `--json`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labmesh_dagster import cli
from labmesh_dagster.core.keys import Zone
from labmesh_dagster_tests.conftest import Lab, make_settings


@pytest.fixture
def flowed(flowed_once: Lab, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """The module's flowed lab (its tests only read it), as the `labmesh` command finds it."""
    monkeypatch.setenv("LABMESH_HOME", str(flowed_once.settings.home))
    return flowed_once


def test_files_prints_each_file_of_the_dataset_with_its_path(flowed: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    raw = flowed.settings.store_dir.resolve() / "raw" / "EXP-42"

    assert cli.main(["files", "EXP-42", "raw"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("EXP-42  raw  dataset:EXP-42/raw  rev 1, 5 files, ")
    assert lines[1] == f"  {raw}/"
    assert lines[2].startswith("  - SampleSheet.csv  ")
    assert lines[3] == f"    {raw}/SampleSheet.csv"
    fastq = lines.index(f"    {raw}/run1/S-001_R1.fastq.gz") - 1
    assert lines[fastq].startswith("  - run1/S-001_R1.fastq.gz  fastq.gz  ") and lines[fastq].endswith("samples: S-001")
    assert not any("file://" in line for line in lines)


def test_without_a_zone_every_dataset_is_listed_and_json_gives_the_same(
    flowed: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["files", "EXP-42", "--json"]) == 0

    datasets = json.loads(capsys.readouterr().out)
    assert [dataset["zone"] for dataset in datasets] == ["raw", "processed", "final"]
    [final] = [dataset for dataset in datasets if dataset["zone"] == "final"]
    [report] = final["files"]
    assert report["key"] == "final/EXP-42/report/summary.md" and report["path"] == "report/summary.md"
    assert report["location"] == str(flowed.settings.store_dir.resolve() / "final" / "EXP-42" / "report" / "summary.md")
    assert report["format"] and report["size"] > 0 and len(report["sha256"]) == 64
    assert final["location"] == f"{flowed.settings.store_dir.resolve() / 'final' / 'EXP-42'}/"
    assert cli.main(["files", "EXP-42"]) == 0
    out = capsys.readouterr().out
    assert "EXP-42  raw  " in out and "EXP-42  processed  " in out and "EXP-42  final  " in out


def test_an_unknown_experiment_an_invalid_id_and_a_zone_that_is_none_are_refused_clearly(
    flowed: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["files", "EXP-404", "raw"]) == 2
    assert "experiment EXP-404 is not registered; `labmesh status` lists those that are" in capsys.readouterr().err
    assert cli.main(["files", "../EXP-42"]) == 2
    assert "invalid experiment id '../EXP-42'" in capsys.readouterr().err
    for zone, reason in [
        ("rawdata", "'rawdata' is not a zone: choose raw, processed or final"),
        ("landing", "landing holds no dataset: files wait there until they are promoted to raw"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            cli.main(["files", "EXP-42", zone])
        assert exit_.value.code == 2 and reason in capsys.readouterr().err


def test_a_registered_experiment_whose_dataset_is_not_published_yet_says_so(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LABMESH_HOME", str(lab.settings.home))
    lab.write_record("exp.yaml", {"id": "EXP-1", "title": "Nothing landed yet"})
    lab.run_sensor("eln_sensor")

    assert cli.main(["files", "EXP-1", "raw"]) == 1
    assert "no raw dataset of EXP-1 yet" in capsys.readouterr().err
    assert cli.main(["files", "EXP-1", "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == []
    assert lab.keys(Zone.RAW, "EXP-1") == []


def test_an_empty_home_is_not_given_a_catalog_by_looking(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(tmp_path / "home")

    assert cli.main(["files", "EXP-1"], settings=settings) == 2

    assert "experiment EXP-1 is not registered" in capsys.readouterr().err
    assert not settings.catalog_path.exists()
