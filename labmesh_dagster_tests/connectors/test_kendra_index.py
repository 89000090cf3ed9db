"""The Kendra content index speaks Kendra as its limits require, checked against the model-bound fake.

Pinned here: `prepare` declares only the fields the index lacks, in one
UpdateIndex, once (never Kendra's reserved fields, and a field of the wrong
type is a clear error); N documents take exactly ceil(N/10) BatchPutDocument
calls of PLAIN_TEXT documents with typed attributes, ``_source_uri``,
``_created_at`` and access lists of USER and GROUP ALLOW principals (an
experiment listing nobody allows only a user no query names, never everyone);
a grant re-puts the experiment's documents with the new list; `replace` polls
BatchGetDocumentStatus (10 ids a call) until every document is final, and
gives up at the timeout with a report, not a hang; documents Kendra fails
(at once in FailedDocuments, or later as FAILED / UPDATE_FAILED) are reported
with Kendra's reason; throttling on a fifth of the calls still indexes
everything; deletes go 10 ids a call; searches send AttributeFilter and
UserContext (the viewer's name as UserId, their groups; none for an admin)
as Kendra takes them; calls stay under the configured rate;
`prepare` waits while the index applies its declarations, and a failed index is a clear error.
Facets are declared facetable and never searchable, so query words match
what is in the files, not an experiment id or a platform (a field an older
labmesh declared searchable is declared again); a format filter takes the
format's compressed forms too.
Each passage of a file is a Kendra document of its own (``<file>#<ordinal>``):
putting an unchanged file again sends the same ids and deletes nothing; a
shorter version deletes exactly the passage ids it no longer has, a removed
file all of its passages, and a file an earlier labmesh put whole loses that
whole-file document; a search lists each file once.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from labmesh_dagster.connectors.search.base import (
    AttributeType,
    ContentDocument,
    ContentFilter,
    ContentIndexUnavailable,
)
from labmesh_dagster.connectors.search.kendra import (
    ADMINS_ONLY,
    NO_USER,
    PASSAGE_FIELDS,
    KendraContentIndex,
    KendraField,
)
from labmesh_dagster.core.access import Viewer, experiment_principals
from labmesh_dagster.core.passages import LocationKind, Passage, PassageLocation
from labmesh_dagster_tests.fake_kendra import FakeKendraClient
from labmesh_dagster_tests.service_model import ThrottledShare

CUSTOM_FIELDS = {"experiment_id", "sample_ids", "platform", "group", "zone", "format"}


class Clock:
    """Time that passes only when slept; records each sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_index(client: Any, clock: Clock, **options: Any) -> KendraContentIndex:
    """An index over ``client``: the fake itself, or a wrapper of it (kept as ``fake``)."""
    index_id = client.index_id if isinstance(client, FakeKendraClient) else client.fake.index_id
    return KendraContentIndex(client, index_id=index_id, clock=clock, sleep=clock.sleep, **options)


def document(
    number: int, *, group: str | None = "liver-lab", owner: str | None = None, uri: str | None = None
) -> ContentDocument:
    document_id = f"raw/EXP-1/run1/S{number}_R1.fastq.gz"
    return ContentDocument(
        id=document_id,
        title=f"S{number}_R1.fastq.gz",
        text=f"FASTQ of sample S{number}: reads 1000, gc percent 41.5, liver tissue",
        uri=uri or f"https://lab.example/{document_id}",
        attributes={
            "experiment_id": "EXP-1",
            "sample_ids": [f"S{number}"],
            "platform": "NovaSeq",
            "zone": "raw",
            "format": "fastq.gz",
            "created": datetime(2025, 1, 2, 10, 0, tzinfo=UTC),
            **({"group": group} if group else {}),
        },
        principals=tuple(experiment_principals(group, owner)),
    )


def documents(count: int) -> list[ContentDocument]:
    return [document(number) for number in range(count)]


def first_passages(items: list[ContentDocument]) -> set[str]:
    """The Kendra ids of these one-passage files: each is put as its passage 0."""
    return {f"{item.id}#0" for item in items}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kendra(clock: Clock) -> FakeKendraClient:
    return FakeKendraClient(clock=clock)


def sent(client: FakeKendraClient, operation: str) -> list[dict[str, Any]]:
    return [params for name, params in client.calls if name == operation]


def test_prepare_declares_only_missing_fields_once(kendra: FakeKendraClient, clock: Clock) -> None:
    as_labmesh_declares = KendraField("experiment_id", "experiment_id", AttributeType.STRING).declaration()
    kendra.update_index(Id=kendra.index_id, DocumentMetadataConfigurationUpdates=[as_labmesh_declares])
    kendra.calls.clear()
    kendra.call_counts.clear()
    index = make_index(kendra, clock)

    index.prepare()
    index.prepare()
    index.replace(documents(3))

    updates = sent(kendra, "UpdateIndex")
    assert len(updates) == 1
    declared = {entry["Name"]: entry for entry in updates[0]["DocumentMetadataConfigurationUpdates"]}
    assert set(declared) == CUSTOM_FIELDS - {"experiment_id"} | {field.name for field in PASSAGE_FIELDS}
    assert not any(declared[field.name]["Search"]["Searchable"] for field in PASSAGE_FIELDS)
    assert all(declared[field.name]["Search"]["Displayable"] for field in PASSAGE_FIELDS)
    assert declared["sample_ids"]["Type"] == "STRING_LIST_VALUE"
    assert declared["sample_ids"]["Search"]["Facetable"] and not declared["platform"]["Search"]["Searchable"]
    assert kendra.fields["_created_at"].type == "DATE_VALUE"  # reserved: used, never declared

    make_index(kendra, clock).prepare()

    assert kendra.call_counts["UpdateIndex"] == 1


def test_a_field_declared_with_another_type_is_a_clear_error(kendra: FakeKendraClient, clock: Clock) -> None:
    kendra.update_index(
        Id=kendra.index_id, DocumentMetadataConfigurationUpdates=[{"Name": "platform", "Type": "LONG_VALUE"}]
    )

    with pytest.raises(ContentIndexUnavailable, match="platform as LONG_VALUE"):
        make_index(kendra, clock).prepare()
    assert kendra.call_counts["UpdateIndex"] == 1


def test_an_index_that_cannot_be_reached_is_a_clear_error(clock: Clock) -> None:
    client = FakeKendraClient(clock=clock)
    index = KendraContentIndex(client, index_id="0" * 36, clock=clock, sleep=clock.sleep)

    with pytest.raises(ContentIndexUnavailable, match="Kendra failed to describe the index.*ResourceNotFound"):
        index.replace(documents(1))


class SlowUpdates:
    """A fake whose index reads UPDATING for a few DescribeIndex calls after UpdateIndex, as Kendra's does."""

    def __init__(self, fake: FakeKendraClient, readings: int, status: str = "UPDATING") -> None:
        self.fake = fake
        self.readings = readings
        self.status = status
        self.updating = 0

    def update_index(self, **params: Any) -> dict[str, Any]:
        self.updating = self.readings
        return self.fake.update_index(**params)

    def describe_index(self, **params: Any) -> dict[str, Any]:
        answer = self.fake.describe_index(**params)
        if self.updating:
            self.updating -= 1
            return {**answer, "Status": self.status}
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fake, name)


def test_prepare_waits_for_the_declarations_to_be_applied(kendra: FakeKendraClient, clock: Clock) -> None:
    index = make_index(SlowUpdates(kendra, readings=3), clock, poll_seconds=2)

    index.prepare()

    assert kendra.call_counts["DescribeIndex"] == 1 + 3 + 1
    assert clock.sleeps.count(2) == 3


def test_an_index_that_failed_is_a_clear_error(kendra: FakeKendraClient, clock: Clock) -> None:
    index = make_index(SlowUpdates(kendra, readings=1, status="FAILED"), clock)

    with pytest.raises(ContentIndexUnavailable, match="is FAILED, not ACTIVE"):
        index.prepare()


@pytest.mark.parametrize("count", [1, 10, 11, 25])
def test_n_documents_take_ceil_n_over_10_batch_puts(kendra: FakeKendraClient, clock: Clock, count: int) -> None:
    report = make_index(kendra, clock).replace(documents(count))

    puts = sent(kendra, "BatchPutDocument")
    assert len(puts) == math.ceil(count / 10)
    assert all(len(params["Documents"]) <= 10 for params in puts)
    assert sorted(report.indexed) == sorted(document.id for document in documents(count))
    assert not report.failed
    assert set(kendra.documents) == first_passages(documents(count))
    assert all(len(params["DocumentInfoList"]) <= 10 for params in sent(kendra, "BatchGetDocumentStatus"))


def test_documents_are_sent_as_plain_text_with_typed_attributes_and_their_access_list(
    kendra: FakeKendraClient, clock: Clock
) -> None:
    source = document(1, owner="Ada Lovelace", uri="s3://lab-raw/EXP-1/run1/S1_R1.fastq.gz")

    make_index(kendra, clock).replace([source])

    (request,) = sent(kendra, "BatchPutDocument")[0]["Documents"]
    assert request["ContentType"] == "PLAIN_TEXT"
    assert request["Blob"] == source.text.encode("utf-8")
    assert request["Title"] == "S1_R1.fastq.gz"
    values = {attribute["Key"]: attribute["Value"] for attribute in request["Attributes"]}
    assert values["sample_ids"] == {"StringListValue": ["S1"]}
    assert values["_created_at"] == {"DateValue": datetime(2025, 1, 2, 10, 0, tzinfo=UTC)}
    assert values["_source_uri"] == {"StringValue": "s3://lab-raw/EXP-1/run1/S1_R1.fastq.gz"}
    assert values["experiment_id"] == {"StringValue": "EXP-1"}
    assert "created" not in values
    assert request["AccessControlList"] == [
        {"Name": "liver-lab", "Type": "GROUP", "Access": "ALLOW"},
        {"Name": "ada lovelace", "Type": "USER", "Access": "ALLOW"},
    ]


def test_a_document_whose_experiment_lists_nobody_is_never_public(kendra: FakeKendraClient, clock: Clock) -> None:
    index = make_index(kendra, clock)

    index.replace([document(1, group=None)])

    (request,) = sent(kendra, "BatchPutDocument")[0]["Documents"]
    assert request["AccessControlList"] == [{"Name": ADMINS_ONLY, "Type": "USER", "Access": "ALLOW"}]
    assert [hit.id for hit in index.search("liver")] == [document(1).id]
    assert index.search("liver", viewer=Viewer("bob", frozenset({"liver-lab"}))) == []
    assert index.search("liver", viewer=Viewer(ADMINS_ONLY)) == []
    assert sent(kendra, "Query")[-1]["UserContext"] == {"UserId": NO_USER}  # the sentinel's name is never sent


def test_a_grant_puts_the_experiments_documents_again_with_the_new_list(kendra: FakeKendraClient, clock: Clock) -> None:
    index = make_index(kendra, clock)
    index.replace(documents(12))
    granted = experiment_principals("liver-lab", None, grants=["user:carol"])
    puts = len(sent(kendra, "BatchPutDocument"))

    report = index.update_access(
        "EXP-1", granted, lambda: [replace(item, principals=tuple(granted)) for item in documents(12)]
    )

    assert sorted(report.indexed) == sorted(item.id for item in documents(12)) and not report.failed
    assert len(sent(kendra, "BatchPutDocument")) == puts + 2
    assert len(index.search("liver", viewer=Viewer("Carol"), limit=100)) == 12
    assert len(index.search("liver", viewer=Viewer("bob", frozenset({"liver-lab"})), limit=100)) == 12
    assert len(kendra.documents) == 12


def test_an_s3_uri_comes_back_from_the_source_uri_attribute(kendra: FakeKendraClient, clock: Clock) -> None:
    index = make_index(kendra, clock)
    index.replace([document(1, uri="s3://lab-raw/EXP-1/run1/S1_R1.fastq.gz")])

    (hit,) = index.search("liver")

    assert hit.uri == "s3://lab-raw/EXP-1/run1/S1_R1.fastq.gz"
    assert hit.score > 0


def test_replace_polls_statuses_until_every_document_is_final(clock: Clock) -> None:
    kendra = FakeKendraClient(clock=clock, reads_to_index=3)
    index = make_index(kendra, clock, poll_seconds=2)

    report = index.replace(documents(15))

    assert len(report.indexed) == 15 and not report.failed
    # Three PROCESSING readings, then the final one, for each of the two batches of ids; then one look for
    # stale passages (passage 1 and the whole-file id of each of the 15 files: 30 ids, 3 calls).
    assert kendra.call_counts["BatchGetDocumentStatus"] == 4 * 2 + 3
    assert clock.sleeps.count(2) == 3


def test_replace_gives_up_at_the_timeout_with_a_report(clock: Clock) -> None:
    kendra = FakeKendraClient(clock=clock, reads_to_index=10_000)
    index = make_index(kendra, clock, status_timeout_seconds=30, poll_seconds=5)

    report = index.replace(documents(2))

    assert report.indexed == ()
    assert set(report.failed) == {document.id for document in documents(2)}
    assert all("not indexed within 30 s (last: PROCESSING)" in reason for reason in report.failed.values())
    assert clock.now < 60


def test_documents_kendra_fails_are_reported_with_its_reason(clock: Clock) -> None:
    broken = document(3).id
    kendra = FakeKendraClient(clock=clock, failures={f"{broken}#0": "The document could not be parsed"})
    index = make_index(kendra, clock)

    report = index.replace(documents(5))

    assert report.failed == {broken: "passage 0: FAILED: The document could not be parsed"}
    assert len(report.indexed) == 4 and broken not in report.indexed


def test_an_update_kendra_fails_is_reported_and_the_indexed_version_kept(
    kendra: FakeKendraClient, clock: Clock
) -> None:
    index = make_index(kendra, clock)
    index.replace([document(1)])
    kendra.fail_document(f"{document(1).id}#0", "Extraction failed")
    revised = ContentDocument(**{**document(1).__dict__, "text": "spleen tissue, revised"})

    report = index.replace([revised])

    assert report.failed == {revised.id: "passage 0: UPDATE_FAILED: Extraction failed"}
    assert [hit.id for hit in index.search("liver")] == [revised.id]
    assert index.search("spleen") == []


class DroppedDeclarations:
    """A client whose UpdateIndex of the facets is accepted but not yet applied, as Kendra applies it asynchronously.

    The passage fields are applied, so a document without facets can be put.
    """

    def __init__(self, fake: FakeKendraClient) -> None:
        self.fake = fake

    def update_index(self, **params: Any) -> dict[str, Any]:
        passage_fields = {field.name for field in PASSAGE_FIELDS}
        kept = [item for item in params["DocumentMetadataConfigurationUpdates"] if item["Name"] in passage_fields]
        return self.fake.update_index(**{**params, "DocumentMetadataConfigurationUpdates": kept})

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fake, name)


def test_documents_refused_in_failed_documents_are_reported_and_not_polled(
    kendra: FakeKendraClient, clock: Clock
) -> None:
    index = make_index(DroppedDeclarations(kendra), clock)
    plain = ContentDocument(id="notes/readme.txt", title="readme", text="liver notes", uri="")

    report = index.replace([document(1), plain])

    assert report.indexed == (plain.id,)
    assert "is not a field of the index" in report.failed[document(1).id]
    polled = [
        info["DocumentId"] for params in sent(kendra, "BatchGetDocumentStatus") for info in params["DocumentInfoList"]
    ]
    assert not [item for item in polled if item.startswith(document(1).id)]


def test_throttling_on_a_fifth_of_the_calls_still_indexes_everything(kendra: FakeKendraClient, clock: Clock) -> None:
    client = ThrottledShare(kendra, share=0.2)
    index = make_index(client, clock)
    index.replace(documents(40))

    report = index.replace(documents(25), removed_ids=[document(number).id for number in range(25, 40)])

    assert client.injected >= 10
    assert index.call.retries == client.injected
    assert len(report.indexed) == 25 and not report.failed
    assert len(report.deleted) == 15
    assert set(kendra.documents) == first_passages(documents(25))
    assert {hit.id for hit in index.search("liver", limit=100)} == {document.id for document in documents(25)}


def test_deletes_go_ten_ids_a_call(kendra: FakeKendraClient, clock: Clock) -> None:
    index = make_index(kendra, clock)
    index.replace(documents(25))

    report = index.replace([], removed_ids=[document.id for document in documents(25)])

    deletes = sent(kendra, "BatchDeleteDocument")
    assert [len(params["DocumentIdList"]) for params in deletes] == [10, 10, 5]
    assert len(report.deleted) == 25
    assert kendra.documents == {}


def test_calls_stay_under_the_configured_rate(kendra: FakeKendraClient, clock: Clock) -> None:
    index = make_index(kendra, clock, max_per_second=4)

    index.replace(documents(60))

    assert kendra.peak_calls_per_second() <= 4


def test_search_sends_one_and_filter_and_the_callers_groups(kendra: FakeKendraClient, clock: Clock) -> None:
    index = make_index(kendra, clock)
    index.replace(documents(3))
    everything = ContentFilter(
        experiment_id="EXP-1",
        sample_id="S1",
        platform="NovaSeq",
        group="liver-lab",
        zone="raw",
        format="fastq.gz",
        since=date(2025, 1, 1),
        until=date(2025, 1, 2),
    )

    viewer = Viewer("Ada", frozenset({"Liver-Lab", "liver-lab", "bad\x07group", "x" * 201}))
    hits = index.search("liver", filters=everything, viewer=viewer)

    assert [hit.id for hit in hits] == [document(1).id]
    params = sent(kendra, "Query")[-1]
    leaves = params["AttributeFilter"]["AndAllFilters"]
    assert len(leaves) == 8
    assert {"ContainsAny": {"Key": "sample_ids", "Value": {"StringListValue": ["S1"]}}} in leaves
    assert {"LessThanOrEquals"} <= {operation for leaf in leaves for operation in leaf}
    assert all(len(leaf) == 1 and "AndAllFilters" not in leaf for leaf in leaves)
    assert params["UserContext"] == {"UserId": "ada", "Groups": ["liver-lab"]}
    assert params["QueryResultTypeFilter"] == "DOCUMENT"


def test_one_filter_is_sent_alone_and_a_user_without_groups_sees_their_own(
    kendra: FakeKendraClient, clock: Clock
) -> None:
    index = make_index(kendra, clock)
    index.replace([document(1), document(2, group=None, owner="ada")])

    hits = index.search("", filters=ContentFilter(platform="NovaSeq"), viewer=Viewer("ada"), limit=500)

    assert [hit.id for hit in hits] == [document(2).id]
    params = sent(kendra, "Query")[-1]
    assert params["AttributeFilter"] == {
        "AndAllFilters": [
            {"EqualsTo": {"Key": "platform", "Value": {"StringValue": "NovaSeq"}}},
            {"EqualsTo": {"Key": "labmesh_ordinal", "Value": {"LongValue": 0}}},  # each file once
        ]
    }
    assert "QueryText" not in params
    assert params["PageSize"] == 100
    assert params["UserContext"] == {"UserId": "ada"}


def test_an_admin_queries_without_a_user_context(kendra: FakeKendraClient, clock: Clock) -> None:
    index = make_index(kendra, clock)
    index.replace([document(1), document(2, group=None)])

    hits = index.search("", viewer=Viewer("root", frozenset({"liver-lab"}), admin=True), limit=10)

    assert {hit.id for hit in hits} == {document(1).id, document(2).id}
    assert "UserContext" not in sent(kendra, "Query")[-1]


def test_facet_values_are_not_matched_as_words(kendra: FakeKendraClient, clock: Clock) -> None:
    """Kendra matches query text against searchable string fields, and strings are searchable by default.

    Declared so, "NovaSeq" or "EXP-1" found every file of the platform or the
    experiment; declared by labmesh, only the files whose content says it.
    """
    index = make_index(kendra, clock)
    index.replace(documents(2))

    assert index.search("NovaSeq") == []
    assert index.search("EXP") == []
    assert [hit.id for hit in index.search("tissue", filters=ContentFilter(platform="NovaSeq"))] == [
        document(0).id,
        document(1).id,
    ]


def test_fields_an_older_labmesh_declared_searchable_are_declared_again(kendra: FakeKendraClient, clock: Clock) -> None:
    kendra.update_index(
        Id=kendra.index_id,
        DocumentMetadataConfigurationUpdates=[
            {"Name": "platform", "Type": "STRING_VALUE", "Search": {"Facetable": True, "Searchable": True}}
        ],
    )
    index = make_index(kendra, clock)
    index.replace(documents(1))

    assert index.search("NovaSeq") == []
    assert kendra.fields["platform"].search["Searchable"] is False
    assert kendra.fields["platform"].search["Facetable"] is True


def test_a_format_filter_finds_the_compressed_forms_too(kendra: FakeKendraClient, clock: Clock) -> None:
    index = make_index(kendra, clock)
    index.replace(documents(2))

    both = index.search("", filters=ContentFilter(format="fastq", platform="NovaSeq"))
    exact = index.search("", filters=ContentFilter(format="fastq.gz"))
    other = index.search("", filters=ContentFilter(format="fastq.bz2"))

    assert [hit.id for hit in both] == [hit.id for hit in exact] == [document(0).id, document(1).id]
    assert other == []
    leaves = sent(kendra, "Query")[0]["AttributeFilter"]["AndAllFilters"]
    [any_format] = [leaf["OrAllFilters"] for leaf in leaves if "OrAllFilters" in leaf]
    assert {"EqualsTo": {"Key": "format", "Value": {"StringValue": "fastq.gz"}}} in any_format


def long_file(passages: int, *, words: str = "liver tissue") -> ContentDocument:
    """A text file cut into ``passages`` passages of ten lines each."""
    key = "raw/EXP-1/run1/notes.txt"
    cut = tuple(
        Passage(
            key,
            ordinal,
            f"{words} part {ordinal}",
            PassageLocation(LocationKind.LINES, 10 * ordinal + 1, 10 * ordinal + 10),
        )
        for ordinal in range(passages)
    )
    return replace(document(1), id=key, title="notes.txt", passages=cut)


def deleted_ids(client: FakeKendraClient) -> list[str]:
    return [item for params in sent(client, "BatchDeleteDocument") for item in params["DocumentIdList"]]


def test_an_unchanged_file_put_again_sends_the_same_ids_and_deletes_nothing(
    kendra: FakeKendraClient, clock: Clock
) -> None:
    index = make_index(kendra, clock)
    index.replace([long_file(5)])
    first = [request["Id"] for params in sent(kendra, "BatchPutDocument") for request in params["Documents"]]
    kendra.calls.clear()

    report = index.replace([long_file(5)])

    again = [request["Id"] for params in sent(kendra, "BatchPutDocument") for request in params["Documents"]]
    assert again == first == [f"{long_file(5).id}#{ordinal}" for ordinal in range(5)]
    assert report.indexed == (long_file(5).id,) and not report.failed
    assert deleted_ids(kendra) == []


def test_a_shorter_version_deletes_exactly_the_passage_ids_it_no_longer_has(
    kendra: FakeKendraClient, clock: Clock
) -> None:
    index = make_index(kendra, clock)
    index.replace([long_file(14)])

    report = index.replace([long_file(3, words="spleen tissue")])

    key = long_file(3).id
    assert report.indexed == (key,) and not report.failed and report.deleted == ()
    assert deleted_ids(kendra) == [f"{key}#{ordinal}" for ordinal in range(3, 14)]
    assert all(len(params["DocumentIdList"]) <= 10 for params in sent(kendra, "BatchDeleteDocument"))
    assert set(kendra.documents) == {f"{key}#{ordinal}" for ordinal in range(3)}
    assert index.retrieve("liver") == []
    assert [hit.passage.ordinal for hit in index.retrieve("spleen part 2")][:1] == [2]


def test_a_removed_file_loses_every_passage(kendra: FakeKendraClient, clock: Clock) -> None:
    index = make_index(kendra, clock)
    index.replace([long_file(12), document(2)])

    report = index.replace([], removed_ids=[long_file(12).id])

    assert report.deleted == (long_file(12).id,) and not report.failed
    assert sorted(deleted_ids(kendra)) == sorted(f"{long_file(12).id}#{ordinal}" for ordinal in range(12))
    assert set(kendra.documents) == {f"{document(2).id}#0"}


def test_a_file_an_earlier_labmesh_put_whole_loses_its_whole_file_document(
    kendra: FakeKendraClient, clock: Clock
) -> None:
    index = make_index(kendra, clock)
    index.prepare()
    whole = {"Id": long_file(2).id, "ContentType": "PLAIN_TEXT", "Blob": b"liver tissue, put whole"}
    kendra.batch_put_document(IndexId=kendra.index_id, Documents=[whole])

    index.replace([long_file(2)])

    assert deleted_ids(kendra) == [long_file(2).id]
    assert set(kendra.documents) == {f"{long_file(2).id}#0", f"{long_file(2).id}#1"}


def test_a_search_lists_each_file_once_by_its_best_passage(kendra: FakeKendraClient, clock: Clock) -> None:
    index = make_index(kendra, clock)
    index.replace([long_file(4), document(2)])

    found = index.search("liver tissue", limit=10)
    listed = index.search("", limit=10)

    assert sorted(hit.id for hit in found) == sorted([long_file(4).id, document(2).id])
    assert sorted(hit.id for hit in listed) == sorted([long_file(4).id, document(2).id])
    assert len(index.search("liver tissue", limit=1)) == 1


def test_a_file_whose_passages_kendra_fails_is_reported_once_with_their_reasons(clock: Clock) -> None:
    kendra = FakeKendraClient(clock=clock, failures={long_file(5).id: "The document contains unsupported content."})
    index = make_index(kendra, clock)

    report = index.replace([long_file(5), document(2)])

    assert report.indexed == (document(2).id,)
    reason = report.failed[long_file(5).id]
    assert reason.startswith("passage 0: FAILED: The document contains unsupported content.; passage 1: ")
    assert reason.endswith("(and 2 more)")
    assert deleted_ids(kendra) == []  # a failed file's passages are not looked for, nor deleted
