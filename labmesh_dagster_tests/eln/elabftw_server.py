"""A local eLabFTW (API v2) for the connector tests, on a `pytest_httpserver.HTTPServer`.

It keeps experiments and resources in memory and answers the operations listed
in `elabftw_operations` with the response shapes of the official description
(an entity per experiment, ``metadata`` with typed ``extra_fields``, the
``Error`` object for failures). It behaves like eLabFTW where the connector's
correctness depends on it:

- ``modified_at`` has one-second resolution and moves on every change, a
  PATCH included; the clock only moves when a test says so, so "edited within
  the same second" is a scenario, not a race;
- ``order=lastchange`` sorts by ``modified_at`` and leaves ties in id order,
  ``limit``/``offset`` page, ``state`` filters (default 1), ``extended``
  understands ``extrafield:key:value`` with the implicit wildcards of eLabFTW's
  search (so ``EXP-1`` also matches ``EXP-10``);
- ``metadatamerge`` updates existing extra fields' values, keeps their schema,
  and adds new ones.

Faults can be queued (a 429 with ``Retry-After``, a 500, a slow answer), and
every request is recorded, here and in the session-wide `RECORDED`, which the
conformance test checks against `elabftw_operations`.

The experiments are also kept in last-change order, so that a poll's first
page costs the page, not a sort of every experiment: a benchmark holds 100,000
(``benchmarks/eln_api_scale.py``). ``modified_at`` moves only through the
methods below, which keep that order.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Response

from labmesh_dagster_tests.eln.elabftw_operations import (
    API_ROOT,
    EXTRA_FIELD_KEYS_WRITTEN,
    METADATA_KEYS_WRITTEN,
    operation_for,
)
from labmesh_dagster_tests.eln.fake_http import FakeHttpService, RecordedRequest, json_response

API_KEY = "3-0123456789abcdef"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


# Every request any fake served during the test session.
RECORDED: list[RecordedRequest] = []


def violations(record: RecordedRequest) -> list[str]:
    """What in a request is outside the operations, parameters, values and body keys the connector may use."""
    if not record.path.startswith(API_ROOT + "/"):
        return [f"{record.method} {record.path} is outside {API_ROOT}"]
    operation = operation_for(record.method, record.path[len(API_ROOT) :])
    if operation is None:
        return [f"{record.method} {record.path} is not a listed operation"]
    problems = [
        f"{operation.operation_id}: query parameter {name!r}" for name in record.query if name not in operation.query
    ]
    for name, allowed in operation.query_values.items():
        for value in record.query.get(name, []):
            if not set(value.split(",")) <= allowed:
                problems.append(f"{operation.operation_id}: {name}={value!r}")
    if record.body is not None or operation.body:
        body = record.body if isinstance(record.body, dict) else {}
        problems += [f"{operation.operation_id}: body key {key!r}" for key in body if key not in operation.body]
        merge = body.get("metadatamerge")
        if isinstance(merge, dict):
            problems += [f"metadatamerge key {key!r}" for key in merge if key not in METADATA_KEYS_WRITTEN]
            for name, spec in (merge.get("extra_fields") or {}).items():
                extra = set(spec) - EXTRA_FIELD_KEYS_WRITTEN if isinstance(spec, dict) else {"(not an object)"}
                problems += [f"extra field {name!r} key {key!r}" for key in sorted(extra)]
    return problems


def _error(status: int, message: str, description: str = "") -> Response:
    body = {"code": str(status), "message": message, "description": description}
    return Response(json.dumps(body), status=status, content_type="application/json")


_TERM = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[^\s:"\'()]+'
_EXTRAFIELD = re.compile(rf"^extrafield:({_TERM}):({_TERM})$")


def _unquote(term: str) -> str:
    if term[:1] in {'"', "'"}:
        term = term[1:-1]
    return re.sub(r"\\(.)", r"\1", term)


class FakeElabFtw(FakeHttpService):
    """eLabFTW's experiments and resources, served over HTTP by ``server``."""

    also_record_to = RECORDED

    def __init__(self, server: HTTPServer, *, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.experiments: dict[int, dict[str, Any]] = {}
        # (modified_at, -id) of every experiment, ascending: read backwards, newest first and ties in id order.
        self._by_change: list[tuple[str, int]] = []
        self._change_of: dict[int, str] = {}
        self.items: dict[int, dict[str, Any]] = {}
        self.clock = datetime(2024, 5, 28, 9, 0, 0)
        self.metadata_as_string = False
        # Some servers cap `limit`; None serves what is asked for.
        self.max_limit: int | None = None
        self._next_id = 1
        super().__init__(server)

    # The lab's side: what people do in the eLabFTW web interface.

    def tick(self, seconds: int = 1) -> None:
        self.clock += timedelta(seconds=seconds)

    def _stamp(self) -> str:
        return self.clock.strftime(TIME_FORMAT)

    def add_item(self, title: str) -> int:
        item_id = 100 + len(self.items) + 1
        self.items[item_id] = {"id": item_id, "title": title, "state": 1, "metadata": None}
        return item_id

    def add_experiment(
        self,
        title: str,
        *,
        extra_fields: Mapping[str, Mapping[str, Any]] | None = None,
        body: str = "",
        tags: list[str] | None = None,
        items_links: list[int] | None = None,
        state: int = 1,
        fullname: str = "Ada Lovelace",
        team_name: str = "Genomics",
    ) -> int:
        entry_id = self._next_id
        self._next_id += 1
        stamp = self._stamp()
        self.experiments[entry_id] = {
            "id": entry_id,
            "title": title,
            "body": body,
            "body_html": body,
            "content_type": 1,
            "category": 2,
            "category_title": "Sequencing run",
            "category_color": "29aeb9",
            "status": 1,
            "status_title": "Running",
            "status_color": "29aeb9",
            "created_at": stamp,
            "modified_at": stamp,
            "date": self.clock.strftime("%Y-%m-%d"),
            "elabid": f"20240528-{entry_id:040x}",
            "custom_id": None,
            "rating": 0,
            "userid": 2,
            "fullname": fullname,
            "firstname": fullname.split()[0],
            "lastname": fullname.split()[-1],
            "orcid": None,
            "team": 1,
            "team_name": team_name,
            "tags": "|".join(tags or []) or None,
            "tags_id": ",".join(str(n + 1) for n in range(len(tags or []))) or None,
            "state": state,
            "locked": 0,
            "lockedby": None,
            "locked_at": None,
            "lastchangeby": 2,
            "timestamped": 0,
            "canread": '{"base": 30, "teams": [], "users": [], "teamgroups": []}',
            "canwrite": '{"base": 20, "teams": [], "users": [], "teamgroups": []}',
            "access_key": "0f0e0d0c-secret",
            "sharelink": f"{self.url}/experiments.php?mode=view&id={entry_id}&access_key=0f0e0d0c-secret",
            "page": "experiments",
            "type": "experiments",
            "metadata": {
                "elabftw": {"extra_fields_groups": [{"id": 1, "name": "Run"}]},
                "extra_fields": {name: dict(spec) for name, spec in (extra_fields or {}).items()},
            },
            "items_links": [self._link(item_id) for item_id in items_links or []],
            "experiments_links": [],
            "related_experiments_links": [],
            "related_items_links": [],
            "steps": [],
            "comments": [],
            "uploads": [],
            "changelog": [],
            "recent_comment": None,
            "next_step": None,
            "exclusive_edit_mode": None,
        }
        self._indexed(entry_id)
        return entry_id

    def _indexed(self, entry_id: int) -> None:
        """The experiment's place in last-change order follows its ``modified_at``."""
        old = self._change_of.get(entry_id)
        if old is not None:
            del self._by_change[bisect.bisect_left(self._by_change, (old, -entry_id))]
        stamp = self._change_of[entry_id] = self.experiments[entry_id]["modified_at"]
        bisect.insort(self._by_change, (stamp, -entry_id))

    def _link(self, item_id: int) -> dict[str, Any]:
        return {"entityid": item_id, "title": self.items[item_id]["title"], "category_title": "Sample", "page": "items"}

    def edit(self, entry_id: int, **changes: Any) -> None:
        """A person saving the entry: fields replaced, ``modified_at`` moved to the current second."""
        entity = self.experiments[entry_id]
        entity.update(changes)
        self._touched(entity, "edit")

    def set_extra(self, entry_id: int, name: str, value: Any, kind: str = "text") -> None:
        fields = self.experiments[entry_id]["metadata"]["extra_fields"]
        fields.setdefault(name, {"type": kind})["value"] = value
        self._touched(self.experiments[entry_id], "metadata")

    def archive(self, entry_id: int) -> None:
        self.edit(entry_id, state=2)

    def delete(self, entry_id: int) -> None:
        self.edit(entry_id, state=3)

    def _touched(self, entity: dict[str, Any], target: str) -> None:
        entity["modified_at"] = self._stamp()
        entity["changelog"] = [*entity["changelog"], {"created_at": self._stamp(), "target": target, "userid": 2}]
        if self.experiments.get(entity["id"]) is entity:  # an experiment, not a resource (item)
            self._indexed(entity["id"])

    def extra_value(self, entry_id: int, name: str) -> Any:
        return (self.experiments[entry_id]["metadata"]["extra_fields"].get(name) or {}).get("value")

    # The server's side.

    def error(self, status: int, message: str) -> Response:
        return _error(status, message)

    def refuse(self, record: RecordedRequest) -> Response | None:
        if record.authorization != self.api_key:
            return _error(401, "Authentication required", "No corresponding API key found!")
        problems = violations(record)
        if problems:
            return _error(400, "request outside the operations labmesh may use", "; ".join(problems))
        return None

    def route(self, method: str, path: str, record: RecordedRequest) -> Response:
        parts = path.strip("/").split("/")
        if parts[0] == "experiments" and len(parts) == 1:
            return self._list(record.query)
        if parts[0] in {"experiments", "items"} and len(parts) == 2:
            store = self.experiments if parts[0] == "experiments" else self.items
            entity = store.get(int(parts[1]))
            if entity is None:
                return _error(404, "Nothing to show with this id")
            if method == "PATCH":
                return self._patch(entity, record.body)
            return json_response(self._shown(entity))
        return _error(404, "Nothing to show with this id")

    def _shown(self, entity: Mapping[str, Any]) -> dict[str, Any]:
        shown = json.loads(json.dumps(entity))
        if self.metadata_as_string and shown.get("metadata") is not None:
            shown["metadata"] = json.dumps(shown["metadata"])
        return shown

    def _list(self, query: Mapping[str, list[str]]) -> Response:
        one = {key: values[-1] for key, values in query.items() if values}
        states = {int(value) for value in one.get("state", "1").split(",")}
        offset, limit = int(one.get("offset", "0")), int(one.get("limit", "15"))
        limit = min(limit, self.max_limit or limit)
        if one.get("order") == "lastchange" and one.get("sort", "desc") == "desc" and not {"q", "extended"} & set(one):
            # The poll's listing, served from the last-change order: what the sort below gives, in O(page).
            page = [entity for _, entity in zip(range(offset + limit), self._newest_first(states), strict=False)]
            return json_response([self._shown(entity) for entity in page[offset:]])
        rows = [entity for entity in self.experiments.values() if entity["state"] in states]
        if "q" in one:
            term = one["q"].lower()
            rows = [e for e in rows if any(term in str(e.get(k) or "").lower() for k in ("title", "body", "elabid"))]
        if "extended" in one:
            match = _EXTRAFIELD.match(one["extended"].strip())
            if match is None:
                return _error(400, "the fake understands only extrafield:key:value", one["extended"])
            key, value = _unquote(match.group(1)).lower(), _unquote(match.group(2)).lower()
            rows = [e for e in rows if self._extra_contains(e, key, value)]
        order = one.get("order", "date")
        sort_key = "modified_at" if order == "lastchange" else "id"
        rows.sort(key=lambda e: e["id"])  # ties keep id order, as a stable sort would
        rows.sort(key=lambda e: e[sort_key], reverse=one.get("sort", "desc") == "desc")
        return json_response([self._shown(entity) for entity in rows[offset : offset + limit]])

    def _newest_first(self, states: set[int]) -> Iterator[dict[str, Any]]:
        for _, negative_id in reversed(self._by_change):
            entity = self.experiments[-negative_id]
            if entity["state"] in states:
                yield entity

    @staticmethod
    def _extra_contains(entity: Mapping[str, Any], key: str, value: str) -> bool:
        for name, spec in entity["metadata"]["extra_fields"].items():
            if name.lower() == key and value in str((spec or {}).get("value") or "").lower():
                return True
        return False

    def _patch(self, entity: dict[str, Any], body: Any) -> Response:
        merge = body.get("metadatamerge") if isinstance(body, dict) else None
        if not isinstance(merge, dict):
            return _error(400, "Incorrect body", "expected metadatamerge")
        fields = entity["metadata"]["extra_fields"]
        for name, spec in (merge.get("extra_fields") or {}).items():
            if name in fields:
                fields[name]["value"] = spec.get("value")  # existing fields keep their schema
            else:
                fields[name] = dict(spec)
        entity["lastchangeby"] = 3
        self._touched(entity, "metadata")
        return json_response(self._shown(entity))
