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

Every source feeds one ELN connector, the one labmesh runs: its events are
kept addressed to that connector (a LIMS posting to ``/eln/events/lims`` feeds
the folder ELN), and the entry they name must be an id that connector can read
(an experiment id for the folder, an integer for eLabFTW, ``etr_...`` for
Benchling), or the event is refused with 422 before it is kept. A source whose
events the connector cannot read at all (Benchling's envelope for the folder)
is refused when the app is made, not when its first event is lost.
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
from labmesh_dagster.connectors.eln.base import ElnEvent, ElnSource, InvalidEntryId
from labmesh_dagster.connectors.eln.benchling import BenchlingEln
from labmesh_dagster.connectors.eln.elabftw import ElabFtwEln
from labmesh_dagster.connectors.eln.folder import FolderEln
from labmesh_dagster.core.errors import InvalidExperimentId, LabmeshError
from labmesh_dagster.core.ids import validate_experiment_id

# The ELN connectors by name, for their entry id rules: the API never opens one.
ELN_CONNECTORS: dict[str, type[ElnSource]] = {eln.name: eln for eln in (FolderEln, ElabFtwEln, BenchlingEln)}
# Standard Webhooks ids are short (Svix: ``msg_`` and 27 characters); an id is stored and logged, so it is capped.
MAX_WEBHOOK_ID_CHARS = 256


class WebhookRefused(LabmeshError):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class WebhookSource:
    """One sender: its name in the URL, how it signs, the shape of its payloads, and the ELN that reads them.

    ``secrets`` (newest first) verify Standard Webhooks HMAC signatures;
    ``benchling_app_definition_id`` makes it a Benchling app, verified with the
    keys Benchling publishes for it. Either or both; a request passes if one does.
    ``eln`` is the connector that reads its events (``folder``, ``elabftw``,
    ``benchling``); left empty, the source must be named after one.
    """

    name: str
    secrets: tuple[str, ...] = ()
    payload: str = "labmesh"  # "labmesh" (the generic shape) or "benchling"
    benchling_app_definition_id: str | None = None
    eln: str = ""

    def __post_init__(self) -> None:
        if not self.secrets and not self.benchling_app_definition_id:
            raise ValueError(f"webhook source {self.name!r} needs a secret or a Benchling app definition id")
        if self.payload not in PARSERS:
            raise ValueError(f"webhook source {self.name!r}: unknown payload shape {self.payload!r}")
        if self.benchling_app_definition_id and self.payload != "benchling":
            raise ValueError(f"webhook source {self.name!r}: a Benchling app sends the benchling payload shape")
        if self.reader not in ELN_CONNECTORS:
            raise ValueError(
                f"webhook source {self.name!r}: no ELN connector {self.reader!r} reads its events "
                f"(the connectors are {', '.join(ELN_CONNECTORS)})"
            )
        if self.payload == "benchling" and self.reader != BenchlingEln.name:
            raise ValueError(
                f"webhook source {self.name!r} sends Benchling's envelope, which names Benchling entries; "
                f"the {self.reader} ELN cannot read them"
            )

    @property
    def reader(self) -> str:
        """The name of the ELN connector that reads this source's events."""
        return self.eln or self.name

    def event_id(self, webhook_id: str) -> str:
        """The id the event is kept under: the sender's, prefixed with its name unless it is named after the ELN."""
        return webhook_id if self.name == self.reader else f"{self.name}:{webhook_id}"

    def entry_id(self, value: str) -> str:
        """``value`` if the reading ELN can have such an entry id, else a 422 refusal saying why."""
        try:
            return ELN_CONNECTORS[self.reader].validate_entry_id(value)
        except InvalidEntryId as exc:
            raise WebhookRefused(422, f"the {self.reader} ELN cannot read this entry: {exc}") from exc


HMAC_REFUSAL = "signature does not match, or the timestamp is more than 5 minutes away"
REQUIRED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def check_headers(headers: Mapping[str, str]) -> None:
    """Refuse a request whose ``webhook-*`` headers are missing or malformed, before its body is read.

    These checks cost nothing, so an unsigned or garbled request is turned
    away before the server spends memory on its body or time on its signature.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    if not all(lowered.get(name) for name in REQUIRED_HEADERS):
        raise WebhookRefused(401, "missing webhook-id, webhook-timestamp or webhook-signature header")
    webhook_id = lowered["webhook-id"]
    if len(webhook_id) > MAX_WEBHOOK_ID_CHARS or not webhook_id.isascii() or not webhook_id.isprintable():
        raise WebhookRefused(400, f"webhook-id must be at most {MAX_WEBHOOK_ID_CHARS} printable ASCII characters")


def verify(source: WebhookSource, body: bytes, headers: Mapping[str, str], jwks: JwksCache | None = None) -> str:
    """The sender's event id, once the source's secret or Benchling app signed this exact body recently; else refused.

    The app's keys are consulted only for a request carrying app signatures (or
    for an app-only source), so HMAC-signed requests never wait on Benchling.
    ``jwks`` is required for a source with a Benchling app; it is blocking I/O.
    """
    check_headers(headers)
    lowered = {key.lower(): value for key, value in headers.items()}
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


def _generic(event_id: str, source: WebhookSource, data: Mapping[str, Any]) -> list[ElnEvent]:
    """``{"entry_id": "...", "kind": "changed"|"archived", "occurred_at": "...", "experiment_id"?: "..."}``."""
    if "experiment_id" in data:
        try:
            validate_experiment_id(data["experiment_id"])
        except InvalidExperimentId as exc:
            raise WebhookRefused(422, f"invalid experiment id: {exc.reason}") from exc
    entry_id = data.get("entry_id") or data.get("experiment_id")
    if not isinstance(entry_id, str) or not entry_id:
        raise WebhookRefused(422, "the event names no entry_id")
    kind = data.get("kind", "changed")
    occurred_at = data.get("occurred_at")
    if kind not in {"changed", "archived"} or not isinstance(occurred_at, str):
        raise WebhookRefused(422, "kind must be 'changed' or 'archived', and occurred_at an ISO time")
    return [ElnEvent(source.reader, source.event_id(event_id), source.entry_id(entry_id), kind, occurred_at)]


ARCHIVE_WORDS = ("archived", "deleted", "trashed")


def _benchling(event_id: str, source: WebhookSource, data: Mapping[str, Any]) -> list[ElnEvent]:
    """Benchling's webhook envelope, ``{"message": {"type": "v2.entry.updated.fields", "resourceId": ...}}``.

    The envelope (``WebhookEnvelopeV0`` in Benchling's webhook spec) also
    carries ``version``, ``baseURL``, ``tenantId``, ``app``, ``appDefinition``
    and ``channel``, which are read past. An entry message
    (``EntryUpdatedFieldsWebhookV2`` and its kin) names the entry as
    ``resourceId`` (``entryId`` is taken too) and its time as ``createdAt``.
    Messages that are not about entries (requests, app lifecycle, canvases) are
    accepted and ignored before anything else is asked of them, so Benchling
    does not redeliver them.
    """
    message = data.get("message")
    if not isinstance(message, Mapping):
        raise WebhookRefused(422, "a Benchling event carries a 'message' object")
    kind_name = message.get("type")
    if not isinstance(kind_name, str) or not kind_name:
        raise WebhookRefused(422, "a Benchling event message needs a 'type'")
    if ".entry." not in kind_name:
        return []  # other Benchling events (requests, assay runs, the app's lifecycle) are not experiments
    resource, when = message.get("resourceId") or message.get("entryId"), message.get("createdAt")
    if not isinstance(resource, str) or not resource:
        raise WebhookRefused(422, "a Benchling entry event message needs 'resourceId' (or 'entryId')")
    kind = "archived" if any(word in kind_name for word in ARCHIVE_WORDS) else "changed"
    occurred_at = when if isinstance(when, str) else ""
    return [ElnEvent(source.reader, source.event_id(event_id), source.entry_id(resource), kind, occurred_at)]


PARSERS = {"labmesh": _generic, "benchling": _benchling}


def parse(source: WebhookSource, event_id: str, body: bytes) -> Sequence[ElnEvent]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRefused(400, f"the body is not JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise WebhookRefused(400, "the body must be a JSON object")
    try:
        return PARSERS[source.payload](event_id, source, data)
    except ValueError as exc:
        raise WebhookRefused(422, str(exc)) from exc
