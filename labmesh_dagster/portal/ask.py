"""The chat: ``/ask`` (a page) and ``POST /api/ask`` (the answer streamed as NDJSON), both under the asker's access.

The route is thin: it names the viewer, audits the question (as a search, with
detail ``ask``), and streams what `labmesh_dagster.ask.asking.ask` yields, one
JSON object per line: ``part`` events as the answer's text comes, then
``citation`` events, then one ``done`` (an ``error`` instead when the engine
fails halfway). The page reads the stream with ``fetch`` and shows each part
as it arrives (``static/ask.js``).

A browser signed in by cookie sends its session's CSRF token in the
``X-CSRF-Token`` header (the page has it): the cookie alone must not let
another site ask in someone's name. Scripts with an API token need none.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field

from labmesh_dagster.access.audit import AuditKind
from labmesh_dagster.ask.asking import MAX_QUESTION, BadQuestion, ask, checked_question
from labmesh_dagster.ask.base import AnswerEvent, event_dict
from labmesh_dagster.ask.engines import extractive_answerer
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.errors import LabmeshError
from labmesh_dagster.portal.context import PortalContext
from labmesh_dagster.portal.sessions import csrf_matches
from labmesh_dagster.portal.viewing import Viewing

NDJSON = "application/x-ndjson"


class AskRequest(BaseModel):
    """A question for the chat."""

    question: str = Field(
        min_length=1, max_length=MAX_QUESTION, examples=["What is the Q30 of LIV-01?"], description="The question."
    )


STREAM_DOC = {
    200: {
        "description": (
            "The answer as newline-delimited JSON, one event a line, in this order: "
            '`{"type": "part", "text": ..., "citations": [1]}` for each piece of the answer as it comes; '
            '`{"type": "citation", "number": 1, "title": ..., "href": ..., "experiment_id": ..., "dataset": ..., '
            '"passage_id": ..., "location": ..., "quote": ...}` for each numbered source; then '
            '`{"type": "done", "answered": true, "engine": "extractive", "notes": []}`. '
            "An answer that is not `answered` says that no document the asker may see answers it, and cites nothing. "
            'When the engine fails halfway, `{"type": "error", "detail": ...}` ends the stream instead of `done`.'
        ),
        "content": {NDJSON: {"schema": {"type": "string"}}},
    }
}


def create_ask_router(context: PortalContext) -> APIRouter:
    router = APIRouter()
    viewing = Viewing(context)

    @router.get("/ask", response_class=HTMLResponse, include_in_schema=False)
    async def ask_page(request: Request) -> HTMLResponse:
        viewing.required_viewer(request, api=False)
        return viewing.page(request, "ask.html", question=request.query_params.get("q", ""))

    @router.post("/api/ask", response_class=StreamingResponse, responses=STREAM_DOC)  # type: ignore[arg-type]
    async def ask_api(request: Request, body: AskRequest) -> StreamingResponse:
        """Ask a question of the lab's files and catalog; the answer streams, each claim with numbered citations.

        Only what the asker may see is searched, read or cited.
        """
        viewer = viewing.required_viewer(request, api=True)
        if not request.headers.get("authorization", "").lower().startswith("bearer "):
            session = viewing.session_of(request)
            if session is None or not csrf_matches(session, request.headers.get("x-csrf-token")):
                raise HTTPException(403, "send the page's CSRF token as X-CSRF-Token, or an API token")
        try:
            question = checked_question(body.question)
        except BadQuestion as error:
            raise HTTPException(422, str(error)) from error
        viewing.audit(request, viewer, AuditKind.SEARCH, query=question, detail="ask")
        return StreamingResponse(_lines(_answer(viewer, question)), media_type=NDJSON)

    def _answer(viewer: Viewer, question: str) -> Iterator[AnswerEvent]:
        answerer = context.answerer() if context.answerer else extractive_answerer()
        index = context.content_index() if context.content_index else None
        return ask(
            question,
            viewer=viewer,
            content_index=index,
            catalog=context.catalog(),
            answerer=answerer,
            store=context.store(),
        )

    return router


def _lines(events: Iterator[AnswerEvent]) -> Iterator[bytes]:
    """Each event as one JSON line; an engine that fails halfway ends the stream with an ``error`` line.

    A sync iterator: Starlette runs it in its thread pool, so embedding or a
    model's stream never blocks the server's loop.
    """
    try:
        for event in events:
            yield _line(event_dict(event))
    except LabmeshError as error:
        yield _line({"type": "error", "detail": str(error)})


def _line(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, ensure_ascii=False) + "\n").encode("utf-8")
