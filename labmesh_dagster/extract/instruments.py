"""Instrument exports (plate readers, qPCR, cell counters, spectrophotometers) read through allotropy.

allotropy converts vendor exports to the Allotrope Simple Model (ASM), but it
must be told which parser to use, and its own discovery falls back on trying
every parser, which would take someone's plain CSV for an instrument file. So
:func:`recognise` names the parser from signatures each vendor's export always
carries in its first lines (a header row, a ``##BLOCKS=`` line), and only for
the extensions that parser accepts; anything else is left to the ordinary
table and text extractors.

The parsers hold the whole file and its ASM in memory and cannot be
interrupted, so only files up to :data:`MAX_INSTRUMENT_BYTES` are parsed, and
only a summary of the ASM is kept: the ASM of a 96-well plate is already tens
of kilobytes. allotropy and pandas are imported on first use, because this
module is imported wherever format detection is (sensors, the code server).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any, BinaryIO, cast

from labmesh_dagster.core.errors import ExtractionError
from labmesh_dagster.extract import tables
from labmesh_dagster.extract.base import TEXT_LIMIT, Extractor, FileContext, Summary, spooled, unique_samples
from labmesh_dagster.extract.compression import Readable, chain_head, read_head, strip_compression_suffix

FORMAT = "instrument"
"""The format name ``detect_format`` gives a file that :func:`recognise` names a parser for."""

HEAD_BYTES = 64 * 1024
"""Leading bytes the signatures look at: the same head format detection reads."""

MAX_INSTRUMENT_BYTES = 1024 * 1024
"""Largest export handed to allotropy.

Its parsers are not streaming: measured with allotropy 0.1.150, a 0.8 MB
SoftMax Pro file of 1000 plates took 25 s and 1 GB of memory, a 0.4 MB CFX
Maestro file of 5000 wells 7 s; real exports of these instruments are a few
to a few hundred kilobytes.
"""

MAX_LISTED = 50
"""Most plate ids, experiment types and detection types kept in the metadata."""

DETAIL_LIMIT = 500
"""Most characters of a parser's error message kept in the error's detail."""

NOT_GIVEN = frozenset({"", "N/A", "nan"})
"""Values allotropy writes for a field the export does not have ("nan" is an empty cell read by pandas)."""

_PLACEHOLDER_TIME = "1970-01-01"
"""allotropy's measurement time when the export gives none (CFX Maestro)."""


class InstrumentRejected(ExtractionError):
    """A file recognised as an instrument export that its allotropy parser could not read.

    Its reason is ``bad_format``; ``vendor`` names the parser, and the error
    is raised after ``ctx.partial`` has been filled with the file's
    description as an ordinary table, when it is a CSV or TSV.
    """

    def __init__(self, name: str, vendor: str, detail: str) -> None:
        self.vendor = vendor
        super().__init__(name, "bad_format", detail)


@dataclass(frozen=True)
class _Signature:
    """How one vendor's export is known: its allotropy parser, its extensions and a test of its first lines."""

    vendor: str
    extensions: frozenset[str]
    matches: Callable[[list[str]], bool]


def _first_row_cells(lines: list[str]) -> set[str]:
    """The cells of the first line read as CSV: an export's column header."""
    if not lines:
        return set()
    return {cell.strip() for cell in next(csv.reader([lines[0]]), [])}


def _has_columns(*columns: str) -> Callable[[list[str]], bool]:
    """A test that the header row names every one of ``columns``."""
    wanted = frozenset(columns)
    return lambda lines: wanted <= _first_row_cells(lines)


_BLOCKS_LINE = re.compile(r"##BLOCKS=\s*\d+\s*")
_BLOCK_START = re.compile(r"(Plate|Group|Note):")


def _softmax_pro(lines: list[str]) -> bool:
    """``##BLOCKS= n`` as the first line, then the start of a Plate, Group or Note block."""
    filled = [line for line in lines[:20] if line.strip()]
    return len(filled) >= 2 and bool(_BLOCKS_LINE.fullmatch(filled[0])) and bool(_BLOCK_START.match(filled[1]))


_KEY_LINE = re.compile(r"([^\t:]+):\t+[^\t]+\s*")
_NANODROP_KEYS = frozenset({"application", "serial number", "user name"})


def _nanodrop_eight(lines: list[str]) -> bool:
    """``Key:<tab>value`` lines naming the serial number and the application or user, before the table."""
    keys = {match.group(1).strip().lower() for line in lines[:5] if (match := _KEY_LINE.fullmatch(line))}
    found = keys & _NANODROP_KEYS
    return "serial number" in found and len(found) >= 2


SIGNATURES: tuple[_Signature, ...] = (
    _Signature("MOLDEV_SOFTMAX_PRO", frozenset({"txt"}), _softmax_pro),
    _Signature(
        "BECKMAN_VI_CELL_BLU",
        frozenset({"csv"}),
        _has_columns("Sample ID", "Viability (%)", "Viable (x10^6) cells/mL", "Analysis date/time"),
    ),
    _Signature("CFXMAESTRO", frozenset({"csv"}), _has_columns("Well", "Fluor", "Target", "Content", "Sample", "Cq")),
    _Signature("THERMO_FISHER_NANODROP_EIGHT", frozenset({"txt", "tsv"}), _nanodrop_eight),
)
"""The exports recognised, each by what its instrument software always writes at the top.

The columns tested are those the parser cannot do without, plus enough of the
vendor's own names (``Fluor``, ``Cq``, ``Viable (x10^6) cells/mL``) that a
table someone made by hand does not match by chance.
"""


def _bom_encoding(head: bytes) -> str | None:
    """UTF-16 when the file starts with its byte order mark (Vi-Cell BLU can export so), else None."""
    return "utf-16" if head.startswith((b"\xff\xfe", b"\xfe\xff")) else None


def _file_encoding(path: Path, head: bytes) -> str:
    """The export's text encoding, told to allotropy rather than left to it.

    Instrument PCs write Windows-1252 as often as UTF-8. allotropy 0.1.150
    assumes UTF-8 for most parsers, and where it does detect (chardet) a
    wrong first guess leaves pandas at the end of the file for the second.
    The file is at most MAX_INSTRUMENT_BYTES, so trying UTF-8 on all of it
    is cheap.
    """
    if (encoding := _bom_encoding(head)) is not None:
        return encoding
    data = path.read_bytes()
    for candidate in ("utf-8-sig", "cp1252"):
        try:
            data.decode(candidate)
        except UnicodeDecodeError:
            continue
        return candidate
    return "latin-1"


def _head_lines(head: bytes) -> list[str]:
    """The head as lines of text, whatever the export's encoding (UTF-16 with a BOM, UTF-8, Windows-1252).

    The signatures are ASCII, so bytes of another 8-bit encoding may decode
    to replacement characters without changing what matches.
    """
    text = head.decode(_bom_encoding(head) or "utf-8", errors="replace")
    return text.removeprefix("\ufeff").splitlines()


def _extension(name: str) -> str:
    """The lower-case extension of the file's own name, without a compression suffix or the dot."""
    return PurePath(strip_compression_suffix(name).replace("\\", "/")).suffix.lower().removeprefix(".")


def recognise(name: str, head: bytes) -> str | None:
    """The allotropy parser (a ``Vendor`` value) for this export, from its name and first bytes, or None.

    Only the extensions the parser accepts are considered, and the signature
    must match the file's first lines, so a plain table is never taken for an
    instrument export. ``head`` is the file's first bytes (up to 64 KiB),
    decompressed.
    """
    extension = _extension(name)
    candidates = [signature for signature in SIGNATURES if extension in signature.extensions]
    if not candidates or not head:
        return None
    lines = _head_lines(head[:HEAD_BYTES])
    for signature in candidates:
        if signature.matches(lines):
            return signature.vendor
    return None


class _Capped:
    """Reads a stream through, refusing with ``too_large`` once it passes ``limit`` bytes."""

    def __init__(self, stream: Readable, limit: int, ctx: FileContext) -> None:
        self._stream = stream
        self._limit = limit
        self._ctx = ctx
        self._count = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size) or b""
        self._count += len(chunk)
        if self._count > self._limit:
            raise self._ctx.error(
                "too_large",
                f"larger than the {self._limit} bytes an instrument export is parsed up to "
                "(allotropy holds the whole file and its ASM in memory)",
            )
        return chunk


def _known(value: object) -> str | None:
    """A field's value as text, or None when allotropy wrote a placeholder for it."""
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return None if text in NOT_GIVEN else text


@dataclass
class _Facts:
    """What a walk through the ASM collects; lists keep first-seen order."""

    measurements: int = 0
    samples: dict[str, None] = field(default_factory=dict)
    wells: set[tuple[str, str]] = field(default_factory=set)
    plates: dict[str, None] = field(default_factory=dict)
    plate_well_counts: set[int] = field(default_factory=set)
    times: list[tuple[datetime, str]] = field(default_factory=list)
    experiment_types: dict[str, None] = field(default_factory=dict)
    detection_types: dict[str, None] = field(default_factory=dict)

    def add_sample_document(self, document: Mapping[str, Any]) -> None:
        """Record a sample, its well and its plate.

        A sample id that is only "<plate> <well>" is allotropy's stand-in for
        a well no sample was named for, not an id the file names.
        """
        plate = _known(document.get("well plate identifier"))
        location = _known(document.get("location identifier"))
        sample = _known(document.get("sample identifier"))
        if plate is not None:
            self.plates[plate] = None
        if location is not None:
            self.wells.add((plate or "", location))
        if sample is not None and sample != f"{plate} {location}":
            self.samples[sample] = None

    def add_time(self, value: object) -> None:
        text = _known(value)
        if text is None or text.startswith(_PLACEHOLDER_TIME):
            return
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return
        if moment.tzinfo is not None:
            self.times.append((moment, text))


def _walk(node: object, facts: _Facts) -> None:
    """Collect facts from every document of the ASM, skipping data cubes (spectra, amplification curves)."""
    if isinstance(node, list):
        for item in node:
            if isinstance(item, (dict, list)):
                _walk(item, facts)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key.endswith("data cube"):
            continue
        if key == "measurement document" and isinstance(value, list):
            facts.measurements += len(value)
        elif key == "sample document" and isinstance(value, dict):
            facts.add_sample_document(value)
        elif key == "measurement time":
            facts.add_time(value)
        elif key == "plate well count" and isinstance(value, dict) and isinstance(value.get("value"), int):
            facts.plate_well_counts.add(value["value"])
        elif key == "experiment type" and (text := _known(value)) is not None:
            facts.experiment_types[text] = None
        elif key == "detection type" and (text := _known(value)) is not None:
            facts.detection_types[text] = None
        if isinstance(value, (dict, list)):
            _walk(value, facts)


def _aggregate_document(asm: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ASM's one top-level "<technique> aggregate document"."""
    for key, value in asm.items():
        if key.endswith("aggregate document") and isinstance(value, dict):
            return value
    return {}


def summarise_asm(asm: Mapping[str, Any], vendor: str, display_name: str, technique: str) -> Summary:
    """Reduce an ASM document to the instrument, the assay, the plate and well counts and the sample ids."""
    aggregate = _aggregate_document(asm)
    device = aggregate.get("device system document") or {}
    system = aggregate.get("data system document") or {}
    facts = _Facts()
    _walk(aggregate, facts)
    times = sorted(facts.times)
    samples = unique_samples(list(facts.samples))
    metadata: dict[str, Any] = {
        "instrument": display_name,
        "instrument_parser": vendor,
        "technique": technique,
        "asm_manifest": _known(asm.get("$asm.manifest")),
        "allotropy_version": _known(system.get("ASM converter version")),
        "model": _known(device.get("model number")),
        "serial_number": _known(device.get("equipment serial number")),
        "device_id": _known(device.get("device identifier")),
        "manufacturer": _known(device.get("product manufacturer")),
        "software": _known(system.get("software name")),
        "software_version": _known(system.get("software version")),
        "experiment_types": list(facts.experiment_types)[:MAX_LISTED],
        "detection_types": list(facts.detection_types)[:MAX_LISTED],
        "measurements": facts.measurements,
        "plates": len(facts.plates),
        "plate_ids": list(facts.plates)[:MAX_LISTED],
        "wells": len(facts.wells),
        "plate_well_count": max(facts.plate_well_counts) if facts.plate_well_counts else None,
        "sample_count": len(facts.samples),
        "measurement_time_first": times[0][1] if times else None,
        "measurement_time_last": times[-1][1] if times else None,
    }
    return Summary(metadata=metadata, text=_summary_text(metadata, samples), samples=samples)


def _summary_text(metadata: Mapping[str, Any], samples: tuple[str, ...]) -> str:
    """One searchable line: instrument, technique, counts, time range and the first sample ids."""
    parts = [f"{metadata['instrument']} ({metadata['technique']}) export"]
    for key in ("model", "serial_number", "software"):
        if metadata[key]:
            parts.append(f"{key.replace('_', ' ')} {metadata[key]}")
    if metadata["experiment_types"]:
        parts.append("experiment " + ", ".join(metadata["experiment_types"]))
    counts = f"{metadata['measurements']} measurements"
    if metadata["wells"]:
        counts += f", {metadata['wells']} wells"
    if metadata["plates"]:
        counts += f" on {metadata['plates']} plate(s) " + ", ".join(metadata["plate_ids"])
    parts.append(counts)
    if metadata["measurement_time_first"]:
        parts.append(f"measured {metadata['measurement_time_first']} to {metadata['measurement_time_last']}")
    if samples:
        parts.append(f"{metadata['sample_count']} samples: " + ", ".join(samples))
    return "; ".join(parts)[:TEXT_LIMIT]


def _describe_as_table(path: Path, name: str, ctx: FileContext) -> None:
    """Put the file's description as an ordinary CSV or TSV in ``ctx.partial``, when it is one and can be read."""
    table_format = _extension(name)
    if table_format not in ("csv", "tsv"):
        return
    table_ctx = FileContext(name=ctx.name, deadline=ctx.deadline)
    try:
        with path.open("rb") as handle:
            summary = tables.EXTRACTORS[table_format](handle, table_ctx)
    except Exception:  # noqa: BLE001 - the file is already being reported as bad; this is a bonus
        return
    ctx.partial.update(summary.metadata)


def _parse(path: Path, name: str, vendor: str, encoding: str) -> dict[str, Any]:
    """Run the vendor's allotropy parser and return the ASM as plain JSON types.

    The model is unstructured without allotropy's JSON-schema validation:
    only a summary is kept, and validation would add half again to the time
    of a large file for no gain here.
    """
    from allotropy.allotrope.converter import unstructure
    from allotropy.to_allotrope import allotrope_model_from_io

    with path.open("rb") as handle:
        model = allotrope_model_from_io(handle, name, vendor, encoding=encoding)
    return cast(dict[str, Any], unstructure(model))


def _parser_names(vendor: str) -> tuple[str, str]:
    """The parser's display name and its technique ("Plate Reader", "qPCR"), as allotropy names them."""
    from allotropy.parser_factory import Vendor

    member = Vendor(vendor)
    return member.display_name, member.technique


def extract_instrument(stream: BinaryIO, ctx: FileContext) -> Summary:
    """Parse a recognised instrument export with allotropy and summarise its ASM."""
    name = strip_compression_suffix(ctx.name)
    head = read_head(stream, HEAD_BYTES)
    vendor = recognise(name, head)
    if vendor is None:
        raise ctx.error("unsupported", "not an instrument export allotropy is known to read")
    ctx.partial["instrument_parser"] = vendor
    capped = _Capped(chain_head(head, stream), MAX_INSTRUMENT_BYTES, ctx)
    with spooled(cast(BinaryIO, capped), ctx, suffix="." + _extension(name)) as path:
        try:
            asm = _parse(path, name, vendor, _file_encoding(path, head))
        except Exception as exc:
            _describe_as_table(path, name, ctx)
            message = f"allotropy's {vendor} parser could not read the file: {type(exc).__name__}: {exc}"
            raise InstrumentRejected(ctx.name, vendor, message[:DETAIL_LIMIT]) from exc
    display_name, technique = _parser_names(vendor)
    return summarise_asm(asm, vendor, display_name, technique)


EXTRACTORS: dict[str, Extractor] = {FORMAT: extract_instrument}
