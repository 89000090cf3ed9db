"""Describing a zone's files: checksums, formats, extracted metadata, samples, lineage.

A manifest is rebuilt from what the zone holds rather than patched, so it can
never drift from the store. Files already described in the previous manifest
and unchanged since (same size and modification time) keep their entry, so a
rematerialization costs a listing, not a re-read of every file.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any, BinaryIO

from labmesh_dagster.connectors.store.base import ObjectInfo, ObjectStore
from labmesh_dagster.core.checksums import SHA256, Checksum, HashingReader
from labmesh_dagster.core.errors import ObjectNotFound
from labmesh_dagster.core.keys import ObjectKey, Zone, experiment_prefix, manifest_key
from labmesh_dagster.core.manifest import Manifest, ManifestEntry, Provenance
from labmesh_dagster.core.text import clean_data, clean_text
from labmesh_dagster.extract import extract
from labmesh_dagster.extract.linking import DescribedFile, link_files
from labmesh_dagster.extract.registry import DEFAULT_BUDGET_SECONDS

SAMPLES_IN_FILE = "samples_in_file"
"""Metadata key of the sample ids a file names inside it (read groups, VCF columns, sample sheets)."""

LINKS = "links"
"""Metadata key of a file's links to the other files of its dataset."""

INDEX_SUFFIXES = (".bai", ".csi", ".crai", ".tbi")

DESCRIBE_WORKERS = 2
"""Files described at once. Reading and inflating release the GIL, so a second file's reads (a GET on S3,
a disk read here) overlap the first one's parsing; more threads than this only trade places on two cores
and multiply what extraction holds in memory."""


def samples_in_path(path: str, sample_ids: Sequence[str]) -> tuple[str, ...]:
    """Sample ids named in a file path as whole tokens (``S1`` in ``S1_R1.fq``, not in ``S10``)."""
    found = []
    for sample_id in sample_ids:
        pattern = r"(?<![A-Za-z0-9])" + re.escape(sample_id) + r"(?![A-Za-z0-9])"
        if re.search(pattern, path, flags=re.IGNORECASE):
            found.append(sample_id)
    return tuple(found)


def samples_of_file(path: str, sample_ids: Sequence[str], metadata: Mapping[str, Any]) -> tuple[str, ...]:
    """The experiment's samples a file belongs to: named in its path, or named inside it (read groups, columns)."""
    named_inside = {str(sample).casefold() for sample in metadata.get(SAMPLES_IN_FILE) or ()}
    inside = [sample for sample in sample_ids if sample.casefold() in named_inside]
    return tuple(dict.fromkeys([*samples_in_path(path, sample_ids), *inside]))


def _sibling_opener(store: ObjectStore, key: ObjectKey) -> Callable[[str], BinaryIO | None]:
    """Open an index stored beside ``key`` (``x.bam.bai``), read whole: indexes are small, and optional."""

    def open_sibling(name: str) -> BinaryIO | None:
        if not name.lower().endswith(INDEX_SUFFIXES) or "/" in name:
            return None
        directory = key.relative_path.rpartition("/")[0]
        sibling = ObjectKey.for_experiment(key.zone, key.experiment_id, f"{directory}/{name}" if directory else name)
        try:
            return io.BytesIO(store.read_bytes(sibling))
        except ObjectNotFound:
            return None

    return open_sibling


def describe_object(
    store: ObjectStore,
    info: ObjectInfo,
    sample_ids: Sequence[str],
    *,
    derived_from: tuple[str, ...] = (),
    source_checksum: str | None = None,
    produced_by: Provenance | None = None,
    budget_seconds: float | None = DEFAULT_BUDGET_SECONDS,
) -> ManifestEntry:
    """Read one object once: sha256, the source checksum's algorithm, and format-specific metadata together."""
    source_algorithm = Checksum.parse(source_checksum).algorithm if source_checksum else SHA256
    with store.open(info.key) as stream:
        reader = HashingReader(stream, (SHA256, source_algorithm))
        extraction = extract(
            reader,  # type: ignore[arg-type]
            info.key.name,
            budget_seconds=budget_seconds,
            open_sibling=_sibling_opener(store, info.key),
            size=info.size,
        )
        checksums = reader.finish()
    error = {"reason": extraction.error.reason, "detail": extraction.error.detail} if extraction.error else None
    metadata = dict(extraction.metadata)
    if extraction.samples:
        metadata[SAMPLES_IN_FILE] = list(extraction.samples)
    if extraction.partial:
        metadata["partial"] = extraction.partial
    return ManifestEntry(
        key=str(info.key),
        size=info.size,
        sha256=checksums.pop(SHA256).value,
        format=extraction.format,
        created=info.modified.isoformat(),
        metadata=clean_data(metadata),
        sample_ids=samples_of_file(info.key.relative_path, sample_ids, metadata),
        error=error,
        derived_from=derived_from,
        source_checksum=source_checksum,
        text=clean_text(extraction.text),
        checksums={algorithm: checksum.value for algorithm, checksum in checksums.items()},
        produced_by=produced_by,
    )


def read_manifest(store: ObjectStore, zone: Zone, experiment_id: str) -> Manifest | None:
    try:
        return Manifest.from_json(store.read_bytes(manifest_key(zone, experiment_id)))
    except ObjectNotFound:
        return None
    except (ValueError, KeyError, json.JSONDecodeError):
        # A damaged manifest is rebuilt from the zone rather than trusted.
        return None


def build_manifest(
    store: ObjectStore,
    zone: Zone,
    experiment_id: str,
    sample_ids: Sequence[str],
    *,
    previous: Manifest | None = None,
    source_checksums: Mapping[str, str] | None = None,
    lineage: Callable[[ObjectKey], tuple[str, ...]] | None = None,
    provenance: Callable[[ObjectKey], Provenance | None] | None = None,
    budget_seconds: float | None = DEFAULT_BUDGET_SECONDS,
) -> Manifest:
    """The manifest of everything in the experiment's folder of ``zone``.

    ``source_checksums`` gives, for files promoted just now, the checksum they
    were verified against; ``lineage`` says which keys each file came from;
    ``provenance`` says which pipeline run made each file (None: no pipeline);
    ``budget_seconds`` bounds each file's extraction.
    """
    source_checksums = source_checksums or {}
    described = {entry.key: entry for entry in previous.entries} if previous else {}
    entries: list[ManifestEntry | Future[ManifestEntry | None]] = []
    pool = ThreadPoolExecutor(DESCRIBE_WORKERS, thread_name_prefix="labmesh-describe")
    for info in store.list(zone, experiment_prefix(experiment_id)):
        if info.key.is_labmesh_internal:
            continue
        key = str(info.key)
        derived_from = lineage(info.key) if lineage else ()
        produced_by = provenance(info.key) if provenance else None
        known = described.get(key)
        source_checksum = source_checksums.get(key) or (known.source_checksum if known else None)
        if (
            known
            and key not in source_checksums
            and known.size == info.size
            and known.created == info.modified.isoformat()
        ):
            # The bytes are as described before: keep the extraction, re-derive samples, lineage and provenance
            # (the experiment's samples or the producing pipeline may have changed since).
            samples = samples_of_file(info.key.relative_path, sample_ids, known.metadata)
            entries.append(replace(known, sample_ids=samples, derived_from=derived_from, produced_by=produced_by))
            continue
        options: dict[str, Any] = {
            "derived_from": derived_from,
            "source_checksum": source_checksum,
            "produced_by": produced_by,
            "budget_seconds": budget_seconds,
        }
        if info.size < store.inline_below_bytes:
            described_inline = _describe_if_present(store, info, sample_ids, **options)
            if described_inline is not None:
                entries.append(described_inline)
        else:
            entries.append(pool.submit(_describe_if_present, store, info, sample_ids, **options))
    try:
        # In listing order, so the manifest is the same however the threads finished.
        done = [entry.result() if isinstance(entry, Future) else entry for entry in entries]
    finally:
        pool.shutdown(cancel_futures=True)
    described_now = [entry for entry in done if entry is not None]
    return Manifest.build(experiment_id, zone.value, with_links(described_now, sample_ids))


def _describe_if_present(
    store: ObjectStore, info: ObjectInfo, sample_ids: Sequence[str], **options: Any
) -> ManifestEntry | None:
    """`describe_object`, or None for a file removed while we listed: it is simply not part of the dataset any more."""
    try:
        return describe_object(store, info, sample_ids, **options)
    except ObjectNotFound:
        return None


def with_links(entries: Sequence[ManifestEntry], sample_ids: Sequence[str] = ()) -> list[ManifestEntry]:
    """The entries with their links to each other (read pairs, run, sample sheet) made afresh under ``links``.

    A file the sample sheet assigns to one of the experiment's samples
    (``liver_S1_L001_R1_001.fastq.gz`` listed as sample ``S-001``) belongs to
    that sample too, though its name does not say so.
    """
    unlinked = [replace(entry, metadata={k: v for k, v in entry.metadata.items() if k != LINKS}) for entry in entries]
    links = link_files([DescribedFile(entry.key, entry.format, entry.metadata) for entry in unlinked])
    by_folded = {sample.casefold(): sample for sample in sample_ids}
    linked = []
    for entry in unlinked:
        entry_links = links.get(entry.key)
        if entry_links is None:
            linked.append(entry)
            continue
        sheet_sample = by_folded.get(str(entry_links.get("sample_id", "")).casefold())
        samples = tuple(dict.fromkeys([*entry.sample_ids, sheet_sample])) if sheet_sample else entry.sample_ids
        linked.append(replace(entry, metadata={**entry.metadata, LINKS: clean_data(entry_links)}, sample_ids=samples))
    return linked


def write_manifest(store: ObjectStore, manifest: Manifest) -> ObjectKey:
    """Write the manifest unless the store already holds exactly this content."""
    key = manifest_key(manifest.zone, manifest.experiment_id)
    content = manifest.to_json().encode("utf-8")
    try:
        if store.read_bytes(key) == content:
            return key
    except ObjectNotFound:
        pass
    store.put(key, content)
    return key


def inherit_samples(manifest: Manifest, upstream: Manifest) -> Manifest:
    """A derived file belongs to the samples of the files it was made from, as well as those its name gives."""
    samples_of = {entry.key: entry.sample_ids for entry in upstream.entries}
    entries = []
    for entry in manifest.entries:
        inherited = [sample for source in entry.derived_from for sample in samples_of.get(source, ())]
        combined = tuple(dict.fromkeys([*entry.sample_ids, *inherited]))
        entries.append(entry if combined == entry.sample_ids else replace(entry, sample_ids=combined))
    return Manifest.build(manifest.experiment_id, manifest.zone, entries)
