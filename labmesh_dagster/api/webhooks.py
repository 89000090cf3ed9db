"""Webhook requests judged before anything is written: signature, freshness, then the payload.

Signatures follow Standard Webhooks (what Svix sends, and Benchling among
others): HMAC-SHA256 over ``id.timestamp.body`` with the raw body, compared in
constant time by the ``standardwebhooks`` library, the timestamp within five
minutes, several ``v1,`` signatures allowed and several secrets configurable,
so keys rotate without a gap. A source configured as a Benchling app is also
(or only) checked against the app's published keys (`benchling_signatures`):
its ``v1bder,`` entries, ECDSA over the same ``id.timestamp.body``. Only a
request that passes is parsed; every refusal is a `WebhookRefused` with the
HTTP status and a reason the sender can act on (503 when the app's keys cannot
be fetched: the sender should retry, not give up).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from standardwebhooks.webhooks import Webhook

from labmesh_dagster.api.benchling_signatures import (
    JwksCache,
    JwksUnavailable,
    SignatureRefused,
    app_signatures,
    verify_app_webhook,
)
from labmesh_dagster.connectors.eln.base import ElnEvent
from labmesh_dagster.core.errors import InvalidExperimentId, LabmeshError
from labmesh_dagster.core.ids import validate_experiment_id


class WebhookRefused(LabmeshError):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class WebhookSource:
    """One sender: its name in the URL, how it signs, and the shape of its payloads.

    ``secrets`` (newest first) verify Standard Webhooks HMAC signatures;
    ``benchling_app_definition_id`` makes it a Benchling app, verified with the
    keys Benchling publishes for it. Either or both; a request passes if one does.
    """

    name: str
    secrets: tuple[str, ...] = ()
    payload: str = "labmesh"  # "labmesh" (the generic shape) or "benchling"
    benchling_app_definition_id: str | None = None

    def __post_init__(self) -> None:
        if not self.secrets and not self.benchling_app_definition_id:
            raise ValueError(f"webhook source {self.name!r} needs a secret or a Benchling app definition id")
        if self.payload not in PARSERS:
            raise ValueError(f"webhook source {self.name!r}: unknown payload shape {self.payload!r}")
        if self.benchling_app_definition_id and self.payload != "benchling":
            raise ValueError(f"webhook source {self.name!r}: a Benchling app sends the benchling payload shape")


HMAC_REFUSAL = "signature does not match, or the timestamp is more than 5 minutes away"


def verify(source: WebhookSource, body: bytes, headers: Mapping[str, str], jwks: JwksCache | None = None) -> str:
    """The sender's event id, once the source's secret or Benchling app signed this exact body recently; else refused.

    The app's keys are consulted only for a request carrying app signatures (or
    for an app-only source), so HMAC-signed requests never wait on Benchling.
    ``jwks`` is required for a source with a Benchling app; it is blocking I/O.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    if not all(lowered.get(name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature")):
        raise WebhookRefused(401, "missing webhook-id, webhook-timestamp or webhook-signature header")
    for secret in source.secrets:
        try:
            Webhook(secret).verify(body, lowered, json_parse=False)
        except Exception:  # the library raises several kinds for malformed headers and bodies alike
            continue
        return lowered["webhook-id"]
    app = source.benchling_app_definition_id
    if app and (not source.secrets or app_signatures(lowered["webhook-signature"])):
        if jwks is None:
            raise ValueError(f"webhook source {source.name!r} is a Benchling app: verify needs a JwksCache")
        try:
            verify_app_webhook(jwks, app, body, lowered)
        except SignatureRefused as exc:
            raise WebhookRefused(401, str(exc)) from exc
        except JwksUnavailable as exc:
            raise WebhookRefused(503, f"cannot check the Benchling app signature now, retry later: {exc}") from exc
        return lowered["webhook-id"]
    raise WebhookRefused(401, HMAC_REFUSAL)


def _generic(event_id: str, source: str, data: Mapping[str, Any]) -> list[ElnEvent]:
    """``{"entry_id": "...", "kind": "changed"|"archived", "occurred_at": "...", "experiment_id"?: "..."}``."""
    if "experiment_id" in data:
        try:
            validate_experiment_id(data["experiment_id"])
        except InvalidExperimentId as exc:
            raise WebhookRefused(422, str(exc)) from exc
    entry_id = data.get("entry_id") or data.get("experiment_id")
    if not isinstance(entry_id, str) or not entry_id:
        raise WebhookRefused(422, "the event names no entry_id")
    kind = data.get("kind", "changed")
    occurred_at = data.get("occurred_at")
    if kind not in {"changed", "archived"} or not isinstance(occurred_at, str):
        raise WebhookRefused(422, "kind must be 'changed' or 'archived', and occurred_at an ISO time")
    return [ElnEvent(source, event_id, entry_id, kind, occurred_at)]


ARCHIVE_WORDS = ("archived", "deleted", "trashed")


def _benchling(event_id: str, source: str, data: Mapping[str, Any]) -> list[ElnEvent]:
    """Benchling's webhook envelope, ``{"message": {"type": "v2.entry.updated.fields", "resourceId": ...}}``.

    A Benchling app wraps the same message with ``version``, ``baseURL``,
    ``tenantId``, ``app``, ``appDefinition`` and ``channel``, which are read past;
    the entry is ``resourceId`` (``entryId`` is taken too). Messages that are not
    about entries (requests, app lifecycle, canvases) are accepted and ignored
    before anything else is asked of them, so Benchling does not redeliver them.
    """
    message = data.get("message")
    if not isinstance(message, Mapping):
        raise WebhookRefused(422, "a Benchling event carries a 'message' object")
    kind_name = message.get("type")
    if not isinstance(kind_name, str) or not kind_name:
        raise WebhookRefused(422, "a Benchling event message needs a 'type'")
    if ".entry." not in kind_name:
        return []  # other Benchling events (requests, assay runs, the app's lifecycle) are not experiments
    resource, when = message.get("resourceId") or message.get("entryId"), message.get("timestamp")
    if not isinstance(resource, str) or not resource:
        raise WebhookRefused(422, "a Benchling entry event message needs 'resourceId' (or 'entryId')")
    kind = "archived" if any(word in kind_name for word in ARCHIVE_WORDS) else "changed"
    return [ElnEvent(source, event_id, resource, kind, when if isinstance(when, str) else "")]


PARSERS = {"labmesh": _generic, "benchling": _benchling}


def parse(source: WebhookSource, event_id: str, body: bytes) -> Sequence[ElnEvent]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRefused(400, f"the body is not JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise WebhookRefused(400, "the body must be a JSON object")
    try:
        return PARSERS[source.payload](event_id, source.name, data)
    except ValueError as exc:
        raise WebhookRefused(422, str(exc)) from exc
