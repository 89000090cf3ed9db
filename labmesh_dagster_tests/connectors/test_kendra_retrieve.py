"""Passages from Kendra's Retrieve, under the same access rule and facets as its Query.

Pinned here: `KendraContentIndex.retrieve` sends Retrieve with the viewer's
UserContext (their name, their groups) and the facets' AttributeFilter, so two
users of different groups asking the same question each get passages of their
own experiments only; an admin sends no user context and sees every group's;
each hit is Kendra's passage text with its file's title, URI and facets, cited
as the whole file, one per file; a blank question asks nothing; throttling is
retried and a Kendra that keeps failing is `ContentIndexUnavailable`.
"""

from __future__ import annotations

from typing import Any

import pytest

from labmesh_dagster.connectors.search.base import ContentFilter, ContentIndexUnavailable
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.passages import LocationKind
from labmesh_dagster_tests.connectors.test_kendra_index import Clock, document, make_index, sent
from labmesh_dagster_tests.fake_kendra import FakeKendraClient
from labmesh_dagster_tests.service_model import ThrottledShare

LIVER = document(1, group="liver-lab")
KIDNEY = document(2, group="kidney-lab")


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


class TwoPassagesEach:
    """A Kendra answering each Retrieve with two passages of every file, as it may for a long file."""

    def __init__(self, fake: FakeKendraClient) -> None:
        self.fake = fake

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fake, name)

    def retrieve(self, **params: Any) -> dict[str, Any]:
        answer = self.fake.retrieve(**params)
        doubled = [dict(item, Id=f"{item['Id']}-{copy}") for item in answer["ResultItems"] for copy in (1, 2)]
        return {**answer, "ResultItems": doubled}


def test_one_passage_per_file_so_no_two_hits_share_a_passage_id(kendra: FakeKendraClient, clock: Clock) -> None:
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
