"""eLabFTW through its REST API v2: experiments in, data locations back out as extra fields.

Built against the official OpenAPI description of API v2 (``info.version``
2.0.0). What the connector relies on, and why:

- ``GET /api/v2/experiments`` lists entries; ``order=lastchange`` with
  ``sort=desc`` puts the most recently changed first, ``limit``/``offset`` page,
  ``state=1,2,3`` includes archived (2) and deleted (3) entries so that their
  archiving is noticed, and ``scope`` (1 self, 2 team, 3 everything) is set
  explicitly because its default is a preference of the key's owner.
- ``GET /api/v2/experiments/{id}`` reads one entry in full: its ``metadata``
  holds the typed ``extra_fields`` a lab fills in.
- ``PATCH /api/v2/experiments/{id}`` with ``metadatamerge`` adds or updates
  extra fields without touching the others (the documented merge: existing
  fields keep their type and description, only their value changes).
- ``extended`` (the advanced search, ``extrafield:key:value``) finds the entry
  holding an experiment id in an extra field.

eLabFTW has no change feed and moves ``modified_at`` to the second, so the
cursor remembers the newest change time *and* every entry seen at that second
(with a digest of its listing): an entry edited later within the same second is
still found, and a replayed poll reports nothing. The write-back changes
``modified_at`` too; the records leave labmesh's location fields and eLabFTW's
bookkeeping out (see `ELABFTW_DEFAULTS`), so after one re-read the registry
sees the same fingerprint and nothing starts again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from labmesh_dagster.connectors.eln.base import (
    ARCHIVED,
    LIVE,
    ElnBadResponse,
    ElnEvent,
    ElnPoll,
    ElnRequestRefused,
    ElnSource,
    InvalidEntryId,
    cursor_fields,
    first_entry_with_id,
    sort_entries,
)
from labmesh_dagster.connectors.eln.mapping import ELABFTW_DEFAULTS, FieldMapping, match_template, template_names
from labmesh_dagster.connectors.http import DEFAULT_ATTEMPTS, DEFAULT_TIMEOUT_SECONDS, RetryingHttp, http_client
from labmesh_dagster.core.errors import ExperimentNotFound, InvalidExperimentId, RecordError
from labmesh_dagster.core.experiment import ExperimentRecord, record_from_mapping
from labmesh_dagster.core.ids import validate_experiment_id

API = "/api/v2"
EXPERIMENTS = f"{API}/experiments"
ITEMS = f"{API}/items"
# Entry states, per the spec's `state` query parameter: 1 normal, 2 archived, 3 deleted (soft).
STATE_NORMAL, STATE_ARCHIVED, STATE_DELETED = 1, 2, 3
ALL_STATES = "1,2,3"
LIVE_STATES = "1,2"
ZONES = ("landing", "raw", "processed", "final")
DEFAULT_LOCATION_FIELDS = {zone: f"labmesh {zone} location" for zone in ZONES}
# Write-backs to zones without a configured field use this name, and are recognised by it.
_DEFAULT_LOCATION_NAME = re.compile(r"^labmesh (\S+) location$")
DEFAULT_PAGE_SIZE = 50
# eLabFTW's ids are unsigned integer columns; 18 digits keeps any of them and refuses absurd ones.
ENTRY_ID = re.compile(r"[1-9][0-9]{0,17}")
# The entry id in the URL people open an entry at (`ElabFtwEln.entry_url`, a record's source).
_ENTRY_IN_URL = re.compile(r"/experiments\.php\?(?:[^#]*&)?id=([1-9][0-9]{0,17})(?:[&#]|$)")
SCOPE_SELF, SCOPE_TEAM, SCOPE_EVERYTHING = 1, 2, 3
CURSOR_VERSION = 1


def change_key(value: Any) -> str:
    """``modified_at`` as a string that sorts in time order (UTC when the server says its zone)."""
    if value is None:
        return ""
    text = str(value).strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


def row_digest(row: Mapping[str, Any]) -> str:
    """A short digest of one listed entry: tells a same-second edit from the listing seen before."""
    canonical = json.dumps(row, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class PollCursor:
    """Where the last poll stopped: the newest change time seen, and each entry changed at that time.

    Seconds are eLabFTW's resolution, so the newest second may still receive
    edits after a poll; its entries are compared again next time by digest.
    """

    lastchange: str
    seen: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"v": CURSOR_VERSION, "lastchange": self.lastchange, "seen": dict(self.seen)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> PollCursor | None:
        """The cursor in ``text``; None (read everything again) for none, or one from another connector or version."""
        data = cursor_fields(text, CURSOR_VERSION)
        if data is None or not isinstance(data.get("lastchange"), str):
            return None
        seen = data.get("seen")
        pairs = seen.items() if isinstance(seen, dict) else ()
        return cls(data["lastchange"], {str(key): str(value) for key, value in pairs})


class _TextOfHtml(HTMLParser):
    """The text of an HTML body, a line per block, for search and for people."""

    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def _row_id(row: Mapping[str, Any]) -> int:
    """The entry id of a listed row (rows without one are dropped when listed)."""
    entry_id = _entry_id(row.get("id"))
    if entry_id is None:
        raise ElnBadResponse(f"eLabFTW listed an entry without an id: {str(row)[:200]}")
    return entry_id


def _entry_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _number(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def metadata_of(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The entry's ``metadata`` object; servers send it as an object or as a JSON string."""
    for key in ("metadata_decoded", "metadata"):
        value = entity.get(key)
        if isinstance(value, str) and value.strip():
            try:
                value = json.loads(value)
            except ValueError:
                continue
        if isinstance(value, dict):
            return value
    return {}


def extra_fields_of(entity: Mapping[str, Any]) -> dict[str, Any]:
    fields = metadata_of(entity).get("extra_fields")
    return fields if isinstance(fields, dict) else {}


class ElabFtwEln(ElnSource):
    """An eLabFTW instance: experiments polled by last change, locations written back as ``url`` extra fields.

    ``base_url`` is the instance (``https://eln.example.org``; a trailing
    ``/api/v2`` is accepted too). ``api_key`` is sent as the ``Authorization``
    header as it is (eLabFTW takes no ``Bearer`` prefix); it needs write access
    for the write-back. ``mapping`` is a `FieldMapping`, or a dict of overrides
    of `ELABFTW_DEFAULTS`. ``location_fields`` names the extra field per zone.
    ``scope`` is which entries the key reads (1 its owner's, 2 the team's, 3
    everything it may see). ``verify`` is False for no TLS check, or the path of
    a CA bundle for an instance behind an internal certificate authority.
    ``http`` replaces the client built from ``timeout`` and ``attempts`` (tests).
    """

    name = "elabftw"

    @staticmethod
    def validate_entry_id(entry_id: str) -> str:
        """eLabFTW numbers its experiments: a positive decimal integer, in ASCII digits, that fits its database."""
        if not ENTRY_ID.fullmatch(entry_id):
            raise InvalidEntryId(entry_id, "an eLabFTW entry id (a positive integer)")
        return entry_id

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        mapping: FieldMapping | Mapping[str, Any] = ELABFTW_DEFAULTS,
        location_fields: Mapping[str, str] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        scope: int = SCOPE_TEAM,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        attempts: int = DEFAULT_ATTEMPTS,
        verify: bool | str = True,
        http: RetryingHttp | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("an eLabFTW API key is required (create one under User panel > API keys)")
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if scope not in {SCOPE_SELF, SCOPE_TEAM, SCOPE_EVERYTHING}:
            raise ValueError("scope is 1 (own entries), 2 (the team's) or 3 (everything the key can read)")
        root = base_url.rstrip("/")
        self.root_url = root[: -len(API)] if root.endswith(API) else root
        self.api_key = api_key
        self.mapping = (
            mapping if isinstance(mapping, FieldMapping) else FieldMapping.from_dict(mapping, defaults=ELABFTW_DEFAULTS)
        )
        self.location_fields = dict(location_fields or DEFAULT_LOCATION_FIELDS)
        self.page_size = page_size
        self.scope = scope
        self.http = http or RetryingHttp(
            self.root_url,
            timeout=timeout,
            attempts=attempts,
            client=http_client(verify),
            service="eLabFTW",
        )
        # Experiment id -> entry id, learnt from polls and lookups; always checked against the entry on use.
        self._entry_ids: dict[str, int] = {}
        self._titles: dict[tuple[str, int], str] = {}

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = self.http.request("GET", path, params=dict(params or {}), headers=self._headers())
        try:
            return response.json()
        except ValueError as exc:
            raise ElnBadResponse(f"eLabFTW GET {path} did not answer JSON (is {self.root_url} eLabFTW?)") from exc

    def close(self) -> None:
        self.http.close()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": self.api_key, "Accept": "application/json"}

    def entry_url(self, entry_id: int) -> str:
        """Where people open the entry; it is also the record's source, so logs and the catalog link to it."""
        return f"{self.root_url}/experiments.php?mode=view&id={entry_id}"

    # Reading entries

    def _list(self, params: Mapping[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Pages of ``GET /experiments`` with ``params``, until an empty page or one that repeats itself.

        A short page is not taken as the end: a server may cap ``limit`` below the
        page size asked for, so the offset moves by what actually came back.
        """
        offset = 0
        seen: set[Any] = set()
        while True:
            page = self._get(EXPERIMENTS, {**params, "limit": self.page_size, "offset": offset, "scope": self.scope})
            if not isinstance(page, list):
                raise ElnBadResponse(f"eLabFTW GET {EXPERIMENTS} answered {type(page).__name__}, not a list")
            rows = [row for row in page if isinstance(row, dict) and _entry_id(row.get("id")) is not None]
            fresh = [row for row in rows if _row_id(row) not in seen]
            seen.update(_row_id(row) for row in rows)
            yield fresh
            # A server that ignores `offset` would hand back the same page forever.
            if not page or not fresh:
                return
            offset += len(page)

    def _entry(self, entry_id: int) -> dict[str, Any]:
        entity = self._get(f"{EXPERIMENTS}/{entry_id}")
        if not isinstance(entity, dict):
            raise ElnBadResponse(
                f"eLabFTW GET {EXPERIMENTS}/{entry_id} answered {type(entity).__name__}, not an object"
            )
        return entity

    def _entry_or_none(self, entry_id: int) -> dict[str, Any] | None:
        try:
            return self._entry(entry_id)
        except ElnRequestRefused as exc:
            if exc.status in {403, 404}:
                return None
            raise

    def _title(self, kind: str, entry_id: int, entity: Mapping[str, Any]) -> str:
        """The title of a linked item or experiment: from the entry's own links, else read once."""
        for link in entity.get(f"{kind}_links") or ():
            if isinstance(link, Mapping) and _entry_id(link.get("entityid")) == entry_id and link.get("title"):
                return str(link["title"])
        if (kind, entry_id) not in self._titles:
            path = f"{ITEMS if kind == 'items' else EXPERIMENTS}/{entry_id}"
            try:
                linked = self._get(path)
            except ElnRequestRefused:
                linked = None
            title = linked.get("title") if isinstance(linked, dict) else None
            self._titles[(kind, entry_id)] = str(title) if title else str(entry_id)
        return self._titles[(kind, entry_id)]

    def _field_value(self, spec: Any, entity: Mapping[str, Any]) -> Any:
        """One extra field's plain value, typed: numbers as numbers, checkboxes as booleans, links as titles."""
        if not isinstance(spec, Mapping):
            return spec
        kind = str(spec.get("type") or "text")
        value = spec.get("value")
        if isinstance(value, list):
            converted = [self._one_value(kind, item, spec, entity) for item in value]
            return [item for item in converted if item is not None]
        return self._one_value(kind, value, spec, entity)

    def _one_value(self, kind: str, value: Any, spec: Mapping[str, Any], entity: Mapping[str, Any]) -> Any:
        if kind == "checkbox":
            return str(value).strip().lower() in {"on", "1", "true", "yes"}
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if kind == "number":
            number = _number(value)
            unit = spec.get("unit")
            return {"value": number, "unit": unit} if unit else number
        if kind in {"items", "experiments"}:
            linked = _entry_id(value)
            return value if linked is None else self._title(kind, linked, entity)
        if kind in {"users", "uploads", "compounds"}:
            linked = _entry_id(value)
            return value if linked is None else linked
        return value

    def source_fields(self, entity: Mapping[str, Any]) -> dict[str, Any]:
        """The entry as the mapping reads it: its columns, the body as text, ``extra_fields`` as plain values."""
        fields = {key: value for key, value in entity.items() if key not in {"metadata", "metadata_decoded"}}
        body = entity.get("body")
        if isinstance(body, str) and entity.get("content_type") != 2:  # 2 is Markdown: already text
            fields["body"] = html_to_text(body)
        metadata = metadata_of(entity)
        fields["extra_fields"] = {
            str(name): self._field_value(spec, entity) for name, spec in extra_fields_of(entity).items()
        }
        others = {key: value for key, value in metadata.items() if key != "extra_fields"}
        if others:
            fields["metadata"] = others
        return fields

    def _location_names(self, extra_fields: Mapping[str, Any]) -> dict[str, str]:
        """Extra field name -> zone, for labmesh's own location fields (configured or named by default)."""
        names = {name: zone for zone, name in self.location_fields.items()}
        for name in extra_fields:
            match = _DEFAULT_LOCATION_NAME.fullmatch(str(name))
            if match and name not in names:
                names[str(name)] = match.group(1)
        return names

    def _mapped(self, entity: Mapping[str, Any]) -> dict[str, Any]:
        fields = self.source_fields(entity)
        own = [f"extra_fields.{name}" for name in self._location_names(fields["extra_fields"])]
        return self.mapping.apply(fields, exclude=own)

    def _source(self, entity: Mapping[str, Any]) -> str:
        entry_id = _entry_id(entity.get("id"))
        return self.entry_url(entry_id) if entry_id is not None else f"{self.root_url} (an entry without an id)"

    def record_of(self, entity: Mapping[str, Any]) -> ExperimentRecord:
        """The normalised record of one full entry; `RecordError` naming the entry when it cannot be one."""
        source = self._source(entity)
        try:
            record = record_from_mapping(self._mapped(entity), source=source)
        except RecordError:
            raise
        except Exception as exc:  # one odd entry must not stop the others (nor the sensor tick)
            raise RecordError(source, f"cannot be normalised: {type(exc).__name__}: {exc}") from exc
        entry_id = _entry_id(entity.get("id"))
        if entry_id is not None:
            self._entry_ids[record.id] = entry_id
        return record

    def experiment_id_of(self, entity: Mapping[str, Any]) -> str:
        """The experiment id the mapping gives the entry (for archived entries, whose other fields do not matter)."""
        source = self._source(entity)
        raw = self._mapped(entity).get("id")
        if raw is None:
            raise RecordError(source, "entry has no experiment id (see the experiment_id mapping)")
        try:
            return validate_experiment_id(str(raw).strip())
        except InvalidExperimentId as exc:
            raise RecordError(source, str(exc)) from exc

    # The poll

    def _changed_rows(self, previous: PollCursor | None) -> tuple[list[dict[str, Any]], PollCursor]:
        """Listed entries changed since ``previous``, newest first, and the cursor after them."""
        changed: list[dict[str, Any]] = []
        newest = previous.lastchange if previous else ""
        boundary: dict[str, str] = dict(previous.seen) if previous else {}
        params = {"order": "lastchange", "sort": "desc", "state": ALL_STATES}
        for page in self._list(params):
            for row in page:
                key, digest, entry = change_key(row.get("modified_at")), row_digest(row), str(_row_id(row))
                if previous is not None and key < previous.lastchange:
                    # Sorted by last change: everything after this row is older still.
                    return changed, PollCursor(newest, boundary)
                if key > newest:
                    newest, boundary = key, {}
                if key == newest:
                    boundary[entry] = digest
                seen_before = previous is not None and key == previous.lastchange and previous.seen.get(entry) == digest
                if not seen_before:
                    changed.append(row)
        return changed, PollCursor(newest, boundary)

    def poll(self, cursor: str | None) -> ElnPoll:
        previous = PollCursor.from_json(cursor)
        rows, after = self._changed_rows(previous)
        if previous is not None and not rows:
            return ElnPoll(cursor=after.to_json(), unchanged=True)
        # Oldest change first, so that when two entries claim one experiment id, the earlier claim wins.
        rows.sort(key=lambda row: (change_key(row.get("modified_at")), _row_id(row)))
        self._titles.clear()
        records, errors, archived = self._read_all([(_row_id(row), row) for row in rows])
        return ElnPoll(records=records, errors=errors, cursor=after.to_json(), archived=archived)

    def _read_all(
        self, entries: Sequence[tuple[int, Mapping[str, Any] | None]]
    ) -> tuple[tuple[ExperimentRecord, ...], tuple[RecordError, ...], tuple[str, ...]]:
        """Each entry read in full and sorted into records, errors and archived experiment ids.

        The entry's ``state`` decides, not whatever announced the change; its listing
        stands in when the entry itself can no longer be read (deleted since).
        """

        def state_of(entity: Mapping[str, Any]) -> str:
            state = _entry_id(entity.get("state")) or STATE_NORMAL
            return ARCHIVED if state in {STATE_ARCHIVED, STATE_DELETED} else LIVE

        return sort_entries(
            entries,
            read=lambda entry_id, listed: self._entry_or_none(entry_id) or (dict(listed) if listed else None),
            state_of=state_of,
            record_of=self.record_of,
            experiment_id_of=self.experiment_id_of,
            entry_url=self.entry_url,
        )

    # Finding one experiment's entry

    def _candidates(self, experiment_id: str) -> Iterator[int]:
        """Entry ids that may hold ``experiment_id``, cheapest first; each is checked by the caller."""
        if experiment_id in self._entry_ids:
            yield self._entry_ids[experiment_id]
        sources = self.mapping.sources("experiment_id")
        unsearchable = False
        for spec in sources:
            found = match_template(spec, experiment_id)
            if found and set(found) == {"id"} and _entry_id(found["id"]) is not None:
                yield int(found["id"])
            elif "{" in spec and "}" in spec and set(template_names(spec)) != {"id"}:
                unsearchable = True
        for spec in sources:
            if spec.startswith("extra_fields.") and "{" not in spec and "[]" not in spec:
                query = f"extrafield:{_quoted(spec[len('extra_fields.') :])}:{_quoted(experiment_id)}"
                yield from self._search({"extended": query})
            elif spec in {"title", "elabid"}:
                # The simple search `q` covers the title, the body and the elabid.
                yield from self._search({"q": experiment_id})
            elif "{" not in spec:
                unsearchable = True
        if unsearchable:
            yield from self._scan(experiment_id)

    def _search(self, params: Mapping[str, Any]) -> Iterator[int]:
        for page in self._list({**params, "state": LIVE_STATES}):
            for row in page:
                yield _row_id(row)

    def _scan(self, experiment_id: str) -> Iterator[int]:
        """Every live entry whose listing maps to ``experiment_id``: the last resort, for ids no search can find."""
        for page in self._list({"order": "id", "sort": "asc", "state": LIVE_STATES}):
            for row in page:
                try:
                    if self.experiment_id_of(row) == experiment_id:
                        yield _row_id(row)
                except RecordError:
                    continue

    def remember(self, experiment_id: str, source: str) -> None:
        """The entry a record of ``experiment_id`` was read from (its source URL), tried first when looking it up.

        Spares a fresh connector (every run has one) the search, or with a
        mapping no search can serve, the listing of every entry. The entry is
        still checked to hold the experiment; a source naming no entry is ignored.
        """
        found = _ENTRY_IN_URL.search(source)
        if found is not None and source.startswith(self.root_url):
            self._entry_ids.setdefault(experiment_id, int(found.group(1)))

    def _find(self, experiment_id: str) -> dict[str, Any]:
        """The live entry whose mapped experiment id is ``experiment_id``, or `ExperimentNotFound`."""
        validate_experiment_id(experiment_id)

        def live(entry_id: int) -> dict[str, Any] | None:
            entity = self._entry_or_none(entry_id)
            deleted = entity is not None and (_entry_id(entity.get("state")) or STATE_NORMAL) == STATE_DELETED
            return None if deleted else entity

        found = first_entry_with_id(experiment_id, self._candidates(experiment_id), live, self.experiment_id_of)
        if found is None:
            self._entry_ids.pop(experiment_id, None)
            raise ExperimentNotFound(f"no eLabFTW experiment at {self.root_url} has the experiment id {experiment_id}")
        self._entry_ids[experiment_id] = found[0]
        return found[1]

    def fetch(self, experiment_id: str) -> ExperimentRecord:
        self._titles.clear()
        return self.record_of(self._find(experiment_id))

    # Writing the data locations back

    def location_field(self, zone: str) -> str:
        return self.location_fields.get(zone, f"labmesh {zone} location")

    def _locations(self, entity: Mapping[str, Any]) -> dict[str, str]:
        extra = extra_fields_of(entity)
        found: dict[str, str] = {}
        for name, zone in self._location_names(extra).items():
            spec = extra.get(name)
            value = spec.get("value") if isinstance(spec, Mapping) else None
            if isinstance(value, str) and value.strip():
                found[zone] = value.strip()
        return dict(sorted(found.items()))

    def write_back(self, experiment_id: str, locations: Mapping[str, str]) -> None:
        """One ``url`` extra field per zone, merged into the entry; nothing is sent when they already hold these.

        Skipping the no-op write matters: every PATCH moves the entry's last change,
        which the next poll then has to read again.
        """
        entity = self._find(experiment_id)
        current = self._locations(entity)
        changes = {zone: uri for zone, uri in locations.items() if current.get(zone) != uri}
        if not changes:
            return
        extra_fields = {
            self.location_field(zone): {
                "type": "url",
                "value": uri,
                "description": f"Where labmesh keeps this experiment's {zone} data (written by labmesh).",
            }
            for zone, uri in sorted(changes.items())
        }
        entry_id = int(entity["id"])
        self.http.request(
            "PATCH",
            f"{EXPERIMENTS}/{entry_id}",
            json={"metadatamerge": {"extra_fields": extra_fields}},
            headers=self._headers(),
        )

    def read_back(self, experiment_id: str) -> dict[str, str]:
        return self._locations(self._find(experiment_id))

    def resolve(self, events: Sequence[ElnEvent]) -> ElnPoll:
        """The entries events name, read now; eLabFTW sends none itself, but a relay (or a test) may."""
        entries: dict[int, Mapping[str, Any] | None] = {}
        errors: list[RecordError] = []
        for event in events:
            try:
                entry_id = int(self.validate_entry_id(event.entry_id))
            except InvalidEntryId as exc:
                errors.append(RecordError(f"{event.source} event {event.event_id}", str(exc)))
                continue
            entries.setdefault(entry_id, None)
        self._titles.clear()
        records, failed, archived = self._read_all(list(entries.items()))
        return ElnPoll(records=records, errors=(*errors, *failed), archived=archived)


def _quoted(term: str) -> str:
    """A quoted term of eLabFTW's search syntax (backslash escapes quotes and backslashes)."""
    return '"' + term.replace("\\", "\\\\").replace('"', '\\"') + '"'
