"""The ASGI app: ``POST /eln/events/{source}`` into the inbox, and a health check.

Each request is judged before anything is written, cheapest check first, so
bad input is turned away before it costs anything: the source, the declared
size, the ``webhook-*`` headers, then the body (read up to `MAX_BODY_BYTES`
and no further, whatever ``Content-Length`` claimed), the signature, the
payload. An accepted event is stored in the inbox and answered 202 at once, so
the sender never waits on an ELN or on Dagster. A redelivery of an event
already accepted is answered 409 and writes nothing.

Blocking work runs in worker threads, never on the event loop: checking a
Benchling app's signature may fetch its keys from Benchling, and an inbox
write may wait on the inbox's lock; on the loop, either would stall every
other request, the health check included.

There is no ``/docs``: FastAPI's pages load Swagger UI from a CDN, which a
lab's server may not reach and should not have to trust.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from labmesh_dagster.api.benchling_signatures import JwksCache
from labmesh_dagster.api.webhooks import WebhookRefused, WebhookSource, check_headers, parse, verify
from labmesh_dagster.connectors.eln.base import ElnEvent
from labmesh_dagster.connectors.eln.inbox import EventInbox
from labmesh_dagster.settings import Settings, SettingsError

MAX_BODY_BYTES = 1024 * 1024


def webhook_sources(settings: Settings) -> dict[str, WebhookSource]:
    """The configured senders by name, each read by the configured ELN; one it cannot read stops startup."""
    sources = {}
    for source in settings.webhook_sources:
        try:
            sources[source.name] = WebhookSource(
                source.name, source.secrets, source.payload, source.benchling_app_definition_id, eln=settings.eln
            )
        except ValueError as exc:
            variable = f"LABMESH_WEBHOOK_{source.name.upper()}_PAYLOAD"
            raise SettingsError(f"{exc}: set LABMESH_ELN to the ELN it feeds, or {variable}") from exc
    return sources


def create_app_from_settings(settings: Settings, inbox: EventInbox) -> FastAPI:
    """`labmesh api` as configured: every webhook source, Benchling app keys fetched from the configured URL."""
    return create_app(inbox, webhook_sources(settings), JwksCache(settings.benchling_jwks_url))


def check_declared_size(headers: Mapping[str, str], limit: int = MAX_BODY_BYTES) -> None:
    """Refuse with 413 a request whose ``Content-Length`` says more than ``limit``: it costs nothing to believe."""
    declared = headers.get("content-length")
    if declared is None:
        return
    if not declared.isdigit():
        raise WebhookRefused(400, "Content-Length is not a number of bytes")
    if int(declared) > limit:
        raise WebhookRefused(413, f"the body is larger than {limit} bytes")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refused with 413 at the first byte past ``limit``.

    A ``Content-Length`` that says little is not believed: the body is counted
    as it streams in (chunked bodies have no length at all), so the server
    never holds more than ``limit`` and one chunk of it.
    """
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise WebhookRefused(413, f"the body is larger than {limit} bytes")
    return bytes(body)


def keep(inbox: EventInbox, events: Sequence[ElnEvent]) -> list[ElnEvent]:
    """The events newly kept in the inbox (a redelivered one is not); blocking, so called in a worker thread."""
    return [event for event in events if inbox.put(event)]


def create_app(inbox: EventInbox, sources: Mapping[str, WebhookSource], jwks: JwksCache | None = None) -> FastAPI:
    """The app; ``jwks`` caches Benchling app keys (one is made, fetching from Benchling, if a source needs it)."""
    if jwks is None and any(source.benchling_app_definition_id for source in sources.values()):
        jwks = JwksCache()
    app = FastAPI(
        title="labmesh api",
        description="ELN events in; the discovery portal will follow.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/eln/events/{source}", status_code=202)
    async def receive_event(source: str, request: Request) -> JSONResponse:
        try:
            sender = sources.get(source)
            if sender is None:
                raise WebhookRefused(404, f"no webhook source {source!r} is configured")
            check_declared_size(request.headers)
            check_headers(request.headers)
            body = await read_body(request)
            event_id = await run_in_threadpool(verify, sender, body, dict(request.headers), jwks)
            events = parse(sender, event_id, body)
        except WebhookRefused as refusal:
            return JSONResponse({"accepted": False, "reason": refusal.reason}, status_code=refusal.status)
        accepted = await run_in_threadpool(keep, inbox, events)
        if events and not accepted:
            return JSONResponse(
                {"accepted": False, "reason": f"event {event_id} was already accepted"}, status_code=409
            )
        return JSONResponse({"accepted": True, "events": len(accepted)}, status_code=202)

    return app
