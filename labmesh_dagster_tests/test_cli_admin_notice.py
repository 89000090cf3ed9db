"""The CLI acts as the local admin on the lab's machine, and the commands that read for a person say so.

Contract: `labmesh search`, `status`, `files`, `lineage` and `audit` see every
experiment whatever its group, and each prints exactly one line saying so on
stderr, before its answer, whatever the answer (a hit, nothing found, an
error); stdout, which scripts parse, holds only the answer (the JSON of
``--json`` still parses). LABMESH_ADMIN_NOTICE=0 leaves the line out.
Commands that read nothing for a person (`extract`, `users list`) say nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labmesh_dagster import cli
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.settings import Settings
from labmesh_dagster_tests.conftest import make_settings

NOTICE = "acts as the local admin, so it sees every experiment, whatever its group"


def lab_home(home: Path, **env: str) -> Settings:
    """A catalog with one experiment of a group the CLI's user is in no way part of."""
    settings = make_settings(home, **env)
    catalog = SqliteCatalog(settings.catalog_path)
    catalog.upsert_experiment(ExperimentRecord(id="EXP-1", title="Liver", owner="ada", group="Hepatology"), {})
    entry = ManifestEntry(key="raw/EXP-1/liver.txt", size=5, sha256="0" * 64, format="txt", created="")
    catalog.upsert_dataset(Manifest.build("EXP-1", "raw", [entry]), "file:///raw/EXP-1")
    return settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return lab_home(tmp_path / "home")


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "liver"],
        ["search", "zebrafish"],  # nothing found: exit 1, and still said
        ["status"],
        ["files", "EXP-1"],
        ["files", "EXP-404"],  # an error: exit 2, and still said
        ["lineage", "EXP-1"],
        ["audit"],
    ],
)
def test_a_command_reading_for_a_person_says_once_on_stderr_that_it_acts_as_the_local_admin(
    settings: Settings, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(argv, settings=settings)

    captured = capsys.readouterr()
    notices = [line for line in captured.err.splitlines() if NOTICE in line]
    assert notices == [f"labmesh {argv[0]}: {cli.ADMIN_NOTICE}"]
    assert captured.err.startswith(notices[0])  # before anything the command says
    assert "local admin" not in captured.out


def test_the_admin_sees_every_groups_experiment_and_stdout_stays_parseable(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["search", "liver", "--json"], settings=settings) == 0

    captured = capsys.readouterr()
    assert [hit["experiment_id"] for hit in json.loads(captured.out)] == ["EXP-1"]
    assert NOTICE in captured.err


def test_labmesh_admin_notice_0_leaves_the_line_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = lab_home(tmp_path / "home", LABMESH_ADMIN_NOTICE="0")

    assert cli.main(["search", "liver"], settings=settings) == 0

    captured = capsys.readouterr()
    assert "EXP-1" in captured.out and captured.err == ""


@pytest.mark.parametrize("argv", [["users", "list"], ["extract", "{home}/catalog.sqlite"]])
def test_commands_that_read_nothing_for_a_person_say_nothing_of_it(
    settings: Settings, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main([arg.format(home=settings.home) for arg in argv], settings=settings)

    assert NOTICE not in capsys.readouterr().err
