"""The experiment record: what labmesh knows of an experiment, whichever ELN or LIMS it came from.

ELNs and LIMS exports name the same things differently (``owner``, ``author``,
``scientist``; ``instrument`` or ``platform``). `record_from_mapping` folds the
common spellings into one normalised record and keeps everything it does not
recognise as custom fields, because a field a lab bothered to fill in is never
dropped silently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from labmesh_dagster.core.errors import InvalidExperimentId, RecordError
from labmesh_dagster.core.ids import validate_experiment_id
from labmesh_dagster.core.text import clean_data


@dataclass(frozen=True)
class Sample:
    """A sample the experiment measures; ``id`` is what files and searches refer to."""

    id: str
    name: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "attributes": dict(self.attributes)}


@dataclass(frozen=True)
class ExperimentRecord:
    """A normalised experiment, as fetched from an ELN or LIMS."""

    id: str
    title: str
    description: str = ""
    owner: str | None = None
    group: str | None = None
    project: str | None = None
    samples: tuple[Sample, ...] = ()
    platform: str | None = None
    protocol: str | None = None
    created: str | None = None
    modified: str | None = None
    tags: tuple[str, ...] = ()
    custom: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        validate_experiment_id(self.id)

    @property
    def sample_ids(self) -> list[str]:
        return [sample.id for sample in self.samples]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "owner": self.owner,
            "group": self.group,
            "project": self.project,
            "samples": [sample.to_dict() for sample in self.samples],
            "platform": self.platform,
            "protocol": self.protocol,
            "created": self.created,
            "modified": self.modified,
            "tags": list(self.tags),
            "custom": dict(self.custom),
            "source": self.source,
        }

    @property
    def fingerprint(self) -> str:
        """A short digest of the normalised content: equal fingerprints, nothing to update.

        ``source`` (which file or API the record came from) is left out: moving a
        record to another file is not a change to the experiment.
        """
        content = {key: value for key, value in self.to_dict().items() if key != "source"}
        canonical = json.dumps(content, sort_keys=True, ensure_ascii=True, default=str)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentRecord:
        """Inverse of `to_dict` (no alias folding: use `record_from_mapping` for ELN input)."""
        return cls(
            id=data["id"],
            title=data["title"],
            description=data.get("description") or "",
            owner=data.get("owner"),
            group=data.get("group"),
            project=data.get("project"),
            samples=tuple(
                Sample(item["id"], item.get("name"), dict(item.get("attributes") or {}))
                for item in data.get("samples") or ()
            ),
            platform=data.get("platform"),
            protocol=data.get("protocol"),
            created=data.get("created"),
            modified=data.get("modified"),
            tags=tuple(data.get("tags") or ()),
            custom=dict(data.get("custom") or {}),
            source=data.get("source") or "",
        )


# Spellings seen in ELN and LIMS exports, first match wins.
_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "experiment_id", "experimentId", "experiment", "display_id", "displayId"),
    "title": ("title", "name", "experiment_name"),
    "description": ("description", "summary", "body", "aim"),
    "owner": ("owner", "author", "scientist", "created_by", "fullname"),
    "group": ("group", "team", "lab", "department"),
    "project": ("project", "study", "project_name"),
    "samples": ("samples", "sample_ids", "specimens"),
    "platform": ("platform", "instrument", "instrument_model", "sequencer"),
    "protocol": ("protocol", "assay", "method"),
    "created": ("created", "created_at", "date", "start_date", "creation_date"),
    "modified": ("modified", "modified_at", "updated_at", "lastchange", "last_modified"),
    "tags": ("tags", "keywords", "labels"),
}
_SAMPLE_ID_KEYS = ("id", "sample_id", "sampleId", "name")


def _pick(data: Mapping[str, Any], field_name: str, used: set[str]) -> Any:
    """The first non-empty alias of ``field_name``; empty aliases on the way are consumed too.

    A known field left empty is still that field, not a custom one: it must not
    reappear among the custom fields (and in the search index under its name).
    """
    for alias in _ALIASES[field_name]:
        if alias in data:
            used.add(alias)
            if data[alias] not in (None, ""):
                return data[alias]
    return None


def _text(value: Any, source: str, field_name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        # {"name": "...", "email": ...} style people and groups
        for key in ("name", "fullname", "title", "id"):
            if value.get(key):
                return str(value[key]).strip()
        raise RecordError(source, f"field {field_name!r} is an object without a name")
    if isinstance(value, (list, tuple)):
        raise RecordError(source, f"field {field_name!r} must be text, got a list")
    return str(value).strip()


def normalise_timestamp(value: Any, source: str = "", field_name: str = "date") -> str | None:
    """ISO-8601: dates stay dates, date-times become UTC (naive ones are taken as UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return value.isoformat()
    else:
        text = str(value).strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text).isoformat()
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise RecordError(source, f"field {field_name!r} is not an ISO-8601 date: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _samples(value: Any, source: str) -> tuple[Sample, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    if not isinstance(value, Sequence):
        raise RecordError(source, "field 'samples' must be a list")
    samples: list[Sample] = []
    for position, item in enumerate(value):
        if isinstance(item, (str, int)):
            samples.append(Sample(str(item).strip()))
            continue
        if not isinstance(item, Mapping):
            raise RecordError(source, f"sample #{position + 1} must be an id or an object")
        sample_id = next((item[key] for key in _SAMPLE_ID_KEYS if item.get(key)), None)
        if sample_id is None:
            raise RecordError(source, f"sample #{position + 1} has no id")
        name = item.get("name") if item.get("name") != sample_id else None
        attributes = {k: v for k, v in item.items() if k not in _SAMPLE_ID_KEYS}
        samples.append(Sample(str(sample_id).strip(), name, attributes))
    ids = [sample.id for sample in samples]
    if len(set(ids)) != len(ids):
        raise RecordError(source, "sample ids are not unique")
    return tuple(samples)


def _tags(value: Any, source: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.replace(";", ",").replace("|", ",").split(",")
    if not isinstance(value, (list, tuple)) or any(isinstance(tag, (Mapping, list, tuple)) for tag in value):
        raise RecordError(source, "field 'tags' must be text or a list of words")
    return tuple(sorted({str(tag).strip() for tag in value if str(tag).strip()}))


def record_from_mapping(data: Any, source: str) -> ExperimentRecord:
    """Normalise one experiment as an ELN or LIMS export writes it.

    Raises `RecordError` naming ``source`` for anything that cannot become a
    valid record: a missing or invalid id, a missing title, malformed dates.
    """
    if not isinstance(data, Mapping):
        raise RecordError(source, f"an experiment record must be an object, got {type(data).__name__}")
    try:
        # Keys become strings (YAML allows `2024:` or `~` as keys) and text becomes storable;
        # a self-referencing YAML anchor cannot be stored at all.
        data = clean_data(data)
    except RecursionError as exc:
        raise RecordError(source, "record refers to itself (a recursive YAML anchor)") from exc
    used: set[str] = set()
    raw_id = _pick(data, "id", used)
    if raw_id is None:
        raise RecordError(source, "record has no experiment id (expected 'id' or 'experiment_id')")
    try:
        experiment_id = validate_experiment_id(str(raw_id).strip() if isinstance(raw_id, (str, int)) else raw_id)
    except InvalidExperimentId as exc:
        raise RecordError(source, str(exc)) from exc
    title = _text(_pick(data, "title", used), source, "title")
    if not title:
        raise RecordError(source, f"experiment {experiment_id} has no title")
    description = _text(_pick(data, "description", used), source, "description") or ""
    owner = _text(_pick(data, "owner", used), source, "owner")
    group = _text(_pick(data, "group", used), source, "group")
    project = _text(_pick(data, "project", used), source, "project")
    samples = _samples(_pick(data, "samples", used), source)
    platform = _text(_pick(data, "platform", used), source, "platform")
    protocol = _text(_pick(data, "protocol", used), source, "protocol")
    created = normalise_timestamp(_pick(data, "created", used), source, "created")
    modified = normalise_timestamp(_pick(data, "modified", used), source, "modified")
    tags = _tags(_pick(data, "tags", used), source)
    # Every field not folded into the record is kept, so nothing the lab wrote is lost.
    custom: dict[str, Any] = {}
    for container in ("custom", "custom_fields"):
        fields = data.get(container) or {}
        if not isinstance(fields, Mapping):
            raise RecordError(source, f"field {container!r} must be an object")
        custom.update(fields)
    custom.update({key: value for key, value in data.items() if key not in used | {"custom", "custom_fields"}})
    return ExperimentRecord(
        id=experiment_id,
        title=title,
        description=description,
        owner=owner,
        group=group,
        project=project,
        samples=samples,
        platform=platform,
        protocol=protocol,
        created=created,
        modified=modified,
        tags=tags,
        custom={key: custom[key] for key in sorted(custom)},
        source=source,
    )
