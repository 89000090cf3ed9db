"""The `labmesh` command fails like a command: a message and an exit code, never a traceback.

Pinned here: a reader that goes away (`labmesh status | head`) ends the
command quietly with the shell's SIGPIPE status; a text argument that is not
UTF-8 is refused by name with exit code 2, while file names that are not
UTF-8 are printed as escapes even where stdout is strict UTF-8; `land`
refuses labmesh's own `_labmesh/` folder and a file name landing would
quarantine, before it puts anything; `--limit` takes 1 and more.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from labmesh_dagster import cli
from labmesh_dagster.core.keys import Zone
from labmesh_dagster_tests.conftest import Lab

NOT_UTF8 = os.fsdecode(b"caf\xe9")
"""How Python hands a program an argument written in Latin-1: with a surrogate escape for the byte 0xE9."""


def run_labmesh(
    home: Path, *argv: str | bytes, stdout: int | None = subprocess.PIPE
) -> subprocess.CompletedProcess[bytes]:
    """`labmesh` in a process of its own, as a shell runs it, with a strict UTF-8 stdout like a UTF-8 terminal's."""
    env = {**os.environ, "LABMESH_HOME": str(home), "PYTHONIOENCODING": "utf-8:strict"}
    return subprocess.run(
        [sys.executable, "-m", "labmesh_dagster.cli", *argv],
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=env,
        cwd=home.parent,
        check=False,
    )


def test_a_reader_that_goes_away_ends_the_command_without_a_traceback(lab: Lab) -> None:
    """`labmesh status | head`: head exits after its lines and the next write meets a closed pipe."""
    lab.write_record("exp.yaml", {"id": "EXP-1", "title": "Seen by status"})
    lab.run_sensor("eln_sensor")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        done = run_labmesh(lab.settings.home, "status", stdout=write_end)
    finally:
        os.close(write_end)

    assert b"Traceback" not in done.stderr and b"BrokenPipeError" not in done.stderr, done.stderr.decode()
    assert done.returncode == 128 + signal.SIGPIPE


def test_a_text_argument_that_is_not_utf8_is_refused_by_name(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LABMESH_HOME", str(lab.settings.home))
    for argv in (
        ["search", "--file-name", NOT_UTF8],
        ["search", "--experiment", NOT_UTF8, "liver"],
        ["search", "--content", "--sample", NOT_UTF8],
        ["sync", str(lab.settings.home), "--layout", NOT_UTF8 + "/{experiment}/{path}", "--once"],
    ):
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        assert exit_.value.code == 2, argv
        assert "is not valid UTF-8" in capsys.readouterr().err, argv


def test_file_names_that_are_not_utf8_are_printed_as_escapes(tmp_path: Path) -> None:
    """A FASTQ named in Latin-1 is described; its name comes out escaped, JSON that reads back to the same name."""
    home = tmp_path / "home"
    home.mkdir()
    name = b"caf\xe9.fastq"
    path = os.fsencode(tmp_path) + b"/" + name
    with open(path, "wb") as handle:
        handle.write(b"@r1\nACGT\n+\nIIII\n")

    done = run_labmesh(home, "extract", path)

    assert done.returncode == 0, done.stderr.decode()
    document = json.loads(done.stdout)
    assert os.fsencode(document["file"]) == path
    assert document["format"] == "fastq"


def test_land_refuses_labmeshs_own_folder_and_unquarantinable_names_before_putting_anything(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LABMESH_HOME", str(lab.settings.home))
    reads = tmp_path / "S1_R1.fastq"
    reads.write_bytes(b"@r\nACGT\n+\nIIII\n")
    latin1 = Path(os.fsdecode(os.fsencode(tmp_path) + b"/S2_caf\xe9.fastq"))
    latin1.write_bytes(b"@r\nACGT\n+\nIIII\n")

    assert cli.main(["land", "EXP-7", str(reads), "--prefix", "_labmesh"]) == 2
    assert "_labmesh/ is labmesh's own folder" in capsys.readouterr().err
    assert cli.main(["land", "EXP-7", str(reads), "--prefix", "run1/_labmesh/x"]) == 0
    assert cli.main(["land", "EXP-7", str(reads), str(latin1)]) == 2
    assert "not valid UTF-8" in capsys.readouterr().err

    assert lab.keys(Zone.LANDING) == ["EXP-7/run1/_labmesh/x/S1_R1.fastq"]


@pytest.mark.parametrize("limit", ["0", "-3", "many"])
def test_limit_takes_one_and_more(limit: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["search", "liver", "--limit", limit])
    assert exit_.value.code == 2
    assert "--limit" in capsys.readouterr().err


def test_sample_help_says_files_of_no_sample_are_included(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["search", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "a file tied to no sample (a run summary) counts as every sample's of its experiment, so it is included" in (
        help_text
    )


def test_sync_of_a_folder_named_in_latin1_reports_the_file_landing_would_quarantine(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LABMESH_HOME", str(lab.settings.home))
    watch = Path(os.fsdecode(os.fsencode(tmp_path) + b"/instrument-caf\xe9"))
    watch.mkdir()
    (watch / "S1_R1.fastq").write_bytes(b"@r\nACGT\n+\nIIII\n")
    Path(os.fsdecode(os.fsencode(watch) + b"/S2_caf\xe9.fastq")).write_bytes(b"@r\nACGT\n+\nIIII\n")

    assert cli.main(["sync", str(watch), "--experiment", "EXP-9", "--quiet-seconds", "0", "--once"]) == 1

    captured = capsys.readouterr()
    assert "uploaded 1" in captured.out and "failed 1" in captured.out
    assert "is not valid UTF-8; landing would quarantine it" in captured.err
    assert lab.keys(Zone.LANDING) == ["EXP-9/S1_R1.fastq"]
