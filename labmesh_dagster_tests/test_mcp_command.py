"""`labmesh mcp`: the MCP server an assistant starts, acting as one person, and never as an admin unasked.

Pinned here: without --user, --token or --admin it does not start and says how to name someone; an
unknown user, an admin user without --admin, and --user with --http are refused before serving (exit 2,
the reason on stderr, nothing on stdout, which is the protocol's). The ask it serves is `ask` over the
lab's own ports and the engine the settings name: a catalog question is answered from the asker's
experiments only. Marked slow: an assistant's view end
to end, `labmesh mcp --user ada` started as a subprocess and driven over stdio by the SDK's client, finds
ada's experiments and not bob's, and --admin says on stderr that it sees every experiment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters, stdio_client

from labmesh_dagster import cli
from labmesh_dagster.access.stores import AccessStores
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.mcp.lab import lab_tools
from labmesh_dagster.ports import Ports
from labmesh_dagster_tests.conftest import make_settings
from labmesh_dagster_tests.portal.lab import build_lab

ADA = Viewer("ada", frozenset({"Genomics"}))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lab_home = tmp_path_factory.mktemp("mcp") / "home"
    build_lab(lab_home)  # ada (Genomics), bob (Proteomics), root (admin), in LABMESH_HOME's files
    return lab_home


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        ([], "say who the server acts as: --user NAME, --token TOKEN, or --admin"),
        (["--user", "eve"], "there is no user 'eve'"),
        (["--user", "root"], "root is an admin and sees every experiment: add --admin"),
        (["--http", "--user", "ada"], "over HTTP each request's API token says who asks"),
    ],
)
def test_mcp_does_not_start_without_someone_to_act_as(
    home: Path, argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["mcp", *argv], settings=make_settings(home)) == 2

    out, err = capsys.readouterr()
    assert out == "" and reason in err


def test_the_served_ask_uses_the_labs_own_ports_and_engine_under_the_asker(home: Path) -> None:
    access = AccessStores.open(make_settings(home).access)
    tools = lab_tools(Ports(make_settings(home)), access)
    question = "Which experiments ran on the Orbitrap?"

    bobs, adas = tools.ask(Viewer("bob", frozenset({"Proteomics"})), question), tools.ask(ADA, question)

    assert bobs["answered"] and [citation["experiment_id"] for citation in bobs["citations"]] == ["EXP-2"]
    assert not adas["answered"] and adas["citations"] == [] and "EXP-2" not in str(adas)


def stdio_session(home: Path, *argv: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """`labmesh mcp ARGV` as a subprocess: a search for fibrosis, a lookup of EXP-2, and what it said on stderr."""
    env = {**os.environ, "LABMESH_HOME": str(home), "LABMESH_DEMO": "0"}
    command = [sys.executable, "-m", "labmesh_dagster.cli", "mcp", *argv]
    errors = home / "mcp-stderr.txt"

    async def session() -> tuple[dict[str, Any], dict[str, Any]]:
        with errors.open("w", encoding="utf-8") as stderr:
            server = StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=str(home))
            async with Client(stdio_client(server, errlog=stderr)) as client:
                found = await client.call_tool("search", {"query": "fibrosis"})
                lookup = await client.call_tool("experiment", {"experiment_id": "EXP-2"})
        return (
            {"error": found.is_error, **(found.structured_content or {})},
            {"error": lookup.is_error, **(lookup.structured_content or {})},
        )

    found, lookup = anyio.run(session)
    return found, lookup, errors.read_text(encoding="utf-8")


@pytest.mark.slow
def test_an_assistant_over_stdio_sees_what_its_user_sees_and_admin_says_so(home: Path) -> None:
    found, lookup, said = stdio_session(home, "--user", "ada")
    assert {dataset["experiment_id"] for dataset in found["datasets"]} == {"EXP-1", "EXP-3"}
    assert lookup["error"] is True
    assert "admin" not in said

    found, lookup, said = stdio_session(home, "--admin")
    assert {dataset["experiment_id"] for dataset in found["datasets"]} == {"EXP-1", "EXP-2", "EXP-3"}
    assert lookup["error"] is False
    assert "labmesh mcp acts as local admin, an admin: assistants using it see every experiment" in said
