"""The bedrock-runtime fake is as strict as boto3 and the service, and answers as the documentation describes.

Pinned here: a request boto3 would refuse (a missing or unknown member) raises ParamValidationError; one
the service would refuse (a guardrail version off its pattern, an unknown model, search results sent to a
model without them, a conversation not ending with the user) is a ValidationException; an unknown
guardrail is ResourceNotFoundException; every ConverseStream event is held to the union it belongs to;
the answer cites the sentences sharing half the question's words, by search result or by character range.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from labmesh_dagster_tests.fake_bedrock_runtime import (
    CLAUDE,
    NOVA,
    FakeBedrockRuntimeClient,
    FakeGuardrail,
    check_stream_event,
)
from labmesh_dagster_tests.service_model import ModelViolation

SOURCE = "The Q30 of LIV-01 was 93.1 percent. The run used a MiSeq."


def request(question: str = "What was the Q30 of LIV-01?", *, model: str = CLAUDE, **extra: Any) -> dict[str, Any]:
    result = {
        "searchResult": {
            "source": "raw/EXP-1/qc.txt#0",
            "title": "qc.txt",
            "content": [{"text": SOURCE}],
            "citations": {"enabled": True},
        }
    }
    return {"modelId": model, "messages": [{"role": "user", "content": [result, {"text": question}]}], **extra}


@pytest.fixture
def bedrock() -> FakeBedrockRuntimeClient:
    return FakeBedrockRuntimeClient(guardrails=[FakeGuardrail("gr4example", "1", frozenset({"salary"}))])


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_what_boto3_refuses_the_fake_refuses_before_anything_is_answered(bedrock: FakeBedrockRuntimeClient) -> None:
    with pytest.raises(ParamValidationError, match="modelId"):
        bedrock.converse(messages=request()["messages"])
    with pytest.raises(ParamValidationError, match="temperatur"):
        bedrock.converse(**request(), inferenceConfig={"temperatur": 0})


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (request(guardrailConfig={"guardrailIdentifier": "gr4example", "guardrailVersion": "latest"}), "Validation"),
        (request(model="acme.unknown-model-v1:0"), "ValidationException"),
        (request(model=NOVA), "ValidationException"),
        (request(guardrailConfig={"guardrailIdentifier": "gr4example", "guardrailVersion": "2"}), "ResourceNotFound"),
    ],
    ids=["guardrail version off its pattern", "unknown model", "search results to a model without", "no guardrail"],
)
def test_what_the_service_refuses_the_fake_refuses(
    bedrock: FakeBedrockRuntimeClient, params: dict[str, Any], code: str
) -> None:
    with pytest.raises(ClientError) as error:
        bedrock.converse(**params)
    assert error_code(error).startswith(code)


def test_a_conversation_must_end_with_the_user(bedrock: FakeBedrockRuntimeClient) -> None:
    params = request()
    params["messages"].append({"role": "assistant", "content": [{"text": "Sure."}]})

    for wrong in (params, {"modelId": CLAUDE}):
        with pytest.raises(ClientError) as error:
            bedrock.converse(**wrong)
        assert error_code(error) == "ValidationException"


def test_the_answer_cites_the_sentence_sharing_the_questions_words(bedrock: FakeBedrockRuntimeClient) -> None:
    response = bedrock.converse(**request())

    lead_in, cited = response["output"]["message"]["content"]
    assert lead_in == {"text": "According to the sources:"}
    citation = cited["citationsContent"]["citations"][0]
    assert cited["citationsContent"]["content"] == [{"text": "The Q30 of LIV-01 was 93.1 percent."}]
    assert citation["location"] == {"searchResultLocation": {"searchResultIndex": 0, "start": 0, "end": 0}}
    assert citation["source"] == "raw/EXP-1/qc.txt#0"


def test_a_documents_citation_names_its_character_range(bedrock: FakeBedrockRuntimeClient) -> None:
    document = {
        "document": {"format": "txt", "name": "Source 1", "source": {"text": SOURCE}, "citations": {"enabled": True}}
    }
    messages = [{"role": "user", "content": [document, {"text": "Which run used a MiSeq?"}]}]

    response = bedrock.converse(modelId=NOVA, messages=messages)

    cited = response["output"]["message"]["content"][1]["citationsContent"]
    location = cited["citations"][0]["location"]["documentChar"]
    assert SOURCE[location["start"] : location["end"]] == "The run used a MiSeq."


def test_a_guardrail_blocks_a_question_holding_a_denied_word(bedrock: FakeBedrockRuntimeClient) -> None:
    config = {"guardrailIdentifier": "gr4example", "guardrailVersion": "1"}

    response = bedrock.converse(**request("What is the salary for LIV-01?", guardrailConfig=config))

    assert response["stopReason"] == "guardrail_intervened"
    assert all("citationsContent" not in block for block in response["output"]["message"]["content"])


def test_stream_events_are_held_to_their_union() -> None:
    check_stream_event({"messageStop": {"stopReason": "end_turn"}})
    with pytest.raises(ModelViolation):
        check_stream_event({"messageStop": {"stopReason": "finished"}})
    with pytest.raises(ModelViolation):
        check_stream_event({"messageStart": {"role": "assistant"}, "messageStop": {"stopReason": "end_turn"}})
    with pytest.raises(ModelViolation):
        check_stream_event({"contentBlockDelta": {"delta": {"text": "x"}}})
