"""`labmesh search` answers what it promises, as a person runs it on a lab that ran the whole flow.

Pinned here: `--content WORD` matches words inside files: a word only the
experiment's record holds (its description, its owner) finds the experiment
in the catalog search and no file in the content search, while a word inside
one file finds that file alone; `--format fastq` finds the gzipped FASTQ too,
in both searches.
"""

from __future__ import annotations

import json

import pytest

from labmesh_dagster import cli
from labmesh_dagster_tests.conftest import Lab


@pytest.fixture
def flowed(flowed_once: Lab, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """The module's flowed lab (its tests only read it), as the `labmesh` command finds it."""
    monkeypatch.setenv("LABMESH_HOME", str(flowed_once.settings.home))
    return flowed_once


def content_hits(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    code = cli.main(["search", "--content", "--json", *argv])
    hits = [hit["id"] for hit in json.loads(capsys.readouterr().out)]
    assert code == (0 if hits else 1)
    return hits


def test_a_word_of_the_experiment_record_finds_the_experiment_but_no_file(
    flowed: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    """We saw "fibrotic" (the description) return every file of EXP-42 in a content search."""
    assert cli.main(["search", "fibrotic"]) == 0
    assert "EXP-42" in capsys.readouterr().out

    for word in ("fibrotic", "biopsy", "Ada", "TruSeq", "Hepatology"):
        assert content_hits(capsys, word) == [], word
    assert content_hits(capsys, "COL1A1") == ["final/EXP-42/report/summary.md"]


def test_format_fastq_finds_gzipped_fastq_too(flowed: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    fastq = content_hits(capsys, "--format", "fastq", "--experiment", "EXP-42")
    gzipped = content_hits(capsys, "--format", "fastq.gz", "--experiment", "EXP-42")

    assert "raw/EXP-42/run1/S-001_R1.fastq.gz" in fastq and "raw/EXP-42/run1/S-002_R1.fastq" in fastq
    assert "raw/EXP-42/run1/S-001_R1.fastq.gz" in gzipped and "raw/EXP-42/run1/S-002_R1.fastq" not in gzipped
    assert cli.main(["search", "--format", "fastq", "--experiment", "EXP-42"]) == 0
    assert "S-001_R1.fastq.gz  fastq.gz" in capsys.readouterr().out
