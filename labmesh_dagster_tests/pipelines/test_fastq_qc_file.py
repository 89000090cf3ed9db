"""labmesh's own FASTQ QC command (fastp's fallback), called as `main(argv)` (the runner's tests run it as a process).

Contract: the QC document of one FASTQ holds its read statistics and the
per-position mean quality (Phred+33), named by this QC's pipeline and version,
and the command exits 0; a file without reads or a corrupt file still gets a
document that says why (status ``failed``, an ``error`` with reason and
detail), and the command exits 1 with that reason on stderr; a wrong argument
count is a usage error (exit 2) that writes nothing.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from labmesh_dagster.pipelines.fastq_qc_file import PIPELINE, PIPELINE_VERSION, main

# Qualities: 'I' = 40, '5' = 20, '+' = 10.
TINY = b"@a\nACGT\n+\nII55\n@b\nAC\n+\n5+\n"


def _qc(tmp_path: Path, name: str, content: bytes) -> tuple[int, dict]:
    source, target = tmp_path / name, tmp_path / "out.qc.json"
    source.write_bytes(content)
    code = main([str(source), str(target)])
    return code, json.loads(target.read_text(encoding="utf-8"))


def test_the_document_holds_read_statistics_and_per_position_quality(tmp_path: Path) -> None:
    code, document = _qc(tmp_path, "S1_R1.fastq.gz", gzip.compress(TINY))

    assert code == 0
    assert (document["pipeline"], document["pipeline_version"]) == (PIPELINE, PIPELINE_VERSION)
    assert document["input"] == "S1_R1.fastq.gz" and document["status"] == "ok" and "error" not in document
    assert document["stats"]["reads"] == 2 and document["stats"]["bases"] == 6
    assert document["stats"]["mean_quality"] == 25.0
    assert document["per_position_mean_quality"] == [30.0, 25.0, 20.0, 20.0]


def test_an_empty_file_is_a_failed_qc_not_a_pass_with_no_reads(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, document = _qc(tmp_path, "empty.fastq.gz", gzip.compress(b""))

    assert code == 1 and document["status"] == "failed"
    assert document["error"] == {"reason": "empty", "detail": "the file holds no reads"}
    assert "QC of empty.fastq.gz failed: empty: the file holds no reads" in capsys.readouterr().err


def test_a_corrupt_file_gets_a_document_saying_why(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, document = _qc(tmp_path, "bad.fastq", b"@a\nACGT\n+\nII\n")

    assert code == 1 and document["status"] == "failed" and "stats" not in document
    assert document["error"]["reason"] == "length_mismatch"
    assert "QC of bad.fastq failed: length_mismatch" in capsys.readouterr().err


def test_a_wrong_argument_count_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path / "only-one.fastq")]) == 2
    assert "usage:" in capsys.readouterr().err and list(tmp_path.iterdir()) == []
