"""Benchling's own schemas, to build and check the events and answers the tests hand the connectors.

The schemas are Benchling's OpenAPI descriptions as `benchling-api-client`
ships them (see ``labmesh_dagster_tests/data/README.md``): the API's entry and
event schemas, and the webhook schemas. A test that makes up a Benchling event
or answer checks it here first, so a shape Benchling does not send (an entry at
``detail.entity``, a webhook ``timestamp``) fails the test rather than passing
the connector.

OpenAPI 3.0 says ``nullable: true`` next to ``allOf``/``oneOf``; JSON Schema,
which does the checking, says "or null". The schemas are read with that one
translation and checked as JSON Schema (Draft 7); descriptions, examples,
``readOnly`` and discriminators are annotations there.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator

DATA = Path(__file__).resolve().parents[1] / "data" / "benchling"
API_SCHEMAS = DATA / "api-v2-entry-schemas.yaml"
WEBHOOK_SCHEMAS = DATA / "webhooks-v0-openapi.yaml"


def _as_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [{"type": "null"}, converted]}
    return converted


@cache
def _components(path: Path) -> dict[str, Any]:
    return _as_json_schema(yaml.safe_load(path.read_text(encoding="utf-8"))["components"])


@cache
def _validator(schema: str, webhook: bool) -> Draft7Validator:
    components = _components(WEBHOOK_SCHEMAS if webhook else API_SCHEMAS)
    return Draft7Validator({"$ref": f"#/components/schemas/{schema}", "components": components})


def check(schema: str, instance: Any, *, webhook: bool = False) -> Any:
    """``instance`` unchanged if it is a valid Benchling ``schema`` (API v2, or webhook v0); else it raises."""
    _validator(schema, webhook).validate(instance)
    return instance


EVENT_SCHEMAS = {
    "v2.entry.created": "EntryCreatedEvent",
    "v2.entry.updated.fields": "EntryUpdatedFieldsEvent",
    "v2.entry.updated.reviewRecord": "EntryUpdatedReviewRecordEvent",
    "v2.entry.updated.assignedReviewers": "EntryUpdatedAssignedReviewersEvent",
}
WEBHOOK_SCHEMAS_BY_TYPE = {
    "v2.entry.created": "EntryCreatedWebhookV2",
    "v2.entry.updated.fields": "EntryUpdatedFieldsWebhookV2",
    "v2.entry.updated.reviewRecord": "EntryUpdatedReviewRecordWebhookV2",
}


def checked_event(event: dict[str, Any]) -> dict[str, Any]:
    """A List Events item (also EventBridge's ``detail``), checked against the schema of its event type."""
    return check(EVENT_SCHEMAS[event["eventType"]], event)


def webhook_envelope(message: dict[str, Any], *, app_definition_id: str = "appdef_LabMesh1") -> dict[str, Any]:
    """A Benchling webhook body (``WebhookEnvelopeV0``) around ``message``, checked against Benchling's schemas."""
    if message.get("type") in WEBHOOK_SCHEMAS_BY_TYPE:
        check(WEBHOOK_SCHEMAS_BY_TYPE[message["type"]], message, webhook=True)
    envelope = {
        "version": "0",
        "baseURL": "acme.benchling.com",
        "tenantId": "ten_acme",
        "app": {"id": "app_installed1"},
        "appDefinition": {"id": app_definition_id, "versionNumber": "1.0.0"},
        "channel": "events",
        "message": message,
    }
    envelope_schema = _components(WEBHOOK_SCHEMAS)["schemas"]["WebhookEnvelopeV0"]
    # The message is checked on its own above: the envelope's oneOf of every message type is not asked again.
    shell = {**envelope_schema, "properties": {**envelope_schema["properties"], "message": {"type": "object"}}}
    Draft7Validator(shell).validate(envelope)
    return envelope


def entry_webhook(kind: str, entry_id: str, *, event_id: str = "evt_1jdbvuo2740aslk") -> dict[str, Any]:
    """An entry message as Benchling's webhook schema describes it (``EntryUpdatedFieldsWebhookV2`` and kin)."""
    message: dict[str, Any] = {
        "type": kind,
        "id": event_id,
        "resourceId": entry_id,
        "createdAt": "2026-11-29T10:00:00.000000+00:00",
        "deprecated": False,
        "schema": {"id": "ts_seqrun"},
    }
    if kind.startswith("v2.entry.updated"):
        message["updates"] = ["fields.Flowcell"]
    return message


def entry_event(event_type: str, entry_id: str, *, event_id: str = "evt_1jdbvuo2740aslk") -> dict[str, Any]:
    """One entry's event as List Events gives it, and as EventBridge carries it in ``detail``, checked."""
    stamp = "2026-11-29T10:00:00.000000+00:00"
    user = {"id": "ent_ada", "handle": "ada", "name": "Ada Lovelace"}
    entry = {
        "id": entry_id,
        "displayId": "EXP24001",
        "name": "WGS run 42",
        "folderId": "lib_notebook",
        "createdAt": stamp,
        "modifiedAt": stamp,
        "creator": user,
        "authors": [user],
        "assignedReviewers": [],
        "archiveRecord": None,
        "apiURL": f"https://acme.benchling.com/api/v2/entries/{entry_id}",
        "webURL": f"https://acme.benchling.com/ada/f/lib_1-notebook/{entry_id}-wgs-run-42/edit",
        "schema": {"id": "ts_seqrun", "name": "Sequencing run"},
        "fields": {"Experiment ID": {"type": "text", "isMulti": False, "value": "EXP-001", "displayValue": "EXP-001"}},
        "customFields": {},
        "days": [],
    }
    event: dict[str, Any] = {
        "id": event_id,
        "eventType": event_type,
        "createdAt": stamp,
        "deprecated": False,
        "excludedProperties": [],
        "schema": {"id": "ts_seqrun", "name": "Sequencing run"},
        "entry": entry,
    }
    if event_type.startswith("v2.entry.updated"):
        event["updates"] = ["fields.Experiment ID"]
    return checked_event(event)
