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
- **One labmesh passage is one Kendra document**, as on a Bedrock knowledge
  base: a file's passages (`ContentDocument.passages`, else its text cut as
  the local index cuts it: `indexed_passages.document_passages`, as for
  Bedrock, so a passage id names one passage in every profile) are put as
  documents of their own, id ``<file key>#<ordinal>`` (the passage id), each
  with the file's title, URI, facets and access list, plus the fields ``labmesh_document_id``,
  ``labmesh_ordinal`` and the location (``labmesh_location_kind``, ``_start``,
  ``_end``, ``_label``). ``Retrieve`` returns passage-sized excerpts of the
  documents it matched, each naming its document: a hit therefore maps to the
  labmesh passage that holds it, ordinal and location as the local index gives
  them, and a citation opens that place. Kendra cannot say where an excerpt
  lies in a whole file, which is why the files are not put whole. What this
  costs: a file is several documents (Kendra's quotas count extracted text,
  which stays about the same: 3 GB per Developer index, 30 GB per Enterprise
  unit), and ``BatchPutDocument`` batches of 10 hold passages, not files.
- A file re-published with fewer passages leaves its old passages behind under
  their ids, and Kendra has no call that lists documents. They are found as on
  Bedrock: ``BatchGetDocumentStatus`` reads NOT_FOUND for an id Kendra does not
  hold (and for a deleted one once the delete is done), and ordinals are
  contiguous, so the ordinals past the new count are asked until the first
  NOT_FOUND, and what was found is deleted, 10 ids a ``BatchDeleteDocument``.
  A removed file is asked from ordinal 0. The file's own key is asked too,
  once: an index an earlier labmesh filled holds the file whole under it.
- ``Query`` (`search`) answers with files: the passages it finds are grouped by
  their file, best first; a blank query lists each file once, by its passage 0
  (a file an earlier labmesh put whole is listed again once it is re-published).
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
    MAX_ID_LENGTH,
    MAX_STRING_LENGTH,
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
from labmesh_dagster.connectors.search.indexed_passages import document_passages
from labmesh_dagster.core.access import Viewer, user_principal
from labmesh_dagster.core.defaults import KENDRA_CALLS_PER_SECOND
from labmesh_dagster.core.passages import (
    LocationKind,
    Passage,
    PassageHit,
    PassageLocation,
    SearchMode,
    passage_id,
)
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
    """How one port attribute (or one of labmesh's passage fields) is declared on the index."""

    attribute: str
    name: str
    type: AttributeType
    facet: bool = True
    """Facetable (and sortable when a date or a number); a passage's location is only read back."""

    @property
    def reserved(self) -> bool:
        return self.name.startswith("_")

    def declaration(self) -> dict[str, Any]:
        """The UpdateIndex entry: facetable and displayable for the portal's facets, never searchable as words.

        Kendra matches query text against every searchable string field, and
        strings are searchable by default: an experiment id or a platform
        would then match every file of the experiment or the platform. They
        are facets, filtered on; content search matches what is in the files.
        Passage fields are displayable only, so that Retrieve and Query return them.
        """
        return {
            "Name": self.name,
            "Type": _KENDRA_TYPES[self.type],
            "Search": {
                "Facetable": self.facet,
                "Searchable": False,
                "Displayable": True,
                # Dates and numbers sort results; Kendra refuses a sortable string list anyway.
                "Sortable": self.facet and self.type in {AttributeType.DATE, AttributeType.LONG},
            },
        }


DOCUMENT_ID = "labmesh_document_id"
ORDINAL = "labmesh_ordinal"
LOCATION_KIND = "labmesh_location_kind"
LOCATION_START = "labmesh_location_start"
LOCATION_END = "labmesh_location_end"
LOCATION_LABEL = "labmesh_location_label"

PASSAGE_FIELDS: tuple[KendraField, ...] = (
    KendraField(DOCUMENT_ID, DOCUMENT_ID, AttributeType.STRING, facet=False),
    # Facetable, so that a blank query can filter on passage 0 whatever Kendra requires of a filtered field.
    KendraField(ORDINAL, ORDINAL, AttributeType.LONG),
    KendraField(LOCATION_KIND, LOCATION_KIND, AttributeType.STRING, facet=False),
    KendraField(LOCATION_START, LOCATION_START, AttributeType.LONG, facet=False),
    KendraField(LOCATION_END, LOCATION_END, AttributeType.LONG, facet=False),
    KendraField(LOCATION_LABEL, LOCATION_LABEL, AttributeType.STRING, facet=False),
)
"""The fields that say which labmesh passage a Kendra document is: its file, its ordinal and its place."""


def kendra_fields(schema: Mapping[str, AttributeType]) -> dict[str, KendraField]:
    """The index field of every port attribute, checked against Kendra's naming rules."""
    fields: dict[str, KendraField] = {}
    for attribute, kind in schema.items():
        name = RESERVED_NAMES.get(attribute, attribute)
        if name == attribute and (attribute.startswith("_") or not 1 <= len(attribute) <= MAX_FIELD_NAME):
            raise ValueError(f"attribute {attribute!r} cannot be a Kendra field: 1 to 30 characters, not starting _")
        if name in {field.name for field in PASSAGE_FIELDS}:
            raise ValueError(f"attribute {attribute!r} is one of labmesh's passage fields")
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
        for field in [*self.fields.values(), *PASSAGE_FIELDS]:
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
        """Put every passage, wait for their statuses, then delete what the new versions no longer hold.

        A file is indexed when all its passages are, and failed with the first
        reasons otherwise; Kendra keeps the earlier version of each passage
        that failed (the others are already the new ones), and a failed file's
        extra old passages stay until it is put again.
        """
        check_unique_ids(documents)
        self.prepare()
        failed: dict[str, str] = {}
        pieces: dict[str, list[tuple[Passage, dict[str, Any]]]] = {}
        for document in documents:
            problem = document_problem(document, self.schema)
            passages = document_passages(document) if problem is None else ()
            problem = problem or _passages_problem(passages)
            if problem:
                failed[document.id] = problem
            else:
                pieces[document.id] = [(passage, self._request(document, passage)) for passage in passages]
        requests = [request for group in pieces.values() for _, request in group]
        refused: dict[str, str] = {}
        accepted: list[str] = []
        for batch in batches(requests):
            accepted += self._put(batch, refused)
        statuses = self._await_statuses(accepted)
        refused.update({item: reason for item, reason in statuses.items() if reason is not None})
        indexed: list[str] = []
        for document_id, group in pieces.items():
            reasons = [
                f"passage {passage.ordinal}: {refused[passage.id]}" for passage, _ in group if passage.id in refused
            ]
            if reasons:
                more = f" (and {len(reasons) - 3} more)" if len(reasons) > 3 else ""
                failed[document_id] = "; ".join(reasons[:3]) + more
            else:
                indexed.append(document_id)
        # Past the new passages lie the old version's extra ones; a removed file loses them all.
        put = {document.id for document in documents}
        removed = [document_id for document_id in dict.fromkeys(removed_ids) if document_id not in put]
        starts = {document_id: len(pieces[document_id]) for document_id in indexed}
        starts.update(dict.fromkeys(removed, 0))
        keep = {request["Id"] for request in requests}
        stale = {
            document_id: [item for item in ids if item not in keep]
            for document_id, ids in self._existing_beyond(starts).items()
        }
        refused_deletes = self._delete(stale)
        for document_id, reason in refused_deletes.items():
            failed.setdefault(document_id, reason)
        deleted = tuple(document_id for document_id in removed if document_id not in refused_deletes)
        return IndexReport(indexed=tuple(indexed), failed=failed, deleted=deleted)

    def _request(self, document: ContentDocument, passage: Passage) -> dict[str, Any]:
        """One BatchPutDocument entry: a passage as plain text, its file's typed attributes and access list.

        A passage without words is put as its file's title, so the file can still be found.
        """
        attributes = [
            {"Key": self.fields[name].name, "Value": _wire(value, self.fields[name].type)}
            for name, value in stored_attributes(document, self.schema).items()
        ]
        attributes += _passage_attributes(passage)
        if 1 <= len(document.uri) <= 2048 and is_clean_text(document.uri):
            attributes.append({"Key": SOURCE_URI, "Value": {"StringValue": document.uri}})
        text = passage.text if passage.text.strip() else (document.title or document.id)
        request: dict[str, Any] = {
            "Id": passage.id,
            "ContentType": "PLAIN_TEXT",
            "Blob": clean_text(text).encode("utf-8"),
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

    def _status_answer(self, batch: Sequence[str]) -> dict[str, Any]:
        with self._failure("read document statuses"):
            return self.call(
                "batch_get_document_status",
                IndexId=self.index_id,
                DocumentInfoList=[{"DocumentId": document_id} for document_id in batch],
            )

    def _read_statuses(self, batch: Sequence[str], last: dict[str, str]) -> dict[str, str | None]:
        answer = self._status_answer(batch)
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

    def _held(self, ids: Sequence[str]) -> set[str]:
        """The ids Kendra holds a document under (any status but NOT_FOUND), read 10 a call.

        An id whose status could not be read counts as not held: the search for
        stale passages stops there rather than ask forever, and the next put of
        the file looks again.
        """
        held: set[str] = set()
        for batch in batches(ids):
            for status in self._status_answer(batch).get("DocumentStatusList", []):
                if status.get("DocumentStatus", "NOT_FOUND") != "NOT_FOUND":
                    held.add(status["DocumentId"])
        return held

    def _existing_beyond(self, starts: Mapping[str, int]) -> dict[str, list[str]]:
        """The passage ids at or past each file's start ordinal that the index still holds, and its whole-file id.

        Each round asks one ordinal of a file not yet known to have more, and
        ten at once of one that has: a file shrunk by k passages costs about
        k/10 rounds, an unchanged one a single status. The first round also
        asks the file's own key, under which an earlier labmesh put it whole.
        """
        found: dict[str, list[str]] = {}
        next_ordinal = dict(starts)
        width = dict.fromkeys(starts, 1)
        first = True
        while next_ordinal:
            asked = {
                document_id: [passage_id(document_id, ordinal) for ordinal in range(start, start + width[document_id])]
                for document_id, start in next_ordinal.items()
            }
            whole = list(starts) if first else []
            held = self._held([item for ids in asked.values() for item in ids] + whole)
            for document_id in whole:
                if document_id in held:
                    found.setdefault(document_id, []).append(document_id)
            first = False
            for document_id, ids in asked.items():
                present = [item for item in ids if item in held]
                found.setdefault(document_id, []).extend(present)
                if len(present) < len(ids):
                    del next_ordinal[document_id]
                else:
                    next_ordinal[document_id] += len(ids)
                    width[document_id] = BATCH_SIZE
        return {document_id: ids for document_id, ids in found.items() if ids}

    def _delete(self, stale: Mapping[str, Sequence[str]]) -> dict[str, str]:
        """Delete the Kendra documents, 10 ids a call; the files whose delete was refused, with the reason."""
        owner = {item: document_id for document_id, ids in stale.items() for item in ids}
        refused: dict[str, str] = {}
        for batch in batches(list(owner)):
            with self._failure("delete documents"):
                answer = self.call("batch_delete_document", IndexId=self.index_id, DocumentIdList=list(batch))
            for item in answer.get("FailedDocuments", []):
                if item.get("Id") in owner:
                    reason = f"delete of {item['Id']} failed: {_failure_reason(item)}"
                    refused.setdefault(owner[item["Id"]], reason)
        return refused

    def attribute_filter(self, filters: ContentFilter, *, first_passages: bool = False) -> dict[str, Any] | None:
        """The facets as one AttributeFilter: a single comparison, or an AndAllFilters of them (depth 1).

        ``first_passages`` keeps passage 0 of each file only: a blank query lists each file once.
        """
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
        if first_passages:
            leaves.append({"EqualsTo": {"Key": ORDINAL, "Value": {"LongValue": 0}}})
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

    def _requested(self) -> list[str]:
        return [field.name for field in [*self.fields.values(), *PASSAGE_FIELDS]] + [SOURCE_URI]

    def search(
        self,
        text: str,
        *,
        filters: ContentFilter = NO_FILTER,
        viewer: Viewer | None = None,
        limit: int = 10,
    ) -> list[ContentHit]:
        """Files by their best passage: Query's passage documents grouped by file, one hit per file.

        With words, a file may be several of Query's at most 100 results, so
        all 100 are asked for; a blank query asks passage 0 of each file.
        """
        if limit < 1:
            return []
        self.prepare()  # a filter on an undeclared field is refused
        blank = not text.strip()
        params: dict[str, Any] = {
            "IndexId": self.index_id,
            "QueryResultTypeFilter": "DOCUMENT",
            "PageSize": min(limit, MAX_RESULTS) if blank else MAX_RESULTS,
            "RequestedDocumentAttributes": self._requested(),
        }
        if not blank:
            params["QueryText"] = text.strip()[:MAX_QUERY_CHARACTERS]
        attribute_filter = self.attribute_filter(filters, first_passages=blank)
        if attribute_filter is not None:
            params["AttributeFilter"] = attribute_filter
        if viewer is not None and not viewer.admin:
            params["UserContext"] = self.user_context(viewer)
        with self._failure("query"):
            answer = self.call("query", **params)
        hits: dict[str, ContentHit] = {}
        for item in answer.get("ResultItems", []):
            if item.get("Type", "DOCUMENT") != "DOCUMENT":
                continue
            hit = self._hit(item)
            hits.setdefault(hit.id, hit)
            if len(hits) == limit:
                break
        return list(hits.values())

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
        title = item.get("DocumentTitle", {}).get("Text", "")
        return ContentHit(
            id=result_passage(item, "", title).document_id,
            title=title,
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

        Kendra ranks one way for every ``mode``. Each result is an excerpt of
        one of labmesh's passages (each is a Kendra document of its own), so a
        hit is that passage: its file, ordinal and location from the document's
        fields, its text Kendra's excerpt. The best excerpt per passage is kept,
        so that no two hits carry one passage id. A document an earlier labmesh
        put whole (no passage fields) is cited as the whole file, ordinal 0.
        Retrieve needs query text: a blank question retrieves nothing.
        """
        if limit < 1 or not text.strip():
            return []
        self.prepare()
        params: dict[str, Any] = {
            "IndexId": self.index_id,
            "QueryText": text.strip()[:MAX_QUERY_CHARACTERS],
            "PageSize": MAX_RESULTS,
            "RequestedDocumentAttributes": self._requested(),
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
            if not item.get("DocumentId"):
                continue
            passage = result_passage(item, item.get("Content", ""), item.get("DocumentTitle", ""))
            if passage.id in hits:
                continue
            attributes, uri = self._attributes(item)
            confidence = item.get("ScoreAttributes", {}).get("ScoreConfidence", "NOT_AVAILABLE")
            hits[passage.id] = PassageHit(
                passage=passage,
                title=item.get("DocumentTitle", ""),
                uri=uri,
                score=_CONFIDENCE.get(confidence, 0.0),
                attributes=attributes,
            )
            if len(hits) == limit:
                break
        return list(hits.values())


def _passages_problem(passages: Sequence[Passage]) -> str | None:
    """What Kendra refuses of a file's passages that the port's rules allow: a passage id over Kendra's limit."""
    for passage in passages:
        if len(passage.id) > MAX_ID_LENGTH:
            return f"passage id {passage.id[:60]}... is longer than {MAX_ID_LENGTH} characters"
    return None


def _passage_attributes(passage: Passage) -> list[dict[str, Any]]:
    """The fields that name a passage's file, ordinal and place (empty texts left out: Kendra refuses them)."""
    location = passage.location
    values: list[tuple[str, dict[str, Any]]] = [
        (DOCUMENT_ID, {"StringValue": passage.document_id}),
        (ORDINAL, {"LongValue": passage.ordinal}),
        (LOCATION_KIND, {"StringValue": location.kind.value}),
    ]
    if location.start is not None:
        values.append((LOCATION_START, {"LongValue": location.start}))
    if location.end is not None:
        values.append((LOCATION_END, {"LongValue": location.end}))
    label = clean_text(location.label or "")[:MAX_STRING_LENGTH]
    if label:
        values.append((LOCATION_LABEL, {"StringValue": label}))
    return [{"Key": key, "Value": value} for key, value in values]


def result_passage(item: Mapping[str, Any], text: str, title: str) -> Passage:
    """The labmesh passage a Query or Retrieve result item is (or holds an excerpt of), from its passage fields.

    A document without them was put whole by an earlier labmesh: it is its
    file's passage 0, cited as the whole file (or its title, when it has no
    text), until the file is put again.
    """
    values = {attribute["Key"]: _from_wire(attribute["Value"]) for attribute in item.get("DocumentAttributes", [])}
    document_id, ordinal = values.get(DOCUMENT_ID), values.get(ORDINAL)
    if not isinstance(document_id, str) or not isinstance(ordinal, int) or isinstance(ordinal, bool):
        return Passage(item["DocumentId"], 0, text or title, PassageLocation(LocationKind.WHOLE))
    try:
        kind = LocationKind(str(values.get(LOCATION_KIND, LocationKind.WHOLE.value)))
    except ValueError:
        kind = LocationKind.WHOLE
    start, end, label = values.get(LOCATION_START), values.get(LOCATION_END), values.get(LOCATION_LABEL)
    location = PassageLocation(
        kind,
        start if isinstance(start, int) else None,
        end if isinstance(end, int) else None,
        label if isinstance(label, str) else None,
    )
    return Passage(document_id, ordinal, text, location)
