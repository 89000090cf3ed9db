"""eLabFTW (API v2) as an ELN: the connector against a local server that behaves like eLabFTW.

Pinned here: a poll maps each entry's typed extra fields into an experiment
record and keeps every unmapped field as a custom one (secrets and bookkeeping
left out); the cursor resumes where it stopped, pages through everything, and
misses no entry edited or created within the same second as the last poll; a
replayed poll changes nothing; archived and deleted entries are reported as
archived, and entries without a valid experiment id as errors, while the others
still arrive; `fetch` finds an entry by its id template or by the extra field
search and checks what it found, and goes straight to the entry a record's
source names when told it (no search); the write-back lands as ``url`` extra fields,
reads back, is not repeated when nothing changed, and does not make the entry
look changed to the registry; throttling honours ``Retry-After``, 5xx and slow
answers are retried and then reported by method and path; a refused request
fails at once with the server's message. Every request the fake server saw in
the session is an operation listed in `elabftw_operations`, and those lists
agree with the official OpenAPI description when a copy is present.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from unittest.mock import ANY

import httpx
import pytest
from pytest_httpserver import HTTPServer

from labmesh_dagster.connectors.eln.base import ElnEvent, ElnRequestRefused, ElnUnavailable
from labmesh_dagster.connectors.eln.elabftw import ElabFtwEln, PollCursor, html_to_text
from labmesh_dagster.connectors.http import RetryingHttp, retry_after_seconds
from labmesh_dagster.core.errors import ExperimentNotFound
from labmesh_dagster.steps.intake import experiments_to_register
from labmesh_dagster_tests.eln import elabftw_operations as ops
from labmesh_dagster_tests.eln.elabftw_server import API_KEY, RECORDED, FakeElabFtw, violations

LOCATIONS = {
    "landing": "s3://landing/EXP-001/",
    "raw": "s3://raw/EXP-001/",
    "processed": "s3://processed/EXP-001/",
    "final": "s3://final/EXP-001/",
}


@pytest.fixture
def lab(http_server: HTTPServer) -> FakeElabFtw:
    return FakeElabFtw(http_server)


def connector(lab: FakeElabFtw, sleeps: list[float], **options: Any) -> ElabFtwEln:
    timeout = options.pop("timeout", 5.0)
    http = RetryingHttp(lab.url, sleep=sleeps.append, jitter=lambda: 0.5, timeout=timeout, attempts=4)
    return ElabFtwEln(lab.url, options.pop("api_key", API_KEY), http=http, page_size=2, **options)


@pytest.fixture
def eln(lab: FakeElabFtw, sleeps: list[float]) -> ElabFtwEln:
    return connector(lab, sleeps)


def text(value: Any) -> dict[str, Any]:
    return {"type": "text", "value": value}


def sequencing_run(lab: FakeElabFtw, experiment_id: str | None = "EXP-001", **extra: Any) -> int:
    kit = lab.add_item("TruSeq DNA PCR-free")
    flowcell = lab.add_item("FC-HVJ2")
    fields: dict[str, Any] = {
        "Samples": text("S1, S2\nS3"),
        "Instrument": {"type": "select", "value": "NovaSeq 6000", "options": ["NovaSeq 6000", "MiSeq"]},
        "Project": text("Tumour atlas"),
        "Read length": {"type": "number", "value": "150", "unit": "bp", "units": ["bp"]},
        "Run date": {"type": "date", "value": "2024-05-27"},
        "Paired end": {"type": "checkbox", "value": "on"},
        "Spike-in": {"type": "checkbox", "value": ""},
        "Report": {"type": "url", "value": "https://reports.example.org/run/42"},
        "Operator": {"type": "users", "value": "2"},
        "Library kit": {"type": "items", "value": str(kit)},
        "Flowcell": {"type": "items", "value": flowcell},
        "Lanes": {"type": "number", "value": ["1", "2"], "allow_multi_values": True},
        "Quality": {"type": "radio", "value": "pass", "options": ["pass", "fail"]},
        **extra,
    }
    if experiment_id is not None:
        fields["Experiment ID"] = text(experiment_id)
    return lab.add_experiment(
        "Whole-genome run 42",
        extra_fields=fields,
        body="<h1>Aim</h1><p>Sequence the <b>tumour</b> &amp; normal pairs.</p>",
        tags=["wgs", "tumour"],
        items_links=[kit],
    )


# Reading entries


@pytest.mark.parametrize("metadata_as_string", [False, True], ids=["metadata-object", "metadata-json-string"])
def test_a_poll_maps_typed_extra_fields_and_keeps_the_rest(
    lab: FakeElabFtw, eln: ElabFtwEln, metadata_as_string: bool
) -> None:
    lab.metadata_as_string = metadata_as_string
    entry = sequencing_run(lab)

    poll = eln.poll(None)

    assert poll.errors == () and poll.archived == ()
    (record,) = poll.records
    assert record.id == "EXP-001"
    assert record.title == "Whole-genome run 42"
    assert record.description == "Aim\nSequence the tumour & normal pairs."
    assert (record.owner, record.group, record.project) == ("Ada Lovelace", "Genomics", "Tumour atlas")
    assert record.sample_ids == ["S1", "S2", "S3"]
    assert record.platform == "NovaSeq 6000"
    assert record.tags == ("tumour", "wgs")
    assert record.created == "2024-05-28T09:00:00+00:00"
    assert record.modified is None
    assert record.source == f"{lab.url}/experiments.php?mode=view&id={entry}"
    custom = record.custom
    assert custom["Read length"] == {"value": 150, "unit": "bp"}
    assert custom["Paired end"] is True and custom["Spike-in"] is False
    assert custom["Run date"] == "2024-05-27"
    assert custom["Report"] == "https://reports.example.org/run/42"
    assert custom["Operator"] == 2
    assert custom["Lanes"] == [1, 2]
    assert custom["Quality"] == "pass"
    # `items` fields name the linked resource: from the entry's links, else read from /items/{id}.
    assert custom["Library kit"] == "TruSeq DNA PCR-free"
    assert custom["Flowcell"] == "FC-HVJ2"
    # Unmapped entry columns are kept under their own names.
    assert custom["id"] == entry and custom["category_title"] == "Sequencing run" and "elabid" in custom
    assert custom["items_links"][0]["title"] == "TruSeq DNA PCR-free"
    # Mapped fields are not repeated; secrets, bookkeeping and layout are left out.
    for gone in ("Experiment ID", "Samples", "Instrument", "Project", "title", "body", "fullname", "tags"):
        assert gone not in custom
    for gone in ("access_key", "sharelink", "changelog", "modified_at", "lastchangeby", "body_html", "metadata"):
        assert gone not in custom
    assert len(lab.requests_to("GET", "/items/")) == 1


def test_the_first_poll_pages_through_every_entry(lab: FakeElabFtw, eln: ElabFtwEln) -> None:
    for number in range(5):
        lab.add_experiment(f"run {number}", extra_fields={"Experiment ID": text(f"EXP-{number}")})
        lab.tick()

    poll = eln.poll(None)

    assert sorted(record.id for record in poll.records) == [f"EXP-{number}" for number in range(5)]
    listings = lab.requests_to("GET", "/experiments")
    pages = [r for r in listings if r.path.endswith("/experiments")]
    # The last page is short, and an empty one confirms the end (a server may cap `limit`).
    assert [r.query["offset"] for r in pages] == [["0"], ["2"], ["4"], ["5"]]
    assert all(r.query["order"] == ["lastchange"] and r.query["sort"] == ["desc"] for r in pages)
    assert all(r.query["state"] == ["1,2,3"] and r.query["scope"] == ["2"] for r in pages)
    assert all(r.authorization == API_KEY for r in lab.requests)


def test_a_server_capping_the_page_size_still_gives_every_entry(lab: FakeElabFtw, eln: ElabFtwEln) -> None:
    lab.max_limit = 1
    for number in range(3):
        lab.add_experiment(f"run {number}", extra_fields={"Experiment ID": text(f"EXP-{number}")})

    assert sorted(record.id for record in eln.poll(None).records) == ["EXP-0", "EXP-1", "EXP-2"]


def test_the_cursor_resumes_and_misses_nothing_edited_in_the_same_second(lab: FakeElabFtw, eln: ElabFtwEln) -> None:
    first = lab.add_experiment("first", extra_fields={"Experiment ID": text("EXP-A")})
    lab.tick()
    second = lab.add_experiment("second", extra_fields={"Experiment ID": text("EXP-B")})
    cursor = eln.poll(None).cursor

    # Still the same second on the server: an edit and a new entry share the cursor's time.
    lab.edit(second, title="second, renamed")
    lab.add_experiment("third", extra_fields={"Experiment ID": text("EXP-C")})
    resumed = eln.poll(cursor)

    assert sorted((r.id, r.title) for r in resumed.records) == [("EXP-B", "second, renamed"), ("EXP-C", "third")]
    assert not resumed.unchanged

    lab.tick()
    lab.edit(first, title="first, renamed")
    later = eln.poll(resumed.cursor)
    assert [(r.id, r.title) for r in later.records] == [("EXP-A", "first, renamed")]

    before = len(lab.requests)
    idle = eln.poll(later.cursor)
    assert idle.unchanged and idle.records == () and idle.cursor == later.cursor
    # An idle poll costs one page of the listing, and reads no entry.
    assert [r.path for r in lab.requests[before:]] == ["/api/v2/experiments"]
    assert PollCursor.from_json(idle.cursor) == PollCursor("2024-05-28T09:00:02.000000", {str(first): ANY})


def test_a_replayed_poll_changes_nothing(lab: FakeElabFtw, eln: ElabFtwEln) -> None:
    entry = sequencing_run(lab)
    start = eln.poll(None)
    lab.tick()
    lab.set_extra(entry, "Quality", "fail")

    once = eln.poll(start.cursor)
    again = eln.poll(start.cursor)

    assert [r.fingerprint for r in once.records] == [r.fingerprint for r in again.records]
    assert once.cursor == again.cursor
    assert once.records[0].custom["Quality"] == "fail"
    assert eln.poll(once.cursor).unchanged


def test_the_write_back_is_visible_reads_back_and_does_not_look_like_an_edit(lab: FakeElabFtw, eln: ElabFtwEln) -> None:
    entry = sequencing_run(lab)
    # A lab may have prepared the raw field in its template, with its own description.
    lab.set_extra(entry, "labmesh raw location", "", kind="url")
    lab.experiments[entry]["metadata"]["extra_fields"]["labmesh raw location"]["description"] = "set by the lab"
    first = eln.poll(None)
    registered = {record.id: record.fingerprint for record in first.records}
    lab.tick()

    eln.write_back("EXP-001", LOCATIONS)

    fields = lab.experiments[entry]["metadata"]["extra_fields"]
    for zone, uri in LOCATIONS.items():
        assert fields[f"labmesh {zone} location"]["value"] == uri
        assert fields[f"labmesh {zone} location"]["type"] == "url"
    assert fields["labmesh raw location"]["description"] == "set by the lab"
    assert fields["Quality"]["value"] == "pass"  # merged, not replaced
    assert eln.read_back("EXP-001") == LOCATIONS

    eln.write_back("EXP-001", LOCATIONS)
    assert len(lab.requests_to("PATCH", "/experiments/")) == 1

    # The PATCH moved the entry's last change, so the next poll reads it again, and finds it unchanged.
    after = eln.poll(first.cursor)
    assert [record.id for record in after.records] == ["EXP-001"]
    assert experiments_to_register(after, registered) == []
    assert not any("labmesh" in key for key in after.records[0].custom)
    assert eln.poll(after.cursor).unchanged


def test_write_back_adds_only_changed_zones_and_configured_field_names(lab: FakeElabFtw, sleeps: list[float]) -> None:
    entry = sequencing_run(lab)
    eln = connector(lab, sleeps, location_fields={"raw": "Raw data"})

    eln.write_back("EXP-001", {"raw": "s3://raw/EXP-001/"})
    eln.write_back("EXP-001", {"raw": "s3://raw/EXP-001/", "final": "s3://final/EXP-001/"})

    patches = lab.requests_to("PATCH", "/experiments/")
    assert [sorted(p.body["metadatamerge"]["extra_fields"]) for p in patches] == [
        ["Raw data"],
        ["labmesh final location"],
    ]
    assert lab.extra_value(entry, "Raw data") == "s3://raw/EXP-001/"
    assert eln.read_back("EXP-001") == {"final": "s3://final/EXP-001/", "raw": "s3://raw/EXP-001/"}
    assert "Raw data" not in eln.fetch("EXP-001").custom


def test_archived_and_deleted_entries_are_reported_as_archived(lab: FakeElabFtw, eln: ElabFtwEln) -> None:
    lab.add_experiment("kept", extra_fields={"Experiment ID": text("EXP-K")})
    archived = lab.add_experiment("archived", extra_fields={"Experiment ID": text("EXP-R")})
    deleted = lab.add_experiment("deleted")
    cursor = eln.poll(None).cursor
    lab.tick()

    lab.archive(archived)
    lab.delete(deleted)
    poll = eln.poll(cursor)

    assert poll.records == () and poll.errors == ()
    assert sorted(poll.archived) == sorted(["EXP-R", f"ELAB-{deleted}"])
    assert eln.fetch("EXP-K").title == "kept"
    with pytest.raises(ExperimentNotFound):
        eln.fetch(f"ELAB-{deleted}")


def test_entries_without_a_valid_experiment_id_are_errors_not_exceptions(lab: FakeElabFtw, eln: ElabFtwEln) -> None:
    bad = lab.add_experiment("escape", extra_fields={"Experiment ID": text("../etc")})
    untitled = lab.add_experiment("", extra_fields={"Experiment ID": text("EXP-T")})
    lab.add_experiment("good", extra_fields={"Experiment ID": text("EXP-G")})
    twin = lab.add_experiment("twin", extra_fields={"Experiment ID": text("EXP-G")})

    poll = eln.poll(None)

    assert [record.id for record in poll.records] == ["EXP-G"]
    by_source = {error.source: error.reason for error in poll.errors}
    assert "invalid experiment id '../etc'" in by_source[eln.entry_url(bad)]
    assert "has no title" in by_source[eln.entry_url(untitled)]
    assert "EXP-G is also" in by_source[eln.entry_url(twin)]


# Finding one experiment


def test_fetch_finds_an_entry_by_its_extra_field_and_checks_it(lab: FakeElabFtw, eln: ElabFtwEln) -> None:
    lab.add_experiment("ten", extra_fields={"Experiment ID": text("EXP-010")})
    sequencing_run(lab, "EXP-01")

    record = eln.fetch("EXP-01")

    assert record.title == "Whole-genome run 42"
    searches = [r.query["extended"] for r in lab.requests_to("GET", "/experiments") if "extended" in r.query]
    assert searches == [['extrafield:"Experiment ID":"EXP-01"']]
    # The search's wildcards also find EXP-010; the entry read shows it is not the one asked for.
    with pytest.raises(ExperimentNotFound, match="EXP-0"):
        eln.fetch("EXP-0")


def test_fetch_told_where_a_record_came_from_reads_that_entry_without_searching(
    lab: FakeElabFtw, sleeps: list[float]
) -> None:
    sequencing_run(lab, "EXP-01")
    other = lab.add_experiment("other", extra_fields={"Experiment ID": text("EXP-02")})
    [record] = [r for r in connector(lab, sleeps).poll(None).records if r.id == "EXP-01"]

    told = connector(lab, sleeps)  # as in a run: nothing learnt from a poll
    told.remember("EXP-01", record.source)
    misled = connector(lab, sleeps)
    misled.remember("EXP-01", connector(lab, sleeps).entry_url(other))

    def searches() -> int:
        return sum(1 for r in lab.requests_to("GET", "/experiments") if "extended" in r.query)

    before = searches()
    assert told.fetch("EXP-01").title == "Whole-genome run 42"
    assert searches() == before
    # A source naming another experiment's entry is checked, and the experiment is searched for as before.
    assert misled.fetch("EXP-01").title == "Whole-genome run 42"
    assert searches() == before + 1


def test_fetch_by_id_template_reads_the_entry_directly(lab: FakeElabFtw, eln: ElabFtwEln) -> None:
    plain = lab.add_experiment("no explicit id")
    named = lab.add_experiment("explicit id", extra_fields={"Experiment ID": text("EXP-N")})

    assert eln.fetch(f"ELAB-{plain}").title == "no explicit id"
    assert lab.requests_to("GET", f"/experiments/{plain}")
    # Entry `named` is EXP-N: the template's id belongs to no experiment.
    with pytest.raises(ExperimentNotFound):
        eln.fetch(f"ELAB-{named}")
    with pytest.raises(ExperimentNotFound):
        eln.fetch("ELAB-999")


def test_resolve_reads_the_entries_events_name(lab: FakeElabFtw, eln: ElabFtwEln) -> None:
    entry = sequencing_run(lab)
    gone = lab.add_experiment("gone", extra_fields={"Experiment ID": text("EXP-X")})
    lab.archive(gone)
    events = [
        ElnEvent("elabftw", "e1", str(entry), "changed", "2024-05-28T09:00:00Z"),
        ElnEvent("elabftw", "e2", str(entry), "changed", "2024-05-28T09:00:01Z"),
        ElnEvent("elabftw", "e3", str(gone), "archived", "2024-05-28T09:00:02Z"),
        ElnEvent("elabftw", "e4", "not-a-number", "changed", "2024-05-28T09:00:03Z"),
    ]

    poll = eln.resolve(events)

    assert [record.id for record in poll.records] == ["EXP-001"]
    assert poll.archived == ("EXP-X",)
    assert [error.source for error in poll.errors] == ["elabftw event e4"]


def test_resolve_reports_entry_ids_elabftw_cannot_have_without_failing(lab: FakeElabFtw, eln: ElabFtwEln) -> None:
    # Seen: "\u00b2" (a superscript two) passed str.isdigit(), and int() then raised inside the sensor tick.
    entry = sequencing_run(lab)
    odd = ["\u00b2", "0", "9" * 10_000, " 7"]
    events = [ElnEvent("elabftw", f"e{n}", entry_id, "changed", "") for n, entry_id in enumerate(odd)]

    poll = eln.resolve([*events, ElnEvent("elabftw", "ok", str(entry), "changed", "")])

    assert [record.id for record in poll.records] == ["EXP-001"]
    assert [error.source for error in poll.errors] == [f"elabftw event e{n}" for n in range(len(odd))]
    assert all("is not an eLabFTW entry id" in error.reason and len(error.reason) < 200 for error in poll.errors)


# Throttling, failures and refusals


def test_a_429_waits_as_long_as_retry_after_says(lab: FakeElabFtw, eln: ElabFtwEln, sleeps: list[float]) -> None:
    sequencing_run(lab)
    lab.fail(429, headers={"Retry-After": "3"}, path="/experiments")

    poll = eln.poll(None)

    assert [record.id for record in poll.records] == ["EXP-001"]
    assert sleeps == [3.0]


def test_retry_after_may_be_an_http_date_and_is_capped() -> None:
    now = datetime(2024, 5, 28, 9, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=7), usegmt=True), now=now) == 7.0
    assert retry_after_seconds("garbage") is None and retry_after_seconds(None) is None
    waits: list[float] = []
    http = RetryingHttp("http://unused", sleep=waits.append, max_retry_after_seconds=10)
    assert http._wait_for(httpx.Response(429, headers={"Retry-After": "3600"}), 1) == 10


def test_5xx_is_retried_with_backoff_then_reported_clearly(
    lab: FakeElabFtw, eln: ElabFtwEln, sleeps: list[float]
) -> None:
    lab.fail(503, times=10)

    with pytest.raises(ElnUnavailable) as failure:
        eln.poll(None)

    message = str(failure.value)
    assert "GET /api/v2/experiments" in message and "HTTP 503" in message and "4 attempts" in message
    assert sleeps == [0.375, 0.75, 1.5]  # exponential, with the (pinned) jitter
    assert len(lab.requests) == 4


def test_one_5xx_then_success_is_invisible(lab: FakeElabFtw, eln: ElabFtwEln, sleeps: list[float]) -> None:
    sequencing_run(lab)
    lab.fail(500, method="GET", path="/experiments/")

    assert [record.id for record in eln.poll(None).records] == ["EXP-001"]
    assert len(sleeps) == 1


def test_a_slow_answer_times_out_and_is_retried(lab: FakeElabFtw, sleeps: list[float]) -> None:
    sequencing_run(lab)
    eln = connector(lab, sleeps, timeout=0.2)
    lab.slow(0.6, path="/experiments")

    assert [record.id for record in eln.poll(None).records] == ["EXP-001"]
    assert len(sleeps) == 1


def test_a_refused_request_fails_at_once_with_the_servers_message(lab: FakeElabFtw, sleeps: list[float]) -> None:
    eln = connector(lab, sleeps, api_key="wrong")

    with pytest.raises(ElnRequestRefused) as refused:
        eln.poll(None)

    assert refused.value.status == 401
    assert "Authentication required; No corresponding API key found!" in str(refused.value)
    assert sleeps == []


def test_requests_that_are_not_idempotent_are_not_repeated_after_a_5xx(lab: FakeElabFtw) -> None:
    waits: list[float] = []
    http = RetryingHttp(lab.url, sleep=waits.append, attempts=3, headers={"Authorization": API_KEY})
    lab.fail(502, times=5)

    with pytest.raises(ElnUnavailable, match="PATCH /api/v2/experiments/1 failed after 1 attempt;"):
        http.request("PATCH", "/api/v2/experiments/1", json={"metadatamerge": {}}, idempotent=False)
    assert waits == []


def test_the_connector_is_configured_with_plain_values() -> None:
    eln = ElabFtwEln(
        "https://eln.example.org/api/v2/",
        "key",
        mapping={"platform": "extra_fields.Sequencer"},
        scope=3,
        page_size=100,
    )
    assert eln.root_url == "https://eln.example.org"
    assert eln.mapping.sources("platform") == ("extra_fields.Sequencer",)
    assert eln.mapping.sources("title") == ("title",)
    with pytest.raises(ValueError, match="API key"):
        ElabFtwEln("https://eln.example.org", "")
    eln.close()


def test_html_bodies_become_text() -> None:
    assert html_to_text("<p>a<br>b</p><ul><li>c &lt; d</li></ul>") == "a\nb\nc < d"


# The contract with the real API


def exercise_every_operation(lab: FakeElabFtw, eln: ElabFtwEln) -> None:
    """One pass through everything the connector sends, so the session check never runs on nothing."""
    entry = sequencing_run(lab)
    lab.add_experiment("plain")
    cursor = eln.poll(None).cursor
    eln.fetch("EXP-001")
    eln.write_back("EXP-001", LOCATIONS)
    eln.read_back("EXP-001")
    eln.poll(cursor)
    eln.resolve([ElnEvent("elabftw", "e1", str(entry), "changed", "")])


def test_every_request_in_the_session_is_a_listed_operation(lab: FakeElabFtw, eln: ElabFtwEln) -> None:
    exercise_every_operation(lab, eln)

    problems = [(record.method, record.path, violations(record)) for record in RECORDED if violations(record)]
    assert problems == []
    found = [ops.operation_for(record.method, record.path[len(ops.API_ROOT) :]) for record in RECORDED]
    unused = {op.operation_id for op in ops.OPERATIONS} - {op.operation_id for op in found if op is not None}
    assert not unused, "a listed operation is no longer used: drop it from elabftw_operations"
