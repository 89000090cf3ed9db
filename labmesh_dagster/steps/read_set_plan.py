"""Planning which of an experiment's raw files become read sets in a sequence store, and why the others do not.

What a sequence store takes is the HealthOmics Developer Guide's ("Creating a
HealthOmics sequence store"): "the unaligned formats of FASTQ (gzip-only) and
uBAM", and "the aligned formats of BAM and CRAM", which need a reference
genome ("Importing read sets into a HealthOmics sequence store"). So:

- FASTQ goes in only gzip-compressed (the format extraction read from the
  bytes says ``fastq.gz``, whatever the name says); plain, bzip2, xz and zstd
  FASTQ are skipped, and so is the mate of a skipped file rather than imported
  as if it had none.
- A BAM whose header has no ``@SQ`` line (``reference_count`` 0 in what
  extraction recorded) is unaligned and goes in as ``UBAM``, with no reference;
  a BAM with ``@SQ`` lines, and a CRAM, go in as ``BAM``/``CRAM`` against the
  configured reference, and are skipped without one.
- SAM is not a format the store takes; files whose extraction failed are
  skipped, since a truncated or mislabelled file would only fail inside the job.
- A read set needs a ``sampleId`` and a ``subjectId`` (StartReadSetImportJob
  requires both). The sample is the one the file is linked to, else the
  experiment's only sample; a file linked to no sample, or to several, is
  skipped, never given its file name as an id. The subject is the sample's
  ``subject_id`` (or ``subject``) attribute, else the sample id itself.

Every skipped file is named with its reason, for the asset check to show.

The R1 and R2 files of one paired run become one read set. Mates are found by
name, in the spellings sequencers and archives use: ``_R1``/``_R2`` (Illumina,
with or without the ``_001`` chunk number), ``_1``/``_2`` (SRA and ENA), and
``.R1.``/``.R2.``. Two files pair only when they share a folder, a base name, a
chunk number and a sample; a mate without its partner, or a name that two
files of the same read claim, is imported file by file rather than guessed at.

Every text sent is made valid for the service model (StartReadSetImportJob):
names, subject and sample ids are 1 to 127 characters, a description 1 to 255,
all of letters, marks, separators, symbols, numbers and punctuation, so
control characters are replaced and long values clipped.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from labmesh_dagster.connectors.omics.base import ReadSetSource
from labmesh_dagster.core.experiment import ExperimentRecord, Sample
from labmesh_dagster.core.manifest import Manifest, ManifestEntry

# ReadSetName, SampleId, SubjectId: 1-127 characters; ReadSetDescription: 1-255.
NAME_LIMIT = 127
DESCRIPTION_LIMIT = 255

RAW_ZONE_TAG = "raw"
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")
_SEQUENCE_SUFFIXES = (".fastq", ".fq", ".bam", ".cram")
_CODEC_NAMES = {
    "": "without compression",
    "bz2": "compressed with bzip2",
    "xz": "compressed with xz",
    "zst": "compressed with zstd",
}
# The mate marker is the last one in the stem, optionally followed by an Illumina chunk number.
_MATE = re.compile(r"(?P<base>.+)(?:_R(?P<r>[12])|_(?P<n>[12])|\.R(?P<d>[12]))(?P<chunk>_\d{3})?", re.IGNORECASE)
_DEFAULT_CHUNK = "_001"
_LISTED_SAMPLES = 5


@dataclass(frozen=True)
class SkippedFile:
    """A sequencing file of the manifest that is not imported, and why."""

    key: str
    reason: str


@dataclass(frozen=True)
class ReadSetPlan:
    """The read sets to import, ordered by the key of their first file, and the sequencing files left out."""

    sources: tuple[ReadSetSource, ...]
    skipped: tuple[SkippedFile, ...]


def model_text(value: str, limit: int, fallback: str = "unnamed") -> str:
    """``value`` as the model's text pattern allows it: no control, format or unassigned characters, clipped."""
    text = "".join("_" if unicodedata.category(char).startswith("C") else char for char in value).strip()
    return text[:limit].strip() or fallback


def _stem(name: str) -> str:
    """The file name without its compression and sequence format suffixes."""
    lowered = name.lower()
    for suffixes in (_COMPRESSION_SUFFIXES, _SEQUENCE_SUFFIXES):
        for suffix in suffixes:
            if lowered.endswith(suffix) and len(name) > len(suffix):
                name, lowered = name[: -len(suffix)], lowered[: -len(suffix)]
                break
    return name


def _alignment_type(entry: ManifestEntry, family: str, reference_arn: str | None) -> tuple[str, str | None]:
    """BAM or CRAM, UBAM for a BAM without ``@SQ`` lines; with the reason it is skipped, if it is."""
    references = entry.metadata.get("reference_count")
    label = family.upper()
    if not isinstance(references, int) or isinstance(references, bool):
        return label, f"a {label} whose header was not read, so whether it is aligned (@SQ lines) is unknown"
    if references == 0:
        if family == "bam":
            return "UBAM", None
        return label, "an unaligned CRAM (no @SQ lines): HealthOmics takes unaligned reads as gzip FASTQ or uBAM"
    if not reference_arn:
        return label, (
            f"an aligned {label} ({references} reference sequences): HealthOmics stores aligned reads against "
            "a reference genome; set LABMESH_OMICS_REFERENCE_ARN to import it"
        )
    return label, None


def _file_type(entry: ManifestEntry, reference_arn: str | None) -> tuple[str, str | None] | None:
    """The read set file type and the reason it cannot be imported (if so); None for a file that is not reads."""
    family, _, codec = entry.format.lower().partition(".")
    if family not in {"fastq", "bam", "cram", "sam"}:
        return None
    if entry.error:
        reason = entry.error.get("reason", "unreadable")
        return family.upper(), f"its extraction failed ({reason}), so the import job would fail on it too"
    if family == "fastq":
        if codec == "gz":
            return "FASTQ", None
        what = _CODEC_NAMES.get(codec, f"compressed with {codec}")
        return "FASTQ", (
            f"a FASTQ {what}: HealthOmics sequence stores take FASTQ gzip-compressed only; "
            "compress it with gzip (or bgzip) to import it"
        )
    if family == "sam":
        return "SAM", "a SAM: HealthOmics takes BAM, CRAM, uBAM and gzip FASTQ; convert it to BAM to import it"
    return _alignment_type(entry, family, reference_arn)


def _sample_of(entry: ManifestEntry, record: ExperimentRecord) -> tuple[str | None, str | None]:
    """The file's one sample, else the experiment's only one; or None with the reason no sample can be given."""
    if len(entry.sample_ids) == 1:
        return entry.sample_ids[0], None
    if entry.sample_ids:
        listed = ", ".join(entry.sample_ids[:_LISTED_SAMPLES])
        return None, f"it holds reads of {len(entry.sample_ids)} samples ({listed}): a read set is one sample's"
    if len(record.samples) == 1:
        return record.samples[0].id, None
    known = ", ".join(sample.id for sample in record.samples[:_LISTED_SAMPLES])
    among = (
        f"experiment {record.id} has {len(record.samples)} samples ({known})"
        if record.samples
        else f"experiment {record.id} lists no samples"
    )
    return None, (
        f"no sample id: the file is linked to no sample and {among}; HealthOmics needs a sample and a subject "
        "for each read set, and labmesh does not make them up (name the sample in the file's path or in the ELN)"
    )


def _subject_of(sample_id: str, record: ExperimentRecord) -> str:
    sample = next((item for item in record.samples if item.id == sample_id), Sample(sample_id))
    for attribute in ("subject_id", "subject"):
        value = sample.attributes.get(attribute)
        if value not in (None, ""):
            return str(value)
    return sample_id


@dataclass(frozen=True)
class _File:
    """A sequencing file with what its name says (read, base name, chunk), and why it is skipped, if it is."""

    entry: ManifestEntry
    file_type: str
    sample: str | None
    read: int | None
    base: str
    chunk: str
    reason: str | None

    @classmethod
    def of(cls, entry: ManifestEntry, file_type: str, sample: str | None, reason: str | None) -> _File:
        stem = _stem(entry.name)
        match = _MATE.fullmatch(stem) if file_type == "FASTQ" else None
        if match is None:
            return cls(entry, file_type, sample, None, stem, "", reason)
        read = int(match.group("r") or match.group("n") or match.group("d"))
        return cls(entry, file_type, sample, read, match.group("base"), (match.group("chunk") or "").lower(), reason)

    @property
    def folder(self) -> str:
        return self.entry.key.rsplit("/", 1)[0] if "/" in self.entry.key else ""

    @property
    def pair_name(self) -> str:
        """What a pair is called: the base name, with the chunk number only when it is not the first."""
        return self.base + ("" if self.chunk in ("", _DEFAULT_CHUNK) else self.chunk)


def _pair_up(files: list[_File]) -> list[tuple[_File, ...]]:
    """One file or an (R1, R2) pair per read set; paired only when each read is claimed by exactly one file."""
    candidates: dict[tuple[str, str, str, str | None], list[_File]] = defaultdict(list)
    groups: list[tuple[_File, ...]] = []
    for file in files:
        if file.read is None:
            groups.append((file,))
        else:
            candidates[(file.folder, file.base, file.chunk, file.sample)].append(file)
    for candidate in candidates.values():
        if sorted(file.read or 0 for file in candidate) == [1, 2]:
            groups.append(tuple(sorted(candidate, key=lambda file: file.read or 0)))
        else:
            groups.extend((file,) for file in candidate)
    return sorted(groups, key=lambda group: group[0].entry.key)


def _skipped(group: tuple[_File, ...]) -> list[SkippedFile]:
    """Every file of a group one of whose files cannot be imported: a lone mate is not a single-end read set."""
    refused = [file for file in group if file.reason]
    if not refused:
        return []
    return [
        SkippedFile(
            file.entry.key,
            file.reason or f"its mate {refused[0].entry.name} is not imported ({refused[0].reason})",
        )
        for file in group
    ]


def plan_read_sets(
    manifest: Manifest,
    record: ExperimentRecord,
    uri_of: Callable[[str], str],
    *,
    reference_arn: str | None,
) -> ReadSetPlan:
    """The read sets to import from ``manifest``'s files, and the sequencing files skipped with their reasons.

    ``uri_of`` turns a manifest key into the ``s3://`` URI the service reads.
    """
    files = []
    for entry in manifest.entries:
        typed = _file_type(entry, reference_arn)
        if typed is None:
            continue
        file_type, reason = typed
        sample, no_sample = _sample_of(entry, record)
        files.append(_File.of(entry, file_type, sample, reason or no_sample))
    description = model_text(f"{record.title} (labmesh experiment {record.id})", DESCRIPTION_LIMIT)
    tags = {"experimentId": record.id, "labmesh": RAW_ZONE_TAG}
    sources: list[ReadSetSource] = []
    skipped: list[SkippedFile] = []
    for group in _pair_up(files):
        if refused := _skipped(group):
            skipped += refused
            continue
        first = group[0]
        sample = first.sample
        if sample is None:  # a file without a sample carries its reason, so the group was refused above
            raise AssertionError(f"{first.entry.key} has no sample and no reason to be skipped")
        name = model_text(first.pair_name if len(group) == 2 else _stem(first.entry.name), NAME_LIMIT)
        sources.append(
            ReadSetSource(
                files=tuple(uri_of(file.entry.key) for file in group),
                file_type=first.file_type,
                subject_id=model_text(_subject_of(sample, record), NAME_LIMIT),
                sample_id=model_text(sample, NAME_LIMIT),
                name=name,
                description=description,
                reference_arn=reference_arn if first.file_type in {"BAM", "CRAM"} else None,
                tags=tags,
            )
        )
    return ReadSetPlan(tuple(sources), tuple(sorted(skipped, key=lambda file: file.key)))
