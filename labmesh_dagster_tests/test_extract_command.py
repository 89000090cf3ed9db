"""``labmesh extract`` prints, for each file named, the metadata labmesh would record, as one JSON object.

Pinned here: a good file gets its format, metadata, size and sha256; a bad
one its error with reason code, without stopping the others, and the exit
status says so; a missing file is an error object too; a folder stands for its
files; read pairs given together are linked. Only regular files are read, as
the platform reads only those: a FIFO, a device or a symlink found in a folder
is reported as skipped (never opened, never followed), and the time budget
holds on input that does not end.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from labmesh_dagster.cli import main
from labmesh_dagster.extract.local_files import describe_files

HANG_CAP_SECONDS = 120
"""A cap that turns a command waiting for ever into a failure; never reached by a working command."""

READS = b"@A00123:45:HJK7LDSX2:1:1101:1000:2000 1:N:0:ACGT\nACGTN\n+\nIIII#\n"


def run_extract(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict]]:
    status = main(["extract", *args])
    return status, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_each_file_is_one_json_object_with_its_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "S1_R1.fastq").write_bytes(READS)
    (tmp_path / "S1_R2.fastq").write_bytes(READS)
    status, documents = run_extract(capsys, str(tmp_path / "S1_R1.fastq"), str(tmp_path / "S1_R2.fastq"))
    assert status == 0
    first = documents[0]
    assert (first["format"], first["metadata"]["reads"], first["metadata"]["bases"]) == ("fastq", 1, 5)
    assert first["metadata"]["read_name"]["flowcell"] == "HJK7LDSX2"
    assert first["size"] == len(READS)
    assert first["sha256"] == hashlib.sha256(READS).hexdigest()
    assert first["links"] == {"read": 1, "mate": str(tmp_path / "S1_R2.fastq"), "pair_consistent": True}
    assert "text" not in first


def test_a_bad_file_reports_its_reason_and_the_others_still_print(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.fastq").write_bytes(b"@r1\nACGT\n+\nII\n")
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "good.csv").write_bytes(b"sample,od\nS1,0.4\n")
    status, documents = run_extract(capsys, str(tmp_path), str(tmp_path / "missing.fastq"))
    by_name = {Path(document["file"]).name: document for document in documents}
    assert status == 1
    assert by_name["bad.fastq"]["error"]["reason"] == "length_mismatch"
    assert by_name["empty.csv"]["format"] == "empty" and "error" not in by_name["empty.csv"]
    assert by_name["good.csv"]["samples"] == ["S1"]
    assert by_name["missing.fastq"]["error"]["reason"] == "not_found"


def test_a_symlink_inside_a_folder_is_reported_and_not_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The platform lists only regular files, so a link in a run folder is never taken: the command says so."""
    outside = tmp_path / "elsewhere" / "secret.fastq"
    outside.parent.mkdir()
    outside.write_bytes(READS)
    run = tmp_path / "run"
    run.mkdir()
    (run / "S1_R1.fastq").write_bytes(READS)
    (run / "S2_R1.fastq").symlink_to(outside)
    (run / "more").symlink_to(outside.parent, target_is_directory=True)

    status, documents = run_extract(capsys, str(run))

    by_name = {Path(document["file"]).name: document for document in documents}
    assert sorted(by_name) == ["S1_R1.fastq", "S2_R1.fastq", "more"]
    assert by_name["S1_R1.fastq"]["format"] == "fastq"
    assert by_name["S2_R1.fastq"]["skipped"]["reason"] == "symlink" and "format" not in by_name["S2_R1.fastq"]
    assert by_name["more"]["skipped"]["reason"] == "symlink"
    assert status == 1


def test_a_symlink_named_on_the_command_line_is_followed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "reads.fastq").write_bytes(READS)
    (tmp_path / "latest.fastq").symlink_to(tmp_path / "reads.fastq")

    status, [document] = run_extract(capsys, str(tmp_path / "latest.fastq"))

    assert status == 0 and document["format"] == "fastq"


def test_a_fifo_is_skipped_without_being_opened(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A writer waits on the FIFO: if the command opened it, the writer would hand it reads to describe."""
    fifo = tmp_path / "reads.fastq"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(READS,))
    writer.start()
    try:
        status, [document] = run_extract(capsys, str(fifo))
    finally:
        # Release the writer if the command did not: a non-blocking open for reading never waits.
        descriptor = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        writer.join()
        os.close(descriptor)

    assert document["skipped"]["reason"] == "fifo", document
    assert "format" not in document
    assert status == 1


def test_endless_and_blocking_inputs_end_the_command(tmp_path: Path) -> None:
    """`labmesh extract` on a FIFO nobody writes to and on /dev/zero used to wait for ever.

    The command runs as people run it, in a process of its own; the cap only
    turns a hang into a failure, it is not a speed goal.
    """
    fifo = tmp_path / "pipe.fastq"
    os.mkfifo(fifo)
    (tmp_path / "ok.fastq").write_bytes(READS)

    done = subprocess.run(
        [sys.executable, "-m", "labmesh_dagster.cli", "extract", str(fifo), "/dev/zero", str(tmp_path / "ok.fastq")],
        capture_output=True,
        text=True,
        timeout=HANG_CAP_SECONDS,
        check=False,
    )

    documents = [json.loads(line) for line in done.stdout.splitlines()]
    assert [document.get("skipped", {}).get("reason") for document in documents] == ["fifo", "device", None]
    assert documents[2]["format"] == "fastq"
    assert done.returncode == 1
    assert "/dev/zero is a device" in done.stderr and "Traceback" not in done.stderr


def test_the_budget_holds_on_a_file_that_does_not_end(tmp_path: Path) -> None:
    """Past the budget (and a grace for the extractor to stop by itself) reading stops: partial, no checksum.

    A sparse file stands for endless input; the clock is the test's, one
    second a read, so the budget runs out after a few reads whatever the machine.
    """
    endless = tmp_path / "growing.log"
    with endless.open("wb") as handle:
        handle.truncate(256 * 1024 * 1024)
    ticks = itertools.count()

    [document] = describe_files([str(endless)], budget_seconds=5, clock=lambda: float(next(ticks)))

    assert document["partial"] == "time_budget"
    assert "sha256" not in document, "a checksum of part of a file would be a lie"
    assert 0 < document["bytes_read"] < document["size"] == 256 * 1024 * 1024
