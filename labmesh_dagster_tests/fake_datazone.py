"""An Amazon DataZone client for tests, held to botocore's own service model for ``datazone``.

moto does not serve DataZone, so `FakeDataZoneClient` stands in for
``boto3.client("datazone")`` with one domain's catalog in memory: metadata
form types (their Smithy models parsed far enough to check form content and to
know which members are ``@amazon.datazone#searchable`` or ``#sortable``), asset
types, glossaries and terms, assets and their revisions, listings, and lineage
events. Every request and response goes through the checks of
`labmesh_dagster_tests.service_model`, so what the fake accepts the model
allows, and errors carry only codes the operation declares.

Beyond the model, the fake behaves as AWS's documentation says DataZone does,
because a fake that only checks request shapes cannot catch a client that
misreads the service:

- every custom asset type gets DataZone's own ``AssetCommonDetailsForm`` slot
  (``amazon.datazone.AssetCommonDetailsFormType`` revision 6, as in the
  ``CreateAssetType`` API reference example), every asset revision carries that
  form, and listings show it;
- ``CreateFormType`` and ``CreateAssetType`` refuse a name the domain already
  has with ``ConflictException`` (the API reference: names are unique in a
  domain, "duplicate names will cause failure");
- ``CreateAssetRevision`` makes the revision of exactly the forms it is given:
  a form left out is gone from the new revision;
- ``@amazon.datazone#searchable`` members are matched per their ``modes``
  (``CreateFormType``): semantic by default (related words match: the fake's
  model of it is "shares a word's first four letters with a value word", so it
  over-matches as a semantic index does), ``LEXICAL`` (every word must occur,
  a word matching the start of a value word) or ``TECHNICAL`` (a whole value,
  case-insensitively; ``EQ`` exactly). A ``searchText`` in double quotes is
  lexical on every member (``Search``: "enclose the query with double quotes");
- ``#sortable`` is accepted on numeric members only, and filters only on the
  attributes the ``Search`` reference names: form members,
  ``__DataZoneGlossaryTerms``, ``creationTime`` and ``lastUpdatedTime``;
- ``GetAsset`` takes ``externalIdentifer/<externalIdentifier>`` (sic) as its
  identifier, as its API reference documents, although the model's pattern
  for the member would not allow it;
- what comes back is not byte for byte what was sent: form content is
  re-serialized with timestamps in the service's UTC milliseconds, and a form
  type's Smithy model loses its documentation comments;
- a V2 (SageMaker Unified Studio) domain (``domain_version="V2"``) refuses to
  create form types, asset types and glossaries without the owning project's
  ``CREATE_FORM_TYPE``, ``CREATE_ASSET_TYPE`` and ``CREATE_GLOSSARY`` policy
  grants (``policy_grants``), with ``AccessDeniedException``;
- an asset belongs to its owning project: creating, revising, publishing or
  deleting it needs the caller to be an owner or contributor of that project
  (``member_of``; the user guide's "you must be the owner or the contributor"
  of the project), else ``AccessDeniedException``; an inventory ``Search`` of
  assets shows only the caller's projects' assets, and a project's inventory
  is searched only by its members. No operation changes an asset's project
  (the fake does not model ``UpdateAssetOwner``);
- ``DeleteAsset`` removes the asset and its listing ("Delete an Amazon
  DataZone asset"), and frees its externalIdentifier; an asset whose listing
  has subscriptions is refused with ``ConflictException`` ("you must first
  revoke all of its subscriptions"). Subscriptions are not modeled beyond that:
  `FakeDataZoneClient.add_subscription` stands in for one.

Where the service's behaviour is not in the model or the documentation, the
fake picks one reading and its docstrings say which. It refuses rather than guesses when a request
uses something it does not model, raising `ModelViolation`, so a test learns
about the fake's limit instead of trusting a made-up answer.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from botocore.exceptions import ClientError
from botocore.response import StreamingBody

from labmesh_dagster_tests.service_model import FakeServiceClient, ModelViolation, load_model, matches

SERVICE = "datazone"
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_EPOCH = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
_DEFAULT_PAGE = 50


class SmithyError(ValueError):
    """A Smithy model the service would reject: answered as a ``ValidationException``."""


_PRELUDE_KINDS = {
    "String": "string",
    "Integer": "integer",
    "Long": "integer",
    "Short": "integer",
    "Byte": "integer",
    "BigInteger": "integer",
    "Float": "float",
    "Double": "float",
    "BigDecimal": "float",
    "Boolean": "boolean",
    "Timestamp": "timestamp",
}
_SIMPLE_KEYWORDS = {
    "string": "string",
    "integer": "integer",
    "long": "integer",
    "short": "integer",
    "byte": "integer",
    "bigInteger": "integer",
    "float": "float",
    "double": "float",
    "bigDecimal": "float",
    "boolean": "boolean",
    "timestamp": "timestamp",
}
# Valid Smithy the fake does not model: refused with ModelViolation, never answered as if malformed.
_UNMODELED_KEYWORDS = frozenset(
    {"map", "union", "enum", "intEnum", "set", "document", "blob", "service", "resource", "operation", "apply"}
)
_PRELUDE_TRAITS = frozenset({"required", "length", "range", "pattern", "documentation", "deprecated", "sensitive"})
_DATAZONE_TRAITS = frozenset({"searchable", "sortable", "glossaryterm"})
SEARCHABLE = "amazon.datazone#searchable"
SORTABLE = "amazon.datazone#sortable"
_NUMERIC_KINDS = frozenset({"integer", "float"})
_KIND_NOUNS = {
    "string": "a string",
    "integer": "an integer",
    "float": "a number",
    "boolean": "a boolean",
    "timestamp": "a timestamp (epoch seconds or ISO 8601 text)",
}

_TOKEN = re.compile(
    r"""
    (?P<space>[\s,]+)
    |(?P<comment>//[^\n]*)
    |(?P<string>"(?:[^"\\]|\\.)*")
    |(?P<trait>@[A-Za-z_][\w.]*(?:\#[A-Za-z_]\w*)?)
    |(?P<control>\$[A-Za-z_]\w*)
    |(?P<identifier>[A-Za-z_][\w.]*(?:\#[A-Za-z_]\w*)?)
    |(?P<number>-?\d+(?:\.\d+)?)
    |(?P<punctuation>[{}()\[\]:=])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class SmithyMember:
    name: str
    target: str
    traits: Mapping[str, Any]


@dataclass(frozen=True)
class SmithyShape:
    """A structure, a list (one member named ``member``) or a simple shape (``kind`` is its type)."""

    name: str
    kind: str
    traits: Mapping[str, Any] = field(default_factory=dict)
    members: Mapping[str, SmithyMember] = field(default_factory=dict)


@dataclass(frozen=True)
class SmithyModel:
    shapes: Mapping[str, SmithyShape]

    def resolve(self, target: str) -> SmithyShape:
        name = target.removeprefix("smithy.api#")
        if name in self.shapes:
            return self.shapes[name]
        return SmithyShape(name=name, kind=_PRELUDE_KINDS[name])


def parse_smithy(text: str) -> SmithyModel:
    """The shapes of a Smithy IDL model, or `SmithyError` for what Smithy's own validation rejects."""
    parser = _SmithyParser(_tokens(text))
    model = parser.model()
    _check_targets(model)
    return model


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise SmithyError(f"unexpected character {text[position]!r} at offset {position}")
        kind = match.lastgroup or ""
        if kind not in {"space", "comment"}:
            tokens.append((kind, match.group()))
        position = match.end()
    return tokens


class _SmithyParser:
    """A recursive-descent reader of the IDL subset forms use: control lines, namespace, use, shapes, traits."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.position = 0
        self.uses: dict[str, str] = {}

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def take(self, kind: str, text: str | None = None) -> str:
        token_kind, token_text = self.peek()
        if token_kind != kind or (text is not None and token_text != text):
            expected = text or kind
            raise SmithyError(f"expected {expected} but found {token_text or 'the end of the model'!r}")
        self.position += 1
        return token_text

    def model(self) -> SmithyModel:
        while self.peek()[0] == "control":
            self.control()
        if self.peek() == ("identifier", "namespace"):
            self.position += 1
            self.take("identifier")
        while self.peek() == ("identifier", "use"):
            self.position += 1
            shape_id = self.take("identifier")
            if "#" not in shape_id:
                raise SmithyError(f"use needs an absolute shape id, not {shape_id!r}")
            self.uses[shape_id.split("#", 1)[1]] = shape_id
        shapes: dict[str, SmithyShape] = {}
        while self.peek()[0] != "end":
            shape = self.shape()
            if shape.name in shapes or shape.name in _PRELUDE_KINDS:
                raise SmithyError(f"shape {shape.name} is defined twice")
            shapes[shape.name] = shape
        return SmithyModel(shapes)

    def control(self) -> None:
        name = self.take("control")
        self.take("punctuation", ":")
        value = self.node_value()
        if name == "$version" and value not in {"1", "1.0", "2", "2.0"}:
            raise SmithyError(f"unsupported Smithy version {value!r}")

    def shape(self) -> SmithyShape:
        traits = self.traits()
        keyword = self.take("identifier")
        if keyword in _UNMODELED_KEYWORDS:
            raise ModelViolation(f"the fake does not model Smithy {keyword} shapes")
        if keyword not in _SIMPLE_KEYWORDS and keyword not in {"structure", "list"}:
            raise SmithyError(f"unknown shape type {keyword!r}")
        name = self.take("identifier")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise SmithyError(f"invalid shape name {name!r}")
        if keyword in _SIMPLE_KEYWORDS:
            return SmithyShape(name=name, kind=_SIMPLE_KEYWORDS[keyword], traits=traits)
        members = self.members()
        if keyword == "list" and set(members) != {"member"}:
            raise SmithyError(f"list {name} must have exactly one member named member")
        return SmithyShape(name=name, kind=keyword, traits=traits, members=members)

    def members(self) -> dict[str, SmithyMember]:
        self.take("punctuation", "{")
        members: dict[str, SmithyMember] = {}
        while self.peek() != ("punctuation", "}"):
            traits = self.traits()
            name = self.take("identifier")
            self.take("punctuation", ":")
            target = self.take("identifier")
            if self.peek() == ("punctuation", "="):
                raise ModelViolation("the fake does not model Smithy default values")
            if name in members:
                raise SmithyError(f"member {name} is defined twice")
            members[name] = SmithyMember(name=name, target=target, traits=traits)
        self.take("punctuation", "}")
        return members

    def traits(self) -> dict[str, Any]:
        traits: dict[str, Any] = {}
        while self.peek()[0] == "trait":
            shape_id = self.trait_id(self.take("trait")[1:])
            traits[shape_id] = self.trait_value() if self.peek() == ("punctuation", "(") else None
        return traits

    def trait_id(self, name: str) -> str:
        shape_id = name if "#" in name else self.uses.get(name, f"smithy.api#{name}")
        namespace, _, short = shape_id.partition("#")
        known = (namespace == "smithy.api" and short in _PRELUDE_TRAITS) or (
            namespace == "amazon.datazone" and short in _DATAZONE_TRAITS
        )
        if not known:
            raise SmithyError(f"unable to resolve trait {name!r}")
        return shape_id.removeprefix("smithy.api#")

    def trait_value(self) -> Any:
        self.take("punctuation", "(")
        if self.peek() == ("punctuation", ")"):
            value: Any = None
        elif self.peek(1) == ("punctuation", ":"):
            value = self.object_body(")")
        else:
            value = self.node_value()
        self.take("punctuation", ")")
        return value

    def object_body(self, closing: str) -> dict[str, Any]:
        entries: dict[str, Any] = {}
        while self.peek() != ("punctuation", closing):
            kind, key = self.peek()
            if kind not in {"identifier", "string"}:
                raise SmithyError(f"expected a key but found {key!r}")
            self.position += 1
            self.take("punctuation", ":")
            entries[json.loads(key) if kind == "string" else key] = self.node_value()
        return entries

    def node_value(self) -> Any:
        kind, text = self.peek()
        self.position += 1
        if kind == "string":
            return json.loads(text)
        if kind == "number":
            return float(text) if "." in text else int(text)
        if kind == "identifier" and text in {"true", "false", "null"}:
            return {"true": True, "false": False, "null": None}[text]
        if (kind, text) == ("punctuation", "["):
            values = []
            while self.peek() != ("punctuation", "]"):
                values.append(self.node_value())
            self.take("punctuation", "]")
            return values
        if (kind, text) == ("punctuation", "{"):
            entries = self.object_body("}")
            self.take("punctuation", "}")
            return entries
        raise SmithyError(f"expected a value but found {text or 'the end of the model'!r}")


def _check_targets(model: SmithyModel) -> None:
    for shape in model.shapes.values():
        for member in shape.members.values():
            name = member.target.removeprefix("smithy.api#")
            if name not in model.shapes and name not in _PRELUDE_KINDS:
                raise SmithyError(f"{shape.name}.{member.name} targets {member.target}, which is not defined")
        _check_constraint_traits(shape.name, shape.traits)
        for member in shape.members.values():
            _check_constraint_traits(f"{shape.name}.{member.name}", member.traits)


def _check_constraint_traits(where: str, traits: Mapping[str, Any]) -> None:
    for name in ("length", "range"):
        value = traits.get(name, {})
        if not isinstance(value, dict) or not set(value) <= {"min", "max"}:
            raise SmithyError(f"{where}: @{name} takes min and max")
        if not all(isinstance(bound, (int, float)) and not isinstance(bound, bool) for bound in value.values()):
            raise SmithyError(f"{where}: @{name} bounds must be numbers")
    if "pattern" in traits:
        try:
            # Smithy patterns are ECMA-262 and unanchored; Python's re.search reads the common subset alike.
            re.compile(traits["pattern"])
        except (re.error, TypeError) as error:
            raise SmithyError(f"{where}: invalid @pattern: {error}") from error


def _merged_traits(model: SmithyModel, member: SmithyMember) -> dict[str, Any]:
    return {**model.resolve(member.target).traits, **member.traits}


def content_problems(content: Any, model: SmithyModel, structure: str) -> list[str]:
    """Why form content (parsed JSON) is not valid for the form's structure: unknown, missing or mistyped members."""
    return _structure_problems(content, model, model.resolve(structure), structure)


def _structure_problems(value: Any, model: SmithyModel, shape: SmithyShape, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path} must be a JSON object"]
    problems = [f"{path}.{key} is not a member of {shape.name}" for key in value if key not in shape.members]
    for member in shape.members.values():
        traits = _merged_traits(model, member)
        member_value = value.get(member.name)
        if member_value is None:
            if "required" in traits:
                problems.append(f"{path}.{member.name} is required")
            continue
        problems += _value_problems(member_value, model, model.resolve(member.target), traits, f"{path}.{member.name}")
    return problems


def _value_problems(
    value: Any, model: SmithyModel, shape: SmithyShape, traits: Mapping[str, Any], path: str
) -> list[str]:
    kind = shape.kind
    if kind == "structure":
        return _structure_problems(value, model, shape, path)
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path} must be a JSON array"]
        element = shape.members["member"]
        element_traits = _merged_traits(model, element)
        problems = _length_problems(len(value), traits, path)
        for index, item in enumerate(value):
            problems += _value_problems(item, model, model.resolve(element.target), element_traits, f"{path}[{index}]")
        return problems
    if not _has_kind(value, kind):
        return [f"{path} must be {_KIND_NOUNS[kind]}, not {json.dumps(value)}"]
    return _scalar_constraint_problems(value, kind, traits, path)


def _has_kind(value: Any, kind: str) -> bool:
    if isinstance(value, bool):
        return kind == "boolean"
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int)
    if kind == "float":
        return isinstance(value, (int, float))
    if kind == "timestamp":
        return isinstance(value, (int, float)) or (isinstance(value, str) and _iso_time(value) is not None)
    return False


def _scalar_constraint_problems(value: Any, kind: str, traits: Mapping[str, Any], path: str) -> list[str]:
    problems: list[str] = []
    if kind == "string":
        problems += _length_problems(len(value), traits, path)
        if "pattern" in traits and re.search(traits["pattern"], value) is None:
            problems.append(f"{path} does not match the pattern {traits['pattern']}")
    if kind in _NUMERIC_KINDS:
        bounds = traits.get("range", {})
        if value < bounds.get("min", value) or value > bounds.get("max", value):
            problems.append(f"{path} is outside the range {bounds}")
    return problems


def _length_problems(length: int, traits: Mapping[str, Any], path: str) -> list[str]:
    bounds = traits.get("length", {})
    if length < bounds.get("min", length) or length > bounds.get("max", length):
        return [f"{path} has length {length}, outside {bounds}"]
    return []


def _iso_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


SEMANTIC = "SEMANTIC"
LEXICAL = "LEXICAL"
TECHNICAL = "TECHNICAL"
_DOCUMENTED_MODES = frozenset({LEXICAL, TECHNICAL})


@dataclass(frozen=True)
class _Attribute:
    """What Search may do with an attribute: text search in ``modes``, EQ only, intValue comparisons, sorting.

    ``filterable`` is False for attributes the fake searches text in but no
    document names as a filter attribute (an asset's ``name``, a term's
    ``shortDescription``...).
    """

    searchable: bool = False
    keyword: bool = False
    numeric: bool = False
    sortable: bool = False
    modes: frozenset[str] = frozenset()
    filterable: bool = True

    def merged(self, other: _Attribute) -> _Attribute:
        return _Attribute(
            searchable=self.searchable or other.searchable,
            keyword=self.keyword or other.keyword,
            numeric=self.numeric or other.numeric,
            sortable=self.sortable or other.sortable,
            modes=self.modes | other.modes,
            filterable=self.filterable or other.filterable,
        )


def _search_modes(value: Any) -> frozenset[str]:
    """The modes of a ``#searchable`` trait: semantic when none are given (``CreateFormType``)."""
    if value is None:
        return frozenset({SEMANTIC})
    modes = value.get("modes") if isinstance(value, dict) else None
    if not isinstance(modes, list) or not modes or not all(isinstance(mode, str) for mode in modes):
        raise SmithyError(f"@amazon.datazone#searchable takes modes: a list of search modes, not {value!r}")
    unknown = sorted(set(modes) - _DOCUMENTED_MODES)
    if unknown:
        raise ModelViolation(f"the fake knows the documented modes LEXICAL and TECHNICAL, not {unknown}")
    return frozenset(modes)


def _form_attributes(form_name: str, model: SmithyModel, structure: str) -> dict[str, _Attribute]:
    """How Search may address each top-level member of a form, as ``<FormName>.<member>``."""
    attributes: dict[str, _Attribute] = {}
    for member in model.resolve(structure).members.values():
        traits = _merged_traits(model, member)
        shape = model.resolve(member.target)
        sortable = SORTABLE in traits
        searchable = SEARCHABLE in traits
        attributes[f"{form_name}.{member.name}"] = _Attribute(
            searchable=searchable,
            numeric=sortable and shape.kind in _NUMERIC_KINDS,
            sortable=sortable,
            modes=_search_modes(traits[SEARCHABLE]) if searchable else frozenset(),
        )
    return attributes


def _check_index_traits(model: SmithyModel) -> None:
    """``#searchable`` modes must be documented ones, and ``#sortable`` marks numeric members only.

    The ``Search`` reference speaks of "a numeric attribute annotated with
    @amazon.datazone#sortable"; the fake reads that as the only kind DataZone sorts and compares.
    """
    for shape in model.shapes.values():
        for member in shape.members.values():
            traits = _merged_traits(model, member)
            if SEARCHABLE in traits:
                _search_modes(traits[SEARCHABLE])
            kind = model.resolve(member.target).kind
            if SORTABLE in traits and kind not in _NUMERIC_KINDS:
                raise SmithyError(f"{shape.name}.{member.name}: #sortable applies to numeric members, not a {kind}")


# The built-in attributes the fake knows per scope. The service documents filters on
# __DataZoneGlossaryTerms, creationTime and lastUpdatedTime (epoch milliseconds here); names and
# descriptions are searched as text, semantically (the fake's reading), and are no filter attributes.
_TIMES = {
    "creationTime": _Attribute(numeric=True, sortable=True),
    "lastUpdatedTime": _Attribute(numeric=True, sortable=True),
}
_TEXT = _Attribute(searchable=True, modes=frozenset({SEMANTIC}), filterable=False)
_NAME = {"name": _Attribute(searchable=True, sortable=True, modes=frozenset({SEMANTIC}), filterable=False)}
_ASSET_ATTRIBUTES = {
    **_NAME,
    **_TIMES,
    "description": _TEXT,
    "__DataZoneGlossaryTerms": _Attribute(keyword=True),
}
_GLOSSARY_ATTRIBUTES = {**_NAME, **_TIMES, "description": _TEXT}
_TERM_ATTRIBUTES = {**_NAME, **_TIMES, "shortDescription": _TEXT, "longDescription": _TEXT}
COMMON_FORM = "AssetCommonDetailsForm"
COMMON_FORM_TYPE = "amazon.datazone.AssetCommonDetailsFormType"
COMMON_FORM_REVISION = "6"
# The one member of DataZone's common form the fake models (the service's has customProperties too).
_COMMON_FORM_SMITHY = """structure AssetCommonDetailsFormType {
    sourceIdentifier: String
}
"""
_BY_EXTERNAL_ID = "externalIdentifer/"
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "EQ": lambda left, right: left == right,
    "LT": lambda left, right: left < right,
    "LE": lambda left, right: left <= right,
    "GT": lambda left, right: left > right,
    "GE": lambda left, right: left >= right,
}


@dataclass
class _FormTypeRevision:
    revision: str
    smithy: str
    model: SmithyModel
    description: str | None
    status: str
    created: datetime


RevisionT = TypeVar("RevisionT")


@dataclass
class _Versioned(Generic[RevisionT]):
    """A form type or asset type: its name, its project and its revisions, oldest first."""

    name: str
    owning_project: str
    revisions: list[RevisionT]

    def revision(self, revision: str | None) -> RevisionT | None:
        return _pick(self.revisions, revision)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _FormSlot:
    type_name: str
    type_revision: str
    required: bool


@dataclass
class _AssetTypeRevision:
    revision: str
    description: str | None
    forms: dict[str, _FormSlot]
    created: datetime


_FormType = _Versioned[_FormTypeRevision]
_AssetType = _Versioned[_AssetTypeRevision]


@dataclass(frozen=True)
class _Form:
    name: str
    type_name: str
    type_revision: str
    content: str
    values: dict[str, Any]


@dataclass(frozen=True)
class _AssetRevision:
    revision: str
    name: str
    description: str | None
    type_revision: str
    forms: tuple[_Form, ...]
    glossary_terms: tuple[str, ...]
    created: datetime


@dataclass
class _Asset:
    id: str
    type_name: str
    owning_project: str
    external_identifier: str | None
    revisions: list[_AssetRevision]
    listing_id: str | None = None

    def revision(self, revision: str | None) -> _AssetRevision | None:
        return _pick(self.revisions, revision)


@dataclass
class _Listing:
    id: str
    asset_id: str
    revisions: list[_AssetRevision]
    status: str
    created: datetime
    updated: datetime


@dataclass
class _Glossary:
    id: str
    name: str
    owning_project: str
    description: str | None
    status: str
    usage_restrictions: list[str] | None
    created: datetime


@dataclass
class _Term:
    id: str
    glossary_id: str
    name: str
    short_description: str | None
    long_description: str | None
    relations: dict[str, list[str]] | None
    status: str
    created: datetime


@dataclass
class _LineageEvent:
    id: str
    event: bytes
    summary: dict[str, Any] | None
    event_time: datetime
    created: datetime
    reads: int = 0


@dataclass
class _Entry:
    """One search hit candidate: the response item, each attribute's values, and the text search reads."""

    item: dict[str, Any]
    values: dict[str, list[Any]]
    text: dict[str, list[str]]


def _pick(revisions: Sequence[Any], revision: str | None) -> Any:
    if revision is None:
        return revisions[-1] if revisions else None
    return next((candidate for candidate in revisions if candidate.revision == revision), None)


def _terms(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _lexical(wanted: Sequence[str], words: Sequence[str]) -> bool:
    """Every query word occurs, as a word or the start of one ("stemmed and partial matches")."""
    return bool(wanted) and all(any(word.startswith(term) for word in words) for term in wanted)


def _related(wanted: Sequence[str], words: Sequence[str]) -> bool:
    """The fake's model of semantic matching: some query word shares its first four letters with a value word."""
    return any(word[:4] == term[:4] for term in wanted for word in words)


def _matches(modes: frozenset[str], query: str, values: Iterable[Any], *, exact: bool) -> bool:
    """Whether a member's values match ``query`` in any of its search modes.

    TECHNICAL matches a whole value (``EQ``: exactly; text search: ignoring
    case); LEXICAL needs every word; the semantic default matches related words.
    """
    texts = [str(value) for value in values]
    words = _terms(" ".join(texts))
    wanted = _terms(query)
    if TECHNICAL in modes:
        same = (lambda text: text == query) if exact else (lambda text: text.casefold() == query.casefold())
        if any(same(text) for text in texts):
            return True
    if LEXICAL in modes and _lexical(wanted, words):
        return True
    return SEMANTIC in modes and _related(wanted, words)


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _without_none(values: Mapping[str, Any]) -> dict[str, Any]:
    """Optional members left out rather than sent as null, as the service's JSON does."""
    return {key: value for key, value in values.items() if value is not None and value != [] and value != {}}


class _IdMint:
    """Deterministic ids of 14 lowercase letters and digits: valid for every DataZone id pattern the fake answers."""

    def __init__(self, seed: str) -> None:
        self._seed = seed
        self._count = 0

    def __call__(self) -> str:
        self._count += 1
        number = int.from_bytes(hashlib.sha256(f"{self._seed}:{self._count}".encode()).digest(), "big")
        characters = []
        for _ in range(14):
            number, digit = divmod(number, len(_ALPHABET))
            characters.append(_ALPHABET[digit])
        return "".join(characters)


class FakeDataZoneClient(FakeServiceClient):
    """One DataZone domain's catalog, answering like ``boto3.client("datazone")``.

    ``domain_id`` and ``project_ids`` must satisfy the model's patterns; by
    default they are generated (``dzd_`` and 14 letters or digits, as the
    service's look). A request for another domain is answered with
    ``AccessDeniedException``, as a caller without access to it is. A lineage
    event reads REQUESTED on the first GetLineageEvent, PROCESSING until
    ``lineage_reads_to_finish`` reads have happened, then SUCCESS, or FAILED
    if it is not valid JSON or not an OpenLineage run event. ``clock`` stamps
    each call (see `FakeServiceClient`); the catalog's own timestamps advance
    one second per write so that orderings are deterministic.
    """

    service_name = SERVICE

    def __init__(
        self,
        *,
        domain_id: str | None = None,
        project_ids: Sequence[str] = (),
        lineage_reads_to_finish: int = 2,
        user: str = "fake-user",
        seed: str = "labmesh",
        domain_version: str = "V1",
        policy_grants: Iterable[str] = ("CREATE_FORM_TYPE", "CREATE_ASSET_TYPE", "CREATE_GLOSSARY"),
        member_of: Iterable[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(clock=clock)
        self.domain_version = domain_version
        self.policy_grants = set(policy_grants)
        self._mint = _IdMint(seed)
        self.domain_id = domain_id or f"dzd_{self._mint()}"
        self.project_ids = list(project_ids) or [self._mint()]
        self.project_id = self.project_ids[0]
        _require_pattern(self.domain_id, "DomainId")
        for project_id in self.project_ids:
            _require_pattern(project_id, "ProjectId")
        self.member_of = set(self.project_ids if member_of is None else member_of)
        self.subscribed_listings: set[str] = set()
        self.lineage_reads_to_finish = lineage_reads_to_finish
        self.user = user
        self.form_types: dict[str, _FormType] = {}
        self.asset_types: dict[str, _AssetType] = {}
        self.glossaries: dict[str, _Glossary] = {}
        self.terms: dict[str, _Term] = {}
        self.assets: dict[str, _Asset] = {}
        self.listings: dict[str, _Listing] = {}
        self.lineage_events: dict[str, _LineageEvent] = {}
        self._tokens: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
        self._moment = _EPOCH
        self._install_common_form()

    def _install_common_form(self) -> None:
        """DataZone's own form type, present in every domain and owned by no project."""
        parsed = parse_smithy(_COMMON_FORM_SMITHY)
        model = SmithyModel({COMMON_FORM_TYPE: parsed.shapes["AssetCommonDetailsFormType"]})
        revision = _FormTypeRevision(
            revision=COMMON_FORM_REVISION,
            smithy=_COMMON_FORM_SMITHY,
            model=model,
            description="Common details of an asset",
            status="ENABLED",
            created=_EPOCH,
        )
        self.form_types[COMMON_FORM_TYPE] = _Versioned(name=COMMON_FORM_TYPE, owning_project="", revisions=[revision])

    def _require_grant(self, operation_name: str, grant: str) -> None:
        """A V2 domain lets a project create types and glossaries only with its domain unit's policy grant."""
        if self.domain_version == "V2" and grant not in self.policy_grants:
            raise self._error(
                operation_name,
                "AccessDeniedException",
                f"User is not permitted to perform operation: {operation_name}: no {grant} policy grant",
            )

    def _require_member(self, operation_name: str, project_id: str) -> None:
        """Assets are written only by an owner or contributor of the project that owns them."""
        if project_id not in self.member_of:
            raise self._error(
                operation_name,
                "AccessDeniedException",
                f"User is not permitted to perform operation: {operation_name}: not an owner or contributor of "
                f"project {project_id}",
            )

    def _tick(self) -> datetime:
        self._moment += timedelta(seconds=1)
        return self._moment

    def _begin(self, operation_name: str, params: Mapping[str, Any]) -> None:
        self._receive(operation_name, params)
        if params["domainIdentifier"] != self.domain_id:
            raise self._error(
                operation_name, "AccessDeniedException", f"no access to domain {params['domainIdentifier']}"
            )

    def _project(self, operation_name: str, project_id: str) -> str:
        if project_id not in self.project_ids:
            raise self._missing(operation_name, f"project {project_id} not found in domain {self.domain_id}")
        return project_id

    def _invalid(self, operation_name: str, message: str) -> ClientError:
        return self._error(operation_name, "ValidationException", message)

    def _once(
        self, operation_name: str, params: Mapping[str, Any], create: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """Honour ``clientToken``: a retry with the same request gets the first answer, other requests a conflict."""
        token = params.get("clientToken")
        if token is None:
            return create()
        request = {key: value for key, value in params.items() if key != "clientToken"}
        earlier = self._tokens.get((operation_name, token))
        if earlier is not None:
            if earlier[0] != request:
                raise self._error(
                    operation_name, "ConflictException", f"client token {token} was already used with other parameters"
                )
            return copy.deepcopy(earlier[1])
        response = create()
        self._tokens[(operation_name, token)] = (copy.deepcopy(request), copy.deepcopy(response))
        return response

    def create_form_type(self, **params: Any) -> dict[str, Any]:
        """A new form type, or a new revision when the model, description or status changed (else the same one)."""
        operation_name = "CreateFormType"
        self._begin(operation_name, params)
        project = self._project(operation_name, params["owningProjectIdentifier"])
        name = params["name"]
        if name.startswith("amazon.datazone."):
            raise self._invalid(operation_name, f"form type names starting amazon.datazone. are reserved: {name}")
        if name in self.form_types:
            raise self._error(operation_name, "ConflictException", f"a form type named {name} exists in the domain")
        self._require_grant(operation_name, "CREATE_FORM_TYPE")
        smithy = params["model"]["smithy"]
        model = self._parse_form_model(operation_name, name, smithy)
        form_type = _Versioned(name=name, owning_project=project, revisions=[])
        latest = self._add_form_type_revision(form_type, smithy, model, params.get("description"), params)
        self.form_types[name] = form_type
        response = {
            "domainId": self.domain_id,
            "name": name,
            "revision": latest.revision,
            "description": latest.description,
            "owningProjectId": project,
            "originDomainId": self.domain_id,
            "originProjectId": project,
        }
        return self._reply(operation_name, _without_none(response))

    def _add_form_type_revision(
        self,
        form_type: _FormType,
        smithy: str,
        model: SmithyModel,
        description: str | None,
        params: Mapping[str, Any],
    ) -> _FormTypeRevision:
        revision = _FormTypeRevision(
            revision=str(len(form_type.revisions) + 1),
            smithy=smithy,
            model=model,
            description=description,
            status=params.get("status", "ENABLED"),
            created=self._tick(),
        )
        form_type.revisions.append(revision)
        return revision

    def revise_form_type(self, name: str, smithy: str, description: str | None = None) -> str:
        """A new revision of a form type, as a data steward makes one by editing it in DataZone's portal.

        Not an API operation: the API reference documents no way to revise a
        form type by API, and the fake does not invent one.
        """
        form_type = self.form_types[name]
        model = self._parse_form_model("CreateFormType", name, smithy)
        return self._add_form_type_revision(form_type, smithy, model, description, {}).revision

    def _parse_form_model(self, operation_name: str, name: str, smithy: str) -> SmithyModel:
        try:
            model = parse_smithy(smithy)
            _check_index_traits(model)
        except SmithyError as error:
            raise self._invalid(operation_name, f"invalid Smithy model: {error}") from error
        shape = model.shapes.get(name)
        if shape is None or shape.kind != "structure":
            # The fake's reading of the service: the form's structure carries the form type's name.
            raise self._invalid(operation_name, f"the model must define a structure named {name}, the form type's name")
        return model

    def get_form_type(self, **params: Any) -> dict[str, Any]:
        operation_name = "GetFormType"
        self._begin(operation_name, params)
        form_type, revision = self._form_type(operation_name, params["formTypeIdentifier"], params.get("revision"))
        owner = form_type.owning_project or None
        response = {
            "domainId": self.domain_id,
            "name": form_type.name,
            "revision": revision.revision,
            # The service keeps the parsed model, not the text: documentation comments do not come back.
            "model": {"smithy": _without_doc_comments(revision.smithy)},
            "owningProjectId": owner,
            "originDomainId": self.domain_id,
            "originProjectId": owner,
            "status": revision.status,
            "createdAt": revision.created,
            "createdBy": self.user,
            "description": revision.description,
        }
        return self._reply(operation_name, _without_none(response))

    def _form_type(self, operation_name: str, name: str, revision: str | None) -> tuple[_FormType, _FormTypeRevision]:
        form_type = self.form_types.get(name)
        found = form_type.revision(revision) if form_type else None
        if form_type is None or found is None:
            raise self._missing(operation_name, f"form type {name} revision {revision or 'latest'} not found")
        return form_type, found

    def create_asset_type(self, **params: Any) -> dict[str, Any]:
        """A new asset type, or a new revision when its forms or description changed (else the same one)."""
        operation_name = "CreateAssetType"
        self._begin(operation_name, params)
        project = self._project(operation_name, params["owningProjectIdentifier"])
        name = params["name"]
        if name in self.asset_types:
            raise self._error(operation_name, "ConflictException", f"an asset type named {name} exists in the domain")
        self._require_grant(operation_name, "CREATE_ASSET_TYPE")
        forms = {form_name: self._form_slot(operation_name, entry) for form_name, entry in params["formsInput"].items()}
        # DataZone adds its common form to every custom asset type (CreateAssetType API reference, example 1).
        forms.setdefault(COMMON_FORM, _FormSlot(COMMON_FORM_TYPE, COMMON_FORM_REVISION, required=False))
        asset_type = _Versioned(name=name, owning_project=project, revisions=[])
        latest = _AssetTypeRevision(
            revision="1", description=params.get("description"), forms=forms, created=self._tick()
        )
        asset_type.revisions.append(latest)
        self.asset_types[name] = asset_type
        return self._reply(operation_name, self._asset_type_response(asset_type, latest))

    def _form_slot(self, operation_name: str, entry: Mapping[str, Any]) -> _FormSlot:
        form_type, revision = self._form_type(operation_name, entry["typeIdentifier"], entry["typeRevision"])
        return _FormSlot(form_type.name, revision.revision, bool(entry.get("required", False)))

    def _asset_type_response(self, asset_type: _AssetType, revision: _AssetTypeRevision) -> dict[str, Any]:
        forms = {
            form_name: {"typeName": slot.type_name, "typeRevision": slot.type_revision, "required": slot.required}
            for form_name, slot in revision.forms.items()
        }
        response = {
            "domainId": self.domain_id,
            "name": asset_type.name,
            "revision": revision.revision,
            "description": revision.description,
            "owningProjectId": asset_type.owning_project,
            "originDomainId": self.domain_id,
            "originProjectId": asset_type.owning_project,
            "createdAt": revision.created,
            "createdBy": self.user,
            "updatedAt": revision.created,
            "updatedBy": self.user,
        }
        return {**_without_none(response), "formsOutput": forms}

    def get_asset_type(self, **params: Any) -> dict[str, Any]:
        operation_name = "GetAssetType"
        self._begin(operation_name, params)
        asset_type = self.asset_types.get(params["identifier"])
        revision = asset_type.revision(params.get("revision")) if asset_type else None
        if asset_type is None or revision is None:
            raise self._missing(operation_name, f"asset type {params['identifier']} not found")
        return self._reply(operation_name, self._asset_type_response(asset_type, revision))

    def create_glossary(self, **params: Any) -> dict[str, Any]:
        operation_name = "CreateGlossary"
        self._begin(operation_name, params)
        return self._reply(operation_name, self._once(operation_name, params, lambda: self._new_glossary(params)))

    def _new_glossary(self, params: Mapping[str, Any]) -> dict[str, Any]:
        operation_name = "CreateGlossary"
        project = self._project(operation_name, params["owningProjectIdentifier"])
        self._require_grant(operation_name, "CREATE_GLOSSARY")
        if any(glossary.name == params["name"] for glossary in self.glossaries.values()):
            raise self._error(operation_name, "ConflictException", f"a glossary named {params['name']} exists")
        glossary = _Glossary(
            id=self._mint(),
            name=params["name"],
            owning_project=project,
            description=params.get("description"),
            status=params.get("status", "ENABLED"),
            usage_restrictions=params.get("usageRestrictions"),
            created=self._tick(),
        )
        self.glossaries[glossary.id] = glossary
        return _without_none(
            {
                "domainId": self.domain_id,
                "id": glossary.id,
                "name": glossary.name,
                "owningProjectId": project,
                "description": glossary.description,
                "status": glossary.status,
                "usageRestrictions": glossary.usage_restrictions,
            }
        )

    def create_glossary_term(self, **params: Any) -> dict[str, Any]:
        operation_name = "CreateGlossaryTerm"
        self._begin(operation_name, params)
        return self._reply(operation_name, self._once(operation_name, params, lambda: self._new_term(params)))

    def _new_term(self, params: Mapping[str, Any]) -> dict[str, Any]:
        operation_name = "CreateGlossaryTerm"
        glossary = self.glossaries.get(params["glossaryIdentifier"])
        if glossary is None:
            raise self._missing(operation_name, f"glossary {params['glossaryIdentifier']} not found")
        if any(term.glossary_id == glossary.id and term.name == params["name"] for term in self.terms.values()):
            raise self._error(operation_name, "ConflictException", f"{glossary.name} has a term {params['name']}")
        relations = params.get("termRelations")
        for related in [term for terms in (relations or {}).values() for term in terms]:
            self._term(operation_name, related)
        term = _Term(
            id=self._mint(),
            glossary_id=glossary.id,
            name=params["name"],
            short_description=params.get("shortDescription"),
            long_description=params.get("longDescription"),
            relations=relations,
            status=params.get("status", "ENABLED"),
            created=self._tick(),
        )
        self.terms[term.id] = term
        return _without_none(
            {
                "id": term.id,
                "domainId": self.domain_id,
                "glossaryId": glossary.id,
                "name": term.name,
                "status": term.status,
                "shortDescription": term.short_description,
                "longDescription": term.long_description,
                "termRelations": term.relations,
                "usageRestrictions": glossary.usage_restrictions,
            }
        )

    def _term(self, operation_name: str, term_id: str) -> _Term:
        term = self.terms.get(term_id)
        if term is None:
            raise self._missing(operation_name, f"glossary term {term_id} not found")
        return term

    def create_asset(self, **params: Any) -> dict[str, Any]:
        operation_name = "CreateAsset"
        self._begin(operation_name, params)
        return self._reply(operation_name, self._once(operation_name, params, lambda: self._new_asset(params)))

    def _new_asset(self, params: Mapping[str, Any]) -> dict[str, Any]:
        operation_name = "CreateAsset"
        project = self._project(operation_name, params["owningProjectIdentifier"])
        self._require_member(operation_name, project)
        asset_type = self.asset_types.get(params["typeIdentifier"])
        type_revision = asset_type.revision(params.get("typeRevision")) if asset_type else None
        if asset_type is None or type_revision is None:
            raise self._missing(operation_name, f"asset type {params['typeIdentifier']} not found")
        external = params.get("externalIdentifier")
        if external is not None and any(asset.external_identifier == external for asset in self.assets.values()):
            raise self._error(
                operation_name, "ConflictException", f"an asset with externalIdentifier {external} exists"
            )
        revision = _AssetRevision(
            revision="1",
            name=params["name"],
            description=params.get("description"),
            type_revision=type_revision.revision,
            forms=self._forms(operation_name, params.get("formsInput", []), type_revision),
            glossary_terms=self._glossary_terms(operation_name, params.get("glossaryTerms", [])),
            created=self._tick(),
        )
        asset = _Asset(
            id=self._mint(),
            type_name=asset_type.name,
            owning_project=project,
            external_identifier=external,
            revisions=[revision],
        )
        self.assets[asset.id] = asset
        return self._asset_response(asset, revision)

    def create_asset_revision(self, **params: Any) -> dict[str, Any]:
        """A new revision of the same asset, of exactly the forms given; description and terms left out carry over.

        A form the request leaves out is not in the new revision (DataZone's
        common form comes back empty): the API reference requires ``formsInput``
        "when asset has the form type", and the fake reads a missing form as removed.
        """
        operation_name = "CreateAssetRevision"
        self._begin(operation_name, params)
        return self._reply(operation_name, self._once(operation_name, params, lambda: self._new_revision(params)))

    def _new_revision(self, params: Mapping[str, Any]) -> dict[str, Any]:
        operation_name = "CreateAssetRevision"
        asset = self._asset(operation_name, params["identifier"])
        self._require_member(operation_name, asset.owning_project)
        previous = asset.revisions[-1]
        type_revision = self.asset_types[asset.type_name].revision(params.get("typeRevision", previous.type_revision))
        if type_revision is None:
            raise self._missing(operation_name, f"asset type {asset.type_name} revision {params['typeRevision']}")
        terms = params.get("glossaryTerms")
        revision = _AssetRevision(
            revision=str(len(asset.revisions) + 1),
            name=params["name"],
            description=params.get("description", previous.description),
            type_revision=type_revision.revision,
            forms=self._forms(operation_name, params.get("formsInput", []), type_revision),
            glossary_terms=previous.glossary_terms if terms is None else self._glossary_terms(operation_name, terms),
            created=self._tick(),
        )
        asset.revisions.append(revision)
        return self._asset_response(asset, revision)

    def get_asset(self, **params: Any) -> dict[str, Any]:
        """An asset by id, or by ``externalIdentifer/<externalIdentifier>`` as the API reference documents."""
        operation_name = "GetAsset"
        identifier = params.get("identifier")
        if isinstance(identifier, str) and identifier.startswith(_BY_EXTERNAL_ID):
            # The documented form breaks the model's pattern for the member: check the rest of the request.
            self._begin(operation_name, {**params, "identifier": "external"})
            self.calls[-1] = (operation_name, dict(params))
            asset = self._asset_by_external_id(operation_name, identifier.removeprefix(_BY_EXTERNAL_ID))
        else:
            self._begin(operation_name, params)
            asset = self._asset(operation_name, params["identifier"])
        revision = asset.revision(params.get("revision"))
        if revision is None:
            raise self._missing(operation_name, f"asset {asset.id} has no revision {params['revision']}")
        return self._reply(operation_name, self._asset_response(asset, revision))

    def delete_asset(self, **params: Any) -> dict[str, Any]:
        """Delete an asset and its listing; refused while its listing has subscriptions."""
        operation_name = "DeleteAsset"
        self._begin(operation_name, params)
        asset = self._asset(operation_name, params["identifier"])
        self._require_member(operation_name, asset.owning_project)
        listing = self.listings.get(asset.listing_id or "")
        if listing is not None and listing.id in self.subscribed_listings:
            raise self._error(
                operation_name,
                "ConflictException",
                f"asset {asset.id} has subscriptions to its listing {listing.id}: revoke them before deleting it",
            )
        if listing is not None:
            del self.listings[listing.id]
        del self.assets[asset.id]
        self._tick()
        return self._reply(operation_name, {})

    def add_subscription(self, asset_id: str) -> str:
        """Subscribe someone to the asset's listing, as a consumer's request that an owner approved does.

        Not an API operation the fake serves (``CreateSubscriptionRequest``,
        ``AcceptSubscriptionRequest``): it stands in for them so that what a
        subscription prevents (deleting the asset) can be tested. Returns the listing id.
        """
        listing_id = self.assets[asset_id].listing_id
        assert listing_id is not None, "only a published asset has a listing to subscribe to"
        self.subscribed_listings.add(listing_id)
        return listing_id

    def _asset_by_external_id(self, operation_name: str, external: str) -> _Asset:
        if not 1 <= len(external) <= 600:
            raise self._invalid(operation_name, "an externalIdentifier has 1 to 600 characters")
        for asset in self.assets.values():
            if asset.external_identifier == external:
                return asset
        raise self._missing(operation_name, f"no asset has externalIdentifier {external}")

    def _asset(self, operation_name: str, asset_id: str) -> _Asset:
        asset = self.assets.get(asset_id)
        if asset is None:
            raise self._missing(operation_name, f"asset {asset_id} not found")
        return asset

    def _glossary_terms(self, operation_name: str, term_ids: Iterable[str]) -> tuple[str, ...]:
        return tuple(self._term(operation_name, term_id).id for term_id in term_ids)

    def _forms(
        self, operation_name: str, inputs: Sequence[Mapping[str, Any]], type_revision: _AssetTypeRevision
    ) -> tuple[_Form, ...]:
        """The asset's forms: each input checked against its form type's model, and DataZone's common form."""
        forms: dict[str, _Form] = {}
        names = [item["formName"] for item in inputs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise self._invalid(operation_name, f"forms given twice: {', '.join(duplicates)}")
        for item in inputs:
            forms[item["formName"]] = self._form(operation_name, item, type_revision.forms.get(item["formName"]))
        missing = sorted(name for name, slot in type_revision.forms.items() if slot.required and name not in forms)
        if missing:
            raise self._invalid(operation_name, f"required forms missing: {', '.join(missing)}")
        common = type_revision.forms.get(COMMON_FORM)
        if common is not None and COMMON_FORM not in forms:
            forms[COMMON_FORM] = self._form(operation_name, {"formName": COMMON_FORM, "content": "{}"}, common)
        return tuple(forms.values())

    def _form(self, operation_name: str, item: Mapping[str, Any], slot: _FormSlot | None) -> _Form:
        form_name = item["formName"]
        type_name = item.get("typeIdentifier") or (slot.type_name if slot else None)
        if type_name is None:
            raise self._invalid(operation_name, f"form {form_name} is not in the asset type; give its typeIdentifier")
        if slot is not None and type_name != slot.type_name:
            raise self._invalid(operation_name, f"form {form_name} is of type {slot.type_name}, not {type_name}")
        pinned = slot.type_revision if slot is not None else None
        form_type, revision = self._form_type(operation_name, type_name, item.get("typeRevision", pinned))
        content = item.get("content", "{}")
        try:
            values = json.loads(content)
        except ValueError as error:
            raise self._invalid(operation_name, f"form {form_name} content is not JSON: {error}") from error
        problems = content_problems(values, revision.model, form_type.name)
        if problems:
            raise self._invalid(operation_name, f"form {form_name}: " + "; ".join(problems))
        stored = _as_stored(values, revision.model, form_type.name)
        return _Form(form_name, form_type.name, revision.revision, json.dumps(stored), stored)

    def _asset_response(self, asset: _Asset, revision: _AssetRevision) -> dict[str, Any]:
        listing = self.listings.get(asset.listing_id or "")
        response = {
            "id": asset.id,
            "name": revision.name,
            "typeIdentifier": asset.type_name,
            "typeRevision": revision.type_revision,
            "externalIdentifier": asset.external_identifier,
            "revision": revision.revision,
            "description": revision.description,
            "createdAt": revision.created,
            "createdBy": self.user,
            "firstRevisionCreatedAt": asset.revisions[0].created,
            "firstRevisionCreatedBy": self.user,
            "glossaryTerms": list(revision.glossary_terms),
            "owningProjectId": asset.owning_project,
            "domainId": self.domain_id,
            "listing": {"listingId": listing.id, "listingStatus": listing.status} if listing else None,
        }
        return {**_without_none(response), "formsOutput": _forms_output(revision)}

    def create_listing_change_set(self, **params: Any) -> dict[str, Any]:
        """PUBLISH lists an asset revision (the latest by default) in place of the one shown; UNPUBLISH hides it."""
        operation_name = "CreateListingChangeSet"
        self._begin(operation_name, params)
        return self._reply(operation_name, self._once(operation_name, params, lambda: self._change_listing(params)))

    def _change_listing(self, params: Mapping[str, Any]) -> dict[str, Any]:
        operation_name = "CreateListingChangeSet"
        if params["entityType"] != "ASSET":
            raise self._missing(operation_name, f"data product {params['entityIdentifier']} not found")
        asset = self._asset(operation_name, params["entityIdentifier"])
        self._require_member(operation_name, asset.owning_project)
        revision = asset.revision(params.get("entityRevision"))
        if revision is None:
            raise self._missing(operation_name, f"asset {asset.id} has no revision {params['entityRevision']}")
        listing = self.listings.get(asset.listing_id or "")
        if params["action"] == "UNPUBLISH":
            if listing is None:
                raise self._missing(operation_name, f"asset {asset.id} is not listed")
            listing.status, listing.updated = "INACTIVE", self._tick()
        else:
            listing = listing or self._new_listing(asset)
            if not listing.revisions or listing.revisions[-1].revision != revision.revision:
                listing.revisions.append(revision)
            listing.status, listing.updated = "ACTIVE", self._tick()
        return {"listingId": listing.id, "listingRevision": str(len(listing.revisions)), "status": listing.status}

    def _new_listing(self, asset: _Asset) -> _Listing:
        moment = self._tick()
        listing = _Listing(
            id=self._mint(), asset_id=asset.id, revisions=[], status="CREATING", created=moment, updated=moment
        )
        self.listings[listing.id] = listing
        asset.listing_id = listing.id
        return listing

    def get_listing(self, **params: Any) -> dict[str, Any]:
        operation_name = "GetListing"
        self._begin(operation_name, params)
        listing = self.listings.get(params["identifier"])
        if listing is None:
            raise self._missing(operation_name, f"listing {params['identifier']} not found")
        number = int(params.get("listingRevision", len(listing.revisions)))
        if not 1 <= number <= len(listing.revisions):
            raise self._missing(operation_name, f"listing {listing.id} has no revision {number}")
        shown = listing.revisions[number - 1]
        asset = self.assets[listing.asset_id]
        item = {
            "assetId": asset.id,
            "assetRevision": shown.revision,
            "assetType": asset.type_name,
            "createdAt": shown.created,
            "forms": _listing_forms(shown),
            "glossaryTerms": self._detailed_terms(shown.glossary_terms),
            "owningProjectId": asset.owning_project,
        }
        response = {
            "domainId": self.domain_id,
            "id": listing.id,
            "listingRevision": str(number),
            "createdAt": listing.created,
            "updatedAt": listing.updated,
            "createdBy": self.user,
            "updatedBy": self.user,
            "item": {"assetListing": _without_none(item)},
            # The model caps a listing's name at 64 characters where an asset's may have 256.
            "name": shown.name[:64],
            "description": shown.description,
            "status": listing.status,
        }
        return self._reply(operation_name, _without_none(response))

    def _detailed_terms(self, term_ids: Iterable[str]) -> list[dict[str, Any]]:
        return [
            _without_none({"name": self.terms[term_id].name, "shortDescription": self.terms[term_id].short_description})
            for term_id in term_ids
        ]

    def search(self, **params: Any) -> dict[str, Any]:
        """Inventory search: assets (their latest revisions), glossaries or terms; the fake has no data products."""
        operation_name = "Search"
        self._begin(operation_name, params)
        if "owningProjectIdentifier" in params:
            self._project(operation_name, params["owningProjectIdentifier"])
        scope = params["searchScope"]
        with_forms = "FORMS" in params.get("additionalAttributes", [])
        entries, vocabulary = {
            "ASSET": lambda: (self._asset_entries(with_forms), self._asset_vocabulary()),
            "GLOSSARY": lambda: (self._glossary_entries(), _GLOSSARY_ATTRIBUTES),
            "GLOSSARY_TERM": lambda: (self._term_entries(), _TERM_ATTRIBUTES),
            "DATA_PRODUCT": lambda: ([], _ASSET_ATTRIBUTES),
        }[scope]()
        project = params.get("owningProjectIdentifier")
        if project is not None:
            if scope == "ASSET":
                self._require_member(operation_name, project)
            entries = [entry for entry in entries if project in entry.values.get("owningProjectId", [])]
        if scope == "ASSET":
            # An asset in a project's inventory is its members' to see (the fake's reading of the inventory).
            entries = [entry for entry in entries if set(entry.values["owningProjectId"]) & self.member_of]
        return self._reply(operation_name, self._found(operation_name, params, entries, vocabulary))

    def search_listings(self, **params: Any) -> dict[str, Any]:
        """Search over what is published: each ACTIVE listing as its latest published asset revision."""
        operation_name = "SearchListings"
        self._begin(operation_name, params)
        if "aggregations" in params:
            raise ModelViolation("the fake does not model SearchListings aggregations")
        with_forms = "FORMS" in params.get("additionalAttributes", [])
        entries = [
            self._listing_entry(listing, with_forms) for listing in self.listings.values() if listing.status == "ACTIVE"
        ]
        return self._reply(operation_name, self._found(operation_name, params, entries, self._asset_vocabulary()))

    def _found(
        self,
        operation_name: str,
        params: Mapping[str, Any],
        entries: list[_Entry],
        vocabulary: Mapping[str, _Attribute],
    ) -> dict[str, Any]:
        """Filter, text-match, sort and page entries as Search and SearchListings do."""
        if "filters" in params:
            keep = self._clause(operation_name, params["filters"], vocabulary)
            entries = [entry for entry in entries if keep(entry)]
        if params.get("searchText", "").strip('" '):
            entries = self._text_matches(operation_name, params, entries, vocabulary)
        if "sort" in params:
            entries = self._sorted(operation_name, params["sort"], entries, vocabulary)
        page, next_token = self._page(operation_name, params, entries)
        response = {"items": [entry.item for entry in page], "totalMatchCount": len(entries)}
        return {**response, "nextToken": next_token} if next_token else response

    def _clause(
        self, operation_name: str, clause: Mapping[str, Any], vocabulary: Mapping[str, _Attribute]
    ) -> Callable[[_Entry], bool]:
        if "and" in clause:
            every = [self._clause(operation_name, part, vocabulary) for part in clause["and"]]
            return lambda entry: all(keep(entry) for keep in every)
        if "or" in clause:
            some = [self._clause(operation_name, part, vocabulary) for part in clause["or"]]
            return lambda entry: any(keep(entry) for keep in some)
        return self._filter(operation_name, clause["filter"], vocabulary)

    def _filter(
        self, operation_name: str, spec: Mapping[str, Any], vocabulary: Mapping[str, _Attribute]
    ) -> Callable[[_Entry], bool]:
        attribute, operator = spec["attribute"], spec.get("operator", "EQ")
        kind = vocabulary.get(attribute)
        if kind is None or not kind.filterable:
            raise self._invalid(operation_name, f"unknown filter attribute {attribute}")
        if ("value" in spec) == ("intValue" in spec):
            raise self._invalid(operation_name, f"the filter on {attribute} needs exactly one of value and intValue")
        if "intValue" in spec:
            if not kind.numeric or operator == "TEXT_SEARCH":
                raise self._invalid(operation_name, f"{attribute} is not a sortable number: no intValue filter on it")
            compare, bound = _COMPARISONS[operator], spec["intValue"]
            return lambda entry: any(
                _is_number(value) and compare(value, bound) for value in entry.values.get(attribute, [])
            )
        if operator not in {"EQ", "TEXT_SEARCH"}:
            raise self._invalid(operation_name, f"{operator} compares numbers: give an intValue for {attribute}")
        wanted = spec["value"]
        if kind.searchable:
            exact = operator == "EQ"
            return lambda entry: _matches(kind.modes, wanted, entry.values.get(attribute, []), exact=exact)
        if operator == "EQ" and kind.keyword:
            return lambda entry: wanted in map(str, entry.values.get(attribute, []))
        raise self._invalid(operation_name, f"{attribute} is not searchable, so it cannot be filtered on by value")

    def _text_matches(
        self,
        operation_name: str,
        params: Mapping[str, Any],
        entries: list[_Entry],
        vocabulary: Mapping[str, _Attribute],
    ) -> list[_Entry]:
        """Entries the ``searchText`` matches, most occurrences of its words first (ties keep catalog order).

        In double quotes the query is lexical everywhere: every word must occur
        in the searched attributes. Otherwise each attribute matches in its own
        modes (see `_matches`), and an entry is found when one attribute matches.
        """
        targets = [item["attribute"] for item in params.get("searchIn", [])]
        for attribute in targets:
            if not vocabulary.get(attribute, _Attribute()).searchable:
                raise self._invalid(operation_name, f"searchIn: {attribute} is not a searchable attribute")
        text = params["searchText"].strip()
        quoted = len(text) >= 2 and text.startswith('"') and text.endswith('"')
        wanted = _terms(text)
        scored = []
        for position, entry in enumerate(entries):
            searched = {name: values for name, values in entry.text.items() if not targets or name in targets}
            words = _terms(" ".join(value for values in searched.values() for value in values))
            if quoted:
                found = _lexical(wanted, words)
            else:
                found = any(
                    _matches(vocabulary.get(name, _TEXT).modes, text, values, exact=False)
                    for name, values in searched.items()
                )
            if found:
                scored.append((-sum(words.count(term) for term in wanted), position, entry))
        return [entry for *_, entry in sorted(scored, key=lambda scored_entry: scored_entry[:2])]

    def _sorted(
        self,
        operation_name: str,
        sort: Mapping[str, Any],
        entries: list[_Entry],
        vocabulary: Mapping[str, _Attribute],
    ) -> list[_Entry]:
        attribute = sort["attribute"]
        if not vocabulary.get(attribute, _Attribute()).sortable:
            raise self._invalid(operation_name, f"{attribute} is not sortable")
        present = [entry for entry in entries if entry.values.get(attribute)]
        absent = [entry for entry in entries if not entry.values.get(attribute)]
        present.sort(key=lambda entry: _sort_key(entry.values[attribute][0]), reverse=sort.get("order") == "DESCENDING")
        return present + absent

    def _page(self, operation_name: str, params: Mapping[str, Any], items: list[Any]) -> tuple[list[Any], str | None]:
        """One page and the token for the next; a token only continues the query that issued it."""
        query = {key: value for key, value in params.items() if key not in {"nextToken", "maxResults"}}
        fingerprint = hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:16]
        offset = 0
        if "nextToken" in params:
            try:
                token = json.loads(base64.urlsafe_b64decode(params["nextToken"].encode()))
                offset = int(token["offset"]) if token["query"] == fingerprint else -1
            except (ValueError, KeyError, TypeError):
                offset = -1
            if offset < 0:
                raise self._invalid(operation_name, "nextToken does not belong to this query")
        end = offset + params.get("maxResults", _DEFAULT_PAGE)
        if end >= len(items):
            return items[offset:], None
        token_text = json.dumps({"offset": end, "query": fingerprint})
        return items[offset:end], base64.urlsafe_b64encode(token_text.encode()).decode()

    def _asset_vocabulary(self) -> dict[str, _Attribute]:
        """Built-in attributes plus ``<FormName>.<member>`` for every form any asset type or asset uses."""
        slots = {
            (form_name, slot.type_name, slot.type_revision)
            for asset_type in self.asset_types.values()
            for revision in asset_type.revisions
            for form_name, slot in revision.forms.items()
        }
        slots |= {
            (form.name, form.type_name, form.type_revision)
            for asset in self.assets.values()
            for revision in asset.revisions
            for form in revision.forms
        }
        vocabulary = dict(_ASSET_ATTRIBUTES)
        for form_name, type_name, type_revision in sorted(slots):
            model = self._form_model(type_name, type_revision)
            for attribute, kind in _form_attributes(form_name, model, type_name).items():
                vocabulary[attribute] = vocabulary.get(attribute, _Attribute()).merged(kind)
        return vocabulary

    def _form_model(self, type_name: str, type_revision: str) -> SmithyModel:
        revision = self.form_types[type_name].revision(type_revision)
        assert revision is not None, "forms only ever reference form type revisions that exist"
        return revision.model

    def _asset_values(
        self, asset: _Asset, revision: _AssetRevision
    ) -> tuple[dict[str, list[Any]], dict[str, list[str]]]:
        values: dict[str, list[Any]] = {
            "name": [revision.name],
            "description": [revision.description] if revision.description else [],
            "owningProjectId": [asset.owning_project],
            "typeIdentifier": [asset.type_name],
            "__DataZoneGlossaryTerms": list(revision.glossary_terms),
            "creationTime": [_millis(asset.revisions[0].created)],
            "lastUpdatedTime": [_millis(revision.created)],
        }
        text = {"name": values["name"], "description": values["description"]}
        for form in revision.forms:
            model = self._form_model(form.type_name, form.type_revision)
            kinds = _form_attributes(form.name, model, form.type_name)
            for member, value in form.values.items():
                attribute = f"{form.name}.{member}"
                scalars = [item for item in (value if isinstance(value, list) else [value]) if _is_scalar(item)]
                values[attribute] = scalars
                if kinds.get(attribute, _Attribute()).searchable:
                    text[attribute] = [str(item) for item in scalars]
        return values, text

    def _asset_entries(self, with_forms: bool) -> list[_Entry]:
        entries = []
        for asset in self.assets.values():
            revision = asset.revisions[-1]
            item = {
                "domainId": self.domain_id,
                "identifier": asset.id,
                "name": revision.name,
                "typeIdentifier": asset.type_name,
                "typeRevision": revision.type_revision,
                "externalIdentifier": asset.external_identifier,
                "description": revision.description,
                "createdAt": revision.created,
                "createdBy": self.user,
                "firstRevisionCreatedAt": asset.revisions[0].created,
                "firstRevisionCreatedBy": self.user,
                "glossaryTerms": list(revision.glossary_terms),
                "owningProjectId": asset.owning_project,
                "additionalAttributes": {"formsOutput": _forms_output(revision)} if with_forms else None,
            }
            values, text = self._asset_values(asset, revision)
            entries.append(_Entry({"assetItem": _without_none(item)}, values, text))
        return entries

    def _listing_entry(self, listing: _Listing, with_forms: bool) -> _Entry:
        shown = listing.revisions[-1]
        asset = self.assets[listing.asset_id]
        item = {
            "listingId": listing.id,
            "listingRevision": str(len(listing.revisions)),
            "name": shown.name,
            "entityId": asset.id,
            "entityRevision": shown.revision,
            "entityType": asset.type_name,
            "description": shown.description,
            "createdAt": listing.updated,
            "listingCreatedBy": self.user,
            "listingUpdatedBy": self.user,
            "glossaryTerms": self._detailed_terms(shown.glossary_terms),
            "owningProjectId": asset.owning_project,
            "additionalAttributes": {"forms": _listing_forms(shown)} if with_forms else None,
        }
        values, text = self._asset_values(asset, shown)
        return _Entry({"assetListing": _without_none(item)}, values, text)

    def _glossary_entries(self) -> list[_Entry]:
        entries = []
        for glossary in self.glossaries.values():
            item = {
                "domainId": self.domain_id,
                "id": glossary.id,
                "name": glossary.name,
                "owningProjectId": glossary.owning_project,
                "description": glossary.description,
                "status": glossary.status,
                "usageRestrictions": glossary.usage_restrictions,
                "createdAt": glossary.created,
                "createdBy": self.user,
            }
            values: dict[str, list[Any]] = {
                "name": [glossary.name],
                "description": [glossary.description] if glossary.description else [],
                "owningProjectId": [glossary.owning_project],
                "status": [glossary.status],
                "creationTime": [_millis(glossary.created)],
                "lastUpdatedTime": [_millis(glossary.created)],
            }
            text = {"name": values["name"], "description": values["description"]}
            entries.append(_Entry({"glossaryItem": _without_none(item)}, values, text))
        return entries

    def _term_entries(self) -> list[_Entry]:
        entries = []
        for term in self.terms.values():
            glossary = self.glossaries[term.glossary_id]
            item = {
                "domainId": self.domain_id,
                "glossaryId": term.glossary_id,
                "id": term.id,
                "name": term.name,
                "shortDescription": term.short_description,
                "longDescription": term.long_description,
                "termRelations": term.relations,
                "status": term.status,
                "usageRestrictions": glossary.usage_restrictions,
                "createdAt": term.created,
                "createdBy": self.user,
            }
            values: dict[str, list[Any]] = {
                "name": [term.name],
                "shortDescription": [term.short_description] if term.short_description else [],
                "longDescription": [term.long_description] if term.long_description else [],
                "glossaryId": [term.glossary_id],
                "owningProjectId": [glossary.owning_project],
                "status": [term.status],
                "creationTime": [_millis(term.created)],
                "lastUpdatedTime": [_millis(term.created)],
            }
            text = {key: values[key] for key in ("name", "shortDescription", "longDescription")}
            entries.append(_Entry({"glossaryTermItem": _without_none(item)}, values, text))
        return entries

    def post_lineage_event(self, **params: Any) -> dict[str, Any]:
        """Accept an event for asynchronous processing; whether it is a valid run event shows in its status."""
        operation_name = "PostLineageEvent"
        if "event" in params:
            params = {**params, "event": _event_bytes(params["event"])}
        self._begin(operation_name, params)
        return self._reply(operation_name, self._once(operation_name, params, lambda: self._new_event(params)))

    def _new_event(self, params: Mapping[str, Any]) -> dict[str, Any]:
        created = self._tick()
        event = bytes(params["event"])
        summary, event_time = _run_event_summary(event)
        record = _LineageEvent(
            id=self._mint(), event=event, summary=summary, event_time=event_time or created, created=created
        )
        self.lineage_events[record.id] = record
        return {"id": record.id, "domainId": self.domain_id}

    def _lineage_status(self, event: _LineageEvent) -> str:
        if event.reads >= self.lineage_reads_to_finish:
            return "SUCCESS" if event.summary is not None else "FAILED"
        return "REQUESTED" if event.reads == 0 else "PROCESSING"

    def get_lineage_event(self, **params: Any) -> dict[str, Any]:
        operation_name = "GetLineageEvent"
        self._begin(operation_name, params)
        event = self.lineage_events.get(params["identifier"])
        if event is None:
            raise self._missing(operation_name, f"lineage event {params['identifier']} not found")
        status = self._lineage_status(event)
        event.reads += 1
        response = {
            "domainId": self.domain_id,
            "id": event.id,
            "event": event.event,
            "createdBy": self.user,
            "processingStatus": status,
            "eventTime": event.event_time,
            "createdAt": event.created,
        }
        self._reply(operation_name, response)
        # The event is the response's payload, which botocore hands over as a stream.
        return {**response, "event": StreamingBody(io.BytesIO(event.event), len(event.event))}

    def list_lineage_events(self, **params: Any) -> dict[str, Any]:
        operation_name = "ListLineageEvents"
        self._begin(operation_name, params)
        after, before = _as_datetime(params.get("timestampAfter")), _as_datetime(params.get("timestampBefore"))
        wanted = params.get("processingStatus")
        events = [
            event
            for event in self.lineage_events.values()
            if (after is None or event.event_time > after)
            and (before is None or event.event_time < before)
            and (wanted is None or self._lineage_status(event) == wanted)
        ]
        events.sort(key=lambda event: event.event_time, reverse=params.get("sortOrder", "DESCENDING") == "DESCENDING")
        page, next_token = self._page(operation_name, params, [self._event_summary(event) for event in events])
        response: dict[str, Any] = {"items": page}
        return self._reply(operation_name, {**response, "nextToken": next_token} if next_token else response)

    def lineage_source_identifiers(self) -> set[str]:
        """The ``sourceIdentifier`` of every dataset lineage node the processed events made.

        For datasets that are not AWS Glue or Redshift tables it is the event's
        ``<namespace>/<name>`` ("The importance of the sourceIdentifier attribute
        to lineage nodes", DataZone user guide); an asset whose common form
        carries the same value is joined to that node in the lineage view.
        """
        return {
            f"{dataset['namespace']}/{dataset['name']}"
            for event in self.lineage_events.values()
            if event.summary is not None
            for dataset in [*event.summary["inputs"], *event.summary["outputs"]]
        }

    def _event_summary(self, event: _LineageEvent) -> dict[str, Any]:
        summary = {"openLineageRunEventSummary": event.summary} if event.summary is not None else None
        return _without_none(
            {
                "id": event.id,
                "domainId": self.domain_id,
                "processingStatus": self._lineage_status(event),
                "eventTime": event.event_time,
                "eventSummary": summary,
                "createdBy": self.user,
                "createdAt": event.created,
            }
        )


def _require_pattern(value: str, shape_name: str) -> None:
    pattern = str(load_model(SERVICE).shape_for(shape_name).metadata["pattern"])
    if not matches(pattern, value):
        raise ValueError(f"{value!r} does not match DataZone's {shape_name} pattern {pattern}")


def _forms_output(revision: _AssetRevision) -> list[dict[str, Any]]:
    return [
        {"formName": form.name, "typeName": form.type_name, "typeRevision": form.type_revision, "content": form.content}
        for form in revision.forms
    ]


def _listing_forms(revision: _AssetRevision) -> str:
    """A listing's forms: one JSON object keyed by form name, each form's content as an object."""
    return json.dumps({form.name: form.values for form in revision.forms})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if _is_number(value) else (1, str(value).lower())


def _event_bytes(event: Any) -> Any:
    """The event as boto3 sends it: text encoded as UTF-8, a file read; anything else is left for the validator."""
    if isinstance(event, str):
        return event.encode()
    if hasattr(event, "read"):
        return event.read()
    return event


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    return _iso_time(str(value))


def _run_event_summary(event: bytes) -> tuple[dict[str, Any] | None, datetime | None]:
    """An OpenLineage run event's summary and time, or ``(None, None)`` for anything else."""
    try:
        document = json.loads(event)
    except ValueError:
        return None, None
    if not isinstance(document, dict) or not {"eventType", "run", "job"} <= document.keys():
        return None, None
    run, job = document["run"], document["job"]
    event_type = document["eventType"]
    if event_type not in {"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}:
        return None, None
    if not isinstance(run, dict) or not isinstance(run.get("runId"), str) or not _is_dataset_name(job):
        return None, None
    event_time = _iso_time(document["eventTime"]) if isinstance(document.get("eventTime"), str) else None
    if "eventTime" in document and event_time is None:
        return None, None
    summary = {
        "eventType": event_type,
        "runId": run["runId"],
        "job": {"name": job["name"], "namespace": job["namespace"]},
        "inputs": [_name_identifier(dataset) for dataset in document.get("inputs", []) if _is_dataset_name(dataset)],
        "outputs": [_name_identifier(dataset) for dataset in document.get("outputs", []) if _is_dataset_name(dataset)],
    }
    return summary, event_time


def _is_dataset_name(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("name"), str) and isinstance(value.get("namespace"), str)


def _name_identifier(dataset: Mapping[str, Any]) -> dict[str, str]:
    return {"name": dataset["name"], "namespace": dataset["namespace"]}


def _without_doc_comments(smithy: str) -> str:
    return "\n".join(line for line in smithy.splitlines() if not line.lstrip().startswith("///")) + "\n"


def _as_stored(values: Any, model: SmithyModel, structure: str) -> Any:
    """Form content as the fake stores it: top-level timestamps in UTC with milliseconds (the fake's reading)."""
    if not isinstance(values, dict):
        return values
    members = model.resolve(structure).members
    stored = dict(values)
    for name, value in values.items():
        member = members.get(name)
        if member is not None and model.resolve(member.target).kind == "timestamp" and isinstance(value, str):
            moment = _iso_time(value)
            if moment is not None:
                stored[name] = moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return stored
