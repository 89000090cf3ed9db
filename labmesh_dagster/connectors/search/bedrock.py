"""The content index on an Amazon Bedrock Knowledge Base: Kendra's successor for passages found by meaning.

Amazon Kendra closed to new customers on 2026-07-30 and AWS points new users
to Bedrock Knowledge Bases. This backend feeds a vector knowledge base through
a *custom* data source and reads it with ``Retrieve``.

What shapes the calls:

- **One labmesh passage is one knowledge base document.** The data source is
  made with the chunking strategy NONE, so the knowledge base embeds each
  document whole and a retrieval result is exactly one labmesh passage: its
  custom document id is the passage id (``raw/EXP-1/a.pdf#3``) and its
  metadata carries the labmesh document id, the ordinal and the passage's
  location, so a citation maps back without guessing. A document without
  passages is cut as the local index cuts it (`chunk_file`), so passage ids
  are the same in every profile.
- ``IngestKnowledgeBaseDocuments`` takes at most 10 documents, inline text and
  at most 50 inline metadata attributes each; a string list attribute holds at
  most 10 values. Ingestion is asynchronous: ``GetKnowledgeBaseDocuments`` (10
  ids a call) reads STARTING / PENDING / IN_PROGRESS until INDEXED or a failure
  (FAILED, PARTIALLY_INDEXED, METADATA_*, IGNORED). `replace` polls, bounded by
  a timeout, so its report is the truth.
- A document re-published with fewer passages leaves its old passages behind
  under their ids; they are found by asking the statuses of the ordinals past
  the new count (ordinals are contiguous, so the first NOT_FOUND ends the
  search) and removed with ``DeleteKnowledgeBaseDocuments`` (10 ids a call),
  as are all the passages of a removed document.
- **Access is a metadata filter.** A vector knowledge base has no per-document
  access list: ``userContext`` and a document's ``accessControlList`` are only
  honoured by *managed* knowledge bases whose data source was created with ACL
  awareness (``aclEnabled``), their entries are USER principals only (a user's
  e-mail address), and such a data source returns nothing to a query without a
  user context, so admins and labmesh itself would see nothing. labmesh
  therefore keeps each passage's access list as metadata (string lists
  ``access_0`` ... ``access_4``, 10 principals each) and every non-admin
  ``Retrieve`` carries an ``orAll`` of ``listContains`` over the viewer's
  principals, ANDed with the facets: the filter is in the query, applied
  before the ranking and the limit. Sample ids are spread over
  ``sample_ids_0`` ... the same way.
- ``created`` is sent as a NUMBER (seconds since the epoch) so that
  ``greaterThanOrEquals`` / ``lessThanOrEquals`` can bound it.
- Every call goes through one `PacedCaller`, retried with backoff on
  throttling and 5xx; what still fails is `ContentIndexUnavailable`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
    check_unique_ids,
    document_problem,
    stored_attributes,
    viewer_principals,
)
from labmesh_dagster.connectors.search.indexed_passages import document_passages
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.defaults import BEDROCK_CALLS_PER_SECOND
from labmesh_dagster.core.passages import (
    LocationKind,
    Passage,
    PassageHit,
    PassageLocation,
    SearchMode,
    passage_id,
)
from labmesh_dagster.core.text import clean_text

BATCH_SIZE = 10
"""Documents per IngestKnowledgeBaseDocuments, ids per Get/DeleteKnowledgeBaseDocuments: the model's maximum."""

MAX_RESULTS = 100
"""Retrieve's numberOfResults is at most 100."""

MAX_LIST_VALUES = 10
"""A STRING_LIST metadata value holds at most 10 strings."""

SLOTS = 5
"""String list attributes an access list (or a sample list) is spread over: 50 principals, 50 samples at most."""

MAX_STRING = 2048
"""A metadata string value's maximum length."""

MAX_TEXT = 5_242_880
"""Inline text content's maximum length, in characters."""

DOCUMENT_ID = "labmesh_document_id"
ORDINAL = "labmesh_ordinal"
LOCATION_KIND = "labmesh_location_kind"
LOCATION_START = "labmesh_location_start"
LOCATION_END = "labmesh_location_end"
LOCATION_LABEL = "labmesh_location_label"
TITLE = "labmesh_title"
URI = "labmesh_uri"
ACCESS = "access"
"""Prefix of the access slots: ``access_0`` ... ``access_4``."""

_WORD = re.compile(r"\w+")
_PENDING = frozenset({"STARTING", "PENDING", "IN_PROGRESS", "NOT_FOUND"})
_INDEXED = "INDEXED"
_DELETE_FAILED = frozenset({"FAILED", "METADATA_UPDATE_FAILED"})


def slot_keys(name: str) -> tuple[str, ...]:
    """The keys a list attribute is spread over: ``access_0`` ... ``access_4``."""
    return tuple(f"{name}_{slot}" for slot in range(SLOTS))


def _slotted(name: str, values: Sequence[str]) -> dict[str, list[str]]:
    return {
        key: list(values[start : start + MAX_LIST_VALUES])
        for key, start in zip(slot_keys(name), range(0, len(values), MAX_LIST_VALUES), strict=False)
    }


def _number(value: float) -> dict[str, Any]:
    return {"type": "NUMBER", "numberValue": float(value)}


def _string(value: str) -> dict[str, Any]:
    return {"type": "STRING", "stringValue": value}


def _strings(values: Sequence[str]) -> dict[str, Any]:
    return {"type": "STRING_LIST", "stringListValue": list(values)}


def _leaf(operation: str, key: str, value: Any) -> dict[str, Any]:
    return {operation: {"key": key, "value": value}}


def any_of(filters: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One filter, or an ``orAll`` of them (the model wants at least 2 in a list)."""
    return filters[0] if len(filters) == 1 else {"orAll": list(filters)}


def all_of(filters: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    if not filters:
        return None
    return filters[0] if len(filters) == 1 else {"andAll": list(filters)}


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


@dataclass(frozen=True)
class _Piece:
    """One knowledge base document: a passage of a labmesh document."""

    document_id: str
    passage: Passage
    request: dict[str, Any]

    @property
    def id(self) -> str:
        return self.passage.id


class BedrockKnowledgeBaseIndex(ContentIndex):
    """A knowledge base's custom data source; ``agent`` is ``boto3.client("bedrock-agent")``, ``runtime``
    ``boto3.client("bedrock-agent-runtime")`` (or test fakes)."""

    def __init__(
        self,
        agent: Any,
        runtime: Any,
        *,
        knowledge_base_id: str,
        data_source_id: str,
        max_per_second: float = BEDROCK_CALLS_PER_SECOND,
        status_timeout_seconds: float = 600,
        poll_seconds: float = 2,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        paced: dict[str, Any] = {"max_per_second": max_per_second}
        if clock is not None:
            paced["clock"] = clock
        if sleep is not None:
            paced["sleep"] = sleep
        self.call = PacedCaller(agent, **paced)
        self.ask = PacedCaller(runtime, **paced)
        self.knowledge_base_id = knowledge_base_id
        self.data_source_id = data_source_id
        self.schema = dict(CONTENT_ATTRIBUTES)
        self.status_timeout_seconds = status_timeout_seconds
        self.poll_seconds = poll_seconds
        self.clock = self.call.clock
        self.sleep = self.call.sleep

    @contextlib.contextmanager
    def _failure(self, action: str, passthrough: frozenset[str] = frozenset()) -> Iterator[None]:
        where = f"{action} (knowledge base {self.knowledge_base_id}, data source {self.data_source_id})"
        with clear_failure("Bedrock", where, ContentIndexUnavailable, passthrough=passthrough):
            yield

    def prepare(self) -> None:
        """Nothing to declare: a knowledge base takes any metadata key, typed per value."""

    # --- writing -------------------------------------------------------------------------------------

    def replace(self, documents: Sequence[ContentDocument], *, removed_ids: Sequence[str] = ()) -> IndexReport:
        """Ingest every passage, wait for their statuses, then delete what the new versions no longer hold.

        A document is indexed when all its passages are, and failed with the
        first reasons otherwise; the knowledge base keeps the earlier version of
        each passage that failed (its other passages are already the new ones),
        and a failed document's extra old passages stay until it is put again.
        """
        check_unique_ids(documents)
        failed: dict[str, str] = {}
        pieces: dict[str, list[_Piece]] = {}
        for document in documents:
            problem = document_problem(document, self.schema)
            passages = document_passages(document) if problem is None else ()
            problem = problem or self._problem(document, passages)
            if problem:
                failed[document.id] = problem
            else:
                pieces[document.id] = [self._piece(document, passage) for passage in passages]
        flat = [piece for group in pieces.values() for piece in group]
        outcome: dict[str, str | None] = {}
        for batch in _batches(flat):
            outcome.update(self._ingest(batch))
        waiting = [piece.id for piece in flat if piece.id not in outcome]
        outcome.update(self._await_statuses(waiting))
        indexed = []
        for document_id, group in pieces.items():
            reasons = [f"passage {piece.passage.ordinal}: {outcome[piece.id]}" for piece in group if outcome[piece.id]]
            if reasons:
                failed[document_id] = "; ".join(reasons[:3]) + (
                    f" (and {len(reasons) - 3} more)" if len(reasons) > 3 else ""
                )
            else:
                indexed.append(document_id)
        # Past the new passages lie the old version's extra ones; a removed document loses them all.
        put = {document.id for document in documents}
        removed = [document_id for document_id in dict.fromkeys(removed_ids) if document_id not in put]
        starts = {document_id: len(pieces[document_id]) for document_id in indexed}
        starts.update(dict.fromkeys(removed, 0))
        stale = self._existing_beyond(starts)
        refused = self._delete(stale)
        for document_id, reason in refused.items():
            failed.setdefault(document_id, reason)
        deleted = tuple(document_id for document_id in removed if document_id not in refused)
        return IndexReport(indexed=tuple(indexed), failed=failed, deleted=deleted)

    def _problem(self, document: ContentDocument, passages: Sequence[Passage]) -> str | None:
        """What the knowledge base refuses that the port's rules allow."""
        principals = access_principals(document.principals)
        if len(principals) > SLOTS * MAX_LIST_VALUES:
            return f"{len(principals)} principals; a Bedrock passage carries at most {SLOTS * MAX_LIST_VALUES}"
        samples = stored_attributes(document, self.schema).get(SAMPLE_IDS, [])
        if isinstance(samples, list) and len(samples) > SLOTS * MAX_LIST_VALUES:
            return f"{len(samples)} sample ids; a Bedrock passage carries at most {SLOTS * MAX_LIST_VALUES}"
        for passage in passages:
            if len(passage.id) > 2048:
                return f"passage id {passage.id[:60]}... is longer than 2048 characters"
            if len(passage.text) > MAX_TEXT:
                return f"passage {passage.ordinal} is longer than {MAX_TEXT} characters"
        return None

    def _piece(self, document: ContentDocument, passage: Passage) -> _Piece:
        metadata: dict[str, dict[str, Any]] = {
            DOCUMENT_ID: _string(document.id),
            ORDINAL: _number(passage.ordinal),
            LOCATION_KIND: _string(passage.location.kind.value),
        }
        location = passage.location
        if location.start is not None:
            metadata[LOCATION_START] = _number(location.start)
        if location.end is not None:
            metadata[LOCATION_END] = _number(location.end)
        if location.label:
            metadata[LOCATION_LABEL] = _string(clean_text(location.label)[:MAX_STRING])
        if document.title:
            metadata[TITLE] = _string(clean_text(document.title)[:MAX_STRING])
        if 1 <= len(document.uri) <= MAX_STRING:
            metadata[URI] = _string(clean_text(document.uri))
        for name, value in stored_attributes(document, self.schema).items():
            if name == SAMPLE_IDS:
                metadata.update({key: _strings(values) for key, values in _slotted(name, value).items()})  # type: ignore[arg-type]
            elif name == CREATED:
                metadata[name] = _number(_epoch(value))  # type: ignore[arg-type]
            elif isinstance(value, str):
                metadata[name] = _string(value)
            elif isinstance(value, int):
                metadata[name] = _number(value)
        access = _slotted(ACCESS, access_principals(document.principals))
        metadata.update({key: _strings(values) for key, values in access.items()})
        text = clean_text(passage.text if passage.text.strip() else (document.title or document.id))
        request = {
            "content": {
                "dataSourceType": "CUSTOM",
                "custom": {
                    "customDocumentIdentifier": {"id": passage.id},
                    "sourceType": "IN_LINE",
                    "inlineContent": {"type": "TEXT", "textContent": {"data": text}},
                },
            },
            "metadata": {
                "type": "IN_LINE_ATTRIBUTE",
                "inlineAttributes": [{"key": key, "value": value} for key, value in metadata.items()],
            },
        }
        return _Piece(document.id, passage, request)

    def _where(self) -> dict[str, str]:
        return {"knowledgeBaseId": self.knowledge_base_id, "dataSourceId": self.data_source_id}

    def _ingest(self, batch: Sequence[_Piece]) -> dict[str, str | None]:
        """Send one batch; the passages that failed at once, with their reason (the rest are polled)."""
        try:
            with self._failure("ingest documents", passthrough=frozenset({"ValidationException"})):
                answer = self.call(
                    "ingest_knowledge_base_documents", **self._where(), documents=[piece.request for piece in batch]
                )
        except ClientError as exc:
            # The whole batch was refused for a rule labmesh does not know of: report it, keep the others going.
            message = exc.response.get("Error", {}).get("Message", "")
            return dict.fromkeys(
                (piece.id for piece in batch), f"Bedrock refused the batch: {error_code(exc)}: {message}"
            )
        early: dict[str, str | None] = {}
        for detail in answer.get("documentDetails", []):
            status = detail["status"]
            if status in _PENDING or status == _INDEXED:
                continue
            early[detail["identifier"]["custom"]["id"]] = f"{status}: {detail.get('statusReason', 'refused')}"
        return early

    def _identifiers(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        return [{"dataSourceType": "CUSTOM", "custom": {"id": item}} for item in ids]

    def _statuses(self, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """``(status, reason)`` by passage id, read 10 ids a call."""
        statuses: dict[str, tuple[str, str]] = {}
        for batch in _batches(ids):
            with self._failure("read document statuses"):
                answer = self.call(
                    "get_knowledge_base_documents", **self._where(), documentIdentifiers=self._identifiers(batch)
                )
            for detail in answer.get("documentDetails", []):
                custom = detail["identifier"].get("custom")
                if custom:
                    statuses[custom["id"]] = (detail["status"], detail.get("statusReason", ""))
        return statuses

    def _await_statuses(self, ids: Sequence[str]) -> dict[str, str | None]:
        """Poll until every passage is final: None for indexed, the reason otherwise (or the timeout's)."""
        outcome: dict[str, str | None] = {}
        pending = list(ids)
        last: dict[str, str] = {}
        deadline = self.clock() + self.status_timeout_seconds
        while pending:
            for item, (status, reason) in self._statuses(pending).items():
                last[item] = status
                if status == _INDEXED:
                    outcome[item] = None
                elif status not in _PENDING:
                    outcome[item] = f"{status}: {reason or 'indexing failed'}"
            pending = [item for item in pending if item not in outcome]
            if not pending:
                break
            if self.clock() >= deadline:
                for item in pending:
                    seen = last.get(item, "no status")
                    outcome[item] = f"not indexed within {self.status_timeout_seconds:g} s (last: {seen})"
                break
            self.sleep(self.poll_seconds)
        return outcome

    def _existing_beyond(self, starts: Mapping[str, int]) -> dict[str, list[str]]:
        """The passage ids at or past each document's start ordinal that the data source still holds.

        Each round asks one ordinal of a document not yet known to have more,
        and ten at once of one that has: a document shrunk by k passages costs
        about k/10 rounds, an unchanged one a single status.
        """
        found: dict[str, list[str]] = {}
        next_ordinal = dict(starts)
        width = dict.fromkeys(starts, 1)
        while next_ordinal:
            asked = {
                passage_id(document_id, ordinal): document_id
                for document_id, start in next_ordinal.items()
                for ordinal in range(start, start + width[document_id])
            }
            statuses = self._statuses(list(asked))
            for document_id in list(next_ordinal):
                start = next_ordinal[document_id]
                ids = [passage_id(document_id, ordinal) for ordinal in range(start, start + width[document_id])]
                present = [item for item in ids if statuses.get(item, ("NOT_FOUND", ""))[0] != "NOT_FOUND"]
                found.setdefault(document_id, []).extend(present)
                if len(present) < len(ids):
                    del next_ordinal[document_id]
                else:
                    next_ordinal[document_id] = start + len(ids)
                    width[document_id] = BATCH_SIZE
        return {document_id: ids for document_id, ids in found.items() if ids}

    def _delete(self, stale: Mapping[str, Sequence[str]]) -> dict[str, str]:
        """Delete the passages; the documents whose delete was refused, with the reason."""
        owner = {item: document_id for document_id, ids in stale.items() for item in ids}
        refused: dict[str, str] = {}
        for batch in _batches(list(owner)):
            with self._failure("delete documents"):
                answer = self.call(
                    "delete_knowledge_base_documents", **self._where(), documentIdentifiers=self._identifiers(batch)
                )
            for detail in answer.get("documentDetails", []):
                custom = detail["identifier"].get("custom", {})
                if detail["status"] in _DELETE_FAILED and custom.get("id") in owner:
                    reason = detail.get("statusReason", "refused")
                    refused[owner[custom["id"]]] = f"delete of passage {custom['id']} failed: {reason}"
        return refused

    # --- reading -------------------------------------------------------------------------------------

    def retrieval_filter(self, filters: ContentFilter, viewer: Viewer | None) -> dict[str, Any] | None:
        """The facets and the access rule as one RetrievalFilter (None when there is nothing to filter)."""
        leaves: list[dict[str, Any]] = [_leaf("equals", name, value) for name, value in filters.equalities().items()]
        if filters.sample_id is not None:
            leaves.append(any_of([_leaf("listContains", key, filters.sample_id) for key in slot_keys(SAMPLE_IDS)]))
        if formats := filters.format_values():
            leaves.append(
                _leaf("in", FORMAT, list(formats)) if len(formats) > 1 else _leaf("equals", FORMAT, formats[0])
            )
        since, until = filters.created_bounds()
        if since is not None:
            leaves.append(_leaf("greaterThanOrEquals", CREATED, _epoch(since)))
        if until is not None:
            leaves.append(_leaf("lessThanOrEquals", CREATED, _epoch(until)))
        principals = viewer_principals(viewer)
        if principals is not None:
            leaves.append(
                any_of(
                    [
                        _leaf("listContains", key, principal)
                        for principal in sorted(principals)
                        for key in slot_keys(ACCESS)
                    ]
                )
            )
        return all_of(leaves)

    def _retrieve(self, text: str, filters: ContentFilter, viewer: Viewer | None, count: int) -> list[dict[str, Any]]:
        configuration: dict[str, Any] = {"numberOfResults": min(max(count, 1), MAX_RESULTS)}
        retrieval_filter = self.retrieval_filter(filters, viewer)
        if retrieval_filter is not None:
            configuration["filter"] = retrieval_filter
        with self._failure("retrieve"):
            answer = self.ask(
                "retrieve",
                knowledgeBaseId=self.knowledge_base_id,
                retrievalQuery={"text": text.strip()[:20000]},
                retrievalConfiguration={"vectorSearchConfiguration": configuration},
            )
        return list(answer.get("retrievalResults", []))

    def retrieve(
        self,
        text: str,
        *,
        filters: ContentFilter = NO_FILTER,
        viewer: Viewer | None = None,
        limit: int = 10,
        mode: SearchMode = SearchMode.HYBRID,
    ) -> list[PassageHit]:
        """The knowledge base's own ranking answers every ``mode`` (it embeds; hybrid only on some stores)."""
        if limit < 1:
            return []
        hits = [_passage_hit(result) for result in self._retrieve(text, filters, viewer, limit)]
        return [hit for hit in hits if hit is not None][:limit]

    def search(
        self,
        text: str,
        *,
        filters: ContentFilter = NO_FILTER,
        viewer: Viewer | None = None,
        limit: int = 10,
    ) -> list[ContentHit]:
        """Documents by their best passage that holds a word of ``text``: one hit per document.

        The port's search is by words (`labmesh search --content WORD`), while
        a knowledge base returns the nearest passages whether or not they hold
        any, so a passage counts only if it holds one of the words (all do for
        a blank text; none for text without words). Access and facets are in
        the Retrieve filter as always; this only keeps to the port's meaning.
        """
        if limit < 1:
            return []
        words = set(_WORD.findall(text.lower()))
        if text.strip() and not words:
            return []
        best: dict[str, ContentHit] = {}
        for result in self._retrieve(text, filters, viewer, MAX_RESULTS):
            hit = _passage_hit(result)
            if hit is None or hit.passage.document_id in best:
                continue
            if words and words.isdisjoint(_WORD.findall(hit.passage.text.lower())):
                continue
            best[hit.passage.document_id] = ContentHit(
                id=hit.passage.document_id,
                title=hit.title,
                uri=hit.uri,
                excerpt=hit.passage.text[:300],
                score=hit.score,
                attributes=dict(hit.attributes),
            )
        return list(best.values())[:limit]


def _batches(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), BATCH_SIZE):
        yield items[start : start + BATCH_SIZE]


def _whole(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _facets(metadata: Mapping[str, Any]) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {}
    for name, kind in CONTENT_ATTRIBUTES.items():
        if kind is AttributeType.STRING and isinstance(metadata.get(name), str):
            attributes[name] = metadata[name]
    samples = [value for key in slot_keys(SAMPLE_IDS) for value in metadata.get(key) or []]
    if samples:
        attributes[SAMPLE_IDS] = samples
    created = metadata.get(CREATED)
    if isinstance(created, (int, float)) and not isinstance(created, bool):
        attributes[CREATED] = datetime.fromtimestamp(created, tz=UTC)
    return attributes


def _passage_hit(result: Mapping[str, Any]) -> PassageHit | None:
    """A Retrieve result as a labmesh passage, or None for one labmesh did not put (no document id in its metadata)."""
    metadata = result.get("metadata") or {}
    document_id = metadata.get(DOCUMENT_ID)
    ordinal = _whole(metadata.get(ORDINAL))
    if not isinstance(document_id, str) or ordinal is None:
        return None
    try:
        kind = LocationKind(metadata.get(LOCATION_KIND, LocationKind.WHOLE.value))
    except ValueError:
        kind = LocationKind.WHOLE
    label = metadata.get(LOCATION_LABEL)
    location = PassageLocation(
        kind,
        _whole(metadata.get(LOCATION_START)),
        _whole(metadata.get(LOCATION_END)),
        label if isinstance(label, str) else None,
    )
    text = (result.get("content") or {}).get("text", "")
    title, uri = metadata.get(TITLE, ""), metadata.get(URI, "")
    return PassageHit(
        passage=Passage(document_id, ordinal, text, location),
        title=title if isinstance(title, str) else "",
        uri=uri if isinstance(uri, str) else "",
        score=float(result.get("score", 0.0)),
        attributes=_facets(metadata),
    )
