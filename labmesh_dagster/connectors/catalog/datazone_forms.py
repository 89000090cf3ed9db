"""What labmesh writes into Amazon DataZone: two metadata form types, one asset type, and the forms' content.

Every labmesh asset carries ``LabmeshExperimentForm``, the experiment as its
ELN records it; a dataset's asset carries ``LabmeshDatasetForm`` besides, so
that a dataset is found by its experiment's words, group and platform exactly
as the local index finds its files by them (each file row there holds its
experiment's text). One asset type, ``LabmeshAsset``, holds both forms; the
dataset form is optional, which is what tells an experiment's asset from a
dataset's.

How members are indexed. DataZone indexes a ``@searchable`` member for
semantic search unless its ``modes`` say otherwise (``CreateFormType`` API
reference): related words then match too, which suits text people read but not
an id. So identifiers (experiment, dataset, zone, location, formats, sample ids,
file names) are ``TECHNICAL``, the ``...Terms`` members labmesh searches are
``LEXICAL``, and only the readable text (title, description, group...) keeps the
semantic default, for people searching in DataZone's portal. ``#sortable`` is
documented for numeric members only (``Search``: "a numeric attribute annotated
with @amazon.datazone#sortable"), so it is on the counts and ``...Day`` members alone.

Why some members look redundant:

- ``searchTerms``, ``groupTerms``, ``platformTerms``, ``formatTerms`` and
  ``fileNameTerms`` hold text as the local SQLite FTS5 index tokenizes it
  (``porter unicode61``: lower case, diacritics folded, split at anything not a
  letter or digit, Porter-stemmed), computed with SQLite's own tokenizer. Queries
  are tokenized the same way and sent as lexical queries (in double quotes), so
  DataZone finds every dataset the local index would (``samples`` finds
  ``sample``, ``S1`` finds ``S1_L001_R1.fastq.gz``), and the two profiles agree
  on what a word is. The readable members beside them (``title``,
  ``fileNames``...) stay searchable for people using DataZone's portal.
- Dates are ``Timestamp`` members (for people) plus ``...Day`` integers
  (``20240301``): DataZone filters ranges with ``intValue`` comparisons on
  sortable numbers only. An unknown date is day ``0``, which, as the empty
  string does in the local index, falls before every ``since`` and after no
  ``until``; a date that is not ISO-8601 widens a dataset's range to every day.
- ``labmeshDigest`` is a digest of everything labmesh wrote to the asset (name,
  description, its forms, terms, source identifier, type revisions). DataZone
  need not hand form JSON, Smithy text or timestamps back byte for byte, and
  adds forms of its own, so an unchanged asset is told by this digest rather
  than by comparing what comes back.

Limits: DataZone takes at most 300,000 characters of content per form
(``FormInputContentString``) and 100,000 per Smithy model. Lists and long text
are clipped to budgets that keep a form well inside that whatever a dataset
holds (the budgets are halved until the JSON fits), and ``clipped`` names each
member that lost something. A clipped term list is the one way DataZone can
miss a match the local index makes: see `DataZoneCatalog.search`.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import Any

from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.core.text import clean_data, clean_text, words_of
from labmesh_dagster.lineage.naming import dataset_name

EXPERIMENT_FORM = "LabmeshExperimentForm"
DATASET_FORM = "LabmeshDatasetForm"
ASSET_TYPE = "LabmeshAsset"
EXTERNAL_ID_PREFIX = "labmesh"

FORM_CONTENT_MAX = 300_000
"""DataZone's limit on one form's content, in characters."""
DIGEST_ROOM = 100
"""Characters kept free in every form for ``labmeshDigest``, which is added once the content is known."""

FILTER_VALUE_MAX = 128
"""DataZone's limit on a filter value: a longer facet cannot be filtered on in DataZone."""

UNKNOWN_DAY = 0
LAST_DAY = 99991231

EXPERIMENT_FORM_SMITHY = """$version: "2"
namespace labmesh

/// An experiment as its ELN or LIMS records it. Carried by the experiment's asset and by each of its datasets'.
structure LabmeshExperimentForm {
    @required
    @amazon.datazone#searchable(modes: ["TECHNICAL"])
    @length(min: 1, max: 128)
    experimentId: String

    @amazon.datazone#searchable
    title: String

    @amazon.datazone#searchable
    description: String

    @amazon.datazone#searchable
    group: String

    @amazon.datazone#searchable
    project: String

    @amazon.datazone#searchable
    owner: String

    @amazon.datazone#searchable
    platform: String

    @amazon.datazone#searchable
    protocol: String

    @amazon.datazone#searchable(modes: ["TECHNICAL"])
    sampleIds: TextList

    @amazon.datazone#searchable
    tags: TextList

    created: Timestamp

    modified: Timestamp

    /// created as yyyymmdd (0 when unknown), for date range filters.
    @amazon.datazone#sortable
    createdDay: Integer

    elnUrl: String

    /// Every word of the experiment as the local index tokenizes it (porter unicode61).
    @amazon.datazone#searchable(modes: ["LEXICAL"])
    searchTerms: String

    @amazon.datazone#searchable(modes: ["LEXICAL"])
    groupTerms: String

    @amazon.datazone#searchable(modes: ["LEXICAL"])
    platformTerms: String

    /// Members that were clipped to stay within DataZone's limits.
    clipped: TextList

    /// A digest of everything labmesh wrote to this asset: how it tells an unchanged asset (see datazone_forms).
    labmeshDigest: String
}

list TextList {
    member: String
}
"""

DATASET_FORM_SMITHY = """$version: "2"
namespace labmesh

/// One experiment's dataset in one zone: where it is, what files it holds, and how they were checked.
structure LabmeshDatasetForm {
    @required
    @amazon.datazone#searchable(modes: ["TECHNICAL"])
    @length(min: 1, max: 128)
    experimentId: String

    @required
    @amazon.datazone#searchable(modes: ["TECHNICAL"])
    dataset: String

    @amazon.datazone#searchable(modes: ["TECHNICAL"])
    zone: String

    @amazon.datazone#searchable(modes: ["TECHNICAL"])
    location: String

    @amazon.datazone#sortable
    fileCount: Integer

    @amazon.datazone#sortable
    totalBytes: Long

    /// Files whose metadata could not be extracted.
    @amazon.datazone#sortable
    errorCount: Integer

    @amazon.datazone#searchable(modes: ["TECHNICAL"])
    formats: TextList

    @amazon.datazone#searchable(modes: ["LEXICAL"])
    formatTerms: String

    @amazon.datazone#searchable(modes: ["TECHNICAL"])
    fileNames: TextList

    @amazon.datazone#searchable(modes: ["LEXICAL"])
    fileNameTerms: String

    @amazon.datazone#searchable(modes: ["TECHNICAL"])
    sampleIds: TextList

    /// The pipelines that made the files, as name@version (processed datasets only).
    @amazon.datazone#searchable(modes: ["TECHNICAL"])
    pipelines: TextList

    checksumsSummary: ChecksumsSummary

    createdFrom: Timestamp

    createdTo: Timestamp

    /// The files' earliest and latest creation day as yyyymmdd, for date range filters.
    @amazon.datazone#sortable
    createdFromDay: Integer

    @amazon.datazone#sortable
    createdToDay: Integer

    /// Every word of the files (names, formats, keys, samples, extracted text and metadata), porter unicode61.
    @amazon.datazone#searchable(modes: ["LEXICAL"])
    searchTerms: String

    /// Members that were clipped to stay within DataZone's limits.
    clipped: TextList
}

/// The manifest's sha256 digest (equal digests, equal datasets) and how the files were checksummed.
structure ChecksumsSummary {
    manifestDigest: String
    sha256Count: Integer
    sourceVerifiedCount: Integer
}

list TextList {
    member: String
}
"""

FORM_TYPES: Mapping[str, str] = {EXPERIMENT_FORM: EXPERIMENT_FORM_SMITHY, DATASET_FORM: DATASET_FORM_SMITHY}
_FORM_PURPOSES: Mapping[str, str] = {
    EXPERIMENT_FORM: "labmesh: an experiment as its ELN or LIMS records it",
    DATASET_FORM: "labmesh: one experiment's dataset in one zone, with its files and checksums",
}

COMMON_FORM = "AssetCommonDetailsForm"
"""The form DataZone adds to every custom asset type; its ``sourceIdentifier`` joins an asset to lineage nodes."""
COMMON_FORM_TYPE = "amazon.datazone.AssetCommonDetailsFormType"


def model_digest(smithy: str) -> str:
    """A short digest of a form type's Smithy model, as labmesh wrote it."""
    return hashlib.sha256(smithy.encode("utf-8")).hexdigest()[:16]


def form_type_description(name: str) -> str:
    """The form type's description, naming the digest of labmesh's model.

    DataZone may hand the Smithy text back reformatted, but a description comes
    back as written: bootstrap compares this line, never the model text.
    """
    return f"{_FORM_PURPOSES[name]} (labmesh model {model_digest(FORM_TYPES[name])})"


def source_identifier(location: str) -> str:
    """The ``sourceIdentifier`` DataZone joins an asset and a lineage node on: the OpenLineage ``<namespace>/<name>``.

    For datasets that are not AWS Glue or Redshift tables, DataZone names a
    lineage node ``<namespace>/<name>`` ("The importance of the sourceIdentifier
    attribute to lineage nodes", DataZone user guide); the asset must carry the
    same value for the lineage view to show it.
    """
    namespace, name = dataset_name(location)
    return f"{namespace}/{name}"


ASSET_TYPE_DESCRIPTION = "labmesh: an experiment, or one of its datasets (raw, processed, final)"


def asset_type_forms(form_revisions: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``formsInput`` of the asset type: the experiment form on every asset, the dataset form on datasets only."""
    return {
        EXPERIMENT_FORM: {
            "typeIdentifier": EXPERIMENT_FORM,
            "typeRevision": form_revisions[EXPERIMENT_FORM],
            "required": True,
        },
        DATASET_FORM: {"typeIdentifier": DATASET_FORM, "typeRevision": form_revisions[DATASET_FORM], "required": False},
    }


def external_id(experiment_id: str, zone: Zone | None = None) -> str:
    """The asset's ``externalIdentifier``: ``labmesh:EXP-1`` for an experiment, ``labmesh:EXP-1:raw`` for a dataset."""
    return ":".join([EXTERNAL_ID_PREFIX, experiment_id, *([zone.value] if zone else [])])


def form_json(content: Mapping[str, Any]) -> str:
    """Canonical JSON of a form's content: equal content, equal text (and equal client tokens)."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def index_terms(texts: Iterable[str]) -> list[str]:
    """Distinct terms of ``texts`` as the local FTS5 index makes them (``porter unicode61``), first seen first.

    SQLite's own tokenizer is used rather than an imitation, so a term DataZone
    holds is exactly a term the local index holds; ``fts5vocab`` in ``instance``
    mode gives them back in document order, which keeps the most important
    texts (passed first) when a term list has to be clipped.
    """
    db = sqlite3.connect(":memory:")
    try:
        db.execute("CREATE VIRTUAL TABLE texts USING fts5(body, tokenize = 'porter unicode61')")
        db.execute("CREATE VIRTUAL TABLE terms USING fts5vocab(texts, 'instance')")
        db.executemany(
            "INSERT INTO texts (rowid, body) VALUES (?, ?)",
            ((position, clean_text(text)) for position, text in enumerate(texts, start=1) if text),
        )
        # Each term once, at its first occurrence (documents hold far fewer than 2**32 tokens).
        rows = db.execute("SELECT term FROM terms GROUP BY term ORDER BY min(doc * 4294967296 + offset)")
        return [term for (term,) in rows]
    finally:
        db.close()


def query_terms(text: str | None) -> str:
    """A query value as index terms joined by spaces ('' when it has none)."""
    return " ".join(index_terms([text])) if text else ""


def day_number(text: str | None) -> int | None:
    """``2024-03-01...`` as 20240301; None for anything that does not open with an ISO date."""
    match = re.match(r"(\d{4})-(\d{2})-(\d{2})", text or "")
    return int("".join(match.groups())) if match else None


def _day_range(created: str) -> tuple[int, int]:
    """The days a file's ``created`` text may stand for, so day filters never drop what string comparison keeps."""
    if not created:
        return UNKNOWN_DAY, UNKNOWN_DAY
    day = day_number(created)
    return (day, day) if day is not None else (UNKNOWN_DAY, LAST_DAY)


def _timestamp(text: str | None) -> str | None:
    """ISO text DataZone reads as a timestamp, or None (the member is then left out)."""
    if not text:
        return None
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return text


@dataclass(frozen=True)
class Budgets:
    """Characters allowed per member; `scaled` halves them when a form would still not fit."""

    text: int = 10_000
    terms: int = 120_000
    facet_terms: int = 8_000
    names: int = 40_000
    samples: int = 20_000
    short_list: int = 4_000

    def scaled(self, factor: float) -> Budgets:
        return Budgets(*(int(budget * factor) for budget in astuple(self)))


def _clip_text(text: str, budget: int, member: str, clipped: list[str]) -> str:
    if len(text) <= budget:
        return text
    clipped.append(member)
    return text[:budget]


def _clip_list(values: Sequence[str], budget: int, member: str, clipped: list[str]) -> list[str]:
    """The first values that fit in ``budget`` characters (each value counted with its JSON quotes and comma)."""
    kept: list[str] = []
    used = 0
    for value in values:
        used += len(value) + 3
        if used > budget:
            clipped.append(member)
            break
        kept.append(value)
    return kept


def _clip_terms(terms: Sequence[str], budget: int, member: str, clipped: list[str]) -> str:
    return " ".join(_clip_list(terms, budget, member, clipped))


def _fitted(build: Callable[[Budgets], dict[str, Any]]) -> dict[str, Any]:
    """``build(budgets)`` with budgets halved until the JSON fits DataZone's limit on form content.

    The budgets add up to well under the limit; halving is for JSON escaping,
    which can double the length of text full of quotes or backslashes.
    """
    factor = 1.0
    while factor > 1 / 64:
        content = build(Budgets().scaled(factor))
        if len(form_json(content)) <= FORM_CONTENT_MAX - DIGEST_ROOM:
            return content
        factor /= 2
    raise ValueError(f"form content for {content.get('experimentId')} does not fit in {FORM_CONTENT_MAX} characters")


def _without_empty(content: Mapping[str, Any]) -> dict[str, Any]:
    """Unset members left out: a form member may be absent, and absent and empty should compare equal."""
    return {key: value for key, value in content.items() if value not in (None, "", [], {})}


def experiment_texts(record: ExperimentRecord) -> list[str]:
    """What the local index holds of an experiment: its words, its samples, its group and platform."""
    words = [record.id, record.title, record.description, record.owner, record.project, record.protocol]
    return [
        *[word for word in words if word],
        " ".join(record.tags),
        " ".join(words_of(record.custom)),
        " ".join(record.sample_ids),
        record.group or "",
        record.platform or "",
    ]


def eln_url(record: ExperimentRecord) -> str | None:
    """A link back to the ELN entry: the record's source when it is a URL, else a custom url field."""
    if record.source.startswith(("https://", "http://")):
        return record.source
    for key in ("eln_url", "elnUrl", "url", "link"):
        value = record.custom.get(key)
        if isinstance(value, str) and value.startswith(("https://", "http://")):
            return value
    return None


def experiment_form(record: ExperimentRecord) -> dict[str, Any]:
    """The content of ``LabmeshExperimentForm`` for ``record``."""
    terms = index_terms(experiment_texts(record))

    def build(budgets: Budgets) -> dict[str, Any]:
        clipped: list[str] = []
        content = {
            "experimentId": record.id,
            "title": _clip_text(record.title, budgets.text, "title", clipped),
            "description": _clip_text(record.description, budgets.text, "description", clipped),
            "group": _clip_text(record.group or "", budgets.text, "group", clipped),
            "project": _clip_text(record.project or "", budgets.text, "project", clipped),
            "owner": _clip_text(record.owner or "", budgets.text, "owner", clipped),
            "platform": _clip_text(record.platform or "", budgets.text, "platform", clipped),
            "protocol": _clip_text(record.protocol or "", budgets.text, "protocol", clipped),
            "sampleIds": _clip_list(record.sample_ids, budgets.samples, "sampleIds", clipped),
            "tags": _clip_list(list(record.tags), budgets.short_list, "tags", clipped),
            "created": _timestamp(record.created),
            "modified": _timestamp(record.modified),
            "createdDay": day_number(record.created) or UNKNOWN_DAY,
            "elnUrl": eln_url(record),
            "searchTerms": _clip_terms(terms, budgets.terms, "searchTerms", clipped),
            "groupTerms": _clip_terms(index_terms([record.group or ""]), budgets.facet_terms, "groupTerms", clipped),
            "platformTerms": _clip_terms(
                index_terms([record.platform or ""]), budgets.facet_terms, "platformTerms", clipped
            ),
        }
        return _without_empty({**clean_data(content), "clipped": clipped})

    return _fitted(build)


def file_sample_ids(manifest: Manifest, record: ExperimentRecord) -> list[str]:
    """Samples the dataset's files are found under: their own, or the experiment's for a file with none."""
    samples: dict[str, None] = {}
    for entry in manifest.entries:
        samples.update(dict.fromkeys(entry.sample_ids or record.sample_ids))
    return list(samples)


def dataset_texts(manifest: Manifest, record: ExperimentRecord) -> list[str]:
    """What the local index holds of a dataset's files, most useful first (names before extracted content)."""
    entries = manifest.entries
    return [
        *[entry.name for entry in entries],
        *manifest.formats,
        " ".join(file_sample_ids(manifest, record)),
        *[entry.key for entry in entries],
        *[entry.text for entry in entries],
        *[" ".join(words_of(entry.metadata)) for entry in entries],
    ]


def dataset_form(manifest: Manifest, *, location: str, record: ExperimentRecord) -> dict[str, Any]:
    """The content of ``LabmeshDatasetForm`` for one dataset (``record`` is its experiment, for sample fallback)."""
    entries = manifest.entries
    names = list(dict.fromkeys(entry.name for entry in entries))
    terms = index_terms(dataset_texts(manifest, record))
    ranges = [_day_range(entry.created) for entry in entries]
    stamps = sorted(stamp for stamp in (_timestamp(entry.created) for entry in entries) if stamp)
    pipelines = [f"{name}@{version}" for name, version in manifest.pipelines]

    def build(budgets: Budgets) -> dict[str, Any]:
        clipped: list[str] = []
        content = {
            "experimentId": manifest.experiment_id,
            # The form names the dataset by its zone twice: `dataset` is what search facets and people read.
            "dataset": manifest.zone.value,
            "zone": manifest.zone.value,
            "location": _clip_text(location, budgets.text, "location", clipped),
            "fileCount": manifest.file_count,
            "totalBytes": manifest.total_bytes,
            "errorCount": len(manifest.errors),
            "formats": _clip_list(manifest.formats, budgets.short_list, "formats", clipped),
            "formatTerms": _clip_terms(index_terms(manifest.formats), budgets.facet_terms, "formatTerms", clipped),
            "fileNames": _clip_list(names, budgets.names, "fileNames", clipped),
            "fileNameTerms": _clip_terms(index_terms(names), budgets.names, "fileNameTerms", clipped),
            "sampleIds": _clip_list(file_sample_ids(manifest, record), budgets.samples, "sampleIds", clipped),
            "pipelines": _clip_list(pipelines, budgets.short_list, "pipelines", clipped),
            "checksumsSummary": {
                "manifestDigest": manifest.digest,
                "sha256Count": sum(1 for entry in entries if entry.sha256),
                "sourceVerifiedCount": sum(1 for entry in entries if entry.source_checksum),
            },
            "createdFrom": stamps[0] if stamps else None,
            "createdTo": stamps[-1] if stamps else None,
            "createdFromDay": min(low for low, _ in ranges) if ranges else None,
            "createdToDay": max(high for _, high in ranges) if ranges else None,
            "searchTerms": _clip_terms(terms, budgets.terms, "searchTerms", clipped),
        }
        # Counts and days may be 0, which _without_empty keeps; only unset members go.
        return _without_empty({**clean_data(content), "clipped": clipped})

    return _fitted(build)
