"""The content index on Amazon Kendra: BatchPutDocument in, Query and Retrieve out, access by user and group.

Kendra closed to new customers on 2026-07-30; this backend serves labs that
already run an index, behind the same port as its successor, a Bedrock
Knowledge Base (`labmesh_dagster.connectors.search.bedrock`).

What shapes the calls:

- A custom attribute must be declared on the index (``UpdateIndex``) before
  a document may carry it, with a type that can never change; `prepare` reads
  ``DescribeIndex`` and declares only what is missing, then waits for the
  index to be ACTIVE again, because Kendra applies the declaration
  asynchronously. ``created`` goes to Kendra's reserved ``_created_at`` and the
  URI to ``_source_uri``; reserved fields need no declaration.
- ``BatchPutDocument`` takes at most 10 documents. It only *accepts* them:
  a document that breaks the index's fields comes back at once in
  ``FailedDocuments``, but indexing happens later, and its outcome is only
  known from ``BatchGetDocumentStatus`` (at most 10 ids a call), which reads
  PROCESSING (or NOT_FOUND, before processing starts) until INDEXED / UPDATED
  or FAILED / UPDATE_FAILED. `replace` polls until every document is final or
  the timeout passes, so its report is the truth, not a hope.
- ``BatchDeleteDocument`` takes at most 10 ids.
- ``Query`` returns at most 100 results, takes an ``AttributeFilter`` at most 2
  deep with at most 10 filters in a list, and reads at most 1000 characters
  (30 words) of query text.
- Passages come from ``Retrieve`` (`KendraContentIndex.retrieve`), with the
  same AttributeFilter and UserContext: up to 100 passages of about 200 words
  that Kendra cuts from the whole files at query time. Kendra does not say
  where in a file a passage lies, so it is cited as the whole file.
- Access is Kendra's ATTRIBUTE_FILTER user context. Each document's
  ``AccessControlList`` holds its experiment's principals as ALLOW entries, a
  ``group:`` one as a GROUP, a ``user:`` one as a USER (names casefolded, as
  `labmesh_dagster.core.access` compares them); a viewer's query passes
  ``UserContext`` with their name as ``UserId`` and their groups as
  ``Groups``, and Kendra returns only documents whose list allows one of
  them. Admins and labmesh itself query without a user context. Kendra shows
  a document *without* a list to everyone, which labmesh never means, so a
  document whose experiment lists nobody (no group, no owner) gets a list
  allowing only `ADMINS_ONLY`, a user no query ever names.
- A grant or a revoke changes an experiment's list after its documents were
  put. Kendra cannot change a document's list in place: BatchPutDocument puts
  the documents again with the new list (the port's `update_access` default).
  PutPrincipalMapping does not fit: it maps users into groups for queries that
  send only a ``UserId``, whereas labmesh sends each viewer's groups itself and
  a grant names one experiment, not a group's members. Access control
  configurations (CreateAccessControlConfiguration) need the documents put
  again to take effect as well, and one per experiment would be one more
  resource to keep in step.
- Every call goes through one `PacedCaller`: paced under the index's rate and
  retried with backoff on throttling and 5xx; what still fails is raised as
  `ContentIndexUnavailable` naming the action.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from labmesh_dagster.connectors.aws import PacedCaller, clear_failure, error_code
from labmesh_dagster.connectors.search.base import (
    CONTENT_ATTRIBUTES,
    CREATED,
    FORMAT,
    NO_FILTER,
    SAMPLE_IDS,
    AttributeType,
    AttributeValue,
    ContentDocument,
    ContentFilter,
    ContentHit,
    ContentIndex,
    ContentIndexUnavailable,
    IndexReport,
    access_principals,
    as_utc,
    check_unique_ids,
    document_problem,
    is_printable,
    principal_parts,
    stored_attributes,
)
from labmesh_dagster.core.access import Viewer, user_principal
from labmesh_dagster.core.defaults import KENDRA_CALLS_PER_SECOND
from labmesh_dagster.core.passages import LocationKind, Passage, PassageHit, PassageLocation, SearchMode
from labmesh_dagster.core.text import clean_text, is_clean_text

BATCH_SIZE = 10
"""Documents per BatchPutDocument, ids per BatchDeleteDocument and BatchGetDocumentStatus: Kendra's maximum."""

MAX_RESULTS = 100
"""Kendra's Query returns the 100 most relevant results at most, whatever the page size."""

MAX_QUERY_CHARACTERS = 1000
"""Kendra's limit on query text (it reads at most 30 words of it anyway)."""

MAX_FILTERS = 10
"""Kendra refuses an AndAllFilters list longer than 10."""

MAX_FIELD_NAME = 30
"""Kendra's limit on a declared field's name."""

SOURCE_URI = "_source_uri"
RESERVED_NAMES: Mapping[str, str] = {CREATED: "_created_at"}
"""Port attributes that map to Kendra's reserved fields rather than to custom ones."""

ADMINS_ONLY = "labmesh: admins only"
"""The one USER allowed by the list of a document whose experiment lists nobody: Kendra would show a document
without a list to everyone. No query names it (`user_context` never sends it), so only admins, who query
without a user context, see such a document."""

NO_USER = "labmesh: no user"
"""The UserId sent for a viewer whose name cannot be one (too long, unprintable, or `ADMINS_ONLY`): it is on
no document's list, so such a viewer sees what their groups allow and nothing else."""

MAX_USER_ID = 1024
"""Kendra's limit on UserContext.UserId."""

_KENDRA_TYPES: Mapping[AttributeType, str] = {
    AttributeType.STRING: "STRING_VALUE",
    AttributeType.STRING_LIST: "STRING_LIST_VALUE",
    AttributeType.LONG: "LONG_VALUE",
    AttributeType.DATE: "DATE_VALUE",
}
_VALUE_MEMBERS: Mapping[AttributeType, str] = {
    AttributeType.STRING: "StringValue",
    AttributeType.STRING_LIST: "StringListValue",
    AttributeType.LONG: "LongValue",
    AttributeType.DATE: "DateValue",
}
_DONE = {"INDEXED": True, "UPDATED": True, "FAILED": False, "UPDATE_FAILED": False}
_SETTLING_STATUSES = frozenset({"CREATING", "UPDATING"})
_USABLE_STATUSES = frozenset({"ACTIVE", "SYSTEM_UPDATING"})
_CONFIDENCE = {"VERY_HIGH": 1.0, "HIGH": 0.75, "MEDIUM": 0.5, "LOW": 0.25, "NOT_AVAILABLE": 0.0}

T = TypeVar("T")


def batches(items: Sequence[T], size: int = BATCH_SIZE) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size``: ceil(n / size) of them."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class KendraField:
    """How one port attribute is declared on the index."""

    attribute: str
    name: str
    type: AttributeType

    @property
    def reserved(self) -> bool:
        return self.name.startswith("_")

    def declaration(self) -> dict[str, Any]:
        """The UpdateIndex entry: facetable and displayable for the portal's facets, never searchable as words.

        Kendra matches query text against every searchable string field, and
        strings are searchable by default: an experiment id or a platform
        would then match every file of the experiment or the platform. They
        are facets, filtered on; content search matches what is in the files.
        """
        return {
            "Name": self.name,
            "Type": _KENDRA_TYPES[self.type],
            "Search": {
                "Facetable": True,
                "Searchable": False,
                "Displayable": True,
                # Dates and numbers sort results; Kendra refuses a sortable string list anyway.
                "Sortable": self.type in {AttributeType.DATE, AttributeType.LONG},
            },
        }


def kendra_fields(schema: Mapping[str, AttributeType]) -> dict[str, KendraField]:
    """The index field of every port attribute, checked against Kendra's naming rules."""
    fields: dict[str, KendraField] = {}
    for attribute, kind in schema.items():
        name = RESERVED_NAMES.get(attribute, attribute)
        if name == attribute and (attribute.startswith("_") or not 1 <= len(attribute) <= MAX_FIELD_NAME):
            raise ValueError(f"attribute {attribute!r} cannot be a Kendra field: 1 to 30 characters, not starting _")
        fields[attribute] = KendraField(attribute, name, kind)
    return fields


def _wire(value: AttributeValue, kind: AttributeType) -> dict[str, Any]:
    return {_VALUE_MEMBERS[kind]: value}


def _from_wire(value: Mapping[str, Any]) -> AttributeValue | None:
    for member in ("StringValue", "StringListValue", "LongValue"):
        if member in value:
            return value[member]
    moment = value.get("DateValue")
    return as_utc(moment) if isinstance(moment, datetime) else None


def _search_differs(declared: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether a field's declared search settings differ from labmesh's; a setting left out is Kendra's default.

    Kendra's defaults: strings searchable, numbers and dates not; every field
    displayable; none facetable or sortable.
    """
    textual = declared["Type"] in {"STRING_VALUE", "STRING_LIST_VALUE"}
    defaults = {"Facetable": False, "Searchable": textual, "Displayable": True, "Sortable": False}
    settings = {**defaults, **declared.get("Search", {})}
    return any(settings[name] != value for name, value in wanted["Search"].items())


def access_control_list(principals: Sequence[str]) -> list[dict[str, str]]:
    """A document's AccessControlList: an ALLOW per principal, or `ADMINS_ONLY` alone for an empty list."""
    entries = [principal_parts(principal) for principal in access_principals(principals)]
    allowed = [{"Name": name, "Type": kind.upper(), "Access": "ALLOW"} for kind, name in filter(None, entries)]
    return allowed or [{"Name": ADMINS_ONLY, "Type": "USER", "Access": "ALLOW"}]


def _failure_reason(item: Mapping[str, Any]) -> str:
    """A FailedDocuments entry's ``ErrorCode: ErrorMessage``, with whichever parts it has."""
    return ": ".join(part for part in (item.get("ErrorCode"), item.get("ErrorMessage")) if part) or "refused"


class KendraContentIndex(ContentIndex):
    """One Kendra index; ``client`` is ``boto3.client("kendra")`` or a test fake."""

    def __init__(
        self,
        client: Any,
        *,
        index_id: str,
        max_per_second: float = KENDRA_CALLS_PER_SECOND,
        status_timeout_seconds: float = 300,
        poll_seconds: float = 2,
        schema: Mapping[str, AttributeType] = CONTENT_ATTRIBUTES,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        paced: dict[str, Any] = {"max_per_second": max_per_second}
        if clock is not None:
            paced["clock"] = clock
        if sleep is not None:
            paced["sleep"] = sleep
        self.call = PacedCaller(client, **paced)
        self.index_id = index_id
        self.schema = dict(schema)
        self.fields = kendra_fields(self.schema)
        self.status_timeout_seconds = status_timeout_seconds
        self.poll_seconds = poll_seconds
        self.clock = self.call.clock
        self.sleep = self.call.sleep
        self._prepared = False

    @contextlib.contextmanager
    def _failure(self, action: str, passthrough: frozenset[str] = frozenset()) -> Iterator[None]:
        with clear_failure(
            "Kendra", f"{action} (index {self.index_id})", ContentIndexUnavailable, passthrough=passthrough
        ):
            yield

    def prepare(self) -> None:
        """Declare the custom fields the index lacks (none, once done), then wait for it to be ACTIVE."""
        if self._prepared:
            return
        description = self._describe()
        declared = {field["Name"]: field for field in description.get("DocumentMetadataConfigurations", [])}
        missing = []
        for field in self.fields.values():
            wanted = _KENDRA_TYPES[field.type]
            known = declared.get(field.name)
            if known is not None and known["Type"] != wanted:
                raise ContentIndexUnavailable(
                    f"Kendra index {self.index_id} declares {field.name} as {known['Type']}, labmesh needs"
                    f" {wanted}; a field's type cannot change, so use another index"
                )
            # Declared anew when missing, or declared otherwise (searchable as words, by an older labmesh).
            if not field.reserved and (known is None or _search_differs(known, field.declaration())):
                missing.append(field.declaration())
        if missing:
            with self._failure("declare fields"):
                self.call("update_index", Id=self.index_id, DocumentMetadataConfigurationUpdates=missing)
        if missing or description.get("Status", "ACTIVE") not in _USABLE_STATUSES:
            self._wait_until_usable()
        self._prepared = True

    def _describe(self) -> dict[str, Any]:
        with self._failure("describe the index"):
            return self.call("describe_index", Id=self.index_id)

    def _wait_until_usable(self) -> None:
        deadline = self.clock() + self.status_timeout_seconds
        while True:
            status = self._describe().get("Status", "ACTIVE")
            if status in _USABLE_STATUSES:
                return
            if status not in _SETTLING_STATUSES or self.clock() >= deadline:
                raise ContentIndexUnavailable(f"Kendra index {self.index_id} is {status}, not ACTIVE")
            self.sleep(self.poll_seconds)

    def replace(self, documents: Sequence[ContentDocument], *, removed_ids: Sequence[str] = ()) -> IndexReport:
        check_unique_ids(documents)
        self.prepare()
        failed: dict[str, str] = {}
        requests = []
        for document in documents:
            problem = document_problem(document, self.schema)
            if problem:
                failed[document.id] = problem
            else:
                requests.append(self._request(document))
        accepted: list[str] = []
        for batch in batches(requests):
            accepted += self._put(batch, failed)
        statuses = self._await_statuses(accepted)
        indexed = tuple(document_id for document_id in accepted if statuses[document_id] is None)
        failed.update({document_id: reason for document_id, reason in statuses.items() if reason is not None})
        put = {document.id for document in documents}
        removed = [document_id for document_id in dict.fromkeys(removed_ids) if document_id not in put]
        deleted = self._delete(removed, failed)
        return IndexReport(indexed=indexed, failed=failed, deleted=deleted)

    def _request(self, document: ContentDocument) -> dict[str, Any]:
        """One BatchPutDocument entry: plain text, typed attributes, and its access list (`access_control_list`)."""
        attributes = [
            {"Key": self.fields[name].name, "Value": _wire(value, self.fields[name].type)}
            for name, value in stored_attributes(document, self.schema).items()
        ]
        if 1 <= len(document.uri) <= 2048 and is_clean_text(document.uri):
            attributes.append({"Key": SOURCE_URI, "Value": {"StringValue": document.uri}})
        request: dict[str, Any] = {
            "Id": document.id,
            "ContentType": "PLAIN_TEXT",
            "Blob": clean_text(document.text).encode("utf-8"),
            "Attributes": attributes,
        }
        if document.title:
            request["Title"] = clean_text(document.title)
        request["AccessControlList"] = access_control_list(document.principals)
        return request

    def _put(self, batch: Sequence[dict[str, Any]], failed: dict[str, str]) -> list[str]:
        """Send one batch; the ids Kendra accepted for indexing (refused ones go to ``failed``)."""
        ids = [request["Id"] for request in batch]
        try:
            with self._failure("put documents", passthrough=frozenset({"ValidationException"})):
                answer = self.call("batch_put_document", IndexId=self.index_id, Documents=list(batch))
        except ClientError as exc:
            # Kendra refused the whole request; the documents were checked beforehand, so this is one of
            # them breaking a rule labmesh does not know of: report the batch, keep the others going.
            reason = f"Kendra refused the batch: {error_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}"
            failed.update(dict.fromkeys(ids, reason))
            return []
        refused = {item["Id"]: _failure_reason(item) for item in answer.get("FailedDocuments", [])}
        failed.update(refused)
        return [document_id for document_id in ids if document_id not in refused]

    def _await_statuses(self, document_ids: Sequence[str]) -> dict[str, str | None]:
        """Poll until every document is final: None for indexed, the reason for failed (or timed out)."""
        outcome: dict[str, str | None] = {}
        pending = list(document_ids)
        last: dict[str, str] = {}
        deadline = self.clock() + self.status_timeout_seconds
        while pending:
            for batch in batches(pending):
                outcome.update(self._read_statuses(batch, last))
            pending = [document_id for document_id in pending if document_id not in outcome]
            if not pending:
                break
            if self.clock() >= deadline:
                for document_id in pending:
                    seen = last.get(document_id, "no status")
                    outcome[document_id] = f"not indexed within {self.status_timeout_seconds:g} s (last: {seen})"
                break
            self.sleep(self.poll_seconds)
        return outcome

    def _read_statuses(self, batch: Sequence[str], last: dict[str, str]) -> dict[str, str | None]:
        with self._failure("read document statuses"):
            answer = self.call(
                "batch_get_document_status",
                IndexId=self.index_id,
                DocumentInfoList=[{"DocumentId": document_id} for document_id in batch],
            )
        final: dict[str, str | None] = {}
        for status in answer.get("DocumentStatusList", []):
            document_id, state = status["DocumentId"], status.get("DocumentStatus", "")
            last[document_id] = state
            if state in _DONE:
                reason = status.get("FailureReason") or status.get("FailureCode") or "indexing failed"
                final[document_id] = None if _DONE[state] else f"{state}: {reason}"
        # An error reading a status says nothing of the document: it is asked again on the next round.
        for error in answer.get("Errors", []):
            last[error["DocumentId"]] = f"{error.get('ErrorCode', 'error')}: {error.get('ErrorMessage', '')}"
        return final

    def _delete(self, document_ids: Sequence[str], failed: dict[str, str]) -> tuple[str, ...]:
        refused: dict[str, str] = {}
        for batch in batches(document_ids):
            with self._failure("delete documents"):
                answer = self.call("batch_delete_document", IndexId=self.index_id, DocumentIdList=list(batch))
            for item in answer.get("FailedDocuments", []):
                refused[item["Id"]] = f"delete failed: {_failure_reason(item)}"
        failed.update(refused)
        return tuple(document_id for document_id in document_ids if document_id not in refused)

    def attribute_filter(self, filters: ContentFilter) -> dict[str, Any] | None:
        """The facets as one AttributeFilter: a single comparison, or an AndAllFilters of them (depth 1)."""
        leaves: list[dict[str, Any]] = []
        for name, value in filters.equalities().items():
            leaves.append({"EqualsTo": self._attribute(name, value)})
        if filters.sample_id is not None:
            leaves.append({"ContainsAny": self._attribute(SAMPLE_IDS, [filters.sample_id])})
        if formats := filters.format_values():
            # Any of the format's compressed forms: an OrAllFilters inside the AndAllFilters is depth 2, Kendra's limit.
            equal = [{"EqualsTo": self._attribute(FORMAT, value)} for value in formats]
            leaves.append(equal[0] if len(equal) == 1 else {"OrAllFilters": equal})
        since, until = filters.created_bounds()
        if since is not None:
            leaves.append({"GreaterThanOrEquals": self._attribute(CREATED, since)})
        if until is not None:
            leaves.append({"LessThanOrEquals": self._attribute(CREATED, until)})
        if len(leaves) > MAX_FILTERS:
            raise ValueError(f"{len(leaves)} filters, Kendra combines at most {MAX_FILTERS}")
        if not leaves:
            return None
        return leaves[0] if len(leaves) == 1 else {"AndAllFilters": leaves}

    def _attribute(self, name: str, value: AttributeValue) -> dict[str, Any]:
        field = self.fields[name]
        kind = AttributeType.STRING_LIST if isinstance(value, list) else field.type
        return {"Key": field.name, "Value": _wire(value, kind)}

    def user_context(self, viewer: Viewer) -> dict[str, Any]:
        """Kendra's user context for ``viewer``: their name as UserId, their groups, both as access lists spell them.

        A group that could never be in an access list (empty, too long,
        unprintable) grants nothing, so it is left out rather than sent to be refused.
        """
        user_id = user_principal(viewer.name).removeprefix("user:")
        if not 1 <= len(user_id) <= MAX_USER_ID or not is_printable(user_id) or user_id == ADMINS_ONLY:
            user_id = NO_USER
        names = [principal_parts(principal) for principal in viewer.principals]
        groups = sorted({part[1] for part in names if part is not None and part[0] == "group"})
        if len(groups) > 2048:
            raise ValueError(f"{len(groups)} groups; Kendra takes at most 2048 in a user context")
        return {"UserId": user_id, "Groups": groups} if groups else {"UserId": user_id}

    def search(
        self,
        text: str,
        *,
        filters: ContentFilter = NO_FILTER,
        viewer: Viewer | None = None,
        limit: int = 10,
    ) -> list[ContentHit]:
        if limit < 1:
            return []
        self.prepare()  # a filter on an undeclared field is refused
        params: dict[str, Any] = {
            "IndexId": self.index_id,
            "QueryResultTypeFilter": "DOCUMENT",
            "PageSize": min(limit, MAX_RESULTS),
            "RequestedDocumentAttributes": [field.name for field in self.fields.values()] + [SOURCE_URI],
        }
        if text.strip():
            params["QueryText"] = text.strip()[:MAX_QUERY_CHARACTERS]
        attribute_filter = self.attribute_filter(filters)
        if attribute_filter is not None:
            params["AttributeFilter"] = attribute_filter
        if viewer is not None and not viewer.admin:
            params["UserContext"] = self.user_context(viewer)
        with self._failure("query"):
            answer = self.call("query", **params)
        return [self._hit(item) for item in answer.get("ResultItems", []) if item.get("Type", "DOCUMENT") == "DOCUMENT"]

    def _attributes(self, item: Mapping[str, Any]) -> tuple[dict[str, AttributeValue], str]:
        """A result item's port attributes and its URI."""
        by_name = {field.name: field.attribute for field in self.fields.values()}
        attributes: dict[str, AttributeValue] = {}
        uri = item.get("DocumentURI", "")
        for attribute in item.get("DocumentAttributes", []):
            value = _from_wire(attribute["Value"])
            if attribute["Key"] == SOURCE_URI and isinstance(value, str):
                # DocumentURI is only given for http(s), ftp and file URIs; s3:// comes back as the attribute.
                uri = value
            elif attribute["Key"] in by_name and value is not None:
                attributes[by_name[attribute["Key"]]] = value
        return attributes, uri

    def _hit(self, item: Mapping[str, Any]) -> ContentHit:
        attributes, uri = self._attributes(item)
        confidence = item.get("ScoreAttributes", {}).get("ScoreConfidence", "NOT_AVAILABLE")
        return ContentHit(
            id=item["DocumentId"],
            title=item.get("DocumentTitle", {}).get("Text", ""),
            uri=uri,
            excerpt=item.get("DocumentExcerpt", {}).get("Text", ""),
            score=_CONFIDENCE.get(confidence, 0.0),
            attributes=attributes,
        )

    def retrieve(
        self,
        text: str,
        *,
        filters: ContentFilter = NO_FILTER,
        viewer: Viewer | None = None,
        limit: int = 10,
        mode: SearchMode = SearchMode.HYBRID,
    ) -> list[PassageHit]:
        """Passages through Kendra's Retrieve, under the same AttributeFilter and UserContext as `search`.

        Kendra ranks one way for every ``mode``. It indexes whole files and
        cuts its own passages (about 200 words) at query time, without saying
        where in the file they lie: a hit is Kendra's passage, cited as the
        whole file (ordinal 0, `LocationKind.WHOLE`), the best one per file,
        so that no two hits carry one passage id. Retrieve needs query text:
        a blank question retrieves nothing.
        """
        if limit < 1 or not text.strip():
            return []
        self.prepare()
        params: dict[str, Any] = {
            "IndexId": self.index_id,
            "QueryText": text.strip()[:MAX_QUERY_CHARACTERS],
            "PageSize": MAX_RESULTS,
            "RequestedDocumentAttributes": [field.name for field in self.fields.values()] + [SOURCE_URI],
        }
        attribute_filter = self.attribute_filter(filters)
        if attribute_filter is not None:
            params["AttributeFilter"] = attribute_filter
        if viewer is not None and not viewer.admin:
            params["UserContext"] = self.user_context(viewer)
        with self._failure("retrieve"):
            answer = self.call("retrieve", **params)
        hits: dict[str, PassageHit] = {}
        for item in answer.get("ResultItems", []):
            document_id = item.get("DocumentId")
            if not document_id or document_id in hits:
                continue
            attributes, uri = self._attributes(item)
            confidence = item.get("ScoreAttributes", {}).get("ScoreConfidence", "NOT_AVAILABLE")
            hits[document_id] = PassageHit(
                passage=Passage(document_id, 0, item.get("Content", ""), PassageLocation(LocationKind.WHOLE)),
                title=item.get("DocumentTitle", ""),
                uri=uri,
                score=_CONFIDENCE.get(confidence, 0.0),
                attributes=attributes,
            )
            if len(hits) == limit:
                break
        return list(hits.values())
