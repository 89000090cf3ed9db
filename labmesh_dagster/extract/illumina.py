"""Illumina run folders: RunInfo.xml, RunParameters.xml and the sample sheet.

These files tie a sequencing run together. FASTQ read names carry
``@<instrument>:<run number>:<flowcell>:<lane>:...``, so RunInfo's metadata
keeps those three under fixed top-level keys (``instrument``, ``run_number``,
``flowcell``, as written in the file) for linking reads to their run, and the
sample sheet lists its samples with lane and indexes for linking reads to
their sample.

Instruments changed these files' shapes over the years (MiSeq, HiSeq,
NextSeq, NovaSeq, iSeq; RunInfo schema versions 2 to 6, sample sheets v1 and
v2), so fields are looked up by name wherever they sit and only what a file
holds is reported; a shape never seen before gives what can be found, not an
error. The XML is parsed with the standard library: it resolves no external
entities, and the expat it is built on (2.4.1 and later) refuses entity
expansion bombs; together with a size limit that covers what ``defusedxml``
would add for files that never carry a DTD.
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, BinaryIO

from labmesh_dagster.extract.base import MAX_SAMPLES, TEXT_LIMIT, Extractor, FileContext, Summary, unique_samples
from labmesh_dagster.extract.compression import read_head
from labmesh_dagster.extract.tables import decode_all

XML_LIMIT = 16 * 1024 * 1024
"""Largest run folder XML parsed: a NovaSeq X RunInfo listing every tile is well under 1 MiB."""

SAMPLE_SHEET_LIMIT = 8 * 1024 * 1024
"""Largest sample sheet read: one with thousands of samples over eight lanes is well under 1 MiB."""

CHUNK_SIZE = 64 * 1024

MAX_HEADER_FIELDS = 100
MAX_FIELD_LENGTH = 500

_PLATFORMS = {
    "M": "MiSeq",
    "MN": "MiniSeq",
    "FS": "iSeq 100",
    "NB": "NextSeq 500/550",
    "NS": "NextSeq 500/550",
    "VH": "NextSeq 1000/2000",
    "A": "NovaSeq 6000",
    "LH": "NovaSeq X",
    "SN": "HiSeq 2000",
    "D": "HiSeq 1500/2500",
    "J": "HiSeq 3000",
    "K": "HiSeq 4000",
    "E": "HiSeq X",
}
"""Instrument model by the letters its serial number starts with (``M00123`` is a MiSeq)."""

_INSTRUMENT_PREFIX = re.compile(r"([A-Z]+)\d")

_DATE_FORMATS = (
    ("%y%m%d", False),
    ("%Y%m%d", False),
    ("%m/%d/%Y %I:%M:%S %p", True),
    ("%m/%d/%Y %H:%M:%S", True),
    ("%m/%d/%Y", False),
    ("%d/%m/%Y", False),
    ("%d.%m.%Y", False),
)
"""Dates as Illumina software writes them: ``160805`` (HiSeq, MiSeq), ``1/15/2019 3:04:56 PM`` (NextSeq,
NovaSeq 6000), ``3/9/2017``; ISO 8601 (NovaSeq X, NextSeq 2000) is read by ``fromisoformat`` first. A
slashed date is month first, as Illumina writes it, and day first only when that is the sole reading."""


def iso_date(value: str | None) -> str | None:
    """The date (with its time, when given) in ISO 8601, or None for a format not recognised."""
    text = (value or "").strip()
    if not text:
        return None
    if not re.fullmatch(r"\d{6}", text):
        for iso in (date, datetime):
            try:
                return iso.fromisoformat(text).isoformat()
            except ValueError:
                pass
    for pattern, timed in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(text, pattern)
        except ValueError:
            continue
        return parsed.isoformat() if timed else parsed.date().isoformat()
    return None


def platform_of(instrument: str | None) -> str | None:
    """The instrument model its serial number shows, or None when the prefix is not a known one."""
    match = _INSTRUMENT_PREFIX.match(instrument or "")
    return _PLATFORMS.get(match.group(1)) if match else None


def _local(tag: object) -> str:
    """An element's name without its namespace."""
    return str(tag).rpartition("}")[2]


def _child(element: ET.Element | None, name: str) -> ET.Element | None:
    if element is None:
        return None
    return next((child for child in element if _local(child.tag) == name), None)


def _children(element: ET.Element | None) -> list[ET.Element]:
    return list(element) if element is not None else []


def _text(element: ET.Element | None) -> str | None:
    text = (element.text or "").strip() if element is not None else ""
    return text or None


def _int(value: str | None) -> int | None:
    try:
        return int((value or "").strip())
    except ValueError:
        return None


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() in ("y", "yes", "true", "1")


def parse_xml(stream: BinaryIO, ctx: FileContext) -> ET.Element:
    """The document's root, fed to the parser chunk by chunk; too large or broken XML raises."""
    parser = ET.XMLParser()
    size = 0
    try:
        while chunk := stream.read(CHUNK_SIZE):
            size += len(chunk)
            if size > XML_LIMIT:
                raise ctx.error("too_large", f"larger than the {XML_LIMIT} bytes a run folder XML file may be")
            parser.feed(chunk)
        return parser.close()
    except ET.ParseError as exc:
        raise ctx.error("bad_format", f"broken XML: {exc}") from exc


def _read_structure(reads: list[dict[str, Any]]) -> str | None:
    """Reads as a read structure (``151T8B8B151T``: template and barcode cycles), if every length is known."""
    if not reads or any(read["cycles"] is None for read in reads):
        return None
    return "".join(f"{read['cycles']}{'B' if read['is_indexed'] else 'T'}" for read in reads)


def _runinfo_reads(run: ET.Element) -> list[dict[str, Any]]:
    reads = []
    for element in _children(_child(run, "Reads")):
        if _local(element.tag) != "Read":
            continue
        read: dict[str, Any] = {
            "number": _int(element.get("Number")),
            "cycles": _int(element.get("NumCycles")),
            "is_indexed": bool(_flag(element.get("IsIndexedRead"))),
        }
        if element.get("IsReverseComplement") is not None:
            read["is_reverse_complement"] = _flag(element.get("IsReverseComplement"))
        reads.append(read)
    return reads


def _layout(run: ET.Element) -> dict[str, Any]:
    """Lanes, surfaces, swaths and tiles as FlowcellLayout gives them (tiles per swath, surface and lane)."""
    layout = _child(run, "FlowcellLayout")
    if layout is None:
        return {"lane_count": None}
    found: dict[str, Any] = {"lane_count": _int(layout.get("LaneCount"))}
    for attribute, key in (
        ("SurfaceCount", "surface_count"),
        ("SwathCount", "swath_count"),
        ("TileCount", "tile_count"),
    ):
        if layout.get(attribute) is not None:
            found[key] = _int(layout.get(attribute))
    tile_set = _child(layout, "TileSet")
    if tile_set is not None:
        if tile_set.get("TileNamingConvention"):
            found["tile_naming"] = tile_set.get("TileNamingConvention")
        found["tiles_listed"] = sum(1 for element in tile_set.iter() if _local(element.tag) == "Tile")
    return found


def extract_runinfo(stream: BinaryIO, ctx: FileContext) -> Summary:
    """Run id and number, flowcell, instrument, date, reads and flowcell layout of a RunInfo.xml."""
    root = parse_xml(stream, ctx)
    if _local(root.tag) != "RunInfo":
        raise ctx.error("bad_format", f"not a RunInfo document: its root element is <{_local(root.tag)}>")
    run = _child(root, "Run")
    if run is None:
        raise ctx.error("bad_format", "a RunInfo without a <Run> element")
    instrument = _text(_child(run, "Instrument"))
    date_raw = _text(_child(run, "Date"))
    reads = _runinfo_reads(run)
    metadata: dict[str, Any] = {
        "schema_version": _int(root.get("Version")),
        "run_id": run.get("Id"),
        "run_number": _int(run.get("Number")),
        "flowcell": _text(_child(run, "Flowcell")),
        "instrument": instrument,
        "platform": platform_of(instrument),
        "date": iso_date(date_raw),
        "date_raw": date_raw,
        "reads": reads,
        "read_structure": _read_structure(reads),
        **_layout(run),
    }
    channels = [text for name in _children(_child(run, "ImageChannels")) if (text := _text(name))]
    if channels:
        metadata["image_channels"] = channels
    return Summary(metadata=metadata, text=_runinfo_text(metadata))


def _runinfo_text(metadata: dict[str, Any]) -> str:
    labels = (
        ("instrument", "instrument"),
        ("platform", "platform"),
        ("run_number", "run"),
        ("flowcell", "flowcell"),
        ("date", "date"),
        ("read_structure", "reads"),
        ("lane_count", "lanes"),
    )
    parts = [f"{label} {metadata[key]}" for key, label in labels if metadata.get(key) is not None]
    return f"Illumina RunInfo {metadata['run_id'] or ''}: " + ", ".join(parts)


class _Index:
    """Elements of an XML document by their lower-case local name, first in document order first."""

    def __init__(self, root: ET.Element) -> None:
        self._by_name: dict[str, list[ET.Element]] = {}
        for element in root.iter():
            self._by_name.setdefault(_local(element.tag).lower(), []).append(element)

    def all(self, name: str) -> list[ET.Element]:
        return self._by_name.get(name.lower(), [])

    def text(self, *names: str) -> str | None:
        """The first non-empty text of an element with one of these names, tried in order."""
        for name in names:
            for element in self.all(name):
                if text := _text(element):
                    return text
        return None

    def serial(self, *tags: str) -> str | None:
        """The SerialNumber inside the first of these RFID tag elements that has one."""
        for tag in tags:
            for element in self.all(tag):
                if serial := _text(next((c for c in element if _local(c.tag).lower() == "serialnumber"), None)):
                    return serial
        return None

    def consumable(self, kind: str, field: str) -> str | None:
        """A field of the ``ConsumableInfo`` of this type (NovaSeq X, NextSeq 2000: "FlowCell", "Reagent")."""
        for element in self.all("ConsumableInfo"):
            fields = {_local(child.tag).lower(): _text(child) for child in element}
            if (fields.get("type") or "").lower() == kind.lower() and fields.get(field.lower()):
                return fields[field.lower()]
        return None


def extract_runparameters(stream: BinaryIO, ctx: FileContext) -> Summary:
    """Software, instrument, experiment, consumables and output folder of a RunParameters.xml, as present.

    MiSeq puts the software under ``<Setup>``, NovaSeq 6000 the flowcell
    under ``<RfidsInfo>``, NovaSeq X its consumables in ``<ConsumableInfo>``
    lists; each field is looked up by its names in any of these places.
    """
    root = parse_xml(stream, ctx)
    found = _Index(root)
    instrument = found.text("InstrumentName", "InstrumentID", "ScannerID", "InstrumentSerialNumber")
    start_raw = found.text("RunStartDate", "RunStartTime")
    candidates: dict[str, Any] = {
        "root": _local(root.tag),
        "run_parameters_version": found.text("RunParametersVersion"),
        "application_name": found.text("ApplicationName", "Application"),
        "application_version": found.text("ApplicationVersion"),
        "instrument_type": found.text("InstrumentType", "InstrumentPlatform"),
        "instrument": instrument,
        "platform": platform_of(instrument),
        "run_id": found.text("RunID", "RunId"),
        "run_number": _int(found.text("RunNumber", "RunCounter")),
        "experiment_name": found.text("ExperimentName"),
        "run_name": found.text("RunName"),
        "flowcell": found.text("FlowCellSerialBarcode")
        or found.serial("FlowcellRFIDTag", "FlowCellRfidTag")
        or found.consumable("FlowCell", "SerialNumber")
        or found.text("Barcode"),
        "flowcell_mode": found.text("FlowCellMode") or found.consumable("FlowCell", "Mode"),
        "chemistry": found.text("Chemistry"),
        "chemistry_version": found.text("ChemistryVersion"),
        "reagent_kit_version": found.text("ReagentKitVersion"),
        "reagent_kit_serial": found.text("ReagentKitBarcode")
        or found.serial("ReagentKitRFIDTag", "ReagentKitRfidTag")
        or found.consumable("Reagent", "SerialNumber"),
        "reagent_kit_mode": found.consumable("Reagent", "Mode"),
        "workflow_type": found.text("WorkflowType"),
        "rta_version": found.text("RTAVersion", "RtaVersion"),
        "run_start_date": iso_date(start_raw),
        "run_start_date_raw": start_raw,
        "output_folder": found.text("OutputFolder", "OutputFolderPath"),
    }
    metadata = {key: value for key, value in candidates.items() if value is not None}
    return Summary(metadata=metadata, text=_runparameters_text(metadata))


def _runparameters_text(metadata: dict[str, Any]) -> str:
    labels = (
        ("application_name", "application"),
        ("application_version", "version"),
        ("instrument", "instrument"),
        ("experiment_name", "experiment"),
        ("run_id", "run"),
        ("flowcell", "flowcell"),
        ("flowcell_mode", "mode"),
        ("chemistry", "chemistry"),
        ("rta_version", "RTA"),
        ("run_start_date", "started"),
    )
    parts = [f"{label} {metadata[key]}" for key, label in labels if key in metadata]
    return f"Illumina RunParameters ({metadata['root']}): " + ", ".join(parts)


# Sample sheets ----------------------------------------------------------------

_SECTION = re.compile(r"^\[(?P<name>[^\]]+)\]$")

_HEADER_FIELDS = {
    "experiment_name": ("experimentname",),
    "run_name": ("runname",),
    "date": ("date",),
    "workflow": ("workflow",),
    "application": ("application",),
    "instrument_type": ("instrumenttype",),
    "instrument_platform": ("instrumentplatform",),
    "investigator": ("investigatorname",),
    "assay": ("assay", "librarypreparationkit"),
    "chemistry": ("chemistry",),
    "index_adapters": ("indexadapters",),
}
"""Normalised ``[Header]`` fields of v1 (``Experiment Name``) and v2 (``RunName``), by their spellings."""

_SAMPLE_FIELDS = {
    "sample_id": ("sampleid",),
    "sample_name": ("samplename",),
    "lane": ("lane",),
    "index": ("index",),
    "index2": ("index2",),
    "project": ("sampleproject", "projectname", "project"),
}
"""Columns of ``[Data]`` (v1) and ``[BCLConvert_Data]`` / ``[Cloud_Data]`` (v2) by their spellings."""


def _key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _sections(text: str) -> dict[str, list[list[str]]]:
    """The sheet's rows by section name, without empty rows or the empty cells Excel pads rows with."""
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for row in csv.reader(io.StringIO(text, newline="")):
        cells = [cell.strip() for cell in row]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        match = _SECTION.match(cells[0]) if len(cells) == 1 else None
        if match is not None:
            current = sections.setdefault(match.group("name").strip(), [])
        elif current is not None:
            current.append(cells)
    return sections


def _pairs(rows: list[list[str]]) -> dict[str, str]:
    """A key-value section (``[Header]``, ``[Settings]``, v2 ``[Reads]``) as a dict, first value of each key."""
    pairs: dict[str, str] = {}
    for row in rows[:MAX_HEADER_FIELDS]:
        pairs.setdefault(row[0], row[1][:MAX_FIELD_LENGTH] if len(row) > 1 else "")
    return pairs


def _table(rows: list[list[str]]) -> list[dict[str, str]]:
    """A data section as dicts keyed by the normalised names of its header row."""
    if not rows:
        return []
    header = [_key(cell) for cell in rows[0]]
    return [dict(zip(header, row, strict=False)) for row in rows[1:]]


def _field(record: dict[str, str], names: Iterable[str]) -> str | None:
    for name in names:
        if value := record.get(name):
            return value
    return None


def _reads(sections: dict[str, list[list[str]]], version: int | None) -> list[dict[str, Any]]:
    """Read lengths: v1 lists one number a row; v2 names them (``Read1Cycles,151``, ``Index1Cycles,10``)."""
    rows = sections.get("Reads", [])
    if version == 2:
        return [
            {"name": key.removesuffix("Cycles"), "cycles": _int(value)}
            for key, value in _pairs(rows).items()
            if key.endswith("Cycles")
        ]
    lengths = [_int(row[0]) for row in rows]
    return [{"name": f"Read{number}", "cycles": length} for number, length in enumerate(lengths, 1) if length]


def _data_section(sections: dict[str, list[list[str]]]) -> str | None:
    """The section listing the samples to demultiplex: ``[Data]``, ``[BCLConvert_Data]``, else another app's."""
    for name in ("BCLConvert_Data", "Data"):
        if sections.get(name):
            return name
    return next((name for name, rows in sections.items() if name.endswith("_Data") and rows), None)


def _projects_by_sample(sections: dict[str, list[list[str]]], primary: str | None) -> dict[str, str]:
    """v2 keeps projects out of ``[BCLConvert_Data]``: in ``[Cloud_Data]`` or another app's data section."""
    projects: dict[str, str] = {}
    for name, rows in sections.items():
        if name == primary or not name.endswith("_Data"):
            continue
        for record in _table(rows):
            sample, project = _field(record, ("sampleid",)), _field(record, _SAMPLE_FIELDS["project"])
            if sample and project:
                projects.setdefault(sample, project)
    return projects


def _samples(sections: dict[str, list[list[str]]], primary: str | None) -> list[dict[str, Any]]:
    projects = _projects_by_sample(sections, primary)
    samples = []
    for record in _table(sections.get(primary, []) if primary else []):
        sample_id = _field(record, _SAMPLE_FIELDS["sample_id"])
        if not sample_id:
            continue
        lane = _field(record, _SAMPLE_FIELDS["lane"])
        samples.append(
            {
                "sample_id": sample_id,
                "sample_name": _field(record, _SAMPLE_FIELDS["sample_name"]),
                "lane": _int(lane) if lane else None,
                "index": _field(record, _SAMPLE_FIELDS["index"]),
                "index2": _field(record, _SAMPLE_FIELDS["index2"]),
                "project": _field(record, _SAMPLE_FIELDS["project"]) or projects.get(sample_id),
            }
        )
    return samples


def _distinct(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(value for value in values if value is not None))


def _version(header: dict[str, str], sections: dict[str, list[list[str]]]) -> int | None:
    """2 for ``FileFormatVersion,2`` or BCL Convert sections, 1 for an IEM sheet or a bare ``[Data]``."""
    declared = _int(next((value for key, value in header.items() if _key(key) == "fileformatversion"), None))
    if declared is not None:
        return declared
    if any(name.startswith("BCLConvert_") for name in sections):
        return 2
    if any(_key(key) == "iemfileversion" for key in header) or "Data" in sections:
        return 1
    return None


def read_sample_sheet(text: str) -> dict[str, Any]:
    """The metadata of a sample sheet's text (v1 or v2): header, reads, samples, projects, lanes, indexes."""
    sections = _sections(text)
    header = _pairs(sections.get("Header", []))
    by_key = {_key(key): value for key, value in header.items()}
    version = _version(header, sections)
    primary = _data_section(sections)
    samples = _samples(sections, primary)
    metadata: dict[str, Any] = {"version": version, "sections": list(sections)}
    for field, spellings in _HEADER_FIELDS.items():
        if value := _field(by_key, spellings):
            metadata[field] = value
    if "date" in metadata:
        metadata["date"] = iso_date(metadata["date"]) or metadata["date"]
    metadata.update(
        header=header,
        reads=_reads(sections, version),
        data_section=primary,
        sample_rows=len(samples),
        sample_count=len({sample["sample_id"] for sample in samples}),
        samples=samples[:MAX_SAMPLES],
        projects=_distinct(sample["project"] for sample in samples),
        lanes=sorted(_distinct(sample["lane"] for sample in samples)),
        index_lengths={
            "index": sorted(_distinct(len(s["index"]) if s["index"] else None for s in samples)),
            "index2": sorted(_distinct(len(s["index2"]) if s["index2"] else None for s in samples)),
        },
    )
    if primary is None:
        metadata["warnings"] = ["no [Data] or [BCLConvert_Data] section: the sheet names no samples"]
    return metadata


def extract_samplesheet(stream: BinaryIO, ctx: FileContext) -> Summary:
    """A sample sheet, read whole (it is small) and split into its bracketed sections."""
    data = read_head(stream, SAMPLE_SHEET_LIMIT + 1)
    if len(data) > SAMPLE_SHEET_LIMIT:
        raise ctx.error("too_large", f"larger than the {SAMPLE_SHEET_LIMIT} bytes a sample sheet may be")
    text, encoding = decode_all(data, ctx)
    try:
        metadata = read_sample_sheet(text)
    except csv.Error as exc:
        raise ctx.error("bad_format", f"not a readable sample sheet: {exc}") from exc
    metadata["encoding"] = encoding
    ids = unique_samples([sample["sample_id"] for sample in metadata["samples"]])
    return Summary(metadata=metadata, text=_samplesheet_text(metadata, ids), samples=ids)


def _samplesheet_text(metadata: dict[str, Any], ids: tuple[str, ...]) -> str:
    name = metadata.get("run_name") or metadata.get("experiment_name") or ""
    version = f" v{metadata['version']}" if metadata["version"] is not None else ""
    line = f"Illumina sample sheet{version} {name}".rstrip()
    line += f": {metadata['sample_count']} samples"
    if metadata["projects"]:
        line += ", projects " + " ".join(str(project) for project in metadata["projects"])
    if metadata["lanes"]:
        line += ", lanes " + " ".join(str(lane) for lane in metadata["lanes"])
    return (line + "\n" + " ".join(ids))[:TEXT_LIMIT]


EXTRACTORS: dict[str, Extractor] = {
    "illumina_runinfo": extract_runinfo,
    "illumina_runparameters": extract_runparameters,
    "illumina_samplesheet": extract_samplesheet,
}
