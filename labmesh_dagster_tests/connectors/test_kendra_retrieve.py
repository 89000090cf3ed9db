"""Passages from Kendra's Retrieve, under the same access rule and facets as its Query.

Pinned here: `KendraContentIndex.retrieve` sends Retrieve with the viewer's
UserContext (their name, their groups) and the facets' AttributeFilter, so two
users of different groups asking the same question each get passages of their
own experiments only; an admin sends no user context and sees every group's;
each hit is Kendra's passage text with its file's title, URI and facets; a
hit is the labmesh passage that holds it, with the ordinal and location the
local index gives for the same file (so a Kendra citation opens the section,
not the file), one hit per passage; a file's passages keep its access list; a
document an earlier labmesh put whole is cited as the whole file; a blank
question asks nothing; throttling is retried and a Kendra that keeps failing
is `ContentIndexUnavailable`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.connectors.search.base import ContentDocument, ContentFilter, ContentIndexUnavailable
from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.passages import LocationKind, PassageLocation, SearchMode
from labmesh_dagster.semantic.chunking import chunk_file
from labmesh_dagster_tests.connectors.test_kendra_index import Clock, document, make_index, sent
from labmesh_dagster_tests.fake_kendra import FakeKendraClient
from labmesh_dagster_tests.service_model import ThrottledShare

LIVER = document(1, group="liver-lab")
KIDNEY = document(2, group="kidney-lab")

_FILLER = " ".join(f"Lane {number} passed the quality review." for number in range(14))
REPORT_TEXT = f"""# Methods

Libraries were prepared with the TruSeq kit. {_FILLER}

# Results

The liver samples had a mean gc percent of 41.5 and 1000 reads each. {_FILLER}

# Discussion

Kidney tissue showed a lower yield than expected. {_FILLER}
"""


def report(text: str = REPORT_TEXT, *, group: str = "liver-lab") -> ContentDocument:
    """A Markdown report of three sections and a metadata field, cut as publishing cuts it."""
    key = "final/EXP-1/report/summary.md"
    return ContentDocument(
        id=key,
        title="summary.md",
        text=text,
        uri=f"s3://lab-final/{key}",
        attributes={"experiment_id": "EXP-1", "zone": "final", "format": "md"},
        principals=(f"group:{group}",),
        passages=tuple(chunk_file(key, fmt="md", text=text, fields=[("platform", "NovaSeq")])),
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kendra(clock: Clock) -> FakeKendraClient:
    return FakeKendraClient(clock=clock)


def test_two_users_of_different_groups_each_get_passages_of_their_own_experiments(
    kendra: FakeKendraClient, clock: Clock
) -> None:
    index = make_index(kendra, clock)
    index.replace([LIVER, KIDNEY])

    liver = index.retrieve("gc percent of the tissue", viewer=Viewer("Bob", frozenset({"Liver-Lab"})))
    kidney = index.retrieve("gc percent of the tissue", viewer=Viewer("kim", frozenset({"kidney-lab"})))

    assert [hit.passage.document_id for hit in liver] == [LIVER.id]
    assert [hit.passage.document_id for hit in kidney] == [KIDNEY.id]
    assert sent(kendra, "Retrieve")[0]["UserContext"] == {"UserId": "bob", "Groups": ["liver-lab"]}
    (hit,) = liver
    assert "gc percent 41.5" in hit.passage.text
    assert (hit.passage.id, hit.passage.location.kind) == (f"{LIVER.id}#0", LocationKind.WHOLE)
    assert (hit.title, hit.uri) == (LIVER.title, LIVER.uri)
    assert hit.attributes["experiment_id"] == "EXP-1" and hit.attributes["sample_ids"] == ["S1"]


def test_an_admin_retrieves_without_a_user_context(kendra: FakeKendraClient, clock: Clock) -> None:
    index = make_index(kendra, clock)
    index.replace([LIVER, KIDNEY])

    hits = index.retrieve("tissue", viewer=Viewer("root", admin=True))

    assert {hit.passage.document_id for hit in hits} == {LIVER.id, KIDNEY.id}
    assert "UserContext" not in sent(kendra, "Retrieve")[-1]


def test_facets_go_into_the_attribute_filter(kendra: FakeKendraClient, clock: Clock) -> None:
    index = make_index(kendra, clock)
    index.replace([LIVER, KIDNEY])

    hits = index.retrieve("tissue", filters=ContentFilter(sample_id="S2", format="fastq"), limit=5)

    assert [hit.passage.document_id for hit in hits] == [KIDNEY.id]
    leaves = sent(kendra, "Retrieve")[-1]["AttributeFilter"]["AndAllFilters"]
    assert {"ContainsAny": {"Key": "sample_ids", "Value": {"StringListValue": ["S2"]}}} in leaves


def test_a_kendra_citation_is_the_passage_the_local_index_cites_for_the_same_file(
    kendra: FakeKendraClient, clock: Clock, tmp_path: Path
) -> None:
    local = SqliteContentIndex(tmp_path / "catalog.sqlite", embedder=None)
    index = make_index(kendra, clock)
    local.replace([report()])
    index.replace([report()])

    (cited,) = index.retrieve("kidney yield", limit=1)
    (expected,) = local.retrieve("kidney yield", limit=1, mode=SearchMode.KEYWORD)

    assert cited.passage.id == expected.passage.id == f"{report().id}#2"
    assert (
        cited.passage.location
        == expected.passage.location
        == PassageLocation(LocationKind.SECTION, 9, 11, "Discussion")
    )
    assert "Kidney tissue showed a lower yield" in cited.passage.text
    assert "mean gc percent" not in cited.passage.text  # the Discussion's words, not the Results'
    assert (cited.title, cited.uri, cited.attributes["zone"]) == ("summary.md", report().uri, "final")
    (field,) = index.retrieve("NovaSeq", limit=1)
    assert (field.passage.ordinal, field.passage.location) == (3, PassageLocation(LocationKind.FIELD, label="platform"))


def test_every_passage_of_a_file_keeps_its_access_list(kendra: FakeKendraClient, clock: Clock) -> None:
    index = make_index(kendra, clock)
    index.replace([report(group="liver-lab")])

    liver = index.retrieve("gc percent yield TruSeq", viewer=Viewer("bob", frozenset({"liver-lab"})))
    kidney = index.retrieve("gc percent yield TruSeq", viewer=Viewer("kim", frozenset({"kidney-lab"})))

    assert sorted(hit.passage.ordinal for hit in liver) == [0, 1, 2]
    assert kidney == []
    (put,) = sent(kendra, "BatchPutDocument")
    assert [request["Id"] for request in put["Documents"]] == [f"{report().id}#{ordinal}" for ordinal in range(4)]
    assert all(
        request["AccessControlList"] == [{"Name": "liver-lab", "Type": "GROUP", "Access": "ALLOW"}]
        for request in put["Documents"]
    )


def test_a_document_an_earlier_labmesh_put_whole_is_cited_as_the_whole_file(
    kendra: FakeKendraClient, clock: Clock
) -> None:
    index = make_index(kendra, clock)
    index.prepare()
    kendra.batch_put_document(
        IndexId=kendra.index_id,
        Documents=[{"Id": "raw/EXP-9/notes.txt", "ContentType": "PLAIN_TEXT", "Blob": b"old kidney notes"}],
    )

    (hit,) = index.retrieve("kidney")

    assert (hit.passage.id, hit.passage.location.kind) == ("raw/EXP-9/notes.txt#0", LocationKind.WHOLE)
    assert hit.passage.text == "old kidney notes"


class TwoPassagesEach:
    """A Kendra answering each Retrieve with two excerpts of every document, as it may for a long one."""

    def __init__(self, fake: FakeKendraClient) -> None:
        self.fake = fake

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fake, name)

    def retrieve(self, **params: Any) -> dict[str, Any]:
        answer = self.fake.retrieve(**params)
        doubled = [dict(item, Id=f"{item['Id']}-{copy}") for item in answer["ResultItems"] for copy in (1, 2)]
        return {**answer, "ResultItems": doubled}


def test_the_best_excerpt_per_passage_so_no_two_hits_share_a_passage_id(kendra: FakeKendraClient, clock: Clock) -> None:
    index = make_index(TwoPassagesEach(kendra), clock)
    index.replace([LIVER, KIDNEY])

    hits = index.retrieve("tissue", limit=10)

    assert sorted(hit.passage.id for hit in hits) == sorted({f"{LIVER.id}#0", f"{KIDNEY.id}#0"})
    assert len(index.retrieve("tissue", limit=1)) == 1


def test_a_blank_question_asks_nothing(kendra: FakeKendraClient, clock: Clock) -> None:
    index = make_index(kendra, clock)
    index.replace([LIVER])

    assert index.retrieve("   ") == [] and index.retrieve("tissue", limit=0) == []
    assert sent(kendra, "Retrieve") == []


def test_throttling_is_retried_and_a_kendra_that_keeps_failing_is_unavailable(
    kendra: FakeKendraClient, clock: Clock
) -> None:
    index = make_index(kendra, clock)
    index.replace([LIVER])
    throttled = ThrottledShare(kendra, 0.4)
    busy = make_index(throttled, clock)
    for _ in range(8):
        assert len(busy.retrieve("tissue")) == 1
    assert throttled.injected > 0

    kendra.throttle("Retrieve", times=100)
    with pytest.raises(ContentIndexUnavailable, match="Kendra failed to retrieve"):
        index.retrieve("tissue")
