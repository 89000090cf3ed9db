"""Step 7c of the flow: a dataset's files as documents for the content index.

One document per file whose content is worth searching, holding what was
*extracted* from the file and nothing else: the extractor's text, and its
metadata rendered as words and numbers, so that "GC content 61" or a gene a
report names finds the files that hold it. What the experiment says (title,
description, owner, samples) and where the file sits (experiment id, zone,
format, sample ids, platform, group, dates) are the catalog's to search, and
travel on the document only as facet attributes, never as words of its text:
copied into every file's text, one word of an experiment's description
matched every file of the experiment, and content search answered with the
experiment instead of the file that holds the word. The title is the file's
own name, which belongs to that file alone.

Raw sequence data never goes in: a sequencing file's document holds its
statistics, not its reads, because reads are useless as search text, cost
index space by the gigabyte, and may be data a lab may not share with a
search service. Long nucleotide runs are scrubbed from any text besides, in
case a table or a note carries whole sequences.

Each document carries its experiment's whole access list, the catalog's
(`labmesh_dagster.core.access`): its group, its owner, the people on it and
the grants kept in labmesh. Publishing takes the list from the catalog, so
grants are in it; a grant or a revoke later reaches the index through
`refresh_access`. An experiment with no group is its owner's and the admins'.

Each document also carries its passages (`file_passages`): the file's text
cut by its structure (a PDF's pages, a table's rows, a Markdown file's
sections, a text's lines) and its metadata fields, each knowing its place, for
search by meaning and the chat's citations. The index embeds a small
dataset's passages when it is published; an unchanged passage is not embedded
again.

Passages kept without their vector (a large delivery's, an index from before
passages, or an embedding that failed at a publish: logged, the words still
indexed) are found by words only until the ``content_vectors`` job embeds them
(`catch_up_vectors`, a bounded number per run), which its sensor starts
whenever the index wants vectors: the index heals by itself, and no publish
waits on the model.

Document ids are the manifest keys (``raw/EXP-1/run1/S1_R1.fastq.gz``): stable
across runs, so publishing again replaces each document instead of adding a
second one, and a file removed from the dataset is removed from the index by
the same id.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from labmesh_dagster.connectors.search.base import (
    CREATED,
    EXPERIMENT_ID,
    FORMAT,
    GROUP,
    MAX_ID_LENGTH,
    PLATFORM,
    SAMPLE_IDS,
    ZONE,
    AttributeValue,
    ContentDocument,
    ContentIndex,
    IndexReport,
    as_utc,
)
from labmesh_dagster.core.access import experiment_principals, people_on
from labmesh_dagster.core.errors import LabmeshError
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import LABMESH_DIR
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.core.passages import Passage
from labmesh_dagster.core.text import clean_text, is_clean_text
from labmesh_dagster.semantic.chunking import chunk_file

log = logging.getLogger(__name__)

CATCH_UP_VECTORS = 2048
"""Passages without a vector one ``content_vectors`` run embeds, at most: a minute or two on two cores, so the
run reports progress and a deploy or a crash loses little."""

SEQUENCE_FORMATS = frozenset({"fastq", "fasta", "sam", "bam", "cram", "vcf", "bcf"})
"""Formats whose content is sequence data: only their extracted statistics are indexed, never their text."""

MAX_LIST_ITEMS = 50
"""Longest metadata list written out in full (a CSV's columns); longer ones are cut, per-position series counted."""

# A run this long of nucleotide (IUPAC) letters is a sequence, not a word; primers and barcodes are shorter.
_SEQUENCE_RUN = re.compile(r"(?<![A-Za-z])[ACGTUNRYKMSWBDHVacgtunrykmswbdhv]{32,}(?![A-Za-z])")
_SEQUENCE_PLACEHOLDER = "[sequence]"


def document_id(key: str) -> str:
    """The document id of a manifest key: the key itself, or a stable digest-suffixed form where it cannot be.

    Kendra takes ids of at most 2048 characters; a longer key, or one with
    text that cannot be UTF-8, keeps a readable prefix and gains the key's
    SHA-256, so the id is the same on every run and distinct for every key.
    """
    if len(key) <= MAX_ID_LENGTH and is_clean_text(key):
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{clean_text(key)[: MAX_ID_LENGTH - len(digest) - 1]}#{digest}"


def base_format(fmt: str) -> str:
    """The format without a compression codec: ``fastq.gz`` -> ``fastq``."""
    return fmt.split(".", 1)[0]


GENERIC_METADATA = frozenset({"mime_type"})
"""Metadata every file gets, which says nothing the catalog's file listing does not."""


def is_searchable(entry: ManifestEntry) -> bool:
    """Whether a file's document would hold anything the catalog's file listing does not.

    labmesh's own files, empty files, and files nothing was extracted from (an
    unknown binary, a BAM) get no document: their names are found in the catalog.
    """
    relative = entry.key.split("/", 2)[2] if entry.key.count("/") >= 2 else entry.key
    if relative == LABMESH_DIR or relative.startswith(LABMESH_DIR + "/") or entry.format == "empty":
        return False
    has_text = bool(entry.text.strip()) and base_format(entry.format) not in SEQUENCE_FORMATS
    extracted = any(key not in GENERIC_METADATA for key in entry.metadata)
    return has_text or extracted or bool(entry.error)


def without_sequences(text: str) -> str:
    """``text`` with long nucleotide runs replaced by a placeholder."""
    return _SEQUENCE_RUN.sub(_SEQUENCE_PLACEHOLDER, text)


def _label(key: str) -> str:
    return str(key).replace("_", " ").strip()


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def metadata_lines(metadata: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Extracted metadata as ``label: value`` lines, nested keys joined, long lists shortened.

    Keys are sorted: a manifest read back from JSON has its keys sorted, and the
    same file must give the same document whichever way its entry was made.
    """
    for key, value in sorted(metadata.items()):
        label = f"{prefix} {_label(key)}".strip()
        if value is None:
            continue
        if isinstance(value, Mapping):
            yield from metadata_lines(value, label)
        elif isinstance(value, (list, tuple)):
            yield _list_line(label, value)
        else:
            yield f"{label}: {_scalar(value)}"


def _list_line(label: str, values: Sequence[Any]) -> str:
    numeric = all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values)
    if numeric and len(values) > MAX_LIST_ITEMS:
        # A per-position series: its length is what a search can use, not its hundreds of numbers.
        return f"{label}: {len(values)} values from {min(values)} to {max(values)}"
    shown = ", ".join(_scalar(value) for value in values[:MAX_LIST_ITEMS] if not isinstance(value, (dict, list)))
    more = f" and {len(values) - MAX_LIST_ITEMS} more" if len(values) > MAX_LIST_ITEMS else ""
    return f"{label}: {shown}{more}"


def file_lines(entry: ManifestEntry) -> list[str]:
    """What was extracted from the file: its metadata, an extraction error, and its text where it is not sequence.

    Nothing the catalog knows of the file (its path, format, samples) is
    written here: those are facets, filtered on, not words to match.
    """
    lines = list(metadata_lines(entry.metadata))
    if entry.error:
        lines.append(f"Extraction error: {entry.error.get('reason', '')}: {entry.error.get('detail', '')}")
    if entry.text.strip() and base_format(entry.format) not in SEQUENCE_FORMATS:
        lines.append(entry.text)
    return lines


def metadata_fields(entry: ManifestEntry) -> list[tuple[str, str]]:
    """The extracted metadata as ``(field name, its lines)``, one per top-level field, and an extraction error.

    The same lines `file_lines` writes, grouped by field so a passage can
    name the field it quotes.
    """
    fields = [
        (_label(key), "\n".join(metadata_lines({key: entry.metadata[key]})))
        for key in sorted(entry.metadata)
        if entry.metadata[key] is not None
    ]
    if entry.error:
        fields.append(
            ("extraction error", f"Extraction error: {entry.error.get('reason', '')}: {entry.error.get('detail', '')}")
        )
    return [(clean_text(name), clean_text(without_sequences(lines))) for name, lines in fields if lines]


def file_passages(entry: ManifestEntry) -> list[Passage]:
    """The file's passages: its text's by the format's structure (pages, rows, sections, lines), then its fields'."""
    text = entry.text if base_format(entry.format) not in SEQUENCE_FORMATS else ""
    return chunk_file(
        document_id(entry.key),
        fmt=entry.format,
        text=clean_text(without_sequences(text)),
        fields=metadata_fields(entry),
        metadata=entry.metadata,
    )


def _created(entry: ManifestEntry, record: ExperimentRecord) -> datetime | None:
    for value in (entry.created, record.created):
        if value:
            try:
                return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
            except ValueError:
                continue
    return None


def record_principals(record: ExperimentRecord) -> frozenset[str]:
    """Who may see the experiment by its ELN record alone (grants aside): group, owner and people."""
    return experiment_principals(record.group, record.owner, people_on(record.custom))


def file_document(
    entry: ManifestEntry,
    manifest: Manifest,
    record: ExperimentRecord,
    uri_of: Callable[[str], str],
    principals: Collection[str] | None = None,
) -> ContentDocument:
    """The document of one file of ``manifest``; ``principals`` None takes the record's (no grants)."""
    # A file naming no sample of its own (a run summary) belongs to every sample of the experiment.
    sample_ids = list(entry.sample_ids) or record.sample_ids
    text = "\n".join(file_lines(entry))
    attributes: dict[str, AttributeValue] = {
        EXPERIMENT_ID: record.id,
        SAMPLE_IDS: sample_ids,
        ZONE: manifest.zone,
        FORMAT: entry.format,
    }
    if record.platform:
        attributes[PLATFORM] = record.platform
    if record.group:
        attributes[GROUP] = record.group
    created = _created(entry, record)
    if created is not None:
        attributes[CREATED] = created
    return ContentDocument(
        id=document_id(entry.key),
        title=clean_text(entry.name),
        text=clean_text(without_sequences(text)),
        uri=uri_of(entry.key),
        attributes=attributes,
        principals=tuple(sorted(record_principals(record) if principals is None else principals)),
        passages=tuple(file_passages(entry)),
    )


def dataset_documents(
    manifest: Manifest,
    record: ExperimentRecord,
    uri_of: Callable[[str], str],
    principals: Collection[str] | None = None,
) -> list[ContentDocument]:
    """One document per searchable file of the dataset, in key order.

    ``uri_of`` turns a manifest key into the link a search hit shows (an
    ``s3://`` URI, a portal URL, a ``file://`` path). ``principals`` is the
    experiment's access list as the catalog holds it (with grants); None
    takes the record's own.
    """
    if record.id != manifest.experiment_id:
        raise ValueError(f"record {record.id} does not describe the dataset of {manifest.experiment_id}")
    return [
        file_document(entry, manifest, record, uri_of, principals) for entry in manifest.entries if is_searchable(entry)
    ]


def removed_document_ids(previous: Manifest | None, current: Manifest) -> list[str]:
    """Ids of documents the previous manifest gave and the current one no longer does, sorted."""
    if previous is None:
        return []
    before = {document_id(entry.key) for entry in previous.entries if is_searchable(entry)}
    now = {document_id(entry.key) for entry in current.entries if is_searchable(entry)}
    return sorted(before - now)


def index_dataset(
    index: ContentIndex,
    manifest: Manifest,
    previous: Manifest | None,
    record: ExperimentRecord,
    uri_of: Callable[[str], str],
    principals: Collection[str] | None = None,
) -> IndexReport:
    """Bring the index in step with the dataset: every searchable file put, every vanished one deleted.

    Idempotent: the same manifest gives the same documents under the same
    ids, so running it again changes nothing in the index. Failed documents
    are in the report, for the caller to surface (an asset check, metadata).
    """
    index.prepare()
    documents = dataset_documents(manifest, record, uri_of, principals)
    return index.replace(documents, removed_ids=removed_document_ids(previous, manifest))


def catch_up_vectors(index: ContentIndex, *, limit: int = CATCH_UP_VECTORS) -> int:
    """Embed up to ``limit`` passages the index keeps without a vector; how many were (0 when embedding fails).

    The dataset is published whatever happens here: a failing embedder is
    logged, and the next publish (or ``labmesh content embed``) tries again.
    """
    try:
        embedded = index.embed_missing(limit=limit)
    except LabmeshError as error:
        log.warning("passages still without vectors (dense search will not find them yet): %s", error)
        return 0
    if embedded:
        log.info("embedded %d passages that had no vector", embedded)
    return embedded
