"""The content index port: documents made from files' extracted content, found by words, facets and access.

Amazon Kendra closed to new customers on 2026-07-30, so nothing outside this
package may depend on it: the port is what a Bedrock Knowledge Base backend
implements next, and the local profile's SQLite FTS5 index implements it today.

Access is the catalog's (`labmesh_dagster.core.access`): each document carries
its experiment's whole access list as principals (``group:<name>``,
``user:<name>``: the group, the owner, the people on it and labmesh's grants),
and a search for a viewer returns only documents whose list holds one of the
viewer's principals, filtered inside the backend's query. A document with an
empty list is seen by admins only, never by everyone: an experiment without a
group belongs to its owner and the admins.

The port's rules for a valid document are those of the strictest backend
(Kendra's): ids of at most 2048 characters, principals naming at most 200
printable characters, attributes declared up front with a fixed type. Every
implementation applies the same rules through `document_problem`, so a
document that one backend accepts, every backend accepts, and one that breaks
them is reported as failed (never raised) by all of them alike.
"""

from __future__ import annotations

import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from enum import StrEnum

from labmesh_dagster.core.access import GROUP as GROUP_PREFIX
from labmesh_dagster.core.access import USER as USER_PREFIX
from labmesh_dagster.core.access import Viewer, group_principal, user_principal
from labmesh_dagster.core.errors import LabmeshError
from labmesh_dagster.core.passages import Passage, PassageHit, SearchMode
from labmesh_dagster.core.text import is_clean_text

AttributeValue = str | list[str] | int | datetime
"""What an attribute holds: text, a list of texts (sample ids), a whole number or a moment."""

MAX_ID_LENGTH = 2048
"""Kendra's DocumentId limit; the other backends hold to it so ids stay portable."""

MAX_STRING_LENGTH = 2048
"""Kendra's limit on one string attribute value (and on each item of a string list)."""

MAX_GROUP_LENGTH = 200
"""Kendra's limit on an access control list principal's name (a group's or a user's)."""

MAX_TEXT_BYTES = 5 * 1024 * 1024
"""Kendra indexes at most 5 MB of text per document; a longer one would be cut without a word."""


class ContentIndexUnavailable(LabmeshError):
    """The index kept failing (throttling, 5xx, access, network) after its retries: the whole call failed."""


class AttributeType(StrEnum):
    """An attribute's type, fixed once declared (Kendra cannot change a field's type)."""

    STRING = "string"
    STRING_LIST = "string_list"
    LONG = "long"
    DATE = "date"


EXPERIMENT_ID = "experiment_id"
SAMPLE_IDS = "sample_ids"
PLATFORM = "platform"
GROUP = "group"
ZONE = "zone"
FORMAT = "format"
CREATED = "created"

CODECS = ("gz", "bz2", "xz", "zst")
"""Compression codecs a format name may end in (``fastq.gz``): those extraction undoes (a test keeps them in step)."""

CONTENT_ATTRIBUTES: Mapping[str, AttributeType] = {
    EXPERIMENT_ID: AttributeType.STRING,
    SAMPLE_IDS: AttributeType.STRING_LIST,
    PLATFORM: AttributeType.STRING,
    GROUP: AttributeType.STRING,
    ZONE: AttributeType.STRING,
    FORMAT: AttributeType.STRING,
    CREATED: AttributeType.DATE,
}
"""The attributes every labmesh document may carry, and the facets `ContentFilter` filters on."""


@dataclass(frozen=True)
class ContentDocument:
    """One searchable document: a file's extracted content with its facets and who may see it.

    ``principals`` is the access list, as `labmesh_dagster.core.access` spells
    it (``group:genomics``, ``user:ada``): the experiment's group, owner,
    people and grants. An empty tuple means admins only, never everyone.
    """

    id: str
    title: str
    text: str
    uri: str
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    principals: tuple[str, ...] = ()
    passages: tuple[Passage, ...] = ()
    """The text cut into passages with their places (`labmesh_dagster.semantic.chunking`); ordinals from 0.

    Empty: a backend that retrieves passages cuts ``text`` by its lines itself.
    """


@dataclass(frozen=True)
class IndexReport:
    """What a `ContentIndex.replace` achieved, once every document reached a final status."""

    indexed: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)
    deleted: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class ContentHit:
    """One matching document, best first; ``score`` only orders hits of one search (backends score differently)."""

    id: str
    title: str
    uri: str
    excerpt: str
    score: float
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True)
class ContentFilter:
    """Facet filters, combined with AND; strings match exactly, ``sample_id`` any of a document's samples.

    ``since`` and ``until`` bound the ``created`` attribute, both inclusive; a
    bare date as ``until`` means the whole of that day, and a naive datetime is
    taken as UTC.
    """

    experiment_id: str | None = None
    sample_id: str | None = None
    platform: str | None = None
    group: str | None = None
    zone: str | None = None
    format: str | None = None
    since: datetime | date | None = None
    until: datetime | date | None = None

    def equalities(self) -> dict[str, str]:
        """The string filters matched exactly, by attribute name.

        ``sample_id`` is not among them (it tests list membership), nor is
        ``format`` (it matches the compressed forms too: see `format_values`).
        """
        values = {
            EXPERIMENT_ID: self.experiment_id,
            PLATFORM: self.platform,
            GROUP: self.group,
            ZONE: self.zone,
        }
        return {name: value for name, value in values.items() if value is not None}

    def format_values(self) -> tuple[str, ...]:
        """The ``format`` values a file may have to pass the format filter; empty when there is none.

        A format is a file's content format, compressed or not: ``fastq``
        matches ``fastq`` and ``fastq.gz`` (and the other codecs), as people
        mean "FASTQ files". A format naming its codec (``fastq.gz``) matches
        only that.
        """
        if self.format is None:
            return ()
        wanted = self.format.strip().lower()
        base, _, codec = wanted.rpartition(".")
        if base and codec in CODECS:
            return (wanted,)
        return (wanted, *(f"{wanted}.{codec}" for codec in CODECS))

    def created_bounds(self) -> tuple[datetime | None, datetime | None]:
        """``since`` and ``until`` as aware UTC datetimes, both inclusive."""
        since = as_utc(self.since) if self.since is not None else None
        until = None
        if isinstance(self.until, datetime):
            until = as_utc(self.until)
        elif self.until is not None:
            until = datetime.combine(self.until, time.max, tzinfo=UTC)
        return since, until


NO_FILTER = ContentFilter()


def as_utc(moment: datetime | date) -> datetime:
    """An aware UTC datetime; a date is its midnight, a naive datetime is taken as UTC."""
    if not isinstance(moment, datetime):
        return datetime.combine(moment, time.min, tzinfo=UTC)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def is_printable(text: str) -> bool:
    """No control, format, private-use, surrogate or unassigned characters: Kendra's ``^\\P{C}*$`` for principals."""
    return not any(unicodedata.category(character).startswith("C") for character in text)


def valid_group(group: str) -> bool:
    return 1 <= len(group) <= MAX_GROUP_LENGTH and is_printable(group)


def principal_parts(principal: str) -> tuple[str, str] | None:
    """``("group", name)`` or ``("user", name)`` for a principal every backend can hold, else None."""
    for prefix in (GROUP_PREFIX, USER_PREFIX):
        if principal.startswith(prefix) and valid_group(principal[len(prefix) :]):
            return prefix[:-1], principal[len(prefix) :]
    return None


def viewer_principals(viewer: Viewer | None) -> frozenset[str] | None:
    """The principals a search filters on for ``viewer``; None (no filtering) for labmesh itself and admins."""
    if viewer is None or viewer.admin:
        return None
    return viewer.principals


def _value_problem(name: str, value: object, kind: AttributeType) -> str | None:
    if kind is AttributeType.STRING:
        if not isinstance(value, str):
            return f"attribute {name} must be text, got {type(value).__name__}"
        if not is_clean_text(value):
            return f"attribute {name} holds text that cannot be UTF-8"
        return (
            f"attribute {name} is longer than {MAX_STRING_LENGTH} characters"
            if len(value) > MAX_STRING_LENGTH
            else None
        )
    if kind is AttributeType.STRING_LIST:
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
            return f"attribute {name} must be a list of texts"
        if not all(is_clean_text(item) for item in value):
            return f"attribute {name} holds text that cannot be UTF-8"
        too_long = [item for item in value if len(item) > MAX_STRING_LENGTH]
        return f"attribute {name} has a value longer than {MAX_STRING_LENGTH} characters" if too_long else None
    if kind is AttributeType.LONG:
        return None if isinstance(value, int) and not isinstance(value, bool) else f"attribute {name} must be a number"
    return None if isinstance(value, (datetime, date)) else f"attribute {name} must be a date or datetime"


def document_problem(document: ContentDocument, schema: Mapping[str, AttributeType]) -> str | None:
    """Why no backend may index ``document``, or None: the port's rules, the strictest backend's."""
    if not 1 <= len(document.id) <= MAX_ID_LENGTH:
        return f"document id must be 1 to {MAX_ID_LENGTH} characters, not {len(document.id)}"
    # Ids, principals and facet values are matched exactly, so they are refused rather than silently altered
    # when they hold text that cannot be UTF-8 (a file name's lone surrogates); titles and text are cleaned.
    if not is_clean_text(document.id):
        return "document id holds text that cannot be UTF-8"
    if len(document.text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        return f"document text is larger than {MAX_TEXT_BYTES} bytes"
    problem = principals_problem(document.principals)
    if problem:
        return problem
    for ordinal, passage in enumerate(document.passages):
        if passage.document_id != document.id or passage.ordinal != ordinal:
            return f"passage {passage.id} is not passage {ordinal} of the document"
    for name, value in document.attributes.items():
        kind = schema.get(name)
        if kind is None:
            return f"attribute {name} is not declared; declared are {', '.join(sorted(schema))}"
        problem = _value_problem(name, value, kind)
        if problem:
            return problem
    return None


def stored_attributes(document: ContentDocument, schema: Mapping[str, AttributeType]) -> dict[str, AttributeValue]:
    """A valid document's attributes as every backend keeps them.

    Empty texts and empty lists are left out (Kendra refuses an empty string
    value, and an empty facet filters nothing), lists are deduplicated in
    order, and dates become aware UTC datetimes.
    """
    kept: dict[str, AttributeValue] = {}
    for name, value in document.attributes.items():
        kind = schema[name]
        if kind is AttributeType.STRING_LIST:
            items = list(dict.fromkeys(item for item in value if item))  # type: ignore[union-attr]
            if items:
                kept[name] = items
        elif kind is AttributeType.DATE:
            kept[name] = as_utc(value)  # type: ignore[arg-type]
        elif value != "":
            kept[name] = value
    return kept


def normal_principal(principal: str) -> str:
    """``principal`` as `labmesh_dagster.core.access` spells it (case and spaces normalised), as viewers hold it."""
    for prefix, normal in ((GROUP_PREFIX, group_principal), (USER_PREFIX, user_principal)):
        if principal.startswith(prefix):
            return normal(principal[len(prefix) :])
    return principal


def access_principals(principals: Collection[str]) -> tuple[str, ...]:
    """Principals normalised, deduplicated and sorted: the same list whatever order or case the caller gave."""
    return tuple(sorted({normal_principal(principal) for principal in principals}))


def principals_problem(principals: Collection[str]) -> str | None:
    """Why ``principals`` cannot be an access list, or None."""
    for principal in principals:
        if principal_parts(normal_principal(principal)) is None:
            return (
                f"principal {principal!r} cannot be in an access list: group:NAME or user:NAME,"
                f" the name 1 to {MAX_GROUP_LENGTH} printable characters"
            )
    return None


def check_unique_ids(documents: Sequence[ContentDocument]) -> None:
    """Refuse two documents with one id in a call: which one the index would keep is not defined."""
    seen: set[str] = set()
    for document in documents:
        if document.id in seen:
            raise ValueError(f"document id {document.id!r} is given twice in one replace")
        seen.add(document.id)


class ContentIndex(ABC):
    """A full-text index of documents, replaced by id, filtered by facets and by who may see them."""

    schema: Mapping[str, AttributeType] = CONTENT_ATTRIBUTES

    @abstractmethod
    def prepare(self) -> None:
        """Declare the attributes the index needs; idempotent, and cheap once done."""

    @abstractmethod
    def replace(self, documents: Sequence[ContentDocument], *, removed_ids: Sequence[str] = ()) -> IndexReport:
        """Put (or replace, by id) ``documents`` and delete ``removed_ids``.

        Returns only once every document reached a final status. A document
        that fails keeps its earlier version (if any) and is reported in
        ``failed`` with the reason; it is never raised. An id both put and
        removed is put. Raises `ContentIndexUnavailable` when the index itself
        cannot be reached, and `ValueError` for two documents with one id.
        """

    @abstractmethod
    def search(
        self,
        text: str,
        *,
        filters: ContentFilter = NO_FILTER,
        viewer: Viewer | None = None,
        limit: int = 10,
    ) -> list[ContentHit]:
        """Documents matching any word of ``text`` (all documents when it is blank), best first.

        ``viewer`` None (labmesh's own processes, the CLI) or an admin sees
        every document; any other viewer only those whose access list holds
        one of their principals, filtered inside the query before the limit.
        """

    @abstractmethod
    def retrieve(
        self,
        text: str,
        *,
        filters: ContentFilter = NO_FILTER,
        viewer: Viewer | None = None,
        limit: int = 10,
        mode: SearchMode = SearchMode.HYBRID,
    ) -> list[PassageHit]:
        """The passages that best answer ``text``, best first, under the same filters and access rule as `search`.

        ``mode`` ranks by words, by meaning or both fused; a backend that has
        one ranking only (Kendra's, Bedrock's) uses it for every mode. Access
        and filters go into the backend's query, never applied afterwards.
        """

    def embed_missing(self, *, limit: int | None = None) -> int:
        """Embed up to ``limit`` (None: every one) of the passages kept without their vector; how many were.

        A passage lacks one when its index was written before passages had
        vectors, or when embedding failed as it was put (logged and tolerated,
        its words indexed): dense ranking cannot find it until this runs.
        The ``content_vectors`` job calls it with a bound whenever
        `vectors_wanted`, so the index heals by itself; ``labmesh content
        embed`` calls it for all. This default is for the indexes that embed on their own servers (Kendra, Bedrock):
        nothing is ever missing there. Raises the embedder's `LabmeshError`.
        """
        return 0

    def vectors_wanted(self) -> bool:
        """Whether `embed_missing` has work: cheap enough for every tick of the ``content_vectors`` sensor.
        False for the indexes that embed on their own servers."""
        return False

    def update_access(
        self,
        experiment_id: str,
        principals: Collection[str],
        documents: Callable[[], Sequence[ContentDocument]],
    ) -> IndexReport:
        """Give the experiment's documents the access list ``principals`` (after a grant or a revoke).

        ``documents`` gives the experiment's documents as publishing makes them,
        carrying ``principals``: a backend that cannot change an access list in
        place puts them again (this default), one that can (SQLite) changes its
        rows and never calls it. Idempotent: the same list again changes nothing.
        """
        return self.replace(documents())
