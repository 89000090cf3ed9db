"""Benchling (API v2) as an ELN: the connector against a local server holding entries and the event stream.

Pinned here: the first poll backfills by listing entries (paged, no entry read
twice) and maps schema fields into records, keeping unmapped fields as custom
ones and leaving ``modifiedAt`` and labmesh's own location field out; later
polls follow the event feed from the cursor and read only the entries events
name, each once; an idle poll reads no entry; archived entries are reported as
archived and entries without a valid experiment id as errors, while the others
arrive; `fetch` finds an entry by display id or schema field, and goes straight
to the entry a record's source names when told it (no listing); the write-back
PATCHes ``fields`` (never ``customFields``), reads back, is not repeated when
nothing changed, and does not look like an edit to the registry; `resolve`
reads each webhook-named entry once, in bulk, and refuses an id that is not an
entry id before any request; 429 honours ``Retry-After`` and Benchling's own
``x-rate-limit-reset``; changed entries are read a hundred a request, so a
poll of seventy changes fits in a user key's rate limit; a poll cut off part
way keeps what it read and moves its cursor over it; assigning a reviewer is a
change; 5xx is retried and then reported by method and path; every request
carries HTTP Basic auth.
"""

from __future__ import annotations

from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from labmesh_dagster.connectors.eln.base import ElnEvent, ElnRequestRefused, ElnUnavailable
from labmesh_dagster.connectors.eln.benchling import BenchlingEln, PollCursor, format_locations, parse_locations
from labmesh_dagster.connectors.http import RetryingHttp
from labmesh_dagster.core.errors import ExperimentNotFound
from labmesh_dagster.steps.intake import experiments_to_register
from labmesh_dagster_tests.eln.benchling_server import API_KEY, FakeBenchling, basic_auth, link_field, text_field
from labmesh_dagster_tests.eln.fake_http import RecordedRequest

LOCATIONS = {
    "landing": "s3://landing/EXP-001/",
    "raw": "s3://raw/EXP-001/",
    "processed": "s3://processed/EXP-001/",
    "final": "s3://final/EXP-001/",
}


@pytest.fixture
def lab(http_server: HTTPServer) -> FakeBenchling:
    return FakeBenchling(http_server)


def connector(lab: FakeBenchling, sleeps: list[float], **options: Any) -> BenchlingEln:
    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        lab.advance(seconds)  # the fake's rate-limit window moves on while the connector waits

    http = RetryingHttp(lab.url, sleep=sleep, jitter=lambda: 0.5, timeout=5.0, attempts=4, service="Benchling")
    options.setdefault("page_size", 2)
    return BenchlingEln(lab.url, options.pop("api_key", API_KEY), http=http, **options)


@pytest.fixture
def eln(lab: FakeBenchling, sleeps: list[float]) -> BenchlingEln:
    return connector(lab, sleeps)


def sequencing_run(lab: FakeBenchling, experiment_id: str | None = "EXP-001", name: str = "WGS run 42") -> str:
    fields: dict[str, Any] = {
        "Samples": link_field(["bfi_s1", "bfi_s2"], ["S1", "S2"]),
        "Instrument": {"type": "dropdown", "isMulti": False, "value": "sfso_nova", "displayValue": "NovaSeq 6000"},
        "Project": text_field("Tumour atlas"),
        "Read length": {"type": "integer", "isMulti": False, "value": 150, "displayValue": "150"},
        "Flowcell": text_field("FC-HVJ2"),
    }
    if experiment_id is not None:
        fields["Experiment ID"] = text_field(experiment_id)
    return lab.add_entry(name, fields, custom_fields={"cost centre": "CC-7"})


def entry_reads(requests: list[RecordedRequest]) -> list[str]:
    """The entry ids ``requests`` read, alone (``/entries/{id}``) or in bulk (``/entries:bulk-get``), once a read."""
    reads: list[str] = []
    for request in requests:
        if request.method == "GET" and request.path.startswith("/api/v2/entries/"):
            reads.append(request.path.rsplit("/", 1)[-1])
        elif request.method == "GET" and request.path == "/api/v2/entries:bulk-get":
            reads.extend(request.query["entryIds"][-1].split(","))
    return reads


# Reading entries


def test_the_first_poll_backfills_and_maps_schema_fields(lab: FakeBenchling, eln: BenchlingEln) -> None:
    entry = sequencing_run(lab)

    poll = eln.poll(None)

    assert poll.errors == () and poll.archived == ()
    (record,) = poll.records
    assert record.id == "EXP-001" and record.title == "WGS run 42"
    assert record.owner == "Ada Lovelace" and record.project == "Tumour atlas"
    assert record.sample_ids == ["S1", "S2"]  # the linked entities' names, not their ids
    assert record.platform == "NovaSeq 6000"
    assert record.created is not None and record.modified is None
    assert record.source == lab.entries[entry]["webURL"]
    custom = record.custom
    assert custom["Read length"] == 150 and custom["Flowcell"] == "FC-HVJ2" and custom["cost centre"] == "CC-7"
    assert custom["displayId"] == "EXP24001" and custom["schema"]["id"] == "ts_seqrun"
    for gone in ("Experiment ID", "Samples", "Instrument", "name", "modifiedAt", "webURL", "labmesh data location"):
        assert gone not in custom
    # The backfill is the listing alone: full entries, no entry read again.
    assert entry_reads(lab.requests) == []
    assert all(r.authorization == basic_auth(API_KEY) for r in lab.requests)


def test_the_backfill_pages_through_every_entry(lab: FakeBenchling, eln: BenchlingEln) -> None:
    for number in range(5):
        lab.add_entry(f"run {number}", {"Experiment ID": text_field(f"EXP-{number}")})

    poll = eln.poll(None)

    assert sorted(record.id for record in poll.records) == [f"EXP-{number}" for number in range(5)]
    listings = lab.requests_to("GET", "/entries")
    assert [r.query.get("nextToken") for r in listings] == [None, ["2"], ["4"]]
    assert all(r.query["sort"] == ["modifiedAt:asc"] and r.query["pageSize"] == ["2"] for r in listings)


def test_later_polls_read_only_entries_named_by_new_events_each_once(lab: FakeBenchling, eln: BenchlingEln) -> None:
    first = sequencing_run(lab, "EXP-A")
    quiet = sequencing_run(lab, "EXP-B")
    start = eln.poll(None)
    # The backfill's cursor starts the feed before the listing: those events are read once more.
    warm = eln.poll(start.cursor)
    assert sorted(r.id for r in warm.records) == ["EXP-A", "EXP-B"]
    before = len(lab.requests)

    lab.set_field(first, "Flowcell", "FC-2")
    lab.set_field(first, "Project", "Atlas II")
    third = lab.add_entry("third", {"Experiment ID": text_field("EXP-C")})
    poll = eln.poll(warm.cursor)

    assert sorted((r.id, r.custom.get("Flowcell"), r.project) for r in poll.records) == [
        ("EXP-A", "FC-2", "Atlas II"),
        ("EXP-C", None, None),
    ]
    reads = entry_reads(lab.requests[before:])
    assert sorted(reads) == sorted([first, third]) and quiet not in reads
    events = [r for r in lab.requests[before:] if r.path.endswith("/events")]
    assert events[0].query["startingAfter"] == [PollCursor.from_json(warm.cursor).after]  # type: ignore[union-attr]
    assert events[0].query["eventTypes"] == [
        "v2.entry.created,v2.entry.updated.fields,v2.entry.updated.reviewRecord,v2.entry.updated.assignedReviewers"
    ]
    assert PollCursor.from_json(poll.cursor) == PollCursor(after=lab.events[-1]["id"])

    before = len(lab.requests)
    idle = eln.poll(poll.cursor)
    assert idle.unchanged and idle.records == () and idle.cursor == poll.cursor
    assert [r.path for r in lab.requests[before:]] == ["/api/v2/events"]


def test_archived_entries_are_reported_as_archived(lab: FakeBenchling, eln: BenchlingEln) -> None:
    kept = sequencing_run(lab, "EXP-K")
    gone = sequencing_run(lab, "EXP-R")
    cursor = eln.poll(eln.poll(None).cursor).cursor

    lab.set_field(gone, "Flowcell", "FC-9")
    lab.set_field(kept, "Flowcell", "FC-8")
    lab.archive(gone)  # after the edit: the event is stale, the entry is the truth
    poll = eln.poll(cursor)

    assert [r.id for r in poll.records] == ["EXP-K"] and poll.archived == ("EXP-R",) and poll.errors == ()


def test_entries_without_a_valid_experiment_id_are_errors_not_exceptions(lab: FakeBenchling, eln: BenchlingEln) -> None:
    bad = lab.add_entry("escape", {"Experiment ID": text_field("../etc")})
    lab.add_entry("", {"Experiment ID": text_field("EXP-T")})
    lab.add_entry("good", {"Experiment ID": text_field("EXP-G")})
    lab.add_entry("twin", {"Experiment ID": text_field("EXP-G")})

    poll = eln.poll(None)

    assert [record.id for record in poll.records] == ["EXP-G"]
    reasons = " | ".join(f"{error.source}: {error.reason}" for error in poll.errors)
    assert "invalid experiment id '../etc'" in reasons and lab.entries[bad]["webURL"] in reasons
    assert "has no title" in reasons and "EXP-G is also" in reasons


def test_a_schema_id_limits_labmesh_to_one_entry_schema(lab: FakeBenchling, sleeps: list[float]) -> None:
    sequencing_run(lab, "EXP-1")
    lab.add_entry("meeting notes", {"Experiment ID": text_field("EXP-2")}, schema_id="ts_notes")
    eln = connector(lab, sleeps, schema_id="ts_seqrun")

    start = eln.poll(None)
    assert [r.id for r in start.records] == ["EXP-1"]
    assert all(r.query["schemaId"] == ["ts_seqrun"] for r in lab.requests_to("GET", "/entries"))
    assert [r.id for r in eln.poll(start.cursor).records] == ["EXP-1"]


# Finding one experiment


def test_fetch_finds_an_entry_by_schema_field_and_by_display_id(lab: FakeBenchling, sleeps: list[float]) -> None:
    sequencing_run(lab, "EXP-001")
    by_field = connector(lab, sleeps)
    assert by_field.fetch("EXP-001").title == "WGS run 42"
    with pytest.raises(ExperimentNotFound, match="EXP-404"):
        by_field.fetch("EXP-404")

    by_display = connector(lab, sleeps, mapping={"experiment_id": "displayId"})
    assert by_display.fetch("EXP24001").title == "WGS run 42"
    lookups = [r.query for r in lab.requests_to("GET", "/entries") if "displayIds" in r.query]
    assert lookups[-1]["displayIds"] == ["EXP24001"]


def listings(lab: FakeBenchling) -> int:
    return sum(1 for request in lab.requests_to("GET", "/entries") if request.path == "/api/v2/entries")


def test_a_fresh_connector_told_where_a_record_came_from_reads_that_entry_and_lists_nothing(
    lab: FakeBenchling, sleeps: list[float]
) -> None:
    sequencing_run(lab, "EXP-001")
    sequencing_run(lab, "EXP-002", name="WGS run 43")
    sources = {record.id: record.source for record in connector(lab, sleeps).poll(None).records}
    listed = listings(lab)

    told = connector(lab, sleeps)  # as in a run: nothing learnt from a poll
    told.remember("EXP-001", sources["EXP-001"])
    misled = connector(lab, sleeps)
    misled.remember("EXP-001", sources["EXP-002"])

    assert told.fetch("EXP-001").title == "WGS run 42"
    assert listings(lab) == listed
    # A source naming another experiment's entry is checked, and the experiment is looked for as before.
    assert misled.fetch("EXP-001").title == "WGS run 42"
    assert listings(lab) > listed


# Writing the data locations back


def test_the_write_back_is_visible_reads_back_and_does_not_look_like_an_edit(
    lab: FakeBenchling, eln: BenchlingEln
) -> None:
    entry = sequencing_run(lab)
    first = eln.poll(eln.poll(None).cursor)
    registered = {record.id: record.fingerprint for record in first.records}

    eln.write_back("EXP-001", LOCATIONS)

    (patch,) = lab.requests_to("PATCH", "/entries/")
    assert set(patch.body) == {"fields"}
    assert lab.field_value(entry, "labmesh data location") == format_locations(LOCATIONS)
    assert "raw: s3://raw/EXP-001/" in lab.field_value(entry, "labmesh data location").splitlines()
    assert eln.read_back("EXP-001") == LOCATIONS

    eln.write_back("EXP-001", LOCATIONS)
    assert len(lab.requests_to("PATCH", "/entries/")) == 1

    # The PATCH raised an update event: the next poll reads the entry and finds it unchanged.
    after = eln.poll(first.cursor)
    assert [record.id for record in after.records] == ["EXP-001"]
    assert experiments_to_register(after, registered) == []
    assert not any("labmesh" in key for key in after.records[0].custom)


def test_write_back_to_one_field_per_zone_sends_only_changed_zones(lab: FakeBenchling, sleeps: list[float]) -> None:
    fields = {"Experiment ID": text_field("EXP-001"), "Raw data": text_field(None), "Final data": text_field(None)}
    entry = lab.add_entry("run", fields, location_field=None)
    eln = connector(lab, sleeps, location_field={"raw": "Raw data", "final": "Final data"})

    eln.write_back("EXP-001", {"raw": "s3://raw/EXP-001/"})
    eln.write_back("EXP-001", {"raw": "s3://raw/EXP-001/", "final": "s3://final/EXP-001/"})

    patches = lab.requests_to("PATCH", "/entries/")
    assert [p.body for p in patches] == [
        {"fields": {"Raw data": {"value": "s3://raw/EXP-001/"}}},
        {"fields": {"Final data": {"value": "s3://final/EXP-001/"}}},
    ]
    assert lab.field_value(entry, "Raw data") == "s3://raw/EXP-001/"
    assert eln.read_back("EXP-001") == {"final": "s3://final/EXP-001/", "raw": "s3://raw/EXP-001/"}
    assert "Raw data" not in eln.fetch("EXP-001").custom


def test_a_missing_location_field_is_refused_with_benchlings_message(lab: FakeBenchling, eln: BenchlingEln) -> None:
    lab.add_entry("run", {"Experiment ID": text_field("EXP-001")}, location_field=None)

    with pytest.raises(ElnRequestRefused, match="labmesh data location.*not in schema"):
        eln.write_back("EXP-001", LOCATIONS)


def test_the_fake_refuses_custom_fields_in_an_update(lab: FakeBenchling, eln: BenchlingEln) -> None:
    entry = sequencing_run(lab)
    with pytest.raises(ElnRequestRefused, match="customFields"):
        eln.http.request("PATCH", f"/api/v2/entries/{entry}", json={"customFields": {}}, headers=eln._headers())


def test_location_text_round_trips_and_ignores_notes() -> None:
    text = format_locations(LOCATIONS) + "\nchecked by Ada\ns3://stray"
    assert parse_locations(text) == LOCATIONS


# Pushed events


def test_resolve_reads_each_named_entry_once(lab: FakeBenchling, eln: BenchlingEln) -> None:
    live = sequencing_run(lab, "EXP-L")
    gone = sequencing_run(lab, "EXP-G")
    lab.archive(gone)

    def event(number: int, entry_id: str, kind: str = "changed") -> ElnEvent:
        return ElnEvent("benchling", f"evt_{number}", entry_id, kind, "2024-05-28T09:00:00Z")

    poll = eln.resolve([event(1, live), event(2, live), event(3, gone, "archived"), event(4, "42"), event(5, "etr_x")])

    assert [r.id for r in poll.records] == ["EXP-L"] and poll.archived == ("EXP-G",)
    # One bulk read for all three; the one missing from its answer is read alone, to say it cannot be.
    [bulk] = lab.requests_to("GET", "/entries:bulk-get")
    assert bulk.query["entryIds"] == [f"{live},{gone},etr_x"]
    assert entry_reads(lab.requests) == [live, gone, "etr_x", "etr_x"]
    reasons = [error.reason for error in poll.errors]
    assert "'42' is not a Benchling entry id (etr_...)" in reasons
    assert any("cannot be read" in reason for reason in reasons)


def test_an_entry_id_that_would_change_the_url_is_refused_before_any_request(
    lab: FakeBenchling, eln: BenchlingEln
) -> None:
    # Seen: "etr_x/../../../users" passed the prefix check and labmesh fetched Benchling's /api/users.
    poll = eln.resolve([ElnEvent("benchling", "evt_1", "etr_x/../../../users", "changed", "2024-05-28T09:00:00Z")])

    assert lab.requests == [] and poll.records == ()
    [error] = poll.errors
    assert "'etr_x/../../../users' is not a Benchling entry id" in error.reason


def test_assigning_a_reviewer_is_a_change_the_poll_sees(lab: FakeBenchling, eln: BenchlingEln) -> None:
    entry = sequencing_run(lab)
    first = eln.poll(eln.poll(None).cursor)
    registered = {record.id: record.fingerprint for record in first.records}

    lab.assign_reviewer(entry, "Grace Hopper")
    poll = eln.poll(first.cursor)

    [record] = poll.records
    assert [reviewer["name"] for reviewer in record.custom["assignedReviewers"]] == ["Grace Hopper"]
    assert [request.record.id for request in experiments_to_register(poll, registered)] == ["EXP-001"]


# Throttling and failures


def many_changed_entries(lab: FakeBenchling, count: int) -> str:
    """``count`` entries, each then edited; the cursor from before the edits."""
    entries = [lab.add_entry(f"run {n}", {"Experiment ID": text_field(f"EXP-{n:03d}")}) for n in range(count)]
    before = PollCursor(after=lab.events[-1]["id"]).to_json()
    for entry in entries:
        lab.set_field(entry, "Flowcell", "FC-2")
    return before


def test_a_429_waits_until_benchlings_rate_limit_window_resets(
    lab: FakeBenchling, eln: BenchlingEln, sleeps: list[float]
) -> None:
    # Benchling's 429 says when its window resets in x-rate-limit-reset, and sends no Retry-After.
    sequencing_run(lab)
    lab.fail(429, headers={"x-rate-limit-reset": "12"}, path="/entries")

    assert [record.id for record in eln.poll(None).records] == ["EXP-001"]
    assert sleeps == [13.0]  # the seconds left, and one more: they are counted in whole seconds


def test_seventy_changed_entries_are_read_within_a_user_keys_rate_limit(
    lab: FakeBenchling, sleeps: list[float]
) -> None:
    # Seen: read one request an entry, a poll of more than ~57 changes spent a user key's window, retried
    # for 7.5 s at most (the window is 30 s), and failed at the same entry on every tick.
    cursor = many_changed_entries(lab, 70)
    lab.limit_rate(60, window_seconds=30)
    eln = connector(lab, sleeps, page_size=50)

    poll = eln.poll(cursor)

    assert len(poll.records) == 70 and poll.errors == ()
    assert PollCursor.from_json(poll.cursor) == PollCursor(after=lab.events[-1]["id"])
    assert [r.path for r in lab.requests[-4:]] == ["/api/v2/events", "/api/v2/entries:bulk-get"] * 2


def test_a_poll_cut_off_part_way_keeps_what_it_read_and_moves_its_cursor_over_it(
    lab: FakeBenchling, eln: BenchlingEln
) -> None:
    cursor = many_changed_entries(lab, 5)
    # The first read of entries passes; every attempt at the next one fails: Benchling is gone for now.
    lab.fail(503, times=4, skip=1, path="/entries")

    first = eln.poll(cursor)

    assert sorted(record.id for record in first.records) == ["EXP-000", "EXP-001"]  # the first page of events
    assert PollCursor.from_json(first.cursor) == PollCursor(after=lab.events[-4]["id"])
    rest = eln.poll(first.cursor)
    assert sorted(record.id for record in rest.records) == ["EXP-002", "EXP-003", "EXP-004"]
    assert PollCursor.from_json(rest.cursor) == PollCursor(after=lab.events[-1]["id"])


def test_a_429_waits_as_long_as_retry_after_says(lab: FakeBenchling, eln: BenchlingEln, sleeps: list[float]) -> None:
    sequencing_run(lab)
    lab.fail(429, headers={"Retry-After": "3"}, path="/entries")

    assert [record.id for record in eln.poll(None).records] == ["EXP-001"]
    assert sleeps == [3.0]


def test_5xx_is_retried_with_backoff_then_reported_clearly(
    lab: FakeBenchling, eln: BenchlingEln, sleeps: list[float]
) -> None:
    lab.fail(503, times=10, path="/events")

    with pytest.raises(ElnUnavailable) as failure:
        eln.poll(PollCursor(after="evt_000001").to_json())

    message = str(failure.value)
    assert "Benchling GET /api/v2/events" in message and "HTTP 503" in message and "4 attempts" in message
    assert sleeps == [0.375, 0.75, 1.5]


def test_one_5xx_then_success_is_invisible(lab: FakeBenchling, eln: BenchlingEln, sleeps: list[float]) -> None:
    entry = sequencing_run(lab)
    lab.fail(502, method="GET", path="/entries")

    assert [r.id for r in eln.resolve([ElnEvent("benchling", "e1", entry, "changed", "now")]).records] == ["EXP-001"]
    assert len(sleeps) == 1


def test_a_wrong_key_fails_at_once_with_the_servers_message(lab: FakeBenchling, sleeps: list[float]) -> None:
    eln = connector(lab, sleeps, api_key="wrong")

    with pytest.raises(ElnRequestRefused) as refused:
        eln.poll(None)

    assert refused.value.status == 401 and "API key is required" in str(refused.value)
    assert sleeps == []
