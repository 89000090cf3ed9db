"""An Amazon Kendra client for tests, held to botocore's own service model for ``kendra``.

moto does not serve Kendra, so `FakeKendraClient` stands in for
``boto3.client("kendra")`` with one index in memory: its fields (Kendra's
reserved ones and those UpdateIndex declares), the documents BatchPutDocument
sent, their indexing status, and term-matching Query and Retrieve over them.
Every request and response goes through the checks of
`labmesh_dagster_tests.service_model`, so what the fake accepts the model
allows, and errors carry only codes the operation declares.

The index follows Kendra's ATTRIBUTE_FILTER user context policy: without a
``UserContext`` every document is visible; with one, a document's access
control list decides (a DENY for the user or one of the groups hides it, else
an ALLOW shows it, and a document without a list is public). Where the fake
does not model a feature a request uses (S3 documents, hierarchical access
lists, user tokens, binary content types, nested facets), it raises
`ModelViolation` rather than answer as if it did.
"""

from __future__ import annotations

import hashlib
import html
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from botocore.utils import parse_timestamp

from labmesh_dagster_tests.service_model import FakeServiceClient, ModelViolation, load_model, matches

SERVICE = "kendra"
_EPOCH = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
# Kendra's reserved fields and their types, present in every index.
RESERVED_FIELDS: dict[str, str] = {
    "_authors": "STRING_LIST_VALUE",
    "_category": "STRING_VALUE",
    "_created_at": "DATE_VALUE",
    "_data_source_id": "STRING_VALUE",
    "_document_body": "STRING_VALUE",
    "_document_id": "STRING_VALUE",
    "_document_title": "STRING_VALUE",
    "_excerpt_page_number": "LONG_VALUE",
    "_faq_id": "STRING_VALUE",
    "_file_type": "STRING_VALUE",
    "_language_code": "STRING_VALUE",
    "_last_updated_at": "DATE_VALUE",
    "_source_uri": "STRING_VALUE",
    "_version": "STRING_VALUE",
    "_view_count": "LONG_VALUE",
}
_VALUE_MEMBERS = {
    "STRING_VALUE": "StringValue",
    "STRING_LIST_VALUE": "StringListValue",
    "LONG_VALUE": "LongValue",
    "DATE_VALUE": "DateValue",
}
_TYPES_BY_MEMBER = {member: value_type for value_type, member in _VALUE_MEMBERS.items()}
_TEXT_CONTENT_TYPES = frozenset({"PLAIN_TEXT", "HTML", "XML", "JSON", "CSV", "MD"})
_MARKUP_CONTENT_TYPES = frozenset({"HTML", "XML"})
# Kendra drops stop words from queries; a handful is enough for term matching not to match everything.
_STOP_WORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it", "of", "on", "or", "that"}
    | {"the", "to", "was", "were", "with"}
)
_MAX_PAGE_SIZE = 100  # Query and Retrieve return at most 100 results, whatever PageSize asks for.
_MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
_FILTER_DEPTH = 2  # "AttributeFilter cannot have a depth of more than 2."
_FILTER_LENGTH = 10  # "AttributeFilter cannot have a length of more than 10"
_EXCERPT_CHARACTERS = 300
_PASSAGE_WORDS = 200
_TEXT_LIMIT = 2048  # TextWithHighlights.Text, as the model caps it
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "GreaterThan": lambda left, right: left > right,
    "GreaterThanOrEquals": lambda left, right: left >= right,
    "LessThan": lambda left, right: left < right,
    "LessThanOrEquals": lambda left, right: left <= right,
}


def default_search(value_type: str) -> dict[str, bool]:
    """Kendra's documented defaults: strings searchable, numbers and dates not; all displayable; none facetable."""
    return {
        "Facetable": False,
        "Searchable": value_type in {"STRING_VALUE", "STRING_LIST_VALUE"},
        "Displayable": True,
        "Sortable": False,
    }


@dataclass
class _Field:
    name: str
    type: str
    search: dict[str, bool]
    relevance: dict[str, Any] | None = None

    def configuration(self) -> dict[str, Any]:
        configuration = {"Name": self.name, "Type": self.type, "Search": dict(self.search)}
        return {**configuration, "Relevance": self.relevance} if self.relevance else configuration


@dataclass(frozen=True)
class _Document:
    id: str
    title: str | None
    text: str
    attributes: Mapping[str, Any]
    acl: tuple[Mapping[str, Any], ...]
    size: int


@dataclass
class _Status:
    """A put's indexing: PROCESSING until read ``reads_to_index`` times, then its outcome."""

    outcome: str
    failure: str | None = None
    reads: int = 0


@dataclass(frozen=True)
class _Hit:
    document: _Document
    matched: tuple[str, ...]
    score: int
    position: int


class FakeKendraClient(FakeServiceClient):
    """One Kendra index, answering like ``boto3.client("kendra")``.

    ``failures`` maps a document id to the reason its indexing fails (a
    file's key fails every passage labmesh puts of it, ``<key>#<n>``, so a
    test can break a file whatever its passages): the put
    is accepted, and BatchGetDocumentStatus reports FAILED (or UPDATE_FAILED
    for a document already indexed, whose earlier version stays searchable)
    with that reason; `fail_document` adds one later. A status reads
    PROCESSING until it has been read ``reads_to_index`` times. Documents are
    searchable as soon as they are put: the status is only reported, so tests
    need not poll before querying.
    """

    service_name = SERVICE

    def __init__(
        self,
        *,
        index_id: str | None = None,
        index_name: str = "labmesh",
        edition: str = "DEVELOPER_EDITION",
        failures: Mapping[str, str] | None = None,
        reads_to_index: int = 1,
        seed: str = "labmesh",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(clock=clock)
        self._seed = seed
        self._minted = 0
        self.index_id = index_id or self._uuid()
        _require_index_id(self.index_id)
        self.index_name = index_name
        self.edition = edition
        self.description: str | None = None
        self.role_arn = "arn:aws:iam::123456789012:role/labmesh-kendra"
        self.user_context_policy = "ATTRIBUTE_FILTER"
        self.fields = {
            name: _Field(name, value_type, default_search(value_type)) for name, value_type in RESERVED_FIELDS.items()
        }
        self.documents: dict[str, _Document] = {}
        self.statuses: dict[str, _Status] = {}
        self.failures = dict(failures or {})
        self.reads_to_index = reads_to_index
        self.created = _EPOCH
        self.updated = _EPOCH

    def fail_document(self, document_id: str, reason: str) -> None:
        """Make the next puts of this document fail to index, with ``reason`` as the status's FailureReason."""
        self.failures[document_id] = reason

    def _uuid(self) -> str:
        """A deterministic UUID-shaped id: 36 characters, valid for IndexId and QueryId."""
        self._minted += 1
        digest = hashlib.sha256(f"{self._seed}:{self._minted}".encode()).hexdigest()
        return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"

    def _begin(self, operation_name: str, params: Mapping[str, Any]) -> None:
        self._receive(operation_name, params)
        index_id = params.get("IndexId", params.get("Id"))
        if index_id != self.index_id:
            raise self._missing(operation_name, f"index {index_id} not found")

    def _invalid(self, operation_name: str, message: str) -> ClientError:
        return self._error(operation_name, "ValidationException", message)

    def describe_index(self, **params: Any) -> dict[str, Any]:
        operation_name = "DescribeIndex"
        self._begin(operation_name, params)
        response: dict[str, Any] = {
            "Name": self.index_name,
            "Id": self.index_id,
            "Edition": self.edition,
            "RoleArn": self.role_arn,
            "Status": "ACTIVE",
            "CreatedAt": self.created,
            "UpdatedAt": self.updated,
            "DocumentMetadataConfigurations": [field.configuration() for field in self.fields.values()],
            "IndexStatistics": {
                "FaqStatistics": {"IndexedQuestionAnswersCount": 0},
                "TextDocumentStatistics": {
                    "IndexedTextDocumentsCount": len(self.documents),
                    "IndexedTextBytes": sum(document.size for document in self.documents.values()),
                },
            },
            "UserContextPolicy": self.user_context_policy,
        }
        if self.description is not None:
            response["Description"] = self.description
        return self._reply(operation_name, response)

    def update_index(self, **params: Any) -> dict[str, Any]:
        """Rename, describe or declare fields; a field's type is fixed once declared, as Kendra's is."""
        operation_name = "UpdateIndex"
        self._begin(operation_name, params)
        for unmodeled in ("UserTokenConfigurations", "UserGroupResolutionConfiguration"):
            if unmodeled in params:
                raise ModelViolation(f"the fake does not model {unmodeled}")
        if params.get("UserContextPolicy") == "USER_TOKEN":
            raise ModelViolation("the fake does not model the USER_TOKEN user context policy")
        if "CapacityUnits" in params and self.edition == "DEVELOPER_EDITION":
            raise self._invalid(operation_name, "a developer edition index has no capacity units to change")
        updates = [
            self._field_update(operation_name, update)
            for update in params.get("DocumentMetadataConfigurationUpdates", [])
        ]
        for update in updates:
            self.fields[update.name] = update
        self.index_name = params.get("Name", self.index_name)
        self.description = params.get("Description", self.description)
        self.role_arn = params.get("RoleArn", self.role_arn)
        self.updated = self.updated + timedelta(seconds=1)
        return self._reply(operation_name, {})

    def _field_update(self, operation_name: str, update: Mapping[str, Any]) -> _Field:
        name, value_type = update["Name"], update["Type"]
        existing = self.fields.get(name)
        if existing is None and name.startswith("_"):
            raise self._invalid(operation_name, f"{name}: names starting with _ are reserved for Kendra's own fields")
        if existing is not None and existing.type != value_type:
            raise self._invalid(operation_name, f"{name} is a {existing.type}; a field's type cannot change")
        search = {**(existing.search if existing else default_search(value_type)), **update.get("Search", {})}
        if search["Sortable"] and value_type == "STRING_LIST_VALUE":
            raise self._invalid(operation_name, f"{name}: a STRING_LIST_VALUE field cannot be sortable")
        relevance = update.get("Relevance", existing.relevance if existing else None)
        return _Field(name, value_type, search, relevance)

    def batch_put_document(self, **params: Any) -> dict[str, Any]:
        """Index up to 10 documents; one that breaks the index's fields fails alone, in FailedDocuments."""
        operation_name = "BatchPutDocument"
        self._begin(operation_name, params)
        if "CustomDocumentEnrichmentConfiguration" in params:
            raise ModelViolation("the fake does not model custom document enrichment")
        failed = []
        for request in params["Documents"]:
            problem = self._document_problem(request)
            if problem is None:
                self._store(request)
            else:
                failed.append({"Id": request["Id"], "ErrorCode": "InvalidRequest", "ErrorMessage": problem})
        return self._reply(operation_name, {"FailedDocuments": failed})

    def _document_problem(self, request: Mapping[str, Any]) -> str | None:
        """Why Kendra would fail this document, or None; `ModelViolation` for what the fake does not model."""
        for unmodeled in ("S3Path", "HierarchicalAccessControlList", "AccessControlConfigurationId"):
            if unmodeled in request:
                raise ModelViolation(f"the fake does not model a document's {unmodeled}")
        content_type = request.get("ContentType", "PLAIN_TEXT")
        if content_type not in _TEXT_CONTENT_TYPES:
            raise ModelViolation(f"the fake cannot extract text from {content_type} documents")
        if "Blob" not in request:
            return f"document {request['Id']} has no content: give a Blob"
        if len(_blob_bytes(request["Blob"])) > _MAX_DOCUMENT_BYTES:
            return f"document {request['Id']} is larger than 50 MB"
        keys = [attribute["Key"] for attribute in request.get("Attributes", [])]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            return f"attributes given twice: {', '.join(repeated)}"
        problems = [self._attribute_problem(attribute) for attribute in request.get("Attributes", [])]
        return "; ".join(problem for problem in problems if problem) or None

    def _attribute_problem(self, attribute: Mapping[str, Any]) -> str | None:
        key = attribute["Key"]
        declared = self.fields.get(key)
        if declared is None:
            return f"{key} is not a field of the index: declare it with UpdateIndex"
        members = list(attribute["Value"])
        if len(members) != 1:
            return f"{key} needs exactly one value member, not {len(members)}"
        if _TYPES_BY_MEMBER[members[0]] != declared.type:
            return f"{key} is a {declared.type}, not a {_TYPES_BY_MEMBER[members[0]]}"
        return None

    def _store(self, request: Mapping[str, Any]) -> None:
        document_id = request["Id"]
        known = document_id in self.documents
        owner, separator, ordinal = document_id.rpartition("#")
        failure = self.failures.get(document_id)
        if failure is None and separator and ordinal.isdigit():
            failure = self.failures.get(owner)
        if failure is not None:
            self.statuses[document_id] = _Status("UPDATE_FAILED" if known else "FAILED", failure)
            return
        self.documents[document_id] = _document(request)
        self.statuses[document_id] = _Status("UPDATED" if known else "INDEXED")

    def batch_get_document_status(self, **params: Any) -> dict[str, Any]:
        operation_name = "BatchGetDocumentStatus"
        self._begin(operation_name, params)
        statuses = [self._read_status(info["DocumentId"]) for info in params["DocumentInfoList"]]
        return self._reply(operation_name, {"Errors": [], "DocumentStatusList": statuses})

    def _read_status(self, document_id: str) -> dict[str, Any]:
        status = self.statuses.get(document_id)
        if status is None:
            return {"DocumentId": document_id, "DocumentStatus": "NOT_FOUND"}
        current = "PROCESSING" if status.reads < self.reads_to_index else status.outcome
        status.reads += 1
        entry = {"DocumentId": document_id, "DocumentStatus": current}
        if current in {"FAILED", "UPDATE_FAILED"} and status.failure:
            entry |= {"FailureCode": "InvalidRequest", "FailureReason": status.failure}
        return entry

    def batch_delete_document(self, **params: Any) -> dict[str, Any]:
        operation_name = "BatchDeleteDocument"
        self._begin(operation_name, params)
        for document_id in params["DocumentIdList"]:
            self.documents.pop(document_id, None)
            self.statuses.pop(document_id, None)
        return self._reply(operation_name, {"FailedDocuments": []})

    def query(self, **params: Any) -> dict[str, Any]:
        """Documents matching any query term (most terms, then most occurrences first), filtered and access-checked."""
        operation_name = "Query"
        self._begin(operation_name, params)
        hits = self._hits(operation_name, params)
        if params.get("QueryResultTypeFilter", "DOCUMENT") != "DOCUMENT":
            hits = []  # The fake answers with documents only: no FAQs, no suggested answers.
        hits = self._sorted(operation_name, params, hits)
        facets = [self._facet(operation_name, facet, hits) for facet in params.get("Facets", [])]
        query_id = self._uuid()
        terms = _query_terms(params.get("QueryText"))
        requested = params.get("RequestedDocumentAttributes")
        items = [
            self._query_item(query_id, number, hit, terms, requested)
            for number, hit in enumerate(self._page(operation_name, params, hits), start=1)
        ]
        response = {
            "QueryId": query_id,
            "ResultItems": items,
            "FacetResults": facets,
            "TotalNumberOfResults": len(hits),
        }
        return self._reply(operation_name, response)

    def retrieve(self, **params: Any) -> dict[str, Any]:
        """One passage of up to 200 words per matching document, around its first matching term."""
        operation_name = "Retrieve"
        self._begin(operation_name, params)
        hits = self._hits(operation_name, params)
        query_id = self._uuid()
        terms = _query_terms(params["QueryText"])
        requested = params.get("RequestedDocumentAttributes")
        items = [
            self._retrieve_item(query_id, number, hit, terms, requested)
            for number, hit in enumerate(self._page(operation_name, params, hits), start=1)
        ]
        return self._reply(operation_name, {"QueryId": query_id, "ResultItems": items})

    def _hits(self, operation_name: str, params: Mapping[str, Any]) -> list[_Hit]:
        keep = self._filter(operation_name, params["AttributeFilter"], 0) if "AttributeFilter" in params else None
        visible = self._visibility(params.get("UserContext"))
        text = params.get("QueryText")
        terms = _query_terms(text)
        hits = []
        for position, document in enumerate(self.documents.values()):
            if not visible(document) or (keep is not None and not keep(document)):
                continue
            words = Counter(_terms(f"{document.title or ''} {document.text} {self._searchable_words(document)}"))
            matched = tuple(term for term in terms if term in words)
            if text is None or matched:
                hits.append(_Hit(document, matched, sum(words[term] for term in matched), position))
        return sorted(hits, key=lambda hit: (-len(hit.matched), -hit.score, hit.position))

    def _searchable_words(self, document: _Document) -> str:
        """The document's values of custom string fields declared searchable: Kendra matches query text there too."""
        words = []
        for name, value in document.attributes.items():
            field = self.fields.get(name)
            if field is None or not field.search.get("Searchable") or name.startswith("_"):
                continue
            words.extend(value if isinstance(value, list) else [value] if isinstance(value, str) else [])
        return " ".join(words)

    def _visibility(self, context: Mapping[str, Any] | None) -> Callable[[_Document], bool]:
        if context is None:
            return lambda document: True
        for unmodeled in ("Token", "DataSourceGroups"):
            if unmodeled in context:
                raise ModelViolation(f"the fake does not model UserContext.{unmodeled}")
        user, groups = context.get("UserId"), set(context.get("Groups", []))

        def visible(document: _Document) -> bool:
            applying = [
                principal
                for principal in document.acl
                if (principal["Type"] == "USER" and principal["Name"] == user)
                or (principal["Type"] == "GROUP" and principal["Name"] in groups)
            ]
            if not document.acl:
                return True
            if any(principal["Access"] == "DENY" for principal in applying):
                return False
            return any(principal["Access"] == "ALLOW" for principal in applying)

        return visible

    def _filter(self, operation_name: str, spec: Mapping[str, Any], depth: int) -> Callable[[_Document], bool]:
        """A predicate for one AttributeFilter node, refusing what Kendra refuses (depth, length, types)."""
        if len(spec) != 1:
            raise self._invalid(operation_name, f"an AttributeFilter takes exactly one operation, not {sorted(spec)}")
        ((operation, argument),) = spec.items()
        if operation in {"AndAllFilters", "OrAllFilters", "NotFilter"}:
            if depth + 1 > _FILTER_DEPTH:
                raise self._invalid(operation_name, "AttributeFilter cannot have a depth of more than 2.")
            if operation == "NotFilter":
                inner = self._filter(operation_name, argument, depth + 1)
                return lambda document: not inner(document)
            if len(argument) > _FILTER_LENGTH:
                raise self._invalid(operation_name, "AttributeFilter cannot have a length of more than 10")
            parts = [self._filter(operation_name, part, depth + 1) for part in argument]
            combine = all if operation == "AndAllFilters" else any
            return lambda document: combine(part(document) for part in parts)
        return self._comparison(operation_name, operation, argument)

    def _comparison(
        self, operation_name: str, operation: str, attribute: Mapping[str, Any]
    ) -> Callable[[_Document], bool]:
        key = attribute["Key"]
        declared = self.fields.get(key)
        if declared is None:
            raise self._invalid(operation_name, f"{key} is not a field of the index")
        members = list(attribute["Value"])
        if len(members) != 1:
            raise self._invalid(operation_name, f"the {operation} value for {key} needs exactly one member")
        given_type = _TYPES_BY_MEMBER[members[0]]
        wanted = _attribute_value(given_type, attribute["Value"][members[0]])
        if operation in {"ContainsAny", "ContainsAll"}:
            if given_type != "STRING_LIST_VALUE" or declared.type not in {"STRING_VALUE", "STRING_LIST_VALUE"}:
                raise self._invalid(operation_name, f"{operation} takes a StringListValue for a string field ({key})")
            test = any if operation == "ContainsAny" else all
            return lambda document: test(value in _as_list(document.attributes.get(key)) for value in wanted)
        if given_type != declared.type:
            raise self._invalid(operation_name, f"{key} is a {declared.type}, not a {given_type}")
        if operation == "EqualsTo":
            return lambda document: document.attributes.get(key) == wanted
        if declared.type not in {"LONG_VALUE", "DATE_VALUE"}:
            raise self._invalid(operation_name, f"{operation} only applies to long and date fields, not {key}")
        compare = _COMPARISONS[operation]
        return lambda document: key in document.attributes and compare(document.attributes[key], wanted)

    def _sorted(self, operation_name: str, params: Mapping[str, Any], hits: list[_Hit]) -> list[_Hit]:
        sortings = list(params.get("SortingConfigurations", []))
        if "SortingConfiguration" in params:
            sortings.insert(0, params["SortingConfiguration"])
        for sorting in reversed(sortings):
            key = sorting["DocumentAttributeKey"]
            declared = self.fields.get(key)
            if declared is None or not declared.search["Sortable"]:
                raise self._invalid(operation_name, f"{key} is not a sortable field of the index")
            present = [hit for hit in hits if key in hit.document.attributes]
            absent = [hit for hit in hits if key not in hit.document.attributes]
            present.sort(key=lambda hit: hit.document.attributes[key], reverse=sorting["SortOrder"] == "DESC")
            hits = present + absent
        return hits

    def _facet(self, operation_name: str, facet: Mapping[str, Any], hits: Sequence[_Hit]) -> dict[str, Any]:
        key = facet.get("DocumentAttributeKey")
        declared = self.fields.get(key or "")
        if declared is None or not declared.search["Facetable"]:
            raise self._invalid(operation_name, f"{key} is not a facetable field of the index")
        if facet.get("Facets"):
            raise ModelViolation("the fake does not model nested facets")
        counts = Counter(value for hit in hits for value in _as_list(hit.document.attributes.get(declared.name)))
        ranked = sorted(counts.items(), key=lambda pair: (-pair[1], str(pair[0])))[: facet.get("MaxResults", 10)]
        value_type = "STRING_VALUE" if declared.type == "STRING_LIST_VALUE" else declared.type
        return {
            "DocumentAttributeKey": declared.name,
            "DocumentAttributeValueType": declared.type,
            "DocumentAttributeValueCountPairs": [
                {"DocumentAttributeValue": _wire_value(value_type, value), "Count": count} for value, count in ranked
            ],
        }

    def _page(self, operation_name: str, params: Mapping[str, Any], hits: list[_Hit]) -> list[_Hit]:
        size, number = params.get("PageSize", 10), params.get("PageNumber", 1)
        if size < 1 or number < 1:
            raise self._invalid(operation_name, "PageSize and PageNumber start at 1")
        reachable = hits[:_MAX_PAGE_SIZE]
        start = (number - 1) * min(size, _MAX_PAGE_SIZE)
        return reachable[start : start + min(size, _MAX_PAGE_SIZE)]

    def _attributes_out(self, document: _Document, requested: Iterable[str] | None) -> list[dict[str, Any]]:
        wanted = set(requested) if requested is not None else None
        return [
            {"Key": key, "Value": _wire_value(self.fields[key].type, value)}
            for key, value in document.attributes.items()
            if key in self.fields and self.fields[key].search["Displayable"] and (wanted is None or key in wanted)
        ]

    def _query_item(
        self, query_id: str, number: int, hit: _Hit, terms: Sequence[str], requested: Iterable[str] | None
    ) -> dict[str, Any]:
        document = hit.document
        result_id = f"{query_id}-{number}"
        item: dict[str, Any] = {
            "Id": result_id,
            "Type": "DOCUMENT",
            "Format": "TEXT",
            "AdditionalAttributes": [],
            "DocumentId": document.id,
            "DocumentAttributes": self._attributes_out(document, requested),
            "ScoreAttributes": {"ScoreConfidence": _confidence(hit, terms)},
            "FeedbackToken": f"{query_id}.{number}",
        }
        if document.title:
            item["DocumentTitle"] = _highlighted(document.title[:_TEXT_LIMIT], terms)
        if document.text.strip():
            item["DocumentExcerpt"] = _highlighted(_excerpt(document.text, terms), terms)
        uri = _document_uri(document)
        return {**item, "DocumentURI": uri} if uri else item

    def _retrieve_item(
        self, query_id: str, number: int, hit: _Hit, terms: Sequence[str], requested: Iterable[str] | None
    ) -> dict[str, Any]:
        document = hit.document
        item: dict[str, Any] = {
            "Id": f"{query_id}-{number}",
            "DocumentId": document.id,
            "Content": _passage(document.text, terms),
            "DocumentAttributes": self._attributes_out(document, requested),
            "ScoreAttributes": {"ScoreConfidence": _confidence(hit, terms)},
        }
        if document.title:
            item["DocumentTitle"] = document.title
        uri = _document_uri(document)
        return {**item, "DocumentURI": uri} if uri else item


def _require_index_id(index_id: str) -> None:
    shape = load_model(SERVICE).shape_for("IndexId")
    if len(index_id) != 36 or not matches(shape.metadata["pattern"], index_id):
        raise ValueError(f"{index_id!r} is not a Kendra index id (36 characters, {shape.metadata['pattern']})")


def _blob_bytes(blob: Any) -> bytes:
    if isinstance(blob, str):
        return blob.encode()
    if isinstance(blob, (bytes, bytearray)):
        return bytes(blob)
    content = blob.read()
    if hasattr(blob, "seek"):
        blob.seek(0)  # The fake reads a stream twice (size check, then text); boto3 would send it once.
    return bytes(content)


def _document(request: Mapping[str, Any]) -> _Document:
    blob = _blob_bytes(request["Blob"])
    text = blob.decode("utf-8", errors="replace")
    if request.get("ContentType") in _MARKUP_CONTENT_TYPES:
        text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    attributes = {
        attribute["Key"]: _attribute_value(_TYPES_BY_MEMBER[member], value)
        for attribute in request.get("Attributes", [])
        for member, value in attribute["Value"].items()
    }
    title = request.get("Title") or attributes.get("_document_title")
    return _Document(
        id=request["Id"],
        title=title,
        text=text,
        attributes=attributes,
        acl=tuple(request.get("AccessControlList", [])),
        size=len(blob),
    )


def _attribute_value(value_type: str, value: Any) -> Any:
    """A request's attribute value as the fake compares it: dates as aware datetimes, lists as lists."""
    if value_type == "DATE_VALUE":
        moment = value if isinstance(value, datetime) else parse_timestamp(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if value_type == "STRING_LIST_VALUE":
        return list(value)
    return value


def _wire_value(value_type: str, value: Any) -> dict[str, Any]:
    return {_VALUE_MEMBERS[value_type]: value}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _terms(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _query_terms(text: str | None) -> list[str]:
    return list(dict.fromkeys(term for term in _terms(text or "") if term not in _STOP_WORDS))


def _confidence(hit: _Hit, terms: Sequence[str]) -> str:
    if not terms:
        return "NOT_AVAILABLE"
    share = len(hit.matched) / len(terms)
    return "HIGH" if share == 1 else "MEDIUM" if share >= 0.5 else "LOW"


def _excerpt(text: str, terms: Sequence[str]) -> str:
    """About 300 characters of the text, starting a little before the first matching term."""
    first = next((match.start() for match in re.finditer(r"\w+", text) if match.group().lower() in terms), 0)
    start = max(0, first - 60)
    while 0 < start < len(text) and not text[start - 1].isspace():
        start += 1
    return text[start : start + _EXCERPT_CHARACTERS].strip() or text.strip()[:_EXCERPT_CHARACTERS]


def _passage(text: str, terms: Sequence[str]) -> str:
    words = text.split()
    first = next((index for index, word in enumerate(words) if set(_terms(word)) & set(terms)), 0)
    start = max(0, first - _PASSAGE_WORDS // 4)
    return " ".join(words[start : start + _PASSAGE_WORDS])


def _highlighted(text: str, terms: Sequence[str]) -> dict[str, Any]:
    highlights = [
        {"BeginOffset": match.start(), "EndOffset": match.end(), "TopAnswer": False, "Type": "STANDARD"}
        for match in re.finditer(r"\w+", text)
        if match.group().lower() in terms
    ]
    return {"Text": text, "Highlights": highlights}


def _document_uri(document: _Document) -> str | None:
    """``_source_uri`` as DocumentURI, where the model's Url pattern allows it (it does not allow ``s3://``)."""
    uri = document.attributes.get("_source_uri")
    shape = load_model(SERVICE).shape_for("Url")
    if isinstance(uri, str) and len(uri) <= shape.metadata["max"] and matches(shape.metadata["pattern"], uri):
        return uri
    return None
