"""The MCP server, driven in process by the SDK's own client, as two people of different groups.

The lab is the portal's (`labmesh_dagster_tests.portal.lab`): ada (Genomics) may see EXP-1 and her own
EXP-3, bob (Proteomics) EXP-2; the content index holds one file of each group; the lineage is EXP-1's, whose
processed run also read EXP-2's data. Pinned here:
- the server offers search, experiment, lineage and ask, each read-only;
- through every tool each person sees only their own experiments: search's datasets and passages, a
  lookup (another group's experiment is "not found", as one that does not exist), lineage (EXP-2's node in
  EXP-1's lineage is "restricted" for ada; bob cannot open EXP-1's lineage at all), and ask's answer and
  citations (Bedrock's answerer, through the validating fake, given the passages retrieved for the asker);
- over streamable HTTP, each request acts as the user of its Bearer API token; no token, an unknown or a
  revoked one is 401 before any tool runs;
- who a stdio server acts as is settled before it serves: a known user, a valid token, or the admin only
  when asked with --admin, which it says; an admin user needs --admin; nobody or a stranger is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from labmesh_dagster.access.audit import AuditKind
from labmesh_dagster.ask.base import AnswerEvent, Evidence
from labmesh_dagster.connectors.lineage.sqlite import SqliteLineageLog
from labmesh_dagster.connectors.llm.bedrock_converse import BedrockAnswerer
from labmesh_dagster.connectors.search.base import ContentDocument, ContentFilter
from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.core.access import LOCAL_ADMIN, Viewer
from labmesh_dagster.core.passages import LocationKind, Passage, PassageHit, PassageLocation
from labmesh_dagster.mcp.server import (
    UnknownIdentity,
    admin_notice,
    build_server,
    http_auth,
    stdio_viewer,
    token_viewer,
)
from labmesh_dagster.mcp.tools import LabTools
from labmesh_dagster_tests.fake_bedrock_runtime import CLAUDE, FakeBedrockRuntimeClient
from labmesh_dagster_tests.portal.lab import PortalLab, build_lab
from labmesh_dagster_tests.portal.lineage_lab import cross_experiment_events

DOCUMENTS = [
    ContentDocument(
        "raw/EXP-1/run1/summary.txt",
        "summary.txt",
        "Fibrosis run summary. The Q30 of LIV-01 was 93.1 percent.",
        "/store/raw/EXP-1/run1/summary.txt",
        {"experiment_id": "EXP-1", "group": "Genomics", "zone": "raw", "format": "txt"},
        ("group:genomics", "user:ada"),
    ),
    ContentDocument(
        "raw/EXP-2/KID-01.csv",
        "KID-01.csv",
        "Fibrosis in kidney: albumin abundance 12.",
        "/store/raw/EXP-2/KID-01.csv",
        {"experiment_id": "EXP-2", "group": "Proteomics", "zone": "raw", "format": "csv"},
        ("group:proteomics", "user:bob"),
    ),
]


def whole_file_passages(index: SqliteContentIndex, text: str, viewer: Viewer) -> tuple[PassageHit, ...]:
    """The index's matching files under ``viewer``, each as one passage (what `ask` would retrieve)."""
    hits = index.search(text, filters=ContentFilter(), viewer=viewer, limit=5)
    return tuple(
        PassageHit(
            Passage(hit.id, 0, hit.excerpt, PassageLocation(LocationKind.WHOLE)),
            hit.title,
            hit.uri,
            hit.score,
            hit.attributes,
        )
        for hit in hits
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mcp")


@pytest.fixture(scope="module")
def lab(home: Path) -> PortalLab:
    """One lab for the module: the tools only read it (and append to its audit log)."""
    return build_lab(home)


@pytest.fixture(scope="module")
def tools(lab: PortalLab, home: Path) -> LabTools:
    index = SqliteContentIndex(home / "content.sqlite")
    index.prepare()
    assert index.replace(DOCUMENTS).ok
    log = SqliteLineageLog(home / "lineage.sqlite")
    assert log.emit(cross_experiment_events()) == []
    answerer = BedrockAnswerer(FakeBedrockRuntimeClient(), model_id=CLAUDE)

    def asker(question: str, viewer: Viewer) -> Iterator[AnswerEvent]:
        return answerer.answer(Evidence(question, viewer, whole_file_passages(index, question, viewer)))

    return LabTools(
        catalog=lambda: lab.catalog,
        lineage_log=lambda: log,
        content_index=lambda: index,
        asker=asker,
        audit=lab.access.audit,
        secret=b"mcp test secret",
    )


def call(tools: LabTools, viewer: Viewer, name: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
    """One tool call through the SDK's client, in process: (is_error, structured content or error text)."""

    async def session() -> tuple[bool, Any]:
        async with Client(build_server(tools, lambda: viewer)) as client:
            result = await client.call_tool(name, arguments)
        if result.is_error:
            return True, " ".join(getattr(block, "text", "") for block in result.content)
        return False, result.structured_content

    return anyio.run(session)


def as_user(lab: PortalLab, name: str) -> Viewer:
    return stdio_viewer(lab.access, user=name, token=None, admin=False)


def test_the_server_offers_four_read_only_tools(tools: LabTools) -> None:
    async def listing() -> list[Any]:
        async with Client(build_server(tools, lambda: LOCAL_ADMIN)) as client:
            return list((await client.list_tools()).tools)

    listed = anyio.run(listing)
    assert sorted(tool.name for tool in listed) == ["ask", "experiment", "lineage", "search"]
    assert all(tool.annotations and tool.annotations.read_only_hint for tool in listed)


def test_search_finds_only_each_persons_own_experiments_and_passages(lab: PortalLab, tools: LabTools) -> None:
    seen = {}
    for name in ("ada", "bob"):
        failed, found = call(tools, as_user(lab, name), "search", {"query": "fibrosis"})
        assert not failed
        seen[name] = (
            {dataset["experiment_id"] for dataset in found["datasets"]},
            {passage["experiment_id"] for passage in found["passages"]},
        )

    assert seen["ada"] == ({"EXP-1", "EXP-3"}, {"EXP-1"})
    assert seen["bob"] == ({"EXP-2"}, {"EXP-2"})
    searches = [
        entry.event
        for entry in lab.access.audit.read()
        if entry.event.kind is AuditKind.SEARCH and entry.event.query == "fibrosis"
    ]
    assert sorted((event.user, event.query, event.detail) for event in searches) == [
        ("ada", "fibrosis", "mcp"),
        ("bob", "fibrosis", "mcp"),
    ]


def test_an_experiment_of_another_group_is_not_found_like_one_that_does_not_exist(
    lab: PortalLab, tools: LabTools
) -> None:
    ada, bob = as_user(lab, "ada"), as_user(lab, "bob")

    failed, own = call(tools, ada, "experiment", {"experiment_id": "EXP-1"})
    assert not failed and own["experiment"]["id"] == "EXP-1"
    assert [file["key"] for file in own["datasets"]["raw"]["files"]][0].startswith("raw/EXP-1/")

    hidden = call(tools, bob, "experiment", {"experiment_id": "EXP-1"})
    missing = call(tools, bob, "experiment", {"experiment_id": "EXP-404"})
    assert hidden[0] and "no experiment 'EXP-1' here, or not one you may see" in hidden[1]
    assert missing == (True, hidden[1].replace("EXP-1", "EXP-404"))
    assert call(tools, bob, "experiment", {"experiment_id": "EXP-2"})[0] is False


def test_lineage_shows_another_groups_experiment_only_as_restricted(lab: PortalLab, tools: LabTools) -> None:
    failed, graph = call(tools, as_user(lab, "ada"), "lineage", {"experiment_id": "EXP-1"})

    assert not failed and graph["experiment_id"] == "EXP-1"
    restricted = [node for node in graph["nodes"] if node.get("restricted")]
    assert len(restricted) == 1 and set(restricted[0]) == {"id", "label", "restricted"}
    assert "EXP-2" not in str(graph)
    failed, refused = call(tools, as_user(lab, "bob"), "lineage", {"experiment_id": "EXP-1"})
    assert failed and refused.endswith("no experiment 'EXP-1' here, or not one you may see")
    _, admin_graph = call(tools, LOCAL_ADMIN, "lineage", {"experiment_id": "EXP-1"})
    assert not any(node.get("restricted") for node in admin_graph["nodes"]) and "EXP-2" in str(admin_graph)


def test_ask_cites_only_the_askers_own_experiments(lab: PortalLab, tools: LabTools) -> None:
    question = {"question": "fibrosis?"}
    answers = {name: call(tools, as_user(lab, name), "ask", question)[1] for name in ("ada", "bob")}

    assert answers["ada"]["answered"] and answers["bob"]["answered"]
    assert {citation["experiment_id"] for citation in answers["ada"]["citations"]} == {"EXP-1"}
    assert {citation["experiment_id"] for citation in answers["bob"]["citations"]} == {"EXP-2"}
    assert "kidney" not in answers["ada"]["text"] and "Q30" not in answers["bob"]["text"]


def test_the_ask_tool_is_left_out_when_asking_is_not_set_up(tools: LabTools) -> None:
    without_asking = dataclasses.replace(tools, asker=None)

    async def listing() -> list[str]:
        async with Client(build_server(without_asking, lambda: LOCAL_ADMIN)) as client:
            return [tool.name for tool in (await client.list_tools()).tools]

    assert sorted(anyio.run(listing)) == ["experiment", "lineage", "search"]


def test_a_stdio_server_acts_as_a_known_user_or_token_and_as_admin_only_when_asked(lab: PortalLab) -> None:
    access = lab.access
    token = access.tokens.create("bob", label="assistant").token

    assert as_user(lab, "ada") == Viewer("ada", frozenset({"Genomics"}))
    assert stdio_viewer(access, user=None, token=token, admin=False).name == "bob"
    assert admin_notice(as_user(lab, "ada")) is None
    admin = stdio_viewer(access, user=None, token=None, admin=True)
    assert admin.admin and "admin" in (admin_notice(admin) or "")
    assert stdio_viewer(access, user="root", token=None, admin=True).admin

    refusals = [
        ({"user": None, "token": None, "admin": False}, "say who the server acts as"),
        ({"user": "eve", "token": None, "admin": False}, "there is no user 'eve'"),
        ({"user": None, "token": "lm_not_a_token", "admin": False}, "the token is not valid"),
        ({"user": "root", "token": None, "admin": False}, "root is an admin .* add --admin"),
        ({"user": "ada", "token": token, "admin": False}, "not both"),
    ]
    for arguments, message in refusals:
        with pytest.raises(UnknownIdentity, match=message):
            stdio_viewer(access, **arguments)


def over_http(lab: PortalLab, tools: LabTools, token: str | None) -> tuple[int, Any]:
    """A search through streamable HTTP in process, with ``token`` as the Bearer: (HTTP status, datasets' ids)."""
    url = "http://127.0.0.1:8765/mcp"
    server = build_server(tools, token_viewer, access=lab.access, auth=http_auth(url, "http://127.0.0.1:8000"))
    app = server.streamable_http_app(json_response=True, stateless_http=True)
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def session() -> tuple[int, Any]:
        async with server.session_manager.run():
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, headers=headers) as http:
                listing = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
                if listing.status_code != 200:
                    return listing.status_code, None
                async with Client(streamable_http_client(url, http_client=http)) as client:
                    result = await client.call_tool("search", {"query": "fibrosis"})
        assert result.structured_content is not None
        return 200, {dataset["experiment_id"] for dataset in result.structured_content["datasets"]}

    return anyio.run(session)


def test_over_http_each_request_acts_as_its_bearer_tokens_user(lab: PortalLab, tools: LabTools) -> None:
    ada = lab.access.tokens.create("ada", label="assistant").token
    bob = lab.access.tokens.create("bob", label="assistant").token
    revoked = lab.access.tokens.create("bob", label="old")
    lab.access.tokens.revoke(revoked.info.id)

    assert over_http(lab, tools, ada) == (200, {"EXP-1", "EXP-3"})
    assert over_http(lab, tools, bob) == (200, {"EXP-2"})
    assert over_http(lab, tools, None) == (401, None)
    assert over_http(lab, tools, "lmt_0_not_a_token") == (401, None)
    assert over_http(lab, tools, revoked.token) == (401, None)
