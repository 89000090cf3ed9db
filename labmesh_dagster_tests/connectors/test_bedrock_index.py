"""The Bedrock Knowledge Base content index, checked against the model-bound fakes of both Bedrock clients.

Pinned here: each passage is one knowledge base document (its passage id as the
custom id, inline text, its document's facets, its location and its access
list as metadata), ingested 10 a call; a document without passages goes whole;
`replace` polls the statuses until final and reports FAILED passages, the
timeout and a refused batch per document; a document re-published with fewer
passages loses the extra ones, a removed document all of them; Retrieve
carries the facets and the viewer's principals in one RetrievalFilter, so two
users of different groups asking the same question each get passages of their
own experiments only, even when the other group's rank higher; admins send no
access filter and alone see a document listing nobody; sample lists longer
than one attribute holds are still filtered on; results map back to labmesh
passages with their location; throttling is retried and a knowledge base that
keeps failing is `ContentIndexUnavailable`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from labmesh_dagster.connectors.search.base import ContentDocument, ContentFilter, ContentIndexUnavailable
from labmesh_dagster.connectors.search.bedrock import BedrockKnowledgeBaseIndex
from labmesh_dagster.core.access import Viewer, experiment_principals
from labmesh_dagster.core.passages import LocationKind, Passage, PassageLocation
from labmesh_dagster_tests.fake_bedrock_agent import (
    FakeBedrockAgentClient,
    FakeBedrockAgentRuntimeClient,
    bedrock_clients,
)
from labmesh_dagster_tests.service_model import ThrottledShare

LIVER_LAB = Viewer("bob", frozenset({"liver-lab"}))
KIDNEY_LAB = Viewer("kim", frozenset({"kidney-lab"}))
ADMIN = Viewer("root", admin=True)


class Clock:
    """Time that passes only when slept."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def report_pages(document_id: str, pages: list[str]) -> tuple[Passage, ...]:
    return tuple(
        Passage(document_id, ordinal, text, PassageLocation(LocationKind.PAGE, ordinal + 1, ordinal + 1))
        for ordinal, text in enumerate(pages)
    )


def report(
    experiment: str, group: str | None, pages: list[str], *, name: str = "report.pdf", **attributes: Any
) -> ContentDocument:
    document_id = f"processed/{experiment}/{name}"
    return ContentDocument(
        id=document_id,
        title=name,
        text="\n".join(pages),
        uri=f"s3://lab-processed/{document_id}",
        attributes={
            "experiment_id": experiment,
            "sample_ids": [f"{experiment}-S1"],
            "platform": "NovaSeq",
            "zone": "processed",
            "format": "pdf",
            "created": datetime(2025, 3, 4, 10, 0, tzinfo=UTC),
            **({"group": group} if group else {}),
            **attributes,
        },
        principals=tuple(experiment_principals(group, "ada" if group else None)),
        passages=report_pages(document_id, pages),
    )


LIVER = report("LIV-01", "liver-lab", ["Q30 of the liver run was 91 percent", "Library prep used TruSeq"])
KIDNEY = report("KID-02", "kidney-lab", ["Q30 of the kidney run was 88 percent", "Proteomics on Orbitrap"])


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def clients() -> tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient]:
    return bedrock_clients()


def make_index(agent: Any, runtime: Any, clock: Clock, **options: Any) -> BedrockKnowledgeBaseIndex:
    return BedrockKnowledgeBaseIndex(
        agent,
        runtime,
        knowledge_base_id="KBLABMESH1",
        data_source_id="DSLABMESH1",
        clock=clock,
        sleep=clock.sleep,
        **options,
    )


@pytest.fixture
def index(
    clients: tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient], clock: Clock
) -> BedrockKnowledgeBaseIndex:
    return make_index(*clients, clock)


def sent(client: Any, operation: str) -> list[dict[str, Any]]:
    return [params for name, params in client.calls if name == operation]


def metadata_of(request: dict[str, Any]) -> dict[str, Any]:
    values = {}
    for attribute in request["metadata"]["inlineAttributes"]:
        value = attribute["value"]
        values[attribute["key"]] = next(item for key, item in value.items() if key != "type")
    return values


def test_each_passage_is_one_knowledge_base_document_with_its_place_facets_and_access(
    clients: tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient], index: BedrockKnowledgeBaseIndex
) -> None:
    agent, _ = clients
    result = index.replace([LIVER])
    assert result.indexed == (LIVER.id,) and result.ok
    (ingest,) = sent(agent, "IngestKnowledgeBaseDocuments")
    requests = ingest["documents"]
    assert [request["content"]["custom"]["customDocumentIdentifier"]["id"] for request in requests] == [
        f"{LIVER.id}#0",
        f"{LIVER.id}#1",
    ]
    assert requests[1]["content"]["custom"]["inlineContent"]["textContent"]["data"] == "Library prep used TruSeq"
    metadata = metadata_of(requests[1])
    assert metadata["labmesh_document_id"] == LIVER.id
    assert (metadata["labmesh_ordinal"], metadata["labmesh_location_kind"], metadata["labmesh_location_start"]) == (
        1,
        "page",
        2,
    )
    assert metadata["experiment_id"] == "LIV-01" and metadata["sample_ids_0"] == ["LIV-01-S1"]
    assert metadata["created"] == datetime(2025, 3, 4, 10, 0, tzinfo=UTC).timestamp()
    assert metadata["access_0"] == ["group:liver-lab", "user:ada"]


def test_passages_are_ingested_ten_a_call_and_a_document_without_passages_goes_whole(
    clients: tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient], index: BedrockKnowledgeBaseIndex
) -> None:
    agent, runtime = clients
    long_report = report("LIV-01", "liver-lab", [f"page {number} text" for number in range(23)], name="long.pdf")
    plain = ContentDocument(
        id="raw/LIV-01/notes.txt",
        title="notes.txt",
        text="free text notes on the liver dissection",
        uri="s3://lab-raw/raw/LIV-01/notes.txt",
        attributes={"experiment_id": "LIV-01"},
        principals=("group:liver-lab",),
    )
    assert index.replace([long_report, plain]).indexed == (long_report.id, plain.id)
    assert [len(call["documents"]) for call in sent(agent, "IngestKnowledgeBaseDocuments")] == [10, 10, 4]
    (hit,) = index.retrieve("dissection notes", viewer=LIVER_LAB, limit=1)
    assert (hit.passage.id, hit.passage.location.kind) == ("raw/LIV-01/notes.txt#0", LocationKind.WHOLE)
    assert len(runtime.kb.documents) == 24


def test_a_long_text_without_passages_is_cut_as_the_local_index_cuts_it(
    clients: tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient], index: BedrockKnowledgeBaseIndex
) -> None:
    _, runtime = clients
    lines = [f"Line {number}: the centrifuge ran at {number * 100} rpm for sample S{number}." for number in range(60)]
    log = ContentDocument(
        id="raw/LIV-01/run.log",
        title="run.log",
        text="\n".join(lines),
        uri="s3://lab-raw/raw/LIV-01/run.log",
        attributes={"experiment_id": "LIV-01", "format": "log"},
        principals=("group:liver-lab",),
    )
    index.replace([log])
    kinds = {document.metadata["labmesh_location_kind"] for document in runtime.kb.documents.values()}
    assert len(runtime.kb.documents) > 1 and kinds == {"lines"}
    (hit,) = index.retrieve("centrifuge 5900 rpm", viewer=LIVER_LAB, limit=1)
    assert "5900 rpm" in hit.passage.text
    start, end = hit.passage.location.start, hit.passage.location.end
    assert start is not None and end is not None and start <= 60 <= end  # "5900 rpm" is on line 60


def test_two_users_of_different_groups_each_get_only_their_own_experiments_passages(
    clients: tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient], index: BedrockKnowledgeBaseIndex
) -> None:
    _, runtime = clients
    index.replace([LIVER, KIDNEY])
    # The kidney passage answers the question best: the liver user must still get their own, first.
    question = "Q30 percent of the kidney run"
    assert index.retrieve(question, viewer=ADMIN, limit=1)[0].passage.document_id == KIDNEY.id
    liver = index.retrieve(question, viewer=LIVER_LAB, limit=1)
    kidney = index.retrieve(question, viewer=KIDNEY_LAB, limit=5)
    assert [hit.passage.id for hit in liver] == [f"{LIVER.id}#0"]
    assert {hit.passage.document_id for hit in kidney} == {KIDNEY.id}
    assert liver[0].passage.location.describe() == "page 1"
    assert (liver[0].title, liver[0].uri) == ("report.pdf", f"s3://lab-processed/{LIVER.id}")
    assert liver[0].attributes["experiment_id"] == "LIV-01"
    # The access rule is in the request, applied before numberOfResults, not filtered afterwards.
    access = sent(runtime, "Retrieve")[1]["retrievalConfiguration"]["vectorSearchConfiguration"]["filter"]
    assert access["orAll"][0] == {"listContains": {"key": "access_0", "value": "group:liver-lab"}}
    assert {leaf["listContains"]["value"] for leaf in access["orAll"]} == {"group:liver-lab", "user:bob"}


def test_an_admin_sends_no_access_filter_and_alone_sees_a_document_listing_nobody(
    clients: tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient], index: BedrockKnowledgeBaseIndex
) -> None:
    _, runtime = clients
    orphan = report("ORP-09", None, ["Q30 of an experiment nobody owns"])
    index.replace([LIVER, orphan])
    assert {hit.passage.document_id for hit in index.retrieve("Q30", viewer=ADMIN)} == {LIVER.id, orphan.id}
    assert "filter" not in sent(runtime, "Retrieve")[0]["retrievalConfiguration"]["vectorSearchConfiguration"]
    assert {hit.passage.document_id for hit in index.retrieve("Q30", viewer=LIVER_LAB)} == {LIVER.id}


def test_a_grant_ingests_the_experiments_passages_again_with_the_new_list(index: BedrockKnowledgeBaseIndex) -> None:
    index.replace([LIVER, KIDNEY])
    assert index.retrieve("Q30", viewer=Viewer("carl")) == []
    granted = replace(LIVER, principals=(*LIVER.principals, "user:carl"))

    result = index.update_access("LIV-01", granted.principals, lambda: [granted])

    assert result.indexed == (LIVER.id,)
    assert {hit.passage.document_id for hit in index.retrieve("Q30", viewer=Viewer("Carl"))} == {LIVER.id}


def test_facet_filters_go_with_the_access_rule_into_one_filter(
    clients: tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient], index: BedrockKnowledgeBaseIndex
) -> None:
    _, runtime = clients
    many_samples = [f"LIV-01-S{number}" for number in range(1, 16)]
    fastq = report("LIV-01", "liver-lab", ["reads of the liver run"], name="S1.fastq.gz", format="fastq.gz")
    older = report("LIV-01", "liver-lab", ["an older run"], name="old.pdf", created=datetime(2024, 1, 1, tzinfo=UTC))
    pooled = report("LIV-01", "liver-lab", ["pooled run of fifteen samples"], name="pool.pdf", sample_ids=many_samples)
    index.replace([LIVER, KIDNEY, fastq, older, pooled])

    def found(filters: ContentFilter, viewer: Viewer | None = LIVER_LAB) -> set[str]:
        return {hit.passage.document_id for hit in index.retrieve("run", filters=filters, viewer=viewer)}

    assert found(ContentFilter(format="fastq")) == {fastq.id}
    assert found(ContentFilter(sample_id="LIV-01-S14")) == {pooled.id}
    assert found(ContentFilter(since=date(2025, 1, 1), until=date(2025, 3, 4))) == {LIVER.id, fastq.id, pooled.id}
    assert found(ContentFilter(until=date(2024, 1, 1))) == {older.id}
    assert found(ContentFilter(experiment_id="KID-02")) == set()
    assert found(ContentFilter(experiment_id="KID-02"), viewer=None) == {KIDNEY.id}
    last = sent(runtime, "Retrieve")[-2]["retrievalConfiguration"]["vectorSearchConfiguration"]["filter"]
    assert last["andAll"][0] == {"equals": {"key": "experiment_id", "value": "KID-02"}}


def test_search_gives_one_hit_per_document_by_its_best_passage(index: BedrockKnowledgeBaseIndex) -> None:
    index.replace([LIVER, KIDNEY])
    hits = index.search("Q30 run TruSeq", viewer=ADMIN)
    assert [hit.id for hit in hits] == [LIVER.id, KIDNEY.id]
    assert hits[0].excerpt == "Q30 of the liver run was 91 percent"


def test_fewer_passages_delete_the_extra_ones_and_a_removed_document_loses_all(
    clients: tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient], index: BedrockKnowledgeBaseIndex
) -> None:
    agent, runtime = clients
    long_report = report("LIV-01", "liver-lab", [f"page {number}" for number in range(14)], name="long.pdf")
    index.replace([long_report, KIDNEY])
    shorter = report("LIV-01", "liver-lab", ["page 0", "page 1", "page 2"], name="long.pdf")
    result = index.replace([shorter], removed_ids=[KIDNEY.id])
    assert result.indexed == (shorter.id,) and result.deleted == (KIDNEY.id,)
    assert sorted(runtime.kb.documents) == sorted(f"{shorter.id}#{ordinal}" for ordinal in range(3))
    deleted = [
        item["custom"]["id"]
        for call in sent(agent, "DeleteKnowledgeBaseDocuments")
        for item in call["documentIdentifiers"]
    ]
    assert len(deleted) == 13
    # Removing it again finds nothing to delete and still reports it gone.
    assert index.replace([], removed_ids=[KIDNEY.id]).deleted == (KIDNEY.id,)
    assert len(sent(agent, "DeleteKnowledgeBaseDocuments")) == 2


def test_failed_passages_fail_their_document_with_the_reason_and_the_others_are_indexed(
    clients: tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient], index: BedrockKnowledgeBaseIndex
) -> None:
    agent, _ = clients
    agent.kb.fail_document(f"{KIDNEY.id}#1", "the embedding model refused the text")
    crowded = report("LIV-01", "liver-lab", ["x"], name="crowded.pdf")
    crowded = replace(crowded, principals=tuple(f"user:u{n}" for n in range(51)))
    result = index.replace([LIVER, KIDNEY, crowded])
    assert result.indexed == (LIVER.id,)
    assert result.failed[KIDNEY.id] == "passage 1: FAILED: the embedding model refused the text"
    assert "51 principals" in result.failed[crowded.id]


def test_replace_gives_up_at_the_timeout_with_a_report(
    clients: tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient], clock: Clock
) -> None:
    agent, runtime = clients
    agent.kb.reads_to_index = 1000
    index = make_index(agent, runtime, clock, status_timeout_seconds=10, poll_seconds=2)
    result = index.replace([LIVER])
    assert result.failed[LIVER.id].endswith("not indexed within 10 s (last: IN_PROGRESS)")
    assert clock.now >= 10


class RefusingAgent:
    """A bedrock-agent client whose service refuses every ingest with a ValidationException it names."""

    def __init__(self, fake: FakeBedrockAgentClient) -> None:
        self.fake = fake

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fake, name)

    def ingest_knowledge_base_documents(self, **params: Any) -> Any:
        raise self.fake._invalid("IngestKnowledgeBaseDocuments", "metadata too large for the vector store")


def test_a_refused_batch_fails_its_documents_with_the_services_reason(
    clients: tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient], clock: Clock
) -> None:
    agent, runtime = clients
    result = make_index(RefusingAgent(agent), runtime, clock).replace([LIVER])
    assert "ValidationException: metadata too large for the vector store" in result.failed[LIVER.id]


def test_throttling_is_retried_and_everything_is_indexed_and_found(
    clients: tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient], clock: Clock
) -> None:
    agent, runtime = clients
    throttled_agent, throttled_runtime = ThrottledShare(agent, 0.3), ThrottledShare(runtime, 0.3, seed=3)
    index = make_index(throttled_agent, throttled_runtime, clock)
    reports = [report(f"LIV-{number:02d}", "liver-lab", ["Q30 page", "more"]) for number in range(12)]
    assert len(index.replace(reports).indexed) == 12
    for _ in range(5):
        assert len(index.retrieve("Q30", viewer=LIVER_LAB, limit=50)) == 24
    assert throttled_agent.injected > 0 and throttled_runtime.injected > 0


def test_a_knowledge_base_that_keeps_failing_is_unavailable(
    clients: tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient], clock: Clock
) -> None:
    agent, runtime = clients
    runtime.throttle("Retrieve", times=100)
    agent.throttle("IngestKnowledgeBaseDocuments", times=100)
    index = make_index(agent, runtime, clock)
    with pytest.raises(ContentIndexUnavailable, match="Bedrock failed to retrieve"):
        index.retrieve("Q30", viewer=LIVER_LAB)
    with pytest.raises(ContentIndexUnavailable, match="ThrottlingException"):
        index.replace([LIVER])
    assert runtime.call_counts["Retrieve"] == index.ask.attempts


def test_a_knowledge_base_that_does_not_exist_is_a_clear_error(clock: Clock) -> None:
    index = BedrockKnowledgeBaseIndex(
        *bedrock_clients(), knowledge_base_id="KBMISSING1", data_source_id="DSLABMESH1", clock=clock, sleep=clock.sleep
    )
    with pytest.raises(ContentIndexUnavailable, match="KBMISSING1.*ResourceNotFoundException"):
        index.retrieve("Q30")
    with pytest.raises(ContentIndexUnavailable, match="ResourceNotFoundException"):
        index.replace([LIVER])
