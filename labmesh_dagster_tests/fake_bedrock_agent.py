"""Amazon Bedrock knowledge base clients for tests, held to botocore's models for ``bedrock-agent`` and
``bedrock-agent-runtime``.

moto serves neither, so `FakeKnowledgeBase` keeps one vector knowledge base
with one custom data source in memory, and two clients reach it as boto3's
would: `FakeBedrockAgentClient` (IngestKnowledgeBaseDocuments,
GetKnowledgeBaseDocuments, ListKnowledgeBaseDocuments,
DeleteKnowledgeBaseDocuments) and `FakeBedrockAgentRuntimeClient` (Retrieve).
Every request and response goes through `labmesh_dagster_tests.service_model`,
so what the fakes accept the models allow, and errors carry only declared codes.

Behaviour, as the Bedrock documentation describes it:

- Ingestion is asynchronous: a document reads STARTING in the ingest answer,
  then IN_PROGRESS, then INDEXED (or FAILED with a reason, for ids in
  ``failures``) as its status is read ``reads_to_index`` times. A document is
  retrievable as soon as it is ingested (the status is only reported), and a
  failed re-ingest keeps the earlier version. Deletes answer DELETING and the
  document is gone (NOT_FOUND) afterwards.
- Chunking is NONE: each document is one retrieval result, whole.
- Retrieve applies ``vectorSearchConfiguration.filter`` as documented (equals,
  notEquals, greaterThan(OrEquals), lessThan(OrEquals), in, notIn,
  listContains, stringContains, startsWith, andAll, orAll) before ranking and
  ``numberOfResults`` (5 when not given). Ranking stands in for vector
  similarity with **simple word overlap**: the share of the query's words
  (stop words left out) found in the document, ties in ingest order; like a
  vector search, it returns the nearest documents even when none shares a word.
- What the fakes do not model (S3 content, byte content, S3 metadata, image
  queries, reranking, implicit filters, paging, managed search, and a
  document's ``accessControlList`` or Retrieve's ``userContext``, which the
  documentation describes for ACL-enabled *managed* knowledge bases only)
  raises `ModelViolation`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from labmesh_dagster_tests.service_model import FakeServiceClient, ModelViolation

AGENT = "bedrock-agent"
RUNTIME = "bedrock-agent-runtime"
_EPOCH = datetime(2026, 8, 3, 9, 0, tzinfo=UTC)
_STOP_WORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it", "of", "on", "or", "that"}
    | {"the", "to", "was", "were", "with", "what", "which", "how"}
)
_DEFAULT_RESULTS = 5
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "greaterThan": lambda left, right: left > right,
    "greaterThanOrEquals": lambda left, right: left >= right,
    "lessThan": lambda left, right: left < right,
    "lessThanOrEquals": lambda left, right: left <= right,
}


@dataclass(frozen=True)
class _Document:
    id: str
    text: str
    metadata: Mapping[str, Any]
    position: int


@dataclass
class _Status:
    """An ingest's progress: STARTING, IN_PROGRESS while read fewer than ``reads_to_index`` times, then final."""

    outcome: str
    reason: str | None = None
    reads: int = 0
    updated: datetime = _EPOCH


class FakeKnowledgeBase:
    """One vector knowledge base with one custom data source, shared by the agent and runtime fakes."""

    def __init__(
        self,
        *,
        knowledge_base_id: str = "KBLABMESH1",
        data_source_id: str = "DSLABMESH1",
        failures: Mapping[str, str] | None = None,
        reads_to_index: int = 2,
    ) -> None:
        self.knowledge_base_id = knowledge_base_id
        self.data_source_id = data_source_id
        self.documents: dict[str, _Document] = {}
        self.statuses: dict[str, _Status] = {}
        self.failures = dict(failures or {})
        self.reads_to_index = reads_to_index
        self._ingested = 0

    def fail_document(self, document_id: str, reason: str) -> None:
        """Make the next ingests of this document fail, with ``reason`` as the status's statusReason."""
        self.failures[document_id] = reason


class _KnowledgeBaseClient(FakeServiceClient):
    def __init__(self, knowledge_base: FakeKnowledgeBase, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock=clock)
        self.kb = knowledge_base

    def _invalid(self, operation_name: str, message: str) -> Exception:
        return self._error(operation_name, "ValidationException", message)


class FakeBedrockAgentClient(_KnowledgeBaseClient):
    """``boto3.client("bedrock-agent")``, for the knowledge base's documents."""

    service_name = AGENT

    def _begin(self, operation_name: str, params: Mapping[str, Any]) -> None:
        self._receive(operation_name, params)
        if params["knowledgeBaseId"] != self.kb.knowledge_base_id:
            raise self._missing(operation_name, f"knowledge base {params['knowledgeBaseId']} not found")
        if params["dataSourceId"] != self.kb.data_source_id:
            raise self._missing(operation_name, f"data source {params['dataSourceId']} not found")

    def _detail(self, document_id: str, status: str, reason: str | None = None) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "knowledgeBaseId": self.kb.knowledge_base_id,
            "dataSourceId": self.kb.data_source_id,
            "status": status,
            "identifier": {"dataSourceType": "CUSTOM", "custom": {"id": document_id}},
            "updatedAt": self.kb.statuses[document_id].updated if document_id in self.kb.statuses else _EPOCH,
        }
        return {**detail, "statusReason": reason} if reason else detail

    def ingest_knowledge_base_documents(self, **params: Any) -> dict[str, Any]:
        operation_name = "IngestKnowledgeBaseDocuments"
        self._begin(operation_name, params)
        checked = [self._checked(operation_name, document) for document in params["documents"]]
        ids = [document_id for document_id, _, _ in checked]
        if len(set(ids)) != len(ids):
            raise self._invalid(operation_name, "a document identifier is given twice in one request")
        details = []
        for document_id, text, metadata in checked:
            self.kb._ingested += 1
            failure = self.kb.failures.get(document_id)
            moment = _EPOCH + timedelta(seconds=self.kb._ingested)
            if failure is None:
                self.kb.documents[document_id] = _Document(document_id, text, metadata, self.kb._ingested)
                self.kb.statuses[document_id] = _Status("INDEXED", updated=moment)
            else:
                self.kb.statuses[document_id] = _Status("FAILED", failure, updated=moment)
            details.append(self._detail(document_id, "STARTING"))
        return self._reply(operation_name, {"documentDetails": details})

    def _checked(self, operation_name: str, document: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
        """A document's id, text and metadata, refusing what a custom data source refuses."""
        content = document["content"]
        if content["dataSourceType"] != "CUSTOM" or "custom" not in content:
            raise self._invalid(operation_name, "this data source is CUSTOM: give content.custom")
        custom = content["custom"]
        if custom["sourceType"] != "IN_LINE" or "inlineContent" not in custom:
            raise ModelViolation("the fake does not model S3_LOCATION content")
        inline = custom["inlineContent"]
        if inline["type"] != "TEXT" or "textContent" not in inline:
            raise ModelViolation("the fake does not model BYTE content")
        metadata: dict[str, Any] = {}
        if "metadata" in document:
            spec = document["metadata"]
            if "accessControlList" in spec:
                raise ModelViolation(
                    "the fake does not model accessControlList: ACL-enabled managed knowledge bases only"
                )
            if spec["type"] != "IN_LINE_ATTRIBUTE" or "s3Location" in spec:
                raise ModelViolation("the fake does not model S3 metadata files")
            for attribute in spec.get("inlineAttributes", []):
                key = attribute["key"]
                if key in metadata:
                    raise self._invalid(operation_name, f"metadata key {key} is given twice")
                if key.startswith("x-amz-bedrock-kb-"):
                    raise self._invalid(operation_name, f"metadata key {key} is reserved")
                metadata[key] = self._value(operation_name, key, attribute["value"])
        return custom["customDocumentIdentifier"]["id"], inline["textContent"]["data"], metadata

    def _value(self, operation_name: str, key: str, value: Mapping[str, Any]) -> Any:
        member = {"NUMBER": "numberValue", "BOOLEAN": "booleanValue", "STRING": "stringValue"}.get(
            value["type"], "stringListValue"
        )
        others = [name for name in value if name not in {"type", member}]
        if member not in value or others:
            raise self._invalid(operation_name, f"metadata {key}: a {value['type']} value takes {member} alone")
        return list(value[member]) if member == "stringListValue" else value[member]

    def get_knowledge_base_documents(self, **params: Any) -> dict[str, Any]:
        operation_name = "GetKnowledgeBaseDocuments"
        self._begin(operation_name, params)
        details = [self._read(self._custom_id(operation_name, item)) for item in params["documentIdentifiers"]]
        return self._reply(operation_name, {"documentDetails": details})

    def _custom_id(self, operation_name: str, identifier: Mapping[str, Any]) -> str:
        if identifier["dataSourceType"] != "CUSTOM" or "custom" not in identifier:
            raise self._invalid(operation_name, "this data source is CUSTOM: identify documents by custom.id")
        return str(identifier["custom"]["id"])

    def _read(self, document_id: str) -> dict[str, Any]:
        status = self.kb.statuses.get(document_id)
        if status is None:
            return self._detail(document_id, "NOT_FOUND")
        status.reads += 1
        if status.reads < self.kb.reads_to_index:
            return self._detail(document_id, "IN_PROGRESS")
        return self._detail(document_id, status.outcome, status.reason)

    def list_knowledge_base_documents(self, **params: Any) -> dict[str, Any]:
        operation_name = "ListKnowledgeBaseDocuments"
        self._begin(operation_name, params)
        if "nextToken" in params:
            raise ModelViolation("the fake does not model paging ListKnowledgeBaseDocuments")
        ids = sorted(self.kb.statuses)
        limit = params.get("maxResults", 1000)
        if len(ids) > limit:
            raise ModelViolation("the fake does not model paging ListKnowledgeBaseDocuments")
        details = [self._detail(item, self._peek(item), self.kb.statuses[item].reason) for item in ids]
        return self._reply(operation_name, {"documentDetails": details})

    def _peek(self, document_id: str) -> str:
        status = self.kb.statuses[document_id]
        return "IN_PROGRESS" if status.reads < self.kb.reads_to_index - 1 else status.outcome

    def delete_knowledge_base_documents(self, **params: Any) -> dict[str, Any]:
        operation_name = "DeleteKnowledgeBaseDocuments"
        self._begin(operation_name, params)
        details = []
        for identifier in params["documentIdentifiers"]:
            document_id = self._custom_id(operation_name, identifier)
            known = document_id in self.kb.statuses
            details.append(self._detail(document_id, "DELETING" if known else "NOT_FOUND"))
            self.kb.documents.pop(document_id, None)
            self.kb.statuses.pop(document_id, None)
        return self._reply(operation_name, {"documentDetails": details})


class FakeBedrockAgentRuntimeClient(_KnowledgeBaseClient):
    """``boto3.client("bedrock-agent-runtime")``, for Retrieve."""

    service_name = RUNTIME

    def retrieve(self, **params: Any) -> dict[str, Any]:
        operation_name = "Retrieve"
        self._receive(operation_name, params)
        if params["knowledgeBaseId"] != self.kb.knowledge_base_id:
            raise self._missing(operation_name, f"knowledge base {params['knowledgeBaseId']} not found")
        for unmodeled in ("nextToken", "guardrailConfiguration"):
            if unmodeled in params:
                raise ModelViolation(f"the fake does not model Retrieve's {unmodeled}")
        if "userContext" in params:
            raise ModelViolation("the fake does not model userContext: ACL-enabled managed knowledge bases only")
        query = params["retrievalQuery"]
        if query.get("type", "TEXT") != "TEXT" or "image" in query:
            raise ModelViolation("the fake does not model image queries")
        configuration = params.get("retrievalConfiguration", {})
        if "managedSearchConfiguration" in configuration:
            raise self._invalid(operation_name, "managedSearchConfiguration is for managed knowledge bases")
        vector = configuration.get("vectorSearchConfiguration", {})
        for unmodeled in ("implicitFilterConfiguration", "rerankingConfiguration", "overrideSearchType"):
            if unmodeled in vector:
                raise ModelViolation(f"the fake does not model {unmodeled}")
        keep = self._filter(operation_name, vector["filter"]) if "filter" in vector else None
        terms = _terms(query.get("text", ""))
        scored = [
            (_overlap(terms, document.text), document)
            for document in self.kb.documents.values()
            if keep is None or keep(document.metadata)
        ]
        scored.sort(key=lambda pair: (-pair[0], pair[1].position))
        results = [self._result(score, document) for score, document in scored[: vector.get("numberOfResults", 5)]]
        return self._reply(operation_name, {"retrievalResults": results})

    def _result(self, score: float, document: _Document) -> dict[str, Any]:
        metadata = {
            **document.metadata,
            "x-amz-bedrock-kb-chunk-id": f"chunk-{document.position}",
            "x-amz-bedrock-kb-data-source-id": self.kb.data_source_id,
        }
        return {
            "content": {"type": "TEXT", "text": document.text},
            "location": {"type": "CUSTOM", "customDocumentLocation": {"id": document.id}},
            "metadata": metadata,
            "score": score,
        }

    def _filter(self, operation_name: str, spec: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool]:
        """A predicate for one RetrievalFilter node: a union, so exactly one member."""
        if len(spec) != 1:
            raise self._invalid(operation_name, f"a RetrievalFilter takes exactly one operator, not {sorted(spec)}")
        ((operator, argument),) = spec.items()
        if operator in {"andAll", "orAll"}:
            parts = [self._filter(operation_name, part) for part in argument]
            combine = all if operator == "andAll" else any
            return lambda metadata: combine(part(metadata) for part in parts)
        key, wanted = argument["key"], argument["value"]
        test = self._comparison(operation_name, operator, wanted)
        if operator in {"notEquals", "notIn"}:
            return lambda metadata: key not in metadata or test(metadata[key])
        return lambda metadata: key in metadata and test(metadata[key])

    def _comparison(self, operation_name: str, operator: str, wanted: Any) -> Callable[[Any], bool]:
        if operator in {"equals", "notEquals"}:
            if isinstance(wanted, (list, dict)):
                raise self._invalid(operation_name, f"{operator} takes a string, number or boolean")
            same: Callable[[Any], bool] = lambda value: _same(value, wanted)  # noqa: E731
            return same if operator == "equals" else lambda value: not same(value)
        if operator in _COMPARISONS:
            if not _is_number(wanted):
                raise self._invalid(operation_name, f"{operator} takes a number")
            compare = _COMPARISONS[operator]
            return lambda value: _is_number(value) and compare(value, wanted)
        if operator in {"in", "notIn"}:
            if not isinstance(wanted, list):
                raise self._invalid(operation_name, f"{operator} takes a list of values")
            found: Callable[[Any], bool] = lambda value: any(_same(value, item) for item in wanted)  # noqa: E731
            return found if operator == "in" else lambda value: not found(value)
        if isinstance(wanted, (list, dict)):
            raise self._invalid(operation_name, f"{operator} takes a single value")
        if operator == "listContains":
            return lambda value: isinstance(value, list) and any(_same(item, wanted) for item in value)
        if operator == "stringContains":
            return lambda value: any(isinstance(item, str) and str(wanted) in item for item in _as_list(value))
        if operator == "startsWith":
            return lambda value: isinstance(value, str) and value.startswith(str(wanted))
        raise ModelViolation(f"the fake does not know the filter operator {operator}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(value: Any, wanted: Any) -> bool:
    if _is_number(value) and _is_number(wanted):
        return float(value) == float(wanted)
    return type(value) is type(wanted) and value == wanted


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _terms(text: str) -> list[str]:
    return list(dict.fromkeys(word for word in re.findall(r"\w+", text.lower()) if word not in _STOP_WORDS))


def _overlap(terms: Sequence[str], text: str) -> float:
    if not terms:
        return 0.0
    words = set(re.findall(r"\w+", text.lower()))
    return sum(term in words for term in terms) / len(terms)


def bedrock_clients(
    knowledge_base: FakeKnowledgeBase | None = None, *, clock: Callable[[], float] = time.monotonic
) -> tuple[FakeBedrockAgentClient, FakeBedrockAgentRuntimeClient]:
    """The two clients of one fake knowledge base."""
    kb = knowledge_base or FakeKnowledgeBase()
    return FakeBedrockAgentClient(kb, clock=clock), FakeBedrockAgentRuntimeClient(kb, clock=clock)
