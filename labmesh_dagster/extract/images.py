"""Metadata of TIFF and OME-TIFF images: geometry, channels, pixel size and the microscope that took them.

Only headers are read (image file directories, tags and the OME-XML they
carry), never pixel data, so a multi-gigabyte stack costs what its directory
chain costs. tifffile reads as much of a damaged file as it can and only logs
what it skipped, which would let a cut-off stack pass as a shorter one; so
the directory chain is checked here too: a chain that points past the end of
the file, or pixel data that ends past it, is reported as ``truncated``.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import tifffile

from labmesh_dagster.extract.base import Extractor, FileContext, Summary, spooled

PAGE_BATCH = 256
"""Pages checked between two looks at the deadline."""

MAX_SERIES = 20
MAX_CHANNELS = 64
MAX_OBJECTIVES = 10
MAX_STRING = 500
"""Longest string value kept from ImageJ or OME metadata."""

MAX_TAGS = 4096
"""More tags than this in one directory means the bytes are not a directory (tifffile draws the line here too)."""

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
"""Bytes per value of each TIFF field type; a type not listed is skipped by readers, so it is skipped here too."""

_IMAGEJ_UNITS = {"um": "µm", "micron": "µm", "\\u00B5m": "µm"}

_UNITS_PER_MICROMETRE = {2: 25400.0, 3: 10000.0, 4: 1000.0, 5: 1.0}
"""TIFF ResolutionUnit (inch, centimetre, millimetre, micrometre) -> micrometres in one unit."""


@dataclass(frozen=True)
class _Layout:
    """How one TIFF lays out its directories: classic (32-bit offsets) or BigTIFF."""

    byteorder: str
    count_format: str
    entry_size: int
    offset_format: str

    @property
    def entry_format(self) -> str:
        """One directory entry: tag code, field type, value count, then the value (if it fits) or its offset."""
        return self.byteorder + ("HHI4s" if self.entry_size == 12 else "HHQ8s")

    @property
    def count_size(self) -> int:
        return struct.calcsize(self.count_format)

    @property
    def offset_size(self) -> int:
        return struct.calcsize(self.offset_format)


def _read_layout(path: Path, size: int, ctx: FileContext) -> tuple[_Layout, int]:
    """The file's directory layout and the offset of its first directory, from the 8- or 16-byte header."""
    with path.open("rb") as fh:
        header = fh.read(16)
    order = {b"II": "<", b"MM": ">"}.get(header[:2])
    if order is None or len(header) < 8:
        raise ctx.error("truncated" if order else "bad_magic", f"the {size}-byte file ends inside the TIFF header")
    (version,) = struct.unpack(order + "H", header[2:4])
    if version == 42:
        return _Layout(order, order + "H", 12, order + "I"), struct.unpack(order + "I", header[4:8])[0]
    if version == 43 and len(header) == 16:
        return _Layout(order, order + "Q", 20, order + "Q"), struct.unpack(order + "Q", header[8:16])[0]
    if version == 43:
        raise ctx.error("truncated", f"the {size}-byte file ends inside the BigTIFF header")
    raise ctx.error("bad_magic", f"TIFF version {version} is neither 42 (TIFF) nor 43 (BigTIFF)")


def _directory_fault(path: Path, layout: _Layout, offset: int, size: int, which: str) -> tuple[str, str] | None:
    """Why the directory at ``offset`` cannot be read, as (reason, detail), or None if it is whole."""
    if offset >= size:
        return "truncated", f"{which} is at byte {offset}, past the end of the {size}-byte file"
    with path.open("rb") as fh:
        fh.seek(offset)
        raw = fh.read(layout.count_size)
    if len(raw) < layout.count_size:
        return "truncated", f"the file ends inside the tag count of {which} at byte {offset}"
    (count,) = struct.unpack(layout.count_format, raw)
    if count == 0 or count > MAX_TAGS:
        return "bad_format", f"{which} at byte {offset} claims {count} tags: not an image file directory"
    end = offset + layout.count_size + count * layout.entry_size + layout.offset_size
    if end > size:
        return "truncated", f"{which} at byte {offset} needs {end} bytes but the file has {size}"
    return None


def _values_fault(path: Path, layout: _Layout, offset: int, size: int, which: str) -> tuple[str, str] | None:
    """Why a value stored outside the (whole) directory at ``offset`` cannot be read, or None.

    tifffile drops a tag whose value lies past the end of the file and goes
    on, so an OME-TIFF cut inside its OME-XML would pass as a plain TIFF.
    """
    with path.open("rb") as fh:
        fh.seek(offset)
        (count,) = struct.unpack(layout.count_format, fh.read(layout.count_size))
        entries = fh.read(count * layout.entry_size)
    for code, field_type, values, raw in struct.iter_unpack(layout.entry_format, entries):
        length = values * _TYPE_SIZES.get(field_type, 0)
        if length <= layout.offset_size:
            continue
        (start,) = struct.unpack(layout.offset_format, raw)
        if start + length > size:
            return "truncated", f"tag {code} of {which} ends at byte {start + length}, past the end at {size}"
    return None


def _next_directory(path: Path, layout: _Layout, offset: int) -> int:
    """The offset of the directory after the (whole) one at ``offset``; 0 at the end of the chain."""
    with path.open("rb") as fh:
        fh.seek(offset)
        (count,) = struct.unpack(layout.count_format, fh.read(layout.count_size))
        fh.seek(offset + layout.count_size + count * layout.entry_size)
        (following,) = struct.unpack(layout.offset_format, fh.read(layout.offset_size))
    return int(following)


def _local(tag: str) -> str:
    """An element's name without its namespace: OME-XML schemas change namespace with every release."""
    return tag.rsplit("}", 1)[-1]


def _text(value: object) -> str:
    return str(value)[:MAX_STRING]


def _number(value: str | None) -> float | int | str | None:
    """An OME attribute as a number where it is one, else as given."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return _text(value)
    return int(number) if number.is_integer() and "." not in value else number


_NUMERIC_ATTRIBUTES = frozenset({"NominalMagnification", "LensNA"})


def _attributes(element: ET.Element, names: dict[str, str]) -> dict[str, Any]:
    """Selected attributes of an OME element under JSON key names, absent ones left out.

    Only attributes the schema types as numbers become numbers: a model
    named "5000" stays a name.
    """
    return {
        key: _number(value) if attr in _NUMERIC_ATTRIBUTES else _text(value)
        for attr, key in names.items()
        if (value := element.get(attr)) is not None
    }


_MICROSCOPE = {"Manufacturer": "manufacturer", "Model": "model", "Type": "type", "SerialNumber": "serial_number"}
_OBJECTIVE = {
    "Manufacturer": "manufacturer",
    "Model": "model",
    "NominalMagnification": "nominal_magnification",
    "LensNA": "lens_na",
    "Immersion": "immersion",
    "Correction": "correction",
}


def _ome_summary(xml: str) -> dict[str, Any]:
    """Channels, physical pixel size, instrument and acquisition date from an OME-XML document.

    Only the first Image's Pixels give the pixel size and channels: an
    OME-TIFF of several images (a plate, a tiled slide) almost always
    shares them, and each image is listed among the series anyway.
    """
    root = ET.fromstring(xml)
    found: dict[str, Any] = {}
    if root.get("Creator"):
        found["ome_creator"] = _text(root.get("Creator"))
    image = next((element for element in root if _local(element.tag) == "Image"), None)
    if image is not None:
        for child in image:
            if _local(child.tag) == "AcquisitionDate" and child.text:
                found["acquisition_date"] = child.text.strip()
        pixels = next((child for child in image if _local(child.tag) == "Pixels"), None)
        if pixels is not None:
            size = {}
            for axis in ("X", "Y", "Z"):
                value = _number(pixels.get(f"PhysicalSize{axis}"))
                if value is not None:
                    size[axis.lower()] = {"value": value, "unit": pixels.get(f"PhysicalSize{axis}Unit", "µm")}
            if size:
                found["pixel_size"] = {**size, "source": "ome"}
            channels = [child for child in pixels if _local(child.tag) == "Channel"]
            names = [_text(channel.get("Name", "")) for channel in channels[:MAX_CHANNELS]]
            if any(names):
                found["channel_names"] = names
            if pixels.get("SizeC"):
                found["ome_size_c"] = _number(pixels.get("SizeC"))
    instrument = next((element for element in root if _local(element.tag) == "Instrument"), None)
    if instrument is not None:
        described: dict[str, Any] = {}
        microscope = next((child for child in instrument if _local(child.tag) == "Microscope"), None)
        if microscope is not None:
            described["microscope"] = _attributes(microscope, _MICROSCOPE)
        objectives = [child for child in instrument if _local(child.tag) == "Objective"]
        if objectives:
            described["objectives"] = [_attributes(child, _OBJECTIVE) for child in objectives[:MAX_OBJECTIVES]]
        found["instrument"] = described
    binary_only = next((element for element in root if _local(element.tag) == "BinaryOnly"), None)
    if binary_only is not None and binary_only.get("MetadataFile"):
        found["ome_metadata_file"] = _text(binary_only.get("MetadataFile"))
    return found


def _imagej_summary(metadata: dict[str, Any]) -> dict[str, Any]:
    """The scalar entries of ImageJ's metadata (lookup tables, ranges and per-slice labels are left out)."""
    kept: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, bool | int | float):
            kept[str(key)] = value
        elif isinstance(value, str):
            kept[str(key)] = _text(value)
    return kept


def _resolution_pixel_size(page: tifffile.TiffPage, imagej: dict[str, Any] | None) -> dict[str, Any] | None:
    """Pixel size from the XResolution/YResolution tags: in µm for real units, in ImageJ's unit if it names one.

    ResolutionUnit "none" without an ImageJ unit says nothing about the
    sample (every writer puts some resolution there), so it gives no size.
    """
    if 282 not in page.tags or 283 not in page.tags:
        return None
    x_per_unit, y_per_unit = page.get_resolution()
    if not x_per_unit or not y_per_unit:
        return None
    if imagej and imagej.get("unit"):
        unit = _IMAGEJ_UNITS.get(str(imagej["unit"]), str(imagej["unit"]))
        size: dict[str, Any] = {
            "x": {"value": 1 / x_per_unit, "unit": unit},
            "y": {"value": 1 / y_per_unit, "unit": unit},
        }
        if isinstance(imagej.get("spacing"), int | float):
            size["z"] = {"value": imagej["spacing"], "unit": unit}
        return {**size, "source": "imagej"}
    micrometres = _UNITS_PER_MICROMETRE.get(int(page.resolutionunit))
    if micrometres is None:
        return None
    return {
        "x": {"value": micrometres / x_per_unit, "unit": "µm"},
        "y": {"value": micrometres / y_per_unit, "unit": "µm"},
        "source": "tiff_resolution",
    }


def _tiff_datetime(value: object) -> str | None:
    """The TIFF DateTime tag ("YYYY:MM:DD HH:MM:SS") in ISO 8601, or None if it is not a date."""
    try:
        return datetime.strptime(str(value).strip(), "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None


def _enum_name(value: object) -> str:
    """A TIFF enumeration (photometric, compression) by name; tifffile leaves a code it does not know as a number."""
    return str(getattr(value, "name", value)).lower()


def _channel_count(axes: str, shape: tuple[int, ...]) -> int:
    """Channels as the series shape gives them: the C axis, else RGB samples (S), else one."""
    for axis in ("C", "S"):
        if axis in axes:
            return int(shape[axes.index(axis)])
    return 1


def _check_pages(tif: tifffile.TiffFile, size: int, ctx: FileContext) -> int:
    """Count the pages and check that each one's pixel data lies inside the file; returns pages checked.

    Reads each directory's strip or tile offsets, never the strips.
    """
    tif.pages.useframes = True
    checked = 0
    for index, page in enumerate(tif.pages):
        offsets = page.dataoffsets
        counts = page.databytecounts
        end = max((offset + count for offset, count in zip(offsets, counts, strict=False) if count), default=0)
        if end > size:
            ctx.partial["pages_before_error"] = index
            raise ctx.error("truncated", f"pixel data of page {index} ends at byte {end}, past the end at {size}")
        checked += 1
        if checked % PAGE_BATCH == 0 and ctx.deadline.expired():
            ctx.stop_early("time_budget")
            break
    return checked


def _check_chain_end(tif: tifffile.TiffFile, path: Path, layout: _Layout, size: int, ctx: FileContext) -> None:
    """Fail if the last directory tifffile read points on to one it could not read (it logs that and stops)."""
    pages = len(tif.pages)
    last = tif.pages[pages - 1].offset
    fault = _values_fault(path, layout, last, size, f"page {pages - 1}")
    following = _next_directory(path, layout, last)
    if fault is None and following != 0:
        which = f"the directory after page {pages - 1}"
        fault = _directory_fault(path, layout, following, size, which) or ("bad_format", f"{which} cannot be read")
    if fault is not None:
        ctx.partial["pages_before_error"] = pages
        raise ctx.error(*fault)


def _series(tif: tifffile.TiffFile) -> list[dict[str, Any]]:
    return [
        {
            "axes": series.axes,
            "shape": list(series.shape),
            "dtype": str(series.dtype),
            **({"name": _text(series.name)} if series.name else {}),
        }
        for series in tif.series[:MAX_SERIES]
    ]


def _describe(tif: tifffile.TiffFile, path: Path, layout: _Layout, size: int, ctx: FileContext) -> dict[str, Any]:
    first = tif.pages.first
    metadata: dict[str, Any] = {
        "byte_order": "little" if layout.byteorder == "<" else "big",
        "bigtiff": tif.is_bigtiff,
        "width": int(first.imagewidth),
        "height": int(first.imagelength),
        "dtype": str(first.dtype) if first.dtype is not None else None,
        "bits_per_sample": int(first.bitspersample),
        "samples_per_pixel": int(first.samplesperpixel),
        "photometric": _enum_name(first.photometric),
        "compression": _enum_name(first.compression),
    }
    pages = _check_pages(tif, size, ctx)
    if ctx.partial_reason is None:
        _check_chain_end(tif, path, layout, size, ctx)
        metadata["pages"] = pages
        series = _series(tif)
        metadata["series_count"] = len(tif.series)
        metadata["series"] = series
        if series:
            metadata["axes"], metadata["shape"] = series[0]["axes"], series[0]["shape"]
            metadata["channels"] = _channel_count(series[0]["axes"], tuple(series[0]["shape"]))
    else:
        metadata["pages_checked"] = pages
    software = first.tags.valueof(305)
    if software:
        metadata["software"] = _text(software).strip()
    acquired = _tiff_datetime(first.tags.valueof(306)) if 306 in first.tags else None
    acquired_from = "tiff_datetime"
    imagej = tif.imagej_metadata if tif.is_imagej else None
    if imagej:
        metadata["imagej"] = _imagej_summary(imagej)
    pixel_size = _resolution_pixel_size(first, imagej)
    if tif.is_ome and tif.ome_metadata:
        metadata["ome"] = True
        ome = _ome_summary(tif.ome_metadata)
        size_c = ome.pop("ome_size_c", None)
        if isinstance(size_c, int) and "channels" not in metadata:
            metadata["channels"] = size_c
        pixel_size = ome.pop("pixel_size", pixel_size)
        if "acquisition_date" in ome:
            acquired, acquired_from = ome.pop("acquisition_date"), "ome"
        metadata.update(ome)
    if pixel_size:
        metadata["pixel_size"] = pixel_size
    if acquired:
        metadata["acquisition_date"] = acquired
        metadata["acquisition_date_source"] = acquired_from
    return metadata


def _render(metadata: dict[str, Any]) -> str:
    """One searchable line: geometry, channel names, instrument and date."""
    parts = [f"TIFF {metadata['width']}x{metadata['height']} {metadata.get('dtype')}"]
    if "axes" in metadata:
        parts.append(f"axes {metadata['axes']} shape {tuple(metadata['shape'])}")
    if metadata.get("channel_names"):
        parts.append("channels " + ", ".join(metadata["channel_names"]))
    instrument = metadata.get("instrument", {})
    for item in [instrument.get("microscope", {}), *instrument.get("objectives", [])]:
        words = [str(item[key]) for key in ("manufacturer", "model") if key in item]
        if "nominal_magnification" in item:
            words.append(f"{item['nominal_magnification']}x")
        if words:
            parts.append(" ".join(words))
    for key in ("acquisition_date", "software"):
        if key in metadata:
            parts.append(f"{key.replace('_', ' ')} {metadata[key]}")
    return "; ".join(parts)


def extract_tiff(stream: BinaryIO, ctx: FileContext) -> Summary:
    """Summarise a TIFF or OME-TIFF from its directories and OME-XML, without decoding pixels."""
    with spooled(stream, ctx, ".tif") as path:
        size = path.stat().st_size
        layout, first_offset = _read_layout(path, size, ctx)
        fault = _directory_fault(path, layout, first_offset, size, "the first image file directory")
        fault = fault or _values_fault(path, layout, first_offset, size, "the first image file directory")
        if fault is not None:
            raise ctx.error(*fault)
        try:
            with tifffile.TiffFile(path) as tif:
                metadata = _describe(tif, path, layout, size, ctx)
        except (tifffile.TiffFileError, IndexError, ValueError, KeyError, struct.error, ET.ParseError) as exc:
            raise ctx.error("bad_format", f"unreadable TIFF ({type(exc).__name__}: {exc})") from exc
    return Summary(metadata=metadata, text=_render(metadata))


EXTRACTORS: dict[str, Extractor] = {"tiff": extract_tiff}
