"""`labmesh ask` answers on the lab's machine as the local admin, with numbered citations and where each one is.

Pinned here, on `ask_lab`: the text output quotes the answer with its [n]
marks, then lists each source with its file, its place in the file, its
experiment and dataset, and the portal link that opens the passage; it says
on stderr that it acts as the local admin; ``--json`` prints the whole answer;
a question nothing answers exits 1 with the refusal and no source; a
catalog question is answered from the catalog; an empty question is a clear
error (exit 2), not a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labmesh_dagster import cli
from labmesh_dagster.settings import Settings
from labmesh_dagster_tests.ask.ask_lab import SUMMARY, build_ask_lab


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cli-ask") / "home"
    build_ask_lab(home)
    return home


def run(home: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["ask", *argv], settings=Settings.from_env({"LABMESH_HOME": str(home)}))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_answer_is_printed_with_its_numbered_sources_and_their_places(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(home, capsys, "Which", "kit", "extracted", "the", "RNA?")
    assert code == 0
    assert out.splitlines()[0] == "The liver RNA was extracted with the RNeasy kit. [1]"
    assert "Sources:" in out
    source = out.split("Sources:\n")[1].splitlines()
    assert source[0].startswith("[1] ") and source[0].endswith(".txt, whole file (EXP-1, raw dataset)")
    assert f"    {SUMMARY}" in out
    assert "?passage=0#passage-0" in out
    assert "acts as the local admin" in err


def test_json_prints_the_whole_answer(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(home, capsys, "--json", "What stage was the fibrosis scored at?")
    answer = json.loads(out)
    assert code == 0 and answer["answered"] and answer["engine"] == "extractive"
    # The local admin sees every group's files: both notes answer.
    assert {citation["experiment_id"] for citation in answer["citations"]} <= {"EXP-1", "EXP-2"}
    assert all(citation["quote"] for citation in answer["citations"])


def test_a_question_nothing_answers_exits_1_with_no_source(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(home, capsys, "Who funded this project?")
    assert code == 1
    assert out.strip() == "No document you may see answers this question."


def test_a_catalog_question_is_answered_from_the_catalog(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(home, capsys, "who owns EXP-2")
    assert code == 0
    assert "EXP-2 (Kidney proteomics) has owner bob. [1]" in out
    assert "[1] EXP-2: Kidney proteomics (EXP-2)" in out and "    /experiments/EXP-2" in out


def test_an_empty_question_is_a_clear_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(home, capsys, " ")
    assert code == 2 and "ask a question: it is empty" in err
