"""The ASGI app: ``POST /eln/events/{source}`` into the inbox, and a health check.

Each request is judged whole before anything is written (signature, then
payload); an accepted event is stored in the inbox and answered 202 at once,
so the sender never waits on an ELN or on Dagster. A redelivery of an event
already accepted is answered 409 and writes nothing. Signatures are checked in
a worker thread, because checking a Benchling app's signature may fetch its
keys from Benchling, which must not stall the other requests.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from labmesh_dagster.api.benchling_signatures import JwksCache
from labmesh_dagster.api.webhooks import WebhookRefused, WebhookSource, parse, verify
from labmesh_dagster.connectors.eln.inbox import EventInbox
from labmesh_dagster.settings import Settings

MAX_BODY_BYTES = 1024 * 1024


def webhook_sources(settings: Settings) -> dict[str, WebhookSource]:
    """The configured senders by name, each with its secrets and, for a Benchling app, its app definition id."""
    return {
        source.name: WebhookSource(source.name, source.secrets, source.payload, source.benchling_app_definition_id)
        for source in settings.webhook_sources
    }


def create_app_from_settings(settings: Settings, inbox: EventInbox) -> FastAPI:
    """`labmesh api` as configured: every webhook source, Benchling app keys fetched from the configured URL."""
    return create_app(inbox, webhook_sources(settings), JwksCache(settings.benchling_jwks_url))


def create_app(inbox: EventInbox, sources: Mapping[str, WebhookSource], jwks: JwksCache | None = None) -> FastAPI:
    """The app; ``jwks`` caches Benchling app keys (one is made, fetching from Benchling, if a source needs it)."""
    if jwks is None and any(source.benchling_app_definition_id for source in sources.values()):
        jwks = JwksCache()
    app = FastAPI(title="labmesh api", description="ELN events in; the discovery portal will follow.")

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/eln/events/{source}", status_code=202)
    async def receive_event(source: str, request: Request) -> JSONResponse:
        try:
            sender = sources.get(source)
            if sender is None:
                raise WebhookRefused(404, f"no webhook source {source!r} is configured")
            body = await request.body()
            if len(body) > MAX_BODY_BYTES:
                raise WebhookRefused(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
            event_id = await run_in_threadpool(verify, sender, body, dict(request.headers), jwks)
            events = parse(sender, event_id, body)
        except WebhookRefused as refusal:
            return JSONResponse({"accepted": False, "reason": refusal.reason}, status_code=refusal.status)
        accepted = [event for event in events if inbox.put(event)]
        if events and not accepted:
            return JSONResponse(
                {"accepted": False, "reason": f"event {event_id} was already accepted"}, status_code=409
            )
        return JSONResponse({"accepted": True, "events": len(accepted)}, status_code=202)

    return app
