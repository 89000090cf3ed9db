"""A local Benchling (API v2, notebook entries and events) for the connector tests, on a `pytest_httpserver`.

It holds entries and the event stream in memory and answers with the shapes
the connector relies on: ``{"entry": {...}}`` for one entry, ``{"entries":
[...], "nextToken": ...}`` and ``{"events": [...], "nextToken": ...}`` for
listings, schema ``fields`` as ``{name: {value, type, isMulti, displayValue}}``
and errors as ``{"error": {"message", "type"}}``. It is strict where a real
tenant would be: requests without HTTP Basic auth get 401, query parameters
outside the documented ones get 400 (so a misspelt ``startingAfter`` fails a
test), a PATCH with ``customFields`` or with a field the entry's schema lacks
gets 400. Every change people make appends an event, as Benchling does;
archiving appends none, as Benchling's event list has no such event.

Entries are also read in bulk (``GET /entries:bulk-get?entryIds=...``, at most
100 ids, answering the entries it holds). Benchling's rate limit can be turned
on (`limit_rate`): a number of requests per window of the fake's own clock,
which the test moves (through the connector's sleep); past it the answer is
429 with ``x-rate-limit-limit``, ``x-rate-limit-remaining`` and
``x-rate-limit-reset`` (whole seconds left in the window), and no
``Retry-After``, as Benchling's API reference documents it.

Faults can be queued (a 429 with ``Retry-After``, a 5xx), and every request is recorded.

Where each event stands in the stream is kept by id, so that a poll resuming
after an event costs what follows it, not a search of every event: a benchmark
holds 100,000 (``benchmarks/eln_api_scale.py``). It checks only the first event
of each type against Benchling's schema (``check_every_event=False``): the
check takes milliseconds an event, and the fake's events of a type all have
one shape.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Response

from labmesh_dagster_tests.eln.benchling_spec import checked_event
from labmesh_dagster_tests.eln.fake_http import API_ROOT, FakeHttpService, RecordedRequest, json_response

API_KEY = "sk_labmesh_test_key"
LIST_ENTRIES_PARAMS = {"pageSize", "nextToken", "sort", "modifiedAt", "schemaId", "displayIds", "archiveReason"}
LIST_EVENTS_PARAMS = {"pageSize", "nextToken", "createdAt.gte", "startingAfter", "eventTypes", "poll"}
ENTRY_UPDATE_KEYS = {"authorIds", "fields", "folderId", "name", "schemaId"}
BULK_GET_PARAMS = {"entryIds", "displayIds", "returning"}
BULK_GET_MAX_IDS = 100


def basic_auth(api_key: str) -> str:
    return "Basic " + base64.b64encode(f"{api_key}:".encode()).decode("ascii")


def _error(status: int, message: str, kind: str = "invalid_request_error") -> Response:
    return Response(
        json.dumps({"error": {"message": message, "type": kind}}), status=status, content_type="application/json"
    )


def text_field(value: Any) -> dict[str, Any]:
    return {"type": "text", "isMulti": False, "value": value, "displayValue": value}


def link_field(ids: list[str], names: list[str]) -> dict[str, Any]:
    """A multi entity link: Benchling ids as the value, the entities' names as the display value."""
    return {"type": "entity_link", "isMulti": True, "value": ids, "displayValue": ", ".join(names)}


class FakeBenchling(FakeHttpService):
    """Benchling's notebook entries and event stream, served over HTTP by ``server``."""

    def __init__(
        self, server: HTTPServer, *, api_key: str = API_KEY, tenant: str = "acme", check_every_event: bool = True
    ) -> None:
        self.api_key = api_key
        self.check_every_event = check_every_event
        self._checked_types: set[str] = set()
        self.tenant = tenant
        self.entries: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._event_at: dict[str, int] = {}  # event id -> its index in `events`
        self.clock = 0.0  # seconds, for the rate limit only; moved by the test
        self.rate_limit: tuple[int, float] | None = None
        self._window_requests: dict[int, int] = {}
        super().__init__(server)

    def limit_rate(self, requests: int, window_seconds: float = 30.0) -> None:
        """From now on, allow ``requests`` per window of ``window_seconds`` on the fake's clock; 429 past that."""
        self.rate_limit = (requests, window_seconds)
        self._window_requests.clear()

    def advance(self, seconds: float) -> None:
        self.clock += seconds

    # The lab's side: what people do in Benchling.

    @staticmethod
    def _now() -> str:
        return datetime.now(UTC).isoformat()

    def add_entry(
        self,
        name: str,
        fields: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        schema_id: str = "ts_seqrun",
        custom_fields: Mapping[str, Any] | None = None,
        author: str = "Ada Lovelace",
        location_field: str | None = "labmesh data location",
    ) -> str:
        number = len(self.entries) + 1
        entry_id = f"etr_{number:06d}"
        stamp = self._now()
        all_fields = {name_: dict(spec) for name_, spec in (fields or {}).items()}
        if location_field:
            # The lab's entry schema has the field, empty until labmesh writes it.
            all_fields.setdefault(location_field, text_field(None))
        user = {"id": "ent_ada", "handle": author.split()[0].lower(), "name": author}
        self.entries[entry_id] = {
            "id": entry_id,
            "displayId": f"EXP24{number:03d}",
            "name": name,
            "webURL": f"https://{self.tenant}.benchling.com/{user['handle']}/f/lib_1-notebook/{entry_id}-{number}/edit",
            "apiURL": f"https://{self.tenant}.benchling.com/api/v2/entries/{entry_id}",
            "folderId": "lib_notebook",
            "createdAt": stamp,
            "modifiedAt": stamp,
            "creator": user,
            "authors": [user],
            "assignedReviewers": [],
            "archiveRecord": None,
            "reviewRecord": None,
            "entryTemplateId": None,
            "schema": {"id": schema_id, "name": "Sequencing run"},
            "fields": all_fields,
            "customFields": {key: {"value": value} for key, value in (custom_fields or {}).items()},
            "days": [{"date": stamp[:10], "notes": [{"type": "text", "text": "Loaded the flowcell."}]}],
        }
        self._event("v2.entry.created", entry_id)
        return entry_id

    def assign_reviewer(self, entry_id: str, name: str) -> None:
        """A person asking someone to review the entry: ``v2.entry.updated.assignedReviewers`` is raised."""
        reviewer = {"id": f"ent_{name.split()[0].lower()}", "handle": name.split()[0].lower(), "name": name}
        self.entries[entry_id]["assignedReviewers"].append(reviewer)
        self.entries[entry_id]["modifiedAt"] = self._now()
        self._event("v2.entry.updated.assignedReviewers", entry_id, ["assignedReviewers"])

    def set_field(self, entry_id: str, name: str, value: Any) -> None:
        """A person editing one schema field: ``modifiedAt`` moves and an update event is raised."""
        entry = self.entries[entry_id]
        entry["fields"].setdefault(name, text_field(None)).update(value=value, displayValue=value)
        self._touched(entry_id, [f"fields.{name}"])

    def archive(self, entry_id: str) -> None:
        """Archiving sets ``archiveRecord``; Benchling's event list has no event for it."""
        self.entries[entry_id]["archiveRecord"] = {"reason": "Retired"}
        self.entries[entry_id]["modifiedAt"] = self._now()

    def field_value(self, entry_id: str, name: str) -> Any:
        return (self.entries[entry_id]["fields"].get(name) or {}).get("value")

    def _touched(self, entry_id: str, updates: list[str]) -> None:
        self.entries[entry_id]["modifiedAt"] = self._now()
        self._event("v2.entry.updated.fields", entry_id, updates)

    def _event(self, event_type: str, entry_id: str, updates: list[str] | None = None) -> None:
        event: dict[str, Any] = {
            "id": f"evt_{len(self.events) + 1:06d}",
            "createdAt": self._now(),
            "eventType": event_type,
            "deprecated": False,
            "excludedProperties": [],
            "schema": dict(self.entries[entry_id]["schema"]),
            "entry": json.loads(json.dumps(self.entries[entry_id])),
        }
        if updates is not None:
            event["updates"] = updates
        if self.check_every_event or event_type not in self._checked_types:
            checked_event(event)  # never a shape Benchling does not send
            self._checked_types.add(event_type)
        self._event_at[event["id"]] = len(self.events)
        self.events.append(event)

    # The server's side.

    def error(self, status: int, message: str) -> Response:
        return _error(status, message, "server_error" if status >= 500 else "invalid_request_error")

    def refuse(self, record: RecordedRequest) -> Response | None:
        if record.authorization != basic_auth(self.api_key):
            return _error(401, "Unauthorized: an API key is required (HTTP Basic)", "authentication_error")
        return self._throttled()

    def _throttled(self) -> Response | None:
        if self.rate_limit is None:
            return None
        allowed, window = self.rate_limit
        current = int(self.clock // window)
        used = self._window_requests[current] = self._window_requests.get(current, 0) + 1
        if used <= allowed:
            return None
        response = _error(429, "Rate limit exceeded", "rate_limit_error")
        left = (current + 1) * window - self.clock
        response.headers.update(
            {
                "x-rate-limit-limit": str(allowed),
                "x-rate-limit-remaining": "0",
                # Whole seconds, rounded down: the window may still be open for a fraction of a second at 0.
                "x-rate-limit-reset": str(math.floor(left)),
            }
        )
        return response

    def route(self, method: str, path: str, record: RecordedRequest) -> Response:
        parts = path.strip("/").split("/")
        one = {key: values[-1] for key, values in record.query.items() if values}
        if parts == ["events"] and method == "GET":
            return self._checked(one, LIST_EVENTS_PARAMS) or self._list_events(one)
        if parts == ["entries"] and method == "GET":
            return self._checked(one, LIST_ENTRIES_PARAMS) or self._list_entries(one)
        if parts == ["entries:bulk-get"] and method == "GET":
            return self._checked(one, BULK_GET_PARAMS) or self._bulk_get(one)
        if len(parts) == 2 and parts[0] == "entries":
            entry = self.entries.get(parts[1])
            if entry is None:
                return _error(404, f"Entry {parts[1]} not found", "not_found")
            if method == "GET":
                return json_response({"entry": entry})
            if method == "PATCH":
                return self._patch(entry, record.body)
        return _error(405 if parts[0] in {"entries", "events"} else 404, f"{method} {API_ROOT}{path} is not served")

    def _bulk_get(self, query: Mapping[str, str]) -> Response:
        ids = [part for part in query.get("entryIds", "").split(",") if part]
        if not ids or len(ids) > BULK_GET_MAX_IDS:
            return _error(400, f"entryIds must list between 1 and {BULK_GET_MAX_IDS} ids")
        return json_response({"entries": [self.entries[entry_id] for entry_id in ids if entry_id in self.entries]})

    @staticmethod
    def _checked(query: Mapping[str, str], allowed: set[str]) -> Response | None:
        unknown = sorted(set(query) - allowed)
        if unknown:
            return _error(400, f"unknown query parameter(s): {', '.join(unknown)}")
        page_size = query.get("pageSize", "50")
        if not page_size.isdigit() or not 0 <= int(page_size) <= 100:
            return _error(400, "pageSize must be between 0 and 100")
        return None

    def _page(self, rows: list[dict[str, Any]], key: str, query: Mapping[str, str]) -> Response:
        """One page; ``nextToken`` is an opaque offset, empty on the last page (Benchling returns "")."""
        start = int(query.get("nextToken") or 0)
        size = int(query.get("pageSize", "50"))
        page = rows[start : start + size]
        more = start + size < len(rows)
        return json_response({key: page, "nextToken": str(start + size) if more else ""})

    def _list_events(self, query: Mapping[str, str]) -> Response:
        events = self.events
        if "startingAfter" in query:
            after = self._event_at.get(query["startingAfter"])
            if after is None or after >= len(events) or events[after]["id"] != query["startingAfter"]:
                return _error(400, f"unknown event id {query['startingAfter']}")
            events = events[after + 1 :]
        if "createdAt.gte" in query:
            since = datetime.fromisoformat(query["createdAt.gte"].replace("Z", "+00:00"))
            events = [event for event in events if datetime.fromisoformat(event["createdAt"]) >= since]
        if "eventTypes" in query:
            wanted = set(query["eventTypes"].split(","))
            events = [event for event in events if event["eventType"] in wanted]
        return self._page(events, "events", query)

    def _list_entries(self, query: Mapping[str, str]) -> Response:
        # Listing leaves archived entries out unless archiveReason asks for them.
        rows = [entry for entry in self.entries.values() if not entry["archiveRecord"]]
        if "schemaId" in query:
            rows = [entry for entry in rows if (entry["schema"] or {}).get("id") == query["schemaId"]]
        if "displayIds" in query:
            wanted = set(query["displayIds"].split(","))
            rows = [entry for entry in rows if entry["displayId"] in wanted]
        sort = query.get("sort", "modifiedAt:desc")
        key, _, direction = sort.partition(":")
        if key not in {"modifiedAt", "name"}:
            return _error(400, f"sort {sort!r} is not supported")
        rows.sort(key=lambda entry: entry[key], reverse=direction != "asc")
        return self._page(rows, "entries", query)

    def _patch(self, entry: dict[str, Any], body: Any) -> Response:
        if not isinstance(body, dict):
            return _error(400, "a JSON object body is required")
        if "customFields" in body:
            return _error(400, "customFields cannot be set through entry update; use fields")
        unknown = sorted(set(body) - ENTRY_UPDATE_KEYS)
        if unknown:
            return _error(400, f"unknown body key(s): {', '.join(unknown)}")
        fields = body.get("fields") or {}
        missing = sorted(name for name in fields if name not in entry["fields"])
        if missing:
            return _error(400, f"field(s) {', '.join(missing)} are not in schema {entry['schema']['id']}")
        for name, spec in fields.items():
            entry["fields"][name].update(value=spec.get("value"), displayValue=spec.get("value"))
        if "name" in body:
            entry["name"] = body["name"]
        self._touched(entry["id"], [f"fields.{name}" for name in fields])
        return json_response(entry)
