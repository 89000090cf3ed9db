"""Bedrock's Converse as the chat's answerer: the evidence in as cited sources, its citations back as labmesh's.

Pinned here, through a fake held to botocore's ``bedrock-runtime`` model:
- the passages and facts go to the model as search results (or documents) with citations enabled, the
  question after them; the answer quotes what the model wrote, and each citation comes back as the very
  `passage_citation` / `fact_citation` the offline answerer gives, numbered in the order first cited;
- Converse and ConverseStream give the same answer, parts before citations before the end;
- a model that cites nothing, a guardrail that intervenes, or no evidence at all is a refusal: no citation,
  not answered (with no evidence, Bedrock is not even called);
- a guardrail's id and version go on every call (streaming in sync mode);
- throttling and 5xx are retried, then fail clearly naming the model; a refused request is not retried.
"""

from __future__ import annotations

import pytest

from labmesh_dagster.ask.base import NO_ANSWER, CatalogFact, Evidence, collect, fact_citation, passage_citation
from labmesh_dagster.connectors.llm.bedrock_converse import (
    DOCUMENTS,
    AnswererUnavailable,
    BedrockAnswerer,
    Source,
    cited_source,
)
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.answers import AnswerPart, Citation
from labmesh_dagster.core.passages import LocationKind, Passage, PassageHit, PassageLocation
from labmesh_dagster_tests.fake_bedrock_runtime import CLAUDE, NOVA, FakeBedrockRuntimeClient, FakeGuardrail

ADA = Viewer("ada", frozenset({"Genomics"}))
QC = PassageHit(
    passage=Passage(
        "processed/EXP-1/qc/summary.md",
        3,
        "Sequencing went well. The Q30 of LIV-01 was 93.1 percent on the MiSeq.",
        PassageLocation(LocationKind.SECTION, label="QC"),
    ),
    title="summary.md",
    uri="/store/processed/EXP-1/qc/summary.md",
    score=2.0,
    attributes={"experiment_id": "EXP-1", "zone": "processed"},
)
PROTOCOL = PassageHit(
    passage=Passage(
        "raw/EXP-1/protocol.txt",
        0,
        "Libraries were prepared with the TruSeq kit.",
        PassageLocation(LocationKind.LINES, 1, 4),
    ),
    title="protocol.txt",
    uri="/store/raw/EXP-1/protocol.txt",
    score=1.0,
    attributes={"experiment_id": "EXP-1", "zone": "raw"},
)
FACT = CatalogFact("EXP-1 (Liver RNA-seq) ran on the MiSeq platform.", "EXP-1", "Liver RNA-seq")
GUARDRAIL = FakeGuardrail("gr4example", "1", frozenset({"salary"}))


def ask(answerer: BedrockAnswerer, question: str, *hits: PassageHit, facts: tuple[CatalogFact, ...] = ()):
    return collect(question, answerer.answer(Evidence(question, ADA, hits, facts)))


@pytest.fixture
def bedrock() -> FakeBedrockRuntimeClient:
    return FakeBedrockRuntimeClient(guardrails=[GUARDRAIL])


@pytest.mark.parametrize("stream", [True, False], ids=["ConverseStream", "Converse"])
def test_the_answer_quotes_the_cited_passage_and_cites_it_as_the_offline_answerer_does(
    bedrock: FakeBedrockRuntimeClient, stream: bool
) -> None:
    answerer = BedrockAnswerer(bedrock, model_id=CLAUDE, stream=stream)

    answer = ask(answerer, "What was the Q30 of LIV-01?", PROTOCOL, QC)

    assert answer.answered and answer.engine == "bedrock"
    assert answer.parts == (
        AnswerPart("According to the sources:"),
        AnswerPart("The Q30 of LIV-01 was 93.1 percent on the MiSeq.", (1,)),
    )
    assert answer.citations == (passage_citation(1, QC),)
    assert answer.citations[0].href == "/files/processed/EXP-1/qc/summary.md?passage=3#passage-3"
    operation, request = bedrock.calls[-1]
    assert operation == ("ConverseStream" if stream else "Converse")
    results = [block["searchResult"] for block in request["messages"][0]["content"][:-1]]
    assert [result["source"] for result in results] == [PROTOCOL.passage.id, QC.passage.id]
    assert all(result["citations"] == {"enabled": True} for result in results)
    assert request["messages"][0]["content"][-1] == {"text": "What was the Q30 of LIV-01?"}


def test_streamed_events_come_parts_first_then_citations_then_the_end(bedrock: FakeBedrockRuntimeClient) -> None:
    answerer = BedrockAnswerer(bedrock, model_id=CLAUDE)
    events = list(answerer.answer(Evidence("Which kit prepared the libraries?", ADA, (QC, PROTOCOL))))

    kinds = [type(event).__name__ for event in events]
    assert kinds == ["AnswerPart", "AnswerPart", "Citation", "AnswerEnd"]
    assert events[2] == passage_citation(1, PROTOCOL)


def test_catalog_facts_are_cited_to_their_experiment(bedrock: FakeBedrockRuntimeClient) -> None:
    answerer = BedrockAnswerer(bedrock, model_id=CLAUDE)

    answer = ask(answerer, "Which platform did Liver RNA-seq run on?", PROTOCOL, facts=(FACT,))

    assert answer.answered
    assert answer.citations == (fact_citation(1, FACT),)
    assert answer.citations[0].href == "/experiments/EXP-1"


def test_documents_serve_models_without_search_results_cited_by_character_range(
    bedrock: FakeBedrockRuntimeClient,
) -> None:
    answerer = BedrockAnswerer(bedrock, model_id=NOVA, mode=DOCUMENTS)

    answer = ask(answerer, "What was the Q30 of LIV-01?", PROTOCOL, QC)

    assert answer.citations == (passage_citation(1, QC),)
    documents = [block["document"] for block in bedrock.calls[-1][1]["messages"][0]["content"][:-1]]
    assert [document["name"] for document in documents] == ["Source 1", "Source 2"]


def test_a_model_without_search_results_refuses_them_at_once_and_clearly(bedrock: FakeBedrockRuntimeClient) -> None:
    answerer = BedrockAnswerer(bedrock, model_id=NOVA, sleep=lambda _: None)

    with pytest.raises(AnswererUnavailable, match=f"answer with {NOVA}.*ValidationException.*searchResult"):
        ask(answerer, "What was the Q30 of LIV-01?", QC)
    assert bedrock.call_counts["ConverseStream"] == 1


@pytest.mark.parametrize("stream", [True, False], ids=["ConverseStream", "Converse"])
def test_an_answer_citing_nothing_is_refused(bedrock: FakeBedrockRuntimeClient, stream: bool) -> None:
    answerer = BedrockAnswerer(bedrock, model_id=CLAUDE, stream=stream)

    answer = ask(answerer, "Who won the football cup in 1998?", QC, PROTOCOL)

    assert (answer.answered, answer.citations, answer.text) == (False, (), NO_ANSWER)
    assert answer.notes == ("the model cited none of the passages you may see",)


def test_no_evidence_is_refused_without_asking_bedrock(bedrock: FakeBedrockRuntimeClient) -> None:
    answer = ask(BedrockAnswerer(bedrock, model_id=CLAUDE), "What was the Q30 of LIV-01?")

    assert not answer.answered and answer.citations == ()
    assert bedrock.calls == []


@pytest.mark.parametrize("stream", [True, False], ids=["ConverseStream", "Converse"])
def test_a_guardrail_goes_on_every_call_and_its_intervention_is_a_refusal(
    bedrock: FakeBedrockRuntimeClient, stream: bool
) -> None:
    answerer = BedrockAnswerer(bedrock, model_id=CLAUDE, guardrail=("gr4example", "1"), stream=stream)

    blocked = ask(answerer, "What is the salary of the LIV-01 sequencing staff?", QC)
    allowed = ask(answerer, "What was the Q30 of LIV-01?", QC)

    assert (blocked.answered, blocked.citations, blocked.text) == (False, (), NO_ANSWER)
    assert blocked.notes == ("the Bedrock guardrail intervened",)
    assert allowed.answered and allowed.citations == (passage_citation(1, QC),)
    expected = {"guardrailIdentifier": "gr4example", "guardrailVersion": "1"}
    if stream:
        expected["streamProcessingMode"] = "sync"
    assert [request["guardrailConfig"] for _, request in bedrock.calls] == [expected, expected]


def test_an_unknown_guardrail_fails_clearly(bedrock: FakeBedrockRuntimeClient) -> None:
    answerer = BedrockAnswerer(bedrock, model_id=CLAUDE, guardrail=("gr4example", "7"))

    with pytest.raises(AnswererUnavailable, match="ResourceNotFoundException"):
        ask(answerer, "What was the Q30 of LIV-01?", QC)


@pytest.mark.parametrize("failure", ["ThrottlingException", "InternalServerException", "ServiceUnavailableException"])
def test_throttling_and_server_errors_are_retried_with_backoff(bedrock: FakeBedrockRuntimeClient, failure: str) -> None:
    waits: list[float] = []
    answerer = BedrockAnswerer(bedrock, model_id=CLAUDE, sleep=waits.append)
    if failure == "ThrottlingException":
        bedrock.throttle("ConverseStream", times=2)
    else:
        bedrock.fail("ConverseStream", failure, times=2)

    answer = ask(answerer, "What was the Q30 of LIV-01?", QC)

    assert answer.answered
    assert bedrock.call_counts["ConverseStream"] == 3
    assert len([wait for wait in waits if wait > 0]) >= 2


def test_a_service_that_keeps_failing_gives_a_clear_error_after_its_attempts(
    bedrock: FakeBedrockRuntimeClient,
) -> None:
    answerer = BedrockAnswerer(bedrock, model_id=CLAUDE, stream=False, attempts=3, sleep=lambda _: None)
    bedrock.fail("Converse", "ServiceUnavailableException", times=10)

    with pytest.raises(AnswererUnavailable, match=f"Bedrock failed to answer with {CLAUDE}: ServiceUnavailable"):
        ask(answerer, "What was the Q30 of LIV-01?", QC)
    assert bedrock.call_counts["Converse"] == 3


def test_a_citation_naming_no_source_of_the_request_is_dropped() -> None:
    sources = [Source("raw/EXP-1/a.txt#0", "a.txt", "text")]

    assert (
        cited_source({"location": {"searchResultLocation": {"searchResultIndex": 0}}}, sources, "search_results") == 0
    )
    assert (
        cited_source({"location": {"searchResultLocation": {"searchResultIndex": 4}}}, sources, "search_results")
        is None
    )
    assert cited_source({"location": {"web": {"url": "https://example.org"}}}, sources, "search_results") is None
    assert cited_source({"source": "raw/EXP-2/b.txt#0", "location": {}}, sources, "search_results") is None
    assert cited_source({"location": {"documentChunk": {"documentIndex": 0}}}, sources, DOCUMENTS) == 0


def test_citations_are_the_shared_citation_type() -> None:
    assert isinstance(passage_citation(1, QC), Citation)


def test_a_cited_part_is_passed_on_before_the_model_has_finished(bedrock: FakeBedrockRuntimeClient) -> None:
    answerer = BedrockAnswerer(bedrock, model_id=CLAUDE)
    events = answerer.answer(Evidence("Which kit prepared the libraries?", ADA, (QC, PROTOCOL)))

    lead_in, quote = next(events), next(events)

    assert (lead_in, quote) == (
        AnswerPart("According to the sources:"),
        AnswerPart("Libraries were prepared with the TruSeq kit.", (1,)),
    )
    sent_so_far = bedrock.events_sent
    rest = list(events)
    assert bedrock.events_sent > sent_so_far  # the message's stop and metadata were still to come
    assert [type(event).__name__ for event in rest] == ["Citation", "AnswerEnd"]


def test_a_stream_that_breaks_midway_is_a_clear_error_and_never_ends_as_answered(
    bedrock: FakeBedrockRuntimeClient,
) -> None:
    answerer = BedrockAnswerer(bedrock, model_id=CLAUDE)
    bedrock.break_stream(after_events=3)

    with pytest.raises(AnswererUnavailable, match=f"answer with {CLAUDE}: modelStreamErrorException"):
        list(answerer.answer(Evidence("What was the Q30 of LIV-01?", ADA, (QC,))))
    assert bedrock.call_counts["ConverseStream"] == 1


@pytest.mark.parametrize("stream", [True, False], ids=["ConverseStream", "Converse"])
def test_an_uncited_number_from_the_models_own_knowledge_is_left_out_and_said(stream: bool) -> None:
    bedrock = FakeBedrockRuntimeClient(own_knowledge="Runs like this usually reach 95 percent.")
    answerer = BedrockAnswerer(bedrock, model_id=CLAUDE, stream=stream)

    answer = ask(answerer, "What was the Q30 of LIV-01?", QC)

    assert answer.answered and "95" not in answer.text
    assert answer.parts[-1] == AnswerPart("The Q30 of LIV-01 was 93.1 percent on the MiSeq.", (1,))
    assert answer.notes == ("1 uncited statement(s) holding numbers were left out",)
