"""Benchling notebook entries through API v2: experiments in, data locations back out as an entry field.

What the connector relies on (Benchling's v2 reference and its generated
clients), and why:

- HTTP Basic auth with the API key as the user name and an empty password.
- ``GET /api/v2/events`` (``pageSize``, ``nextToken``, ``createdAt.gte``,
  ``startingAfter``, ``eventTypes``) is Benchling's own change feed, in a stable
  order; ``startingAfter`` an event id resumes exactly after it, so the cursor is
  the last event id seen. Each event carries a copy of the entry, but it may be
  stale (or trimmed: ``excludedProperties``), so the entry is read again.
- ``GET /api/v2/entries/{id}`` answers ``{"entry": {...}}``; ``GET
  /api/v2/entries`` (``pageSize``, ``nextToken``, ``sort``, ``schemaId``,
  ``displayIds``) answers ``{"entries": [...], "nextToken": ...}`` with full
  entries, so the first poll (the backfill) costs one request a page.
- ``GET /api/v2/entries:bulk-get?entryIds=a,b,...`` answers ``{"entries":
  [...]}`` for up to 100 ids, so the entries a page of events names cost one
  request, not one each. That matters: Benchling allows a key a fixed number of
  requests per 30-second window, and answers 429 with ``x-rate-limit-reset``
  (the seconds left in the window) when they are spent; read one by one, a
  poll of some sixty changed entries spent a user key's window every tick.
- A poll that is throttled or cut off part way returns what it read, with a
  cursor after the last page of events whose entries it read, so the next
  poll carries on from there instead of failing at the same entry forever.
- ``PATCH /api/v2/entries/{id}`` takes schema ``fields`` (``{"name": {"value":
  ...}}``); ``customFields`` are something else (free key/values), and a
  field the entry's schema lacks is refused, so the location field must exist
  in the lab's entry schema (a text field).

Benchling's event list has no "entry archived" event: an archived entry is
noticed when it is read (an update event, a webhook, a fetch), by its
``archiveRecord``. The write-back itself raises ``v2.entry.updated.fields``;
the next poll reads the entry again and finds the same fingerprint, because
``modifiedAt`` and labmesh's own location field(s) stay out of the record.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from labmesh_dagster.connectors.eln.base import (
    ARCHIVED,
    LIVE,
    NOT_OURS,
    ElnBadResponse,
    ElnEvent,
    ElnPoll,
    ElnRequestRefused,
    ElnSource,
    ElnUnavailable,
    InvalidEntryId,
    cursor_fields,
    first_entry_with_id,
    sort_entries,
)
from labmesh_dagster.connectors.eln.mapping import FieldMapping
from labmesh_dagster.connectors.http import DEFAULT_ATTEMPTS, DEFAULT_TIMEOUT_SECONDS, RetryingHttp, http_client
from labmesh_dagster.core.errors import ExperimentNotFound, InvalidExperimentId, RecordError
from labmesh_dagster.core.experiment import ExperimentRecord, record_from_mapping
from labmesh_dagster.core.ids import validate_experiment_id

log = logging.getLogger(__name__)

API = "/api/v2"
ENTRIES = f"{API}/entries"
BULK_GET = f"{API}/entries:bulk-get"
EVENTS = f"{API}/events"
# The entry events that can change what labmesh reads; archiving has no event of its own.
ENTRY_EVENT_TYPES = (
    "v2.entry.created",
    "v2.entry.updated.fields",
    "v2.entry.updated.reviewRecord",
    # The assigned reviewers are part of the entry, and so of the record.
    "v2.entry.updated.assignedReviewers",
)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100  # Benchling's documented maximum for pageSize
DEFAULT_LOCATION_FIELD = "labmesh data location"
ENTRY_ID_PREFIX = "etr_"
# Benchling's entry ids are ``etr_`` and a short run of letters and digits (``etr_tv7m7B78``); anything else
# (a slash, a dot, a query) must never reach a URL path.
ENTRY_ID = re.compile(r"etr_[A-Za-z0-9]{1,64}")
# An entry id in a URL: the API's (``/entries/etr_x``) or the web app's (``/f/lib_x-notebook/etr_x-name/edit``).
_ENTRY_IN_URL = re.compile(r"/(etr_[A-Za-z0-9]{1,64})(?:[-/?#]|$)")
BULK_GET_MAX_IDS = 100  # Benchling's documented maximum of ids per bulk-get
CURSOR_VERSION = 1
# The backfill starts the event feed a little before it lists, so that an entry changed while
# the listing runs is read again (reads are idempotent) rather than missed; it also absorbs clock skew.
BACKFILL_OVERLAP = timedelta(minutes=5)

BENCHLING_DEFAULTS = FieldMapping(
    fields={
        # A schema field "Experiment ID" wins; otherwise the entry's display id (EXP24001) names it.
        "experiment_id": ("fields.Experiment ID", "displayId"),
        "title": ("name",),
        "description": ("fields.Description",),
        "owner": ("creator.name", "authors[].name"),
        "group": ("fields.Group",),
        "project": ("fields.Project",),
        # Text ("S1, S2") or a multi entity link (the linked entities' names).
        "samples": ("fields.Samples",),
        "platform": ("fields.Instrument", "fields.Platform"),
        "protocol": ("fields.Protocol",),
        "tags": ("fields.Tags",),
        "created": ("createdAt",),
        # Deliberately unmapped: `modifiedAt` moves on every save, labmesh's write-back included,
        # and the record's fingerprint includes `modified`.
        "modified": (),
    },
    ignore=(
        "modifiedAt",
        # Where the entry lives is the record's source already; the API URL says the same again.
        "webURL",
        "apiURL",
        # The notes of the entry's days: large rich text, not fields.
        "days",
        # Only ever null on a record: archived entries are reported as archived instead.
        "archiveRecord",
    ),
    flatten=("fields", "customFields"),
)


@dataclass(frozen=True)
class PollCursor:
    """Where the event feed resumes: after the last event id seen, or (before any) from a time."""

    after: str | None = None
    since: str | None = None

    def to_json(self) -> str:
        return json.dumps({"v": CURSOR_VERSION, "after": self.after, "since": self.since}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> PollCursor | None:
        """The cursor in ``text``; None (backfill again) for none, or one from another connector or version."""
        data = cursor_fields(text, CURSOR_VERSION)
        if data is None:
            return None
        after, since = data.get("after"), data.get("since")
        if not isinstance(after, str) and not isinstance(since, str):
            return None
        return cls(after if isinstance(after, str) else None, since if isinstance(since, str) else None)


def field_value(spec: Any) -> Any:
    """One schema field's plain value: links and dropdowns by what people see, the rest as typed.

    Link and dropdown values are Benchling ids (``bfi_...``, ``sfso_...``); their
    ``displayValue`` holds the names, which is what a sample list or an
    instrument should read as.
    """
    if not isinstance(spec, Mapping):
        return spec
    kind = str(spec.get("type") or "")
    value = spec.get("value")
    shown = spec.get("displayValue")
    if (kind.endswith("link") or kind == "dropdown") and isinstance(shown, str) and shown.strip():
        return [part.strip() for part in shown.split(",") if part.strip()] if spec.get("isMulti") else shown
    return value


def _entry_id_of(entry: Mapping[str, Any]) -> str:
    entry_id = entry.get("id")
    if not isinstance(entry_id, str) or not entry_id:
        raise ElnBadResponse(f"Benchling answered an entry without an id: {str(entry)[:200]}")
    return entry_id


class BenchlingEln(ElnSource):
    """A Benchling tenant: notebook entries followed through the event feed, locations written to an entry field.

    ``base_url`` is the tenant (``https://<tenant>.benchling.com``; a trailing
    ``/api/v2`` is accepted). ``api_key`` is a user's or an app's key, with
    write access to the entries for the write-back. ``mapping`` is a
    `FieldMapping`, or a dict of overrides of `BENCHLING_DEFAULTS`.
    ``location_field`` is the name of one text field that receives a line
    ``zone: uri`` per zone, or a dict zone -> field name (each receiving its URI);
    the field(s) must exist in the entry schema. ``schema_id`` (``ts_...``)
    limits labmesh to entries of one entry schema. ``http`` replaces the client
    built from ``timeout`` and ``attempts`` (tests); ``clock`` is the time the
    backfill starts the event feed from.
    """

    name = "benchling"

    @staticmethod
    def validate_entry_id(entry_id: str) -> str:
        """A notebook entry's id: ``etr_`` and letters and digits, nothing that could change a URL's path."""
        if not ENTRY_ID.fullmatch(entry_id):
            raise InvalidEntryId(entry_id, f"a Benchling entry id ({ENTRY_ID_PREFIX}...)")
        return entry_id

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        mapping: FieldMapping | Mapping[str, Any] = BENCHLING_DEFAULTS,
        location_field: str | Mapping[str, str] = DEFAULT_LOCATION_FIELD,
        schema_id: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        attempts: int = DEFAULT_ATTEMPTS,
        http: RetryingHttp | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not api_key:
            raise ValueError("a Benchling API key is required (Settings > API key, or an app's key)")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE} (Benchling's maximum)")
        if not location_field:
            raise ValueError("location_field names the entry field (or one per zone) that receives the locations")
        root = base_url.rstrip("/")
        self.root_url = root[: -len(API)] if root.endswith(API) else root
        self.api_key = api_key
        self.mapping = (
            mapping
            if isinstance(mapping, FieldMapping)
            else FieldMapping.from_dict(mapping, defaults=BENCHLING_DEFAULTS)
        )
        self.location_field = location_field if isinstance(location_field, str) else dict(location_field)
        self.schema_id = schema_id
        self.page_size = page_size
        self.clock = clock
        self.http = http or RetryingHttp(
            self.root_url, timeout=timeout, attempts=attempts, client=http_client(), service="Benchling"
        )
        # Experiment id -> entry id, learnt from polls and lookups; always checked against the entry on use.
        self._entry_ids: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    def _headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.api_key}:".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}", "Accept": "application/json"}

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.request("GET", path, params=dict(params or {}), headers=self._headers())
        try:
            body = response.json()
        except ValueError as exc:
            raise ElnBadResponse(f"Benchling GET {path} did not answer JSON (is {self.root_url} Benchling?)") from exc
        if not isinstance(body, dict):
            raise ElnBadResponse(f"Benchling GET {path} answered {type(body).__name__}, not an object")
        return body

    def _pages(self, path: str, key: str, params: Mapping[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Pages of a Benchling listing, following ``nextToken`` until it is empty or a page is.

        The empty page ends it too: with ``poll=true`` (which labmesh does not ask
        for, but a proxy might) the events API always hands back a token.
        """
        token: str | None = None
        seen_tokens: set[str] = set()
        while True:
            query = {**params, "pageSize": self.page_size, **({"nextToken": token} if token else {})}
            body = self._get(path, query)
            rows = body.get(key)
            if not isinstance(rows, list):
                raise ElnBadResponse(f"Benchling GET {path} answered no {key!r} list")
            page = [row for row in rows if isinstance(row, dict)]
            yield page
            token = body.get("nextToken") or None
            if not page or not isinstance(token, str) or token in seen_tokens:
                return
            seen_tokens.add(token)

    def entry_url(self, entry_id: str) -> str:
        return f"{self.root_url}{ENTRIES}/{entry_id}"

    def _source(self, entry: Mapping[str, Any]) -> str:
        """Where people open the entry (``webURL``); the record's source, so logs and the catalog link to it."""
        url = entry.get("webURL")
        if isinstance(url, str) and url:
            return url
        entry_id = entry.get("id")
        return self.entry_url(entry_id) if isinstance(entry_id, str) else f"{self.root_url} (an entry without an id)"

    # Reading entries

    def _entry(self, entry_id: str) -> dict[str, Any] | None:
        """The entry, unwrapped from ``{"entry": ...}``; None when it is gone or not shared with the key."""
        self.validate_entry_id(entry_id)  # the last check before the id becomes part of a URL
        try:
            body = self._get(f"{ENTRIES}/{entry_id}")
        except ElnRequestRefused as exc:
            if exc.status in {403, 404}:
                return None
            raise
        entry = body.get("entry", body)
        if not isinstance(entry, dict):
            raise ElnBadResponse(f"Benchling GET {ENTRIES}/{entry_id} answered no entry object")
        return entry

    def _bulk_entries(self, entry_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The entries that can be read, by id, a hundred a request; ids missing from the answer are left out.

        A batch Benchling refuses on its merits (one id gone or not shared may
        spoil it) is left out whole; each of its entries is then read on its own
        (`sort_entries` does that for an entry it is not given), which names the
        one that cannot be read.
        """
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(entry_ids), BULK_GET_MAX_IDS):
            batch = [self.validate_entry_id(entry_id) for entry_id in entry_ids[start : start + BULK_GET_MAX_IDS]]
            try:
                body = self._get(BULK_GET, {"entryIds": ",".join(batch)})
            except ElnRequestRefused as exc:
                log.warning("Benchling refused a bulk read of %d entries (%s); reading each alone", len(batch), exc)
                continue
            rows = body.get("entries")
            if not isinstance(rows, list):
                raise ElnBadResponse(f"Benchling GET {BULK_GET} answered no 'entries' list")
            wanted = set(batch)
            for row in rows:
                if isinstance(row, dict) and row.get("id") in wanted:
                    found[row["id"]] = row
        return found

    def _location_names(self) -> dict[str, str | None]:
        """Field name -> zone for per-zone fields; the single field maps to None (its lines name the zones)."""
        if isinstance(self.location_field, str):
            return {self.location_field: None}
        return {name: zone for zone, name in self.location_field.items()}

    def source_fields(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """The entry as the mapping reads it: its properties, schema fields and custom fields as plain values."""
        fields = dict(entry)
        schema_fields = entry.get("fields")
        if isinstance(schema_fields, Mapping):
            fields["fields"] = {str(name): field_value(spec) for name, spec in schema_fields.items()}
        custom_fields = entry.get("customFields")
        if isinstance(custom_fields, Mapping):
            fields["customFields"] = {str(name): field_value(spec) for name, spec in custom_fields.items()}
        return fields

    def _mapped(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        own = [f"fields.{name}" for name in self._location_names()]
        return self.mapping.apply(self.source_fields(entry), exclude=own)

    def record_of(self, entry: Mapping[str, Any]) -> ExperimentRecord:
        """The normalised record of one entry; `RecordError` naming the entry when it cannot be one."""
        source = self._source(entry)
        try:
            record = record_from_mapping(self._mapped(entry), source=source)
        except RecordError:
            raise
        except Exception as exc:  # one odd entry must not stop the others (nor the sensor tick)
            raise RecordError(source, f"cannot be normalised: {type(exc).__name__}: {exc}") from exc
        self._entry_ids[record.id] = _entry_id_of(entry)
        return record

    def experiment_id_of(self, entry: Mapping[str, Any]) -> str:
        """The experiment id the mapping gives the entry (for archived entries, whose other fields do not matter)."""
        source = self._source(entry)
        raw = self._mapped(entry).get("id")
        if raw is None:
            raise RecordError(source, "entry has no experiment id (see the experiment_id mapping)")
        try:
            return validate_experiment_id(str(raw).strip())
        except InvalidExperimentId as exc:
            raise RecordError(source, str(exc)) from exc

    def _ours(self, entry: Mapping[str, Any]) -> bool:
        """Whether the entry is of the configured entry schema (every entry is when none is configured)."""
        if self.schema_id is None:
            return True
        schema = entry.get("schema")
        return isinstance(schema, Mapping) and schema.get("id") == self.schema_id

    def _sort(
        self, entries: Sequence[tuple[str, Mapping[str, Any] | None]]
    ) -> tuple[tuple[ExperimentRecord, ...], tuple[RecordError, ...], tuple[str, ...]]:
        """Entries (read now, or read when None) sorted into records, errors and archived experiment ids.

        The entry's ``archiveRecord`` decides, not whatever announced the change.
        """

        def state_of(entry: Mapping[str, Any]) -> str:
            if not self._ours(entry):
                return NOT_OURS
            return ARCHIVED if entry.get("archiveRecord") else LIVE

        return sort_entries(
            entries,
            read=lambda entry_id, known: known if known is not None else self._entry(entry_id),
            state_of=state_of,
            record_of=self.record_of,
            experiment_id_of=self.experiment_id_of,
            entry_url=self.entry_url,
        )

    # The poll

    def _listing_params(self) -> dict[str, Any]:
        # Oldest change first, so that when two entries claim one experiment id, the earlier claim wins.
        return {"sort": "modifiedAt:asc", **({"schemaId": self.schema_id} if self.schema_id else {})}

    def _backfill(self) -> ElnPoll:
        """Every live entry, listed in full, and a cursor that starts the event feed from before the listing."""
        since = (self.clock().astimezone(UTC) - BACKFILL_OVERLAP).isoformat(timespec="seconds")
        rows = [row for page in self._pages(ENTRIES, "entries", self._listing_params()) for row in page]
        records, errors, archived = self._sort([(_entry_id_of(row), row) for row in rows])
        return ElnPoll(records=records, errors=errors, cursor=PollCursor(since=since).to_json(), archived=archived)

    def _changes(self, cursor: PollCursor) -> tuple[list[tuple[str, dict[str, Any] | None]], PollCursor, bool]:
        """The entries events after ``cursor`` name, each read once (in bulk), the cursor after them, and whether all.

        A page of events counts as done once its entries are read. When
        Benchling stops answering part way (throttled past the retries, down),
        the pages done are returned with the cursor after the last of them, and
        ``complete`` is False; when not even the first page could be done, the
        failure is raised, as there is nothing to hand on.
        """
        params: dict[str, Any] = {"eventTypes": ",".join(ENTRY_EVENT_TYPES)}
        if cursor.after:
            params["startingAfter"] = cursor.after
        elif cursor.since:
            params["createdAt.gte"] = cursor.since
        entries: dict[str, dict[str, Any] | None] = {}
        done = cursor
        pages = self._pages(EVENTS, "events", params)
        while True:
            try:
                page = next(pages, None)
                if page is None:
                    return list(entries.items()), done, True
                named = self._named_entries(page)
                fresh = [entry_id for entry_id in named if entry_id not in entries]
                read = self._bulk_entries(fresh)
            except ElnUnavailable as exc:
                if done == cursor:
                    raise
                log.warning("Benchling poll stopped part way, to resume after event %s: %s", done.after, exc)
                return list(entries.items()), done, False
            for entry_id in fresh:
                entries[entry_id] = read.get(entry_id)
            last = next((event["id"] for event in reversed(page) if isinstance(event.get("id"), str)), None)
            if last is not None:
                done = PollCursor(after=last)

    def _named_entries(self, events: Sequence[Mapping[str, Any]]) -> list[str]:
        """The entry ids a page of events names, each once, in order; ids that are not entry ids are passed over."""
        named: dict[str, None] = {}
        for event in events:
            entry = event.get("entry")
            if event.get("eventType") not in ENTRY_EVENT_TYPES or not isinstance(entry, Mapping):
                continue
            entry_id = entry.get("id")
            if not isinstance(entry_id, str):
                continue
            try:
                named.setdefault(self.validate_entry_id(entry_id), None)
            except InvalidEntryId as exc:
                log.warning("Benchling event %s names no entry labmesh can read: %s", event.get("id"), exc)
        return list(named)

    def poll(self, cursor: str | None) -> ElnPoll:
        previous = PollCursor.from_json(cursor)
        if previous is None:
            return self._backfill()
        entries, after, complete = self._changes(previous)
        if not entries:
            return ElnPoll(cursor=after.to_json(), unchanged=complete and after == previous)
        records, errors, archived = self._sort(entries)
        return ElnPoll(records=records, errors=errors, cursor=after.to_json(), archived=archived)

    def resolve(self, events: Sequence[ElnEvent]) -> ElnPoll:
        """The entries that webhook or EventBridge events name, each read once, now, in bulk."""
        entry_ids: dict[str, None] = {}
        errors: list[RecordError] = []
        for event in events:
            try:
                entry_ids.setdefault(self.validate_entry_id(event.entry_id), None)
            except InvalidEntryId as exc:
                errors.append(RecordError(f"{event.source} event {event.event_id}", str(exc)))
        read = self._bulk_entries(list(entry_ids))
        records, failed, archived = self._sort([(entry_id, read.get(entry_id)) for entry_id in entry_ids])
        return ElnPoll(records=records, errors=(*errors, *failed), archived=archived)

    # Finding one experiment's entry

    def _candidates(self, experiment_id: str) -> Iterator[str]:
        """Entry ids that may hold ``experiment_id``, cheapest first; each is checked by the caller."""
        if experiment_id in self._entry_ids:
            yield self._entry_ids[experiment_id]
        sources = self.mapping.sources("experiment_id")
        if "displayId" in sources:
            for page in self._pages(ENTRIES, "entries", {"displayIds": experiment_id}):
                yield from (_entry_id_of(row) for row in page)
        if any(spec != "displayId" for spec in sources):
            # Schema fields cannot be searched without knowing the field's schema: the listing is the last resort.
            for page in self._pages(ENTRIES, "entries", self._listing_params()):
                for row in page:
                    try:
                        if self.experiment_id_of(row) == experiment_id:
                            yield _entry_id_of(row)
                    except RecordError:
                        continue

    def remember(self, experiment_id: str, source: str) -> None:
        """The entry a record of ``experiment_id`` was read from (its source URL), tried first when looking it up.

        A mapping that takes the experiment id from a schema field cannot be
        searched by Benchling, so without this a fresh connector (every run has
        one) lists every entry to find one. The entry is still checked to hold
        the experiment; a source naming no entry is ignored.
        """
        found = _ENTRY_IN_URL.search(source)
        if found is not None:
            self._entry_ids.setdefault(experiment_id, found.group(1))

    def _find(self, experiment_id: str) -> dict[str, Any]:
        """The entry whose mapped experiment id is ``experiment_id``, or `ExperimentNotFound`."""
        validate_experiment_id(experiment_id)

        def ours(entry_id: str) -> dict[str, Any] | None:
            entry = self._entry(entry_id)
            return entry if entry is not None and self._ours(entry) else None

        found = first_entry_with_id(experiment_id, self._candidates(experiment_id), ours, self.experiment_id_of)
        if found is None:
            self._entry_ids.pop(experiment_id, None)
            raise ExperimentNotFound(f"no Benchling entry at {self.root_url} has the experiment id {experiment_id}")
        self._entry_ids[experiment_id] = found[0]
        return found[1]

    def fetch(self, experiment_id: str) -> ExperimentRecord:
        return self.record_of(self._find(experiment_id))

    # Writing the data locations back

    def _locations(self, entry: Mapping[str, Any]) -> dict[str, str]:
        fields = entry.get("fields")
        fields = fields if isinstance(fields, Mapping) else {}
        found: dict[str, str] = {}
        for name, zone in self._location_names().items():
            spec = fields.get(name)
            value = spec.get("value") if isinstance(spec, Mapping) else None
            if not isinstance(value, str) or not value.strip():
                continue
            if zone is not None:
                found[zone] = value.strip()
            else:
                found.update(parse_locations(value))
        return dict(sorted(found.items()))

    def _desired_values(self, current: Mapping[str, str], locations: Mapping[str, str]) -> dict[str, str]:
        """Field name -> text to hold, for the fields that must change (zones not written keep their value)."""
        if isinstance(self.location_field, str):
            merged = {**current, **locations}
            return {} if merged == dict(current) else {self.location_field: format_locations(merged)}
        missing = sorted(set(locations) - set(self.location_field))
        if missing:
            raise ValueError(f"no Benchling location field is configured for zone(s) {', '.join(missing)}")
        return {self.location_field[zone]: uri for zone, uri in locations.items() if current.get(zone) != uri}

    def write_back(self, experiment_id: str, locations: Mapping[str, str]) -> None:
        """The locations into the entry's location field(s); nothing is sent when they already hold them.

        Skipping the no-op write matters: every PATCH raises an update event that
        the next poll then has to read.
        """
        entry = self._find(experiment_id)
        values = self._desired_values(self._locations(entry), locations)
        if not values:
            return
        self.http.request(
            "PATCH",
            f"{ENTRIES}/{_entry_id_of(entry)}",
            json={"fields": {name: {"value": text} for name, text in sorted(values.items())}},
            headers=self._headers(),
        )

    def read_back(self, experiment_id: str) -> dict[str, str]:
        return self._locations(self._find(experiment_id))


def format_locations(locations: Mapping[str, str]) -> str:
    """One ``zone: uri`` line per zone, in zone-name order, so the same locations always give the same text."""
    return "\n".join(f"{zone}: {uri}" for zone, uri in sorted(locations.items()))


def parse_locations(text: str) -> dict[str, str]:
    """The ``zone: uri`` lines of a location field (lines without a zone are a person's notes, and skipped)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        zone, separator, uri = line.partition(":")
        zone, uri = zone.strip(), uri.strip()
        if separator and zone and uri and " " not in zone and not uri.startswith("//"):
            found[zone] = uri
    return found
