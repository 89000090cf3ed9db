"""The `labmesh` command as people use it: search, status and putting files into landing.

Contract: `search` prints each matching dataset with its location and files
(exit 0) or says nothing matched (exit 1), `--json` gives the same as data;
`land` puts files into an experiment's landing folder and refuses an invalid
experiment id with a clear message; `demo` writes the demo lab's records.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labmesh_dagster import cli
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.ports import Ports
from labmesh_dagster_tests.conftest import Lab, aws_settings


@pytest.fixture
def flowed(flowed_once: Lab, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """The module's flowed lab (its tests only read it), as the `labmesh` command finds it."""
    monkeypatch.setenv("LABMESH_HOME", str(flowed_once.settings.home))
    return flowed_once


def test_search_prints_datasets_with_locations_and_files(flowed: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["search", "--sample", "S-001", "--format", "fastq"]) == 0
    out = capsys.readouterr().out
    assert "EXP-42  raw  dataset:EXP-42/raw  Liver biopsy RNA-seq" in out
    assert "raw/EXP-42/run1/S-001_R1.fastq.gz  fastq.gz" in out and "samples: S-001" in out
    assert "S-002_R1" not in out


def test_search_json_and_no_match(flowed: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["search", "fibrotic", "--platform", "miseq", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert {(hit["experiment_id"], hit["dataset"]) for hit in hits} == {
        ("EXP-42", "raw"),
        ("EXP-42", "processed"),
        ("EXP-42", "final"),
    }
    assert cli.main(["search", "zebrafish"]) == 1
    assert "no matching datasets" in capsys.readouterr().out


def test_status_counts_files_per_zone(flowed: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["EXPERIMENT", "LANDING", "RAW", "PROCESSED", "FINAL", "CATALOG", "TITLE"]
    processed = len([key for key in flowed.keys(Zone.PROCESSED, "EXP-42") if "/_labmesh/" not in key])
    assert lines[1].split()[:7] == ["EXP-42", "0", "5", str(processed), "1", "rev", "1"]


def test_land_puts_files_into_the_landing_folder(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LABMESH_HOME", str(lab.settings.home))
    reads = tmp_path / "S1_R1.fastq"
    reads.write_bytes(b"@r\nACGT\n+\nIIII\n")

    assert cli.main(["land", "EXP-7", str(reads), "--prefix", "run3"]) == 0
    assert lab.keys(Zone.LANDING) == ["EXP-7/run3/S1_R1.fastq"]
    assert cli.main(["land", "../EXP-7", str(reads)]) == 2
    assert "invalid experiment id '../EXP-7'" in capsys.readouterr().err


def test_demo_writes_labelled_records(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABMESH_HOME", str(lab.settings.home))
    assert cli.main(["demo"]) == 0
    lab.run_sensor("eln_sensor")
    titles = [summary.title for summary in lab.catalog.summaries()]
    assert len(titles) == 3 and all(title.startswith("[DEMO]") for title in titles)


def test_the_cli_reads_dot_env_like_dagster_dev_does(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lab.write_record("exp.yaml", {"id": "EXP-ENV", "title": "Configured by .env"})
    lab.run_sensor("eln_sensor")
    (tmp_path / ".env").write_text(f"LABMESH_HOME={lab.settings.home}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LABMESH_HOME", str(tmp_path / "elsewhere"))

    assert cli.main(["status"]) == 0
    assert "EXP-ENV" in capsys.readouterr().out


def test_sync_once_uploads_a_watched_folder_into_landing(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LABMESH_HOME", str(lab.settings.home))
    watch = tmp_path / "instrument"
    (watch / "run1").mkdir(parents=True)
    (watch / "run1" / "S1_R1.fastq").write_bytes(b"@r\nACGT\n+\nIIII\n")

    assert cli.main(["sync", str(watch), "--experiment", "EXP-9", "--quiet-seconds", "0", "--once"]) == 0
    assert "uploaded 1" in capsys.readouterr().out
    assert lab.keys(Zone.LANDING) == ["EXP-9/run1/S1_R1.fastq"]
    assert cli.main(["sync", str(watch), "--experiment", "EXP-9", "--quiet-seconds", "0", "--once"]) == 0
    assert "uploaded 0" in capsys.readouterr().out
    assert cli.main(["sync", str(watch), "--layout", "{experiment}", "--once"]) == 2


def test_search_content_finds_words_inside_files_with_their_location(
    flowed: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["search", "--content", "COL1A1"]) == 0
    out = capsys.readouterr().out
    assert "final/EXP-42/report/summary.md" in out and "file://" in out
    assert cli.main(["search", "--content", "COL1A1", "--format", "fastq"]) == 1
    assert cli.main(["search", "--content", "COL1A1", "--json"]) == 0
    [hit] = json.loads(capsys.readouterr().out.split("no matching files\n")[-1])
    assert hit["attributes"]["experiment_id"] == "EXP-42"


def test_a_date_that_is_not_iso_is_refused_before_searching(flowed: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["search", "--since", "last tuesday"])
    assert exit_.value.code == 2 and "not an ISO date" in capsys.readouterr().err


def test_status_and_land_use_the_profiles_store(
    tmp_path: Path,
    moto_endpoint: str,
    s3_buckets: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = aws_settings(tmp_path / "home", moto_endpoint, s3_buckets)
    reads = tmp_path / "S1.fastq"
    reads.write_bytes(b"@r\nACGT\n+\nIIII\n")

    assert cli.main(["land", "EXP-9", str(reads)], settings=settings) == 0
    assert cli.main(["status"], settings=settings) == 0

    assert "EXP-9" in capsys.readouterr().out
    assert [info.key.path for info in Ports(settings).store().list(Zone.LANDING)] == ["EXP-9/S1.fastq"]
