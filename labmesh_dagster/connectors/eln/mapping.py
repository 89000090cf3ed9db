"""Which ELN fields feed which labmesh fields: one small declarative table per ELN, adjustable per lab.

Every lab names its fields differently (an extra field "Experiment ID", another
"Run ID"; samples as text in one lab and linked resources in another), so the
connectors do not hard-code them: a `FieldMapping` says, for each labmesh field,
which ELN fields feed it, first non-empty one winning. Whatever the mapping does
not use is kept as a custom field, because a field a lab bothered to fill in is
never dropped silently; only the fields listed in ``ignore`` (bookkeeping that
changes on every save, secrets) are left out, on purpose and in one visible place.

A source is one of:

- a field name, ``title``; a dotted path into nested objects, ``extra_fields.Samples``
  (a key that itself contains dots is found too: exact keys are tried first);
- a projection over a list, ``items_links[].title`` (the ``title`` of every element);
- a template, ``ELAB-{id}``, filled from other fields (empty when one of them is).

Only plain field names and paths take their field out of the custom fields:
projections and templates read a field without standing for all of it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# The labmesh fields a mapping may fill, in the order a record lists them.
LABMESH_FIELDS = (
    "experiment_id",
    "title",
    "description",
    "owner",
    "group",
    "project",
    "samples",
    "platform",
    "protocol",
    "tags",
    "created",
    "modified",
)
# The key each labmesh field has in what `record_from_mapping` reads.
_RECORD_KEYS = {name: ("id" if name == "experiment_id" else name) for name in LABMESH_FIELDS}
_TEMPLATE_FIELD = re.compile(r"\{([^{}]+)\}")


def _is_empty(value: Any) -> bool:
    """Nothing filled in: None, blank text, an empty list or object (0 and False are answers, not blanks)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, (list, tuple, Mapping)) and not value


def template_names(spec: str) -> list[str]:
    """The fields a template source reads ("ELAB-{id}" -> ["id"]); none for a plain field name."""
    return [name.strip() for name in _TEMPLATE_FIELD.findall(spec)]


def _split_text(text: str, separators: str) -> list[str]:
    """A free-text list ("S1, S2", one per line, ...) as its items."""
    parts = re.split(f"[{re.escape(separators)}]", text)
    return [part.strip() for part in parts if part.strip()]


def _as_sources(value: Any, field_name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ValueError(f"the sources of {field_name!r} must be a field name or a list of field names, got {value!r}")


@dataclass(frozen=True)
class Resolved:
    """A source's value, and the path of the field it used up (None for projections and templates)."""

    value: Any
    path: tuple[str, ...] | None


def resolve_path(data: Mapping[str, Any], spec: str) -> tuple[Any, tuple[str, ...]] | None:
    """The value at dotted ``spec`` and its path of keys, trying exact keys before splitting at each dot."""
    if spec in data:
        return data[spec], (spec,)
    for position, char in enumerate(spec):
        if char != ".":
            continue
        head, rest = spec[:position], spec[position + 1 :]
        inner = data.get(head)
        if isinstance(inner, Mapping):
            found = resolve_path(inner, rest)
            if found is not None:
                return found[0], (head, *found[1])
    return None


def resolve_source(data: Mapping[str, Any], spec: str) -> Resolved:
    """What one source spec (path, projection or template) reads from ``data``."""
    if _TEMPLATE_FIELD.search(spec):
        values: dict[str, str] = {}
        for name in _TEMPLATE_FIELD.findall(spec):
            found = resolve_path(data, name.strip())
            if found is None or _is_empty(found[0]) or isinstance(found[0], (Mapping, list)):
                return Resolved(None, None)
            values[name] = str(found[0]).strip()
        return Resolved(_TEMPLATE_FIELD.sub(lambda match: values[match.group(1)], spec), None)
    if "[]." in spec:
        list_spec, item_spec = spec.split("[].", 1)
        found = resolve_path(data, list_spec)
        if found is None or not isinstance(found[0], Sequence) or isinstance(found[0], str):
            return Resolved(None, None)
        items = []
        for item in found[0]:
            inner = resolve_path(item, item_spec) if isinstance(item, Mapping) else None
            if inner is not None and not _is_empty(inner[0]):
                items.append(inner[0])
        return Resolved(items, None)
    found = resolve_path(data, spec)
    return Resolved(None, None) if found is None else Resolved(found[0], found[1])


def match_template(template: str, value: str) -> dict[str, str] | None:
    """The field values that would make ``template`` produce ``value`` ("ELAB-{id}", "ELAB-42" -> {"id": "42"})."""
    names = _TEMPLATE_FIELD.findall(template)
    if not names or len(set(names)) != len(names):
        return None
    pattern = ""
    position = 0
    for index, match in enumerate(_TEMPLATE_FIELD.finditer(template)):
        pattern += re.escape(template[position : match.start()]) + f"(?P<f{index}>.+?)"
        position = match.end()
    pattern += re.escape(template[position:])
    found = re.fullmatch(pattern, value)
    if found is None:
        return None
    return {name.strip(): found.group(f"f{index}") for index, name in enumerate(names)}


def _remove_path(value: Any, path: Sequence[str]) -> Any:
    """``value`` without the nested key at ``path`` (a copy; the input is left alone)."""
    if not path or not isinstance(value, Mapping) or path[0] not in value:
        return value
    if len(path) == 1:
        return {key: item for key, item in value.items() if key != path[0]}
    inner = _remove_path(value[path[0]], path[1:])
    if isinstance(inner, Mapping) and not inner and value[path[0]]:
        # An object whose only content was used up is used up too, not left behind empty.
        return {key: item for key, item in value.items() if key != path[0]}
    return {**value, path[0]: inner}


def _normalise(labmesh_field: str, value: Any) -> Any:
    """Shapes `record_from_mapping` reads: lists from free text, text from numbers and multi-value fields."""
    if labmesh_field in {"samples", "tags"}:
        if isinstance(value, str):
            return _split_text(value, ",;\n" + ("|" if labmesh_field == "tags" else ""))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return [str(value)]
        return value
    if labmesh_field in {"created", "modified"}:
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)) and all(isinstance(item, (str, int, float)) for item in value):
        # A multi-value field ("platform: [NovaSeq, MiSeq]") reads as one line of text.
        return ", ".join(str(item).strip() for item in value if str(item).strip())
    return value


@dataclass(frozen=True)
class FieldMapping:
    """For each labmesh field, the ELN fields that feed it (first non-empty wins); the rest become custom fields.

    ``ignore`` lists source fields (names or dotted paths) deliberately left out.
    ``flatten`` names nested objects whose entries become custom fields under
    their own names (eLabFTW's ``extra_fields``: "pH", not "extra_fields.pH"),
    unless that name is already taken.
    """

    # A field name or a list of them per labmesh field; held as tuples once constructed.
    fields: Mapping[str, str | Sequence[str] | None] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    flatten: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.fields) - set(LABMESH_FIELDS))
        if unknown:
            raise ValueError(f"unknown labmesh field(s) {', '.join(unknown)}; known: {', '.join(LABMESH_FIELDS)}")
        normalised = {name: _as_sources(self.fields.get(name), name) for name in LABMESH_FIELDS}
        object.__setattr__(self, "fields", normalised)
        object.__setattr__(self, "ignore", tuple(self.ignore))
        object.__setattr__(self, "flatten", tuple(self.flatten))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, defaults: FieldMapping | None = None) -> FieldMapping:
        """A mapping from configuration: ``{fields: {...}, ignore: [...], flatten: [...]}`` or just the fields.

        With ``defaults``, only the labmesh fields named are replaced (``samples: null``
        stops reading samples); ``ignore`` and ``flatten`` replace the defaults' when given.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a field mapping must be an object, got {type(data).__name__}")
        extra = sorted(set(data) - {"fields", "ignore", "flatten"}) if "fields" in data else []
        if extra:
            raise ValueError(f"unknown field mapping key(s) {', '.join(extra)}; expected fields, ignore, flatten")
        options = {"ignore", "flatten"}
        fields = data["fields"] if "fields" in data else {k: v for k, v in data.items() if k not in options}
        if not isinstance(fields, Mapping):
            raise ValueError("the 'fields' of a field mapping must be an object")
        base = defaults or cls()
        return cls(
            fields={**base.fields, **fields},
            ignore=tuple(data.get("ignore", base.ignore) or ()),
            flatten=tuple(data.get("flatten", base.flatten) or ()),
        )

    @classmethod
    def from_yaml(cls, path: str | Path, *, defaults: FieldMapping | None = None) -> FieldMapping:
        """A mapping kept in a YAML (or JSON) file beside the lab's other settings."""
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        return cls.from_dict(data, defaults=defaults)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fields": {name: list(self.sources(name)) for name in self.fields},
            "ignore": list(self.ignore),
            "flatten": list(self.flatten),
        }

    def sources(self, labmesh_field: str) -> tuple[str, ...]:
        """The source specs of one labmesh field, in the order they are tried."""
        return _as_sources(self.fields[labmesh_field], labmesh_field)

    def apply(self, source_fields: Mapping[str, Any], *, exclude: Collection[str] = ()) -> dict[str, Any]:
        """The mapping `record_from_mapping` reads: labmesh fields by their own names, the rest under ``custom``.

        ``exclude`` names further fields to leave out for this call (a connector's
        own write-back fields). Nothing is validated here: the record is.
        """
        result: dict[str, Any] = {}
        used: set[tuple[str, ...]] = set()
        for name in LABMESH_FIELDS:
            value = None
            for spec in self.sources(name):
                resolved = resolve_source(source_fields, spec)
                if resolved.path is not None:
                    used.add(resolved.path)
                if not _is_empty(resolved.value):
                    value = resolved.value
                    break
            result[_RECORD_KEYS[name]] = None if value is None else _normalise(name, value)
        left_out = {*self.ignore, *exclude}
        result["custom"] = self._custom(source_fields, used, left_out)
        return result

    def _custom(self, data: Mapping[str, Any], used: set[tuple[str, ...]], left_out: set[str]) -> dict[str, Any]:
        """Every field not used and not left out, keyed by name; flattened objects contribute their entries."""
        found = [resolve_path(data, spec) for spec in left_out]
        removed = used | {hit[1] for hit in found if hit is not None}
        custom: dict[str, Any] = {}
        for key, value in data.items():
            if (key,) in removed:
                continue
            if key in self.flatten and isinstance(value, Mapping):
                for inner_key, inner in value.items():
                    if (key, inner_key) in removed:
                        continue
                    taken = inner_key in data or inner_key in custom
                    custom[f"{key}.{inner_key}" if taken else inner_key] = self._trim(inner, (key, inner_key), removed)
                continue
            trimmed = self._trim(value, (key,), removed)
            if not (isinstance(value, Mapping) and value and not trimmed):
                custom[key] = trimmed
        return custom

    @staticmethod
    def _trim(value: Any, at: tuple[str, ...], removed: set[tuple[str, ...]]) -> Any:
        """``value`` (found at path ``at``) without the nested fields already used or left out."""
        for path in sorted(removed, key=len, reverse=True):
            if len(path) > len(at) and path[: len(at)] == at:
                value = _remove_path(value, path[len(at) :])
        return value


ELABFTW_DEFAULTS = FieldMapping(
    fields={
        # An explicit "Experiment ID" extra field wins; otherwise the entry's own eLabFTW id names it.
        "experiment_id": ("extra_fields.Experiment ID", "ELAB-{id}"),
        "title": ("title",),
        # The connector hands the body over as plain text (HTML tags removed).
        "description": ("body",),
        "owner": ("fullname",),
        "group": ("extra_fields.Group", "team_name"),
        "project": ("extra_fields.Project",),
        # Text ("S1, S2" or one per line) or an `items` extra field (the linked resources' titles).
        "samples": ("extra_fields.Samples",),
        "platform": ("extra_fields.Instrument", "extra_fields.Platform"),
        "protocol": ("extra_fields.Protocol",),
        "tags": ("tags",),
        "created": ("created_at",),
        # Deliberately unmapped: eLabFTW moves `modified_at` on every save, labmesh's own write-back
        # included, and the record's fingerprint includes `modified`, so every write-back would look
        # like an edit to the registry. A lab that accepts that can map it to "modified_at".
        "modified": (),
    },
    ignore=(
        # Bookkeeping that changes on every save (labmesh's write-back included) or while someone edits.
        "modified_at",
        "lastchangeby",
        "changelog",
        "exclusive_edit_mode",
        # Derived from fields that are kept (body, comments, steps).
        "body_html",
        "recent_comment",
        "next_step",
        # Secrets: the access key (and the share link that embeds it) grants read access to the entry.
        "access_key",
        "sharelink",
        # How the extra fields are laid out on screen, not what they hold.
        "metadata.elabftw",
    ),
    flatten=("extra_fields",),
)
