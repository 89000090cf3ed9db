"""Webhook requests judged before anything is written: signature, freshness, then the payload.

Signatures follow Standard Webhooks (what Svix sends, and Benchling among
others): HMAC-SHA256 over ``id.timestamp.body`` with the raw body, compared in
constant time by the ``standardwebhooks`` library, the timestamp within five
minutes, several ``v1,`` signatures allowed and several secrets configurable,
so keys rotate without a gap. Only a request that passes is parsed; every
refusal is a `WebhookRefused` with the HTTP status and a reason the sender can act on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from standardwebhooks.webhooks import Webhook

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
    """One sender: its name in the URL, its secrets (newest first), and the shape of its payloads."""

    name: str
    secrets: tuple[str, ...]
    payload: str = "labmesh"  # "labmesh" (the generic shape) or "benchling"

    def __post_init__(self) -> None:
        if not self.secrets:
            raise ValueError(f"webhook source {self.name!r} needs at least one secret")
        if self.payload not in PARSERS:
            raise ValueError(f"webhook source {self.name!r}: unknown payload shape {self.payload!r}")


def verify(source: WebhookSource, body: bytes, headers: Mapping[str, str]) -> str:
    """The sender's event id, once one of the source's secrets signed this exact body recently; else refused."""
    lowered = {key.lower(): value for key, value in headers.items()}
    if not all(lowered.get(name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature")):
        raise WebhookRefused(401, "missing webhook-id, webhook-timestamp or webhook-signature header")
    for secret in source.secrets:
        try:
            Webhook(secret).verify(body, lowered, json_parse=False)
        except Exception:  # the library raises several kinds for malformed headers and bodies alike
            continue
        return lowered["webhook-id"]
    raise WebhookRefused(401, "signature does not match, or the timestamp is more than 5 minutes away")


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
    """Benchling's webhook envelope: ``{"message": {"type": "v2.entry.updated.fields", "resourceId": ...}}``."""
    message = data.get("message")
    if not isinstance(message, Mapping):
        raise WebhookRefused(422, "a Benchling event carries a 'message' object")
    kind_name, resource, when = message.get("type"), message.get("resourceId"), message.get("timestamp")
    if not isinstance(kind_name, str) or not isinstance(resource, str) or not resource:
        raise WebhookRefused(422, "a Benchling event message needs 'type' and 'resourceId'")
    if ".entry." not in kind_name:
        return []  # other Benchling events (requests, assay runs) are not experiments: accepted, ignored
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
