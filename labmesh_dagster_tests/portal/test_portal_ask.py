"""``POST /api/ask`` streams the answer as NDJSON under the asker's access; ``/ask`` is the chat page.

Pinned here, on `ask_lab`: a signed-in person's answer streams as lines of
JSON, parts first, then citations, then one ``done``; each citation links the
passage on its file's page; two people of different groups asking the same
question get citations from their own experiments only, and a question only
the other group's files answer is refused with no citation; an API token asks
without a session, a browser's cookie needs the page's CSRF token, and no one
asks without signing in; a blank or overlong question is refused before
anything is searched; every question is audited as a search with detail
``ask``; the route is in the OpenAPI document with its streamed content; the
chat page has its question box, its token, and its script; a citation opens
its passage on the file's page for those who may see the file; an engine that
fails halfway ends the stream with an ``error`` line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from labmesh_dagster.access.audit import AuditFilter
from labmesh_dagster.ask.base import AnswerEvent, Evidence
from labmesh_dagster.core.answers import AnswerPart
from labmesh_dagster.core.errors import LabmeshError
from labmesh_dagster.portal.app import PortalContext, mount_portal
from labmesh_dagster.portal.sessions import SessionSigner
from labmesh_dagster_tests.ask.ask_lab import KIDNEY_NOTES, SUMMARY, AskLab, build_ask_lab
from labmesh_dagster_tests.portal.lab import PASSWORD

STAGE = "What stage was the fibrosis scored at?"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> AskLab:
    return build_ask_lab(tmp_path_factory.mktemp("portal-ask") / "home")


def signed_in(lab: AskLab, name: str) -> tuple[TestClient, str]:
    """A browser session and the CSRF token its chat page carries."""
    client = TestClient(lab.app)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert token
    answer = client.post(
        "/login", data={"csrf": token.group(1), "name": name, "password": PASSWORD, "next": "/"}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    page = client.get("/ask").text
    csrf = re.search(r'data-csrf="([^"]+)"', page)
    assert csrf
    return client, csrf.group(1)


def asked(client: TestClient, csrf: str, question: str) -> list[dict[str, Any]]:
    answer = client.post("/api/ask", json={"question": question}, headers={"x-csrf-token": csrf})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in answer.text.splitlines()]


def test_the_answer_streams_parts_then_citations_then_done(lab: AskLab) -> None:
    ada, csrf = signed_in(lab, "ada")
    events = asked(ada, csrf, STAGE)

    types = [event["type"] for event in events]
    assert types == sorted(types, key=["part", "citation", "done"].index) and types[-1] == "done"
    parts = [event for event in events if event["type"] == "part"]
    assert parts[0] == {"type": "part", "text": "Fibrosis was scored at stage 3 in every liver.", "citations": [1]}
    (citation,) = [event for event in events if event["type"] == "citation"]
    assert citation["passage_id"] == f"{SUMMARY}#0" and citation["experiment_id"] == "EXP-1"
    assert citation["href"].endswith("?passage=0#passage-0") and citation["href"].startswith("/files/raw/EXP-1/")
    assert events[-1] == {"type": "done", "answered": True, "engine": "extractive", "notes": []}


def test_two_groups_are_answered_from_their_own_experiments_only(lab: AskLab) -> None:
    ada, bob = signed_in(lab, "ada"), signed_in(lab, "bob")

    ada_cites = [e for e in asked(*ada, STAGE) if e["type"] == "citation"]
    bob_cites = [e for e in asked(*bob, STAGE) if e["type"] == "citation"]

    assert ada_cites and {c["experiment_id"] for c in ada_cites} <= {"EXP-1", "EXP-3"}
    assert bob_cites and {c["experiment_id"] for c in bob_cites} == {"EXP-2"}
    assert [c["passage_id"] for c in bob_cites] == [f"{KIDNEY_NOTES}#0"]
    refused = asked(*bob, "Which kit extracted the RNA?")
    assert [e["type"] for e in refused] == ["part", "done"] and refused[-1]["answered"] is False
    assert "RNeasy" not in json.dumps(refused)


def test_an_api_token_asks_without_a_session_and_no_one_asks_unsigned(lab: AskLab) -> None:
    token = lab.lab.access.tokens.create("bob", label="notebook").token
    client = TestClient(lab.app)

    with_token = client.post("/api/ask", json={"question": STAGE}, headers={"authorization": f"Bearer {token}"})
    unsigned = client.post("/api/ask", json={"question": STAGE})

    assert with_token.status_code == 200 and "kidney" in with_token.text
    assert unsigned.status_code == 401


def test_a_session_without_the_pages_csrf_token_is_refused(lab: AskLab) -> None:
    ada, _ = signed_in(lab, "ada")
    assert ada.post("/api/ask", json={"question": STAGE}).status_code == 403
    assert ada.post("/api/ask", json={"question": STAGE}, headers={"x-csrf-token": "forged"}).status_code == 403


@pytest.mark.parametrize("question", ["", "   ", "x" * 1001])
def test_a_blank_or_overlong_question_is_refused(lab: AskLab, question: str) -> None:
    ada, csrf = signed_in(lab, "ada")
    answer = ada.post("/api/ask", json={"question": question}, headers={"x-csrf-token": csrf})
    assert answer.status_code == 422


def test_every_question_is_audited_as_a_search_with_detail_ask(lab: AskLab) -> None:
    bob, csrf = signed_in(lab, "bob")
    asked(bob, csrf, "Which enzyme digested the proteins?")

    (entry, *_) = lab.lab.access.audit.read(AuditFilter(user="bob"))
    assert entry.event.kind.value == "search"
    assert (entry.event.query, entry.event.detail) == ("Which enzyme digested the proteins?", "ask")


def test_the_route_is_documented_with_its_stream(lab: AskLab) -> None:
    schema = TestClient(lab.app).get("/openapi.json").json()
    route = schema["paths"]["/api/ask"]["post"]
    assert "application/x-ndjson" in route["responses"]["200"]["content"]
    assert '"type": "done"' in route["responses"]["200"]["description"]
    assert route["requestBody"]["content"]["application/json"]


def test_the_chat_page_has_its_question_box_and_script(lab: AskLab) -> None:
    ada, _ = signed_in(lab, "ada")
    page = ada.get("/ask?q=Q30%20of%20LIV-01").text
    assert 'id="question"' in page and "Q30 of LIV-01</textarea>" in page
    assert '<script src="/static/ask.js"' in page
    assert ada.get("/static/ask.js").status_code == 200
    unsigned = TestClient(lab.app).get("/ask", follow_redirects=False)
    assert unsigned.status_code == 303 and unsigned.headers["location"].startswith("/login")


def test_a_citation_opens_its_passage_on_the_file_page_for_those_who_may_see_it(lab: AskLab) -> None:
    ada, csrf = signed_in(lab, "ada")
    (citation,) = [e for e in asked(ada, csrf, STAGE) if e["type"] == "citation"]

    page = ada.get(citation["href"])
    bob, _ = signed_in(lab, "bob")

    assert page.status_code == 200
    assert 'id="passage-0"' in page.text and "Cited passage: whole file" in page.text
    assert "<mark>Run summary for the liver cohort.\nFibrosis was scored at stage 3 in every liver." in page.text
    assert bob.get(citation["href"]).status_code == 404
    gone = ada.get(citation["href"].replace("passage=0#passage-0", "passage=99#passage-99"))
    assert "not in the file as it is now" in gone.text


class FailingHalfway:
    """An answerer that starts its answer, then loses its model (as Bedrock does after its retries)."""

    engine = "failing"

    def answer(self, evidence: Evidence) -> Iterator[AnswerEvent]:
        yield AnswerPart("The first words came,")
        raise LabmeshError("Bedrock kept answering ThrottlingException")


def test_an_engine_failing_halfway_ends_the_stream_with_an_error_line(lab: AskLab) -> None:
    context = PortalContext(
        catalog=lambda: lab.lab.catalog,
        store=lambda: lab.lab.store,
        access=lab.lab.access,
        signer=SessionSigner("test-secret"),
        secure_cookies=False,
        content_index=lambda: lab.index,
        answerer=FailingHalfway,
    )
    app = FastAPI()
    mount_portal(app, context)
    token = lab.lab.access.tokens.create("ada", label="notebook").token

    answer = TestClient(app).post("/api/ask", json={"question": STAGE}, headers={"authorization": f"Bearer {token}"})

    events = [json.loads(line) for line in answer.text.splitlines()]
    assert [event["type"] for event in events] == ["part", "error"]
    assert events[-1]["detail"] == "Bedrock kept answering ThrottlingException"
