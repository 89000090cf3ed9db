"""Metadata of mzML mass spectrometry runs: instrument, software, run, samples and spectrum counts.

An mzML file is one XML document of up to tens of gigabytes, nearly all of it
base64 peak arrays. It is streamed through ElementTree's expat parser into a
target object that keeps counters and the header's few facts, and never a
tree: no element is built, so nothing needs clearing and memory stays flat,
and the binary arrays are neither kept nor decoded. (pyteomics' reader was
weighed and not used: it builds each spectrum as a dict through lxml,
decodes its arrays unless told not to, and needs a seekable file for its
index, all to count spectra it then throws away.)

Which cvParam is the instrument model cannot be known without the PSI-MS
ontology (the model is a child term of MS:1000031); the convention every
writer follows is that an instrument configuration, or the parameter group it
refers to, holds the model as a valueless term beside the serial number.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

from labmesh_dagster.extract.base import MAX_SAMPLES, Extractor, FileContext, Summary, unique_samples
from labmesh_dagster.extract.xml_stream import StopParsing, feed_xml, local_name

SPECTRUM_BATCH = 1000
"""Spectra read between two looks at the deadline."""

MAX_LISTED = 20
"""Most software entries, configurations and source files listed."""

MAX_STRING = 500

MAX_PARAMS = 100
"""Most parameters kept per configuration, component or parameter group: a hostile header stays small."""

MAX_GROUPS = 1000
MAX_MS_LEVELS = 20
"""Distinct MS levels counted; a file claiming more has its extra levels counted as "other"."""

MS_LEVEL = "MS:1000511"
SERIAL_NUMBER = "MS:1000529"
CUSTOMIZATION = "MS:1000032"
CENTROID = "MS:1000127"
PROFILE = "MS:1000128"
SCAN_START_TIME = "MS:1000016"
SHA1 = "MS:1000569"
_NOT_A_MODEL = frozenset({SERIAL_NUMBER, CUSTOMIZATION})
_SECONDS_PER_UNIT = {"UO:0000010": 1.0, "UO:0000031": 60.0, "UO:0000032": 3600.0, "UO:0000028": 0.001}
"""Units of scan start time (second, minute, hour, millisecond) in seconds."""

CHECKSUM_TAG = b"<fileChecksum>"


@dataclass
class _Param:
    accession: str
    name: str
    value: str


@dataclass
class _Configuration:
    id: str
    params: list[_Param] = field(default_factory=list)
    components: dict[str, list[str]] = field(default_factory=dict)


def _append(items: list[Any], item: Any) -> None:
    if len(items) < MAX_PARAMS:
        items.append(item)


class _ChecksumReader:
    """Reads the stream through, hashing with SHA-1 up to and including ``<fileChecksum>``.

    indexedmzML's fileChecksum covers exactly those bytes, so comparing the
    two tells whether the file is still the one its writer finished.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._hash = hashlib.sha1(usedforsecurity=False)
        self._pending = b""
        self.digest: str | None = None

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        if self.digest is None and chunk:
            window = self._pending + chunk
            found = window.find(CHECKSUM_TAG)
            if found >= 0:
                self._hash.update(window[: found + len(CHECKSUM_TAG)])
                self.digest = self._hash.hexdigest()
            else:
                keep = len(CHECKSUM_TAG) - 1
                self._hash.update(window[:-keep])
                self._pending = window[-keep:]
        return chunk


class _MzmlReader:
    """The parser target: follows where it is in the document and notes what each cvParam there means."""

    def __init__(self, ctx: FileContext) -> None:
        self.ctx = ctx
        self.path: list[str] = []
        self.root = ""
        self.run: dict[str, str] = {}
        self.declared: dict[str, int] = {}
        self.spectra = 0
        self.chromatograms = 0
        self.ms_levels: Counter[str] = Counter()
        self.representation: Counter[str] = Counter()
        self.scan_seconds: list[float] = []
        self.groups: dict[str, list[_Param]] = {}
        self.configurations: list[_Configuration] = []
        self.software: list[dict[str, str]] = []
        self.source_files: list[dict[str, str]] = []
        self.samples: list[object] = []
        self.file_content: list[str] = []
        self.declared_checksum: list[str] = []
        self._group: str | None = None
        self._configuration: _Configuration | None = None
        self._spectrum_level = "unknown"

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        name = local_name(tag)
        parent = self.path[-1] if self.path else ""
        self.path.append(name)
        if not self.root:
            self.root = name
        if name == "cvParam":
            param = _Param(attrib.get("accession", ""), attrib.get("name", ""), attrib.get("value", ""))
            self._param(parent, param, attrib)
        elif name == "userParam" and parent == "software" and self.software and "name" not in self.software[-1]:
            self.software[-1]["name"] = attrib.get("name", "")[:MAX_STRING]
        elif name == "spectrum":
            self._spectrum_level = "unknown"
        elif name == "referenceableParamGroupRef":
            self._group_ref(parent, attrib.get("ref", ""))
        elif name == "referenceableParamGroup" and len(self.groups) < MAX_GROUPS:
            self._group = attrib.get("id", "")
            self.groups[self._group] = []
        elif name in ("spectrumList", "chromatogramList") and attrib.get("count", "").isdigit():
            self.declared[name] = int(attrib["count"])
        elif name == "run":
            self.run = {
                key: attrib[key][:MAX_STRING]
                for key in ("id", "startTimeStamp", "defaultInstrumentConfigurationRef", "sampleRef")
                if key in attrib
            }
        elif name == "instrumentConfiguration" and len(self.configurations) < MAX_LISTED:
            self._configuration = _Configuration(attrib.get("id", ""))
            self.configurations.append(self._configuration)
        elif name == "software" and len(self.software) < MAX_LISTED:
            self.software.append({key: attrib[key][:MAX_STRING] for key in ("id", "version") if key in attrib})
        elif name == "sourceFile" and len(self.source_files) < MAX_LISTED:
            self.source_files.append({key: attrib[key][:MAX_STRING] for key in ("name", "location") if key in attrib})
        elif name == "sample" and len(self.samples) < MAX_SAMPLES:
            self.samples.append(attrib.get("name") or attrib.get("id", ""))

    def _param(self, owner: str, param: _Param, attrib: dict[str, str]) -> None:
        """File one cvParam under the element that holds it."""
        if owner == "spectrum":
            self._spectrum_param(param)
        elif owner == "scan" and param.accession == SCAN_START_TIME:
            self._scan_time(param.value, attrib.get("unitAccession", ""))
        elif owner == "referenceableParamGroup" and self._group is not None:
            _append(self.groups[self._group], param)
        elif owner == "instrumentConfiguration" and self._configuration is not None:
            _append(self._configuration.params, param)
        elif owner in ("source", "analyzer", "detector") and self._configuration is not None:
            _append(self._configuration.components.setdefault(owner, []), param.name[:MAX_STRING])
        elif owner == "software" and self.software and "name" not in self.software[-1]:
            self.software[-1]["name"] = param.name[:MAX_STRING]
        elif owner == "sourceFile" and param.accession == SHA1 and self.source_files:
            self.source_files[-1]["sha1"] = param.value[:MAX_STRING]
        elif owner == "fileContent" and len(self.file_content) < MAX_LISTED:
            self.file_content.append(param.name[:MAX_STRING])

    def _spectrum_param(self, param: _Param) -> None:
        if param.accession == MS_LEVEL:
            level = param.value.strip() or "unknown"
            known = level in self.ms_levels or len(self.ms_levels) < MAX_MS_LEVELS
            self._spectrum_level = level[:MAX_STRING] if known else "other"
        elif param.accession == CENTROID:
            self.representation["centroid"] += 1
        elif param.accession == PROFILE:
            self.representation["profile"] += 1

    def _group_ref(self, owner: str, ref: str) -> None:
        """A parameter group used by a spectrum or a configuration counts as its own parameters."""
        for param in self.groups.get(ref, []):
            if owner == "spectrum":
                self._spectrum_param(param)
            elif owner == "instrumentConfiguration" and self._configuration is not None:
                _append(self._configuration.params, param)

    def _scan_time(self, value: str, unit: str) -> None:
        try:
            seconds = float(value) * _SECONDS_PER_UNIT.get(unit, 1.0)
        except ValueError:
            return
        if not self.scan_seconds:
            self.scan_seconds = [seconds, seconds]
        else:
            self.scan_seconds = [min(self.scan_seconds[0], seconds), max(self.scan_seconds[1], seconds)]

    def end(self, tag: str) -> None:
        name = self.path.pop()
        if name == "spectrum":
            self.spectra += 1
            self.ms_levels[self._spectrum_level] += 1
            if self.spectra % SPECTRUM_BATCH == 0 and self.ctx.deadline.expired():
                self.ctx.stop_early("time_budget")
                raise StopParsing
        elif name == "chromatogram":
            self.chromatograms += 1
        elif name == "referenceableParamGroup":
            self._group = None
        elif name == "instrumentConfiguration":
            self._configuration = None

    def data(self, text: str) -> None:
        if self.path and self.path[-1] == "fileChecksum":
            self.declared_checksum.append(text)


def _model(configuration: _Configuration) -> tuple[str | None, str | None]:
    """The instrument model (the valueless term) and serial number of one configuration."""
    model = next((p.name for p in configuration.params if p.accession not in _NOT_A_MODEL and not p.value), None)
    serial = next((p.value for p in configuration.params if p.accession == SERIAL_NUMBER), None)
    return model, serial


def _iso(timestamp: str) -> str:
    """An xs:dateTime in Python's ISO 8601 form; left as written if it does not parse."""
    try:
        return datetime.fromisoformat(timestamp).isoformat()
    except ValueError:
        return timestamp


def _summarise(reader: _MzmlReader, complete: bool, checksum: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"indexed": reader.root == "indexedmzML", "spectra": reader.spectra}
    metadata["chromatograms"] = reader.chromatograms
    metadata["ms_levels"] = dict(sorted(reader.ms_levels.items()))
    if reader.representation:
        metadata["spectrum_representation"] = dict(reader.representation)
    if reader.scan_seconds:
        metadata["scan_start_seconds"] = {"min": reader.scan_seconds[0], "max": reader.scan_seconds[1]}
    warnings = []
    for element, kind, counted in (
        ("spectrumList", "spectra", reader.spectra),
        ("chromatogramList", "chromatograms", reader.chromatograms),
    ):
        declared = reader.declared.get(element)
        if declared is None:
            continue
        metadata[f"{kind}_declared"] = declared
        if complete and declared != counted:
            warnings.append(f"{element} declares {declared} {kind} but the file holds {counted}")
    if warnings:
        metadata["warnings"] = warnings
    if "id" in reader.run:
        metadata["run_id"] = reader.run["id"]
    if "startTimeStamp" in reader.run:
        metadata["start_time"] = _iso(reader.run["startTimeStamp"])
    configurations = []
    for configuration in reader.configurations:
        model, serial = _model(configuration)
        entry: dict[str, Any] = {"id": configuration.id}
        if model:
            entry["model"] = model
        if serial:
            entry["serial_number"] = serial
        entry.update(configuration.components)
        configurations.append(entry)
    if configurations:
        default = reader.run.get("defaultInstrumentConfigurationRef")
        chosen = next((entry for entry in configurations if entry["id"] == default), configurations[0])
        for key in ("model", "serial_number"):
            if key in chosen:
                metadata[f"instrument_{key}"] = chosen[key]
        metadata["instrument_configurations"] = configurations
    if reader.software:
        metadata["software"] = reader.software
    if reader.source_files:
        metadata["source_files"] = reader.source_files
    if reader.file_content:
        metadata["file_content"] = reader.file_content
    declared_checksum = "".join(reader.declared_checksum).strip().lower()
    if complete and declared_checksum:
        metadata["file_checksum"] = {"sha1": declared_checksum, "matches": declared_checksum == checksum}
    return metadata


def _render(metadata: dict[str, Any], samples: tuple[str, ...]) -> str:
    parts = [f"mzML spectra={metadata['spectra']} chromatograms={metadata['chromatograms']}"]
    if metadata["ms_levels"]:
        parts.append("ms levels " + ", ".join(f"MS{level}: {count}" for level, count in metadata["ms_levels"].items()))
    if "instrument_model" in metadata:
        parts.append(f"instrument {metadata['instrument_model']}")
    names = [" ".join(filter(None, (item.get("name"), item.get("version")))) for item in metadata.get("software", [])]
    if any(names):
        parts.append("software " + ", ".join(name for name in names if name))
    for key in ("run_id", "start_time"):
        if key in metadata:
            parts.append(f"{key.replace('_', ' ')} {metadata[key]}")
    if samples:
        parts.append("samples " + ", ".join(samples[:20]))
    files = [item["name"] for item in metadata.get("source_files", []) if "name" in item]
    if files:
        parts.append("source files " + ", ".join(files))
    return "; ".join(parts)


def extract_mzml(stream: BinaryIO, ctx: FileContext) -> Summary:
    """Stream an mzML (plain or indexed) once: header facts, spectrum and chromatogram counts, MS levels."""
    reader = _MzmlReader(ctx)
    checked = _ChecksumReader(stream)
    try:
        complete = feed_xml(checked, ctx, reader)  # type: ignore[arg-type]
    except Exception:
        ctx.partial["spectra_before_error"] = reader.spectra
        ctx.partial["chromatograms_before_error"] = reader.chromatograms
        raise
    if reader.root not in ("mzML", "indexedmzML"):
        raise ctx.error("bad_format", f"the root element is {reader.root!r}, not mzML or indexedmzML")
    metadata = _summarise(reader, complete, checked.digest)
    samples = unique_samples(reader.samples)
    return Summary(metadata=metadata, text=_render(metadata, samples), samples=samples)


EXTRACTORS: dict[str, Extractor] = {"mzml": extract_mzml}
