"""The Bedrock knowledge base fakes refuse what the service refuses and keep a knowledge base that behaves like one.

Pinned here: requests are refused as boto3 (missing or unknown members, a
filter naming two operators) or the service (11 documents in a batch, 11
values in a string list, mis-patterned ids) would; statuses go STARTING, IN_PROGRESS,
INDEXED (FAILED with the reason for a document told to fail, whose earlier
version stays retrievable), DELETING then NOT_FOUND once deleted; Retrieve
applies each documented filter operator before ranking by word overlap and
cutting at numberOfResults; what the fakes do not model (an access list or a
user context among it: documented for managed knowledge bases only) is a
`ModelViolation`.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from labmesh_dagster_tests.fake_bedrock_agent import (
    FakeBedrockAgentClient,
    FakeBedrockAgentRuntimeClient,
    FakeKnowledgeBase,
    bedrock_clients,
)
from labmesh_dagster_tests.service_model import ModelViolation

WHERE = {"knowledgeBaseId": "KBLABMESH1", "dataSourceId": "DSLABMESH1"}


def attribute(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        return {"key": key, "value": {"type": "STRING_LIST", "stringListValue": value}}
    if isinstance(value, (int, float)):
        return {"key": key, "value": {"type": "NUMBER", "numberValue": value}}
    return {"key": key, "value": {"type": "STRING", "stringValue": value}}


def document(document_id: str, text: str, **metadata: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "content": {
            "dataSourceType": "CUSTOM",
            "custom": {
                "customDocumentIdentifier": {"id": document_id},
                "sourceType": "IN_LINE",
                "inlineContent": {"type": "TEXT", "textContent": {"data": text}},
            },
        }
    }
    if metadata:
        attributes = [attribute(key, value) for key, value in metadata.items()]
        request["metadata"] = {"type": "IN_LINE_ATTRIBUTE", "inlineAttributes": attributes}
    return request


LIVER = document("liver#0", "RNA yield of liver tissue S1", experiment="EXP-1", access=["group:liver"], year=2024)
KIDNEY = document("kidney#0", "Proteomics of kidney tissue S3", experiment="EXP-2", access=["group:kidney"], year=2025)
BOTH = document("both#0", "liver and kidney tissue survey", experiment="EXP-3", access=["group:liver", "user:ada"])


@pytest.fixture
def clients() -> tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient]:
    agent, runtime = bedrock_clients()
    agent.ingest_knowledge_base_documents(**WHERE, documents=[LIVER, KIDNEY, BOTH])
    return agent, runtime


def ids(answer: dict[str, Any]) -> list[str]:
    return [result["location"]["customDocumentLocation"]["id"] for result in answer["retrievalResults"]]


def statuses(agent: FakeBedrockAgentClient, *document_ids: str) -> list[str]:
    identifiers = [{"dataSourceType": "CUSTOM", "custom": {"id": item}} for item in document_ids]
    answer = agent.get_knowledge_base_documents(**WHERE, documentIdentifiers=identifiers)
    return [detail["status"] for detail in answer["documentDetails"]]


def test_requests_boto3_refuses_raise_param_validation_error() -> None:
    agent, runtime = bedrock_clients()
    with pytest.raises(ParamValidationError):
        agent.ingest_knowledge_base_documents(**WHERE)
    with pytest.raises(ParamValidationError):
        runtime.retrieve(knowledgeBaseId="KBLABMESH1", retrievalQuery={"text": "x"}, unknown=1)
    two_operators = {"equals": {"key": "k", "value": "v"}, "in": {"key": "k", "value": ["v"]}}
    with pytest.raises(ParamValidationError, match="tagged union"):
        runtime.retrieve(
            knowledgeBaseId="KBLABMESH1",
            retrievalQuery={"text": "x"},
            retrievalConfiguration={"vectorSearchConfiguration": {"filter": two_operators}},
        )


@pytest.mark.parametrize(
    "params",
    [
        {**WHERE, "documents": [document(f"d{number}", "text") for number in range(11)]},
        {**WHERE, "documents": [document("d", "text", samples=[f"S{number}" for number in range(11)])]},
        {"knowledgeBaseId": "KB-TOO-LONG-1", "dataSourceId": "DSLABMESH1", "documents": [document("d", "text")]},
    ],
    ids=["eleven documents", "eleven list values", "a malformed id"],
)
def test_what_the_service_checks_is_refused_with_a_validation_exception(params: dict[str, Any]) -> None:
    agent, runtime = bedrock_clients()
    with pytest.raises(ClientError) as raised:
        agent.ingest_knowledge_base_documents(**params)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert runtime.retrieve(knowledgeBaseId="KBLABMESH1", retrievalQuery={"text": "text"})["retrievalResults"] == []


def test_statuses_go_starting_in_progress_indexed_and_deleted_not_found() -> None:
    agent, _ = bedrock_clients()
    answer = agent.ingest_knowledge_base_documents(**WHERE, documents=[LIVER])
    assert [detail["status"] for detail in answer["documentDetails"]] == ["STARTING"]
    assert statuses(agent, "liver#0", "never#0") == ["IN_PROGRESS", "NOT_FOUND"]
    assert statuses(agent, "liver#0") == ["INDEXED"]
    deleted = agent.delete_knowledge_base_documents(
        **WHERE, documentIdentifiers=[{"dataSourceType": "CUSTOM", "custom": {"id": "liver#0"}}]
    )
    assert [detail["status"] for detail in deleted["documentDetails"]] == ["DELETING"]
    assert statuses(agent, "liver#0") == ["NOT_FOUND"]


def test_list_gives_every_document_of_the_data_source_with_its_status(
    clients: tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient],
) -> None:
    agent, _ = clients
    statuses(agent, "liver#0", "liver#0")
    listed = agent.list_knowledge_base_documents(**WHERE)["documentDetails"]
    assert {(detail["identifier"]["custom"]["id"], detail["status"]) for detail in listed} == {
        ("both#0", "IN_PROGRESS"),
        ("kidney#0", "IN_PROGRESS"),
        ("liver#0", "INDEXED"),
    }


def test_a_failed_re_ingest_reads_failed_with_its_reason_and_keeps_the_earlier_version(
    clients: tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient],
) -> None:
    agent, runtime = clients
    agent.kb.fail_document("liver#0", "embedding model refused the text")
    agent.ingest_knowledge_base_documents(**WHERE, documents=[document("liver#0", "changed text")])
    statuses(agent, "liver#0")
    detail = agent.get_knowledge_base_documents(
        **WHERE, documentIdentifiers=[{"dataSourceType": "CUSTOM", "custom": {"id": "liver#0"}}]
    )["documentDetails"][0]
    assert (detail["status"], detail["statusReason"]) == ("FAILED", "embedding model refused the text")
    answer = runtime.retrieve(knowledgeBaseId="KBLABMESH1", retrievalQuery={"text": "RNA yield"})
    assert answer["retrievalResults"][0]["content"]["text"] == "RNA yield of liver tissue S1"


def test_retrieve_ranks_by_word_overlap_and_cuts_at_number_of_results(
    clients: tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient],
) -> None:
    _, runtime = clients
    answer = runtime.retrieve(
        knowledgeBaseId="KBLABMESH1",
        retrievalQuery={"text": "the kidney tissue"},
        retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 2}},
    )
    assert ids(answer) == ["kidney#0", "both#0"]
    assert [result["score"] for result in answer["retrievalResults"]] == [1.0, 1.0]
    assert answer["retrievalResults"][0]["metadata"]["experiment"] == "EXP-2"


@pytest.mark.parametrize(
    ("retrieval_filter", "expected"),
    [
        ({"equals": {"key": "experiment", "value": "EXP-1"}}, ["liver#0"]),
        ({"notEquals": {"key": "year", "value": 2024}}, ["kidney#0", "both#0"]),
        ({"greaterThanOrEquals": {"key": "year", "value": 2025}}, ["kidney#0"]),
        ({"lessThan": {"key": "year", "value": 2025}}, ["liver#0"]),
        ({"in": {"key": "experiment", "value": ["EXP-2", "EXP-3"]}}, ["kidney#0", "both#0"]),
        ({"notIn": {"key": "experiment", "value": ["EXP-2", "EXP-3"]}}, ["liver#0"]),
        ({"listContains": {"key": "access", "value": "group:liver"}}, ["liver#0", "both#0"]),
        ({"stringContains": {"key": "access", "value": "ada"}}, ["both#0"]),
        ({"startsWith": {"key": "experiment", "value": "EXP-"}}, ["liver#0", "kidney#0", "both#0"]),
        (
            {
                "andAll": [
                    {"listContains": {"key": "access", "value": "group:liver"}},
                    {"equals": {"key": "experiment", "value": "EXP-3"}},
                ]
            },
            ["both#0"],
        ),
        (
            {
                "orAll": [
                    {"listContains": {"key": "access", "value": "group:kidney"}},
                    {"listContains": {"key": "access", "value": "user:ada"}},
                ]
            },
            ["kidney#0", "both#0"],
        ),
    ],
)
def test_retrieve_applies_each_filter_operator_before_ranking(
    clients: tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient],
    retrieval_filter: dict[str, Any],
    expected: list[str],
) -> None:
    _, runtime = clients
    answer = runtime.retrieve(
        knowledgeBaseId="KBLABMESH1",
        retrievalQuery={"text": "zebrafish"},
        retrievalConfiguration={"vectorSearchConfiguration": {"filter": retrieval_filter, "numberOfResults": 10}},
    )
    assert ids(answer) == expected


@pytest.mark.parametrize(
    "retrieval_filter",
    [
        {"greaterThan": {"key": "year", "value": "2024"}},
        {"in": {"key": "experiment", "value": "EXP-1"}},
        {"listContains": {"key": "access", "value": ["group:liver"]}},
    ],
    ids=["a text compared", "in without a list", "listContains with a list"],
)
def test_filters_the_service_refuses_are_refused(
    clients: tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient], retrieval_filter: dict[str, Any]
) -> None:
    _, runtime = clients
    with pytest.raises(ClientError) as raised:
        runtime.retrieve(
            knowledgeBaseId="KBLABMESH1",
            retrievalQuery={"text": "tissue"},
            retrievalConfiguration={"vectorSearchConfiguration": {"filter": retrieval_filter}},
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_an_access_list_or_a_user_context_is_not_modeled() -> None:
    agent, runtime = bedrock_clients()
    with_acl = document("d#0", "text")
    with_acl["metadata"] = {
        "type": "IN_LINE_ATTRIBUTE",
        "accessControlList": [{"name": "ada@lab.example", "type": "USER", "access": "ALLOW"}],
    }
    with pytest.raises(ModelViolation, match="managed knowledge bases only"):
        agent.ingest_knowledge_base_documents(**WHERE, documents=[with_acl])
    with pytest.raises(ModelViolation, match="managed knowledge bases only"):
        runtime.retrieve(
            knowledgeBaseId="KBLABMESH1", retrievalQuery={"text": "x"}, userContext={"userId": "ada@lab.example"}
        )


def test_unknown_knowledge_bases_are_not_found() -> None:
    agent, runtime = bedrock_clients(FakeKnowledgeBase(knowledge_base_id="KBOTHER001"))
    with pytest.raises(ClientError) as raised:
        runtime.retrieve(knowledgeBaseId="KBLABMESH1", retrievalQuery={"text": "x"})
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


@pytest.mark.parametrize(
    "change",
    [
        {"retrievalQuery": {"type": "IMAGE", "image": {"format": "png", "inlineContent": b"x"}}},
        {"retrievalConfiguration": {"vectorSearchConfiguration": {"overrideSearchType": "HYBRID"}}},
        {"nextToken": "more"},
    ],
)
def test_what_the_fake_does_not_model_is_refused_as_its_limit(change: dict[str, Any]) -> None:
    _, runtime = bedrock_clients()
    with pytest.raises(ModelViolation):
        runtime.retrieve(**{"knowledgeBaseId": "KBLABMESH1", "retrievalQuery": {"text": "x"}, **change})
