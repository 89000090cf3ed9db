"""``labmesh extract`` prints, for each file named, the metadata labmesh would record, as one JSON object.

Pinned here: a good file gets its format, metadata, size and sha256; a bad
one its error with reason code, without stopping the others, and the exit
status says so; a missing file is an error object too; a folder stands for its
files; read pairs given together are linked.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from labmesh_dagster.cli import main

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
