"""A bounded thumbnail of a stored TIFF: a small PNG of its first image, from at most the file's first bytes.

A TIFF's directories and pixel data can sit anywhere in the file, and an S3
object is read as a stream, so the thumbnail is made from the object's head
only: at most `THUMBNAIL_READ_BYTES`, never the rest. The image drawn is the
smallest level of the first series' pyramid (an OME-TIFF's sub-resolutions,
or else the first page) at least as large as the thumbnail whose pixel data
lies within that head; an image whose
data lies beyond it, or that would decode to more than `MAX_DECODED_BYTES`,
gets a note instead. Of a stack or of several channels the first plane is
drawn; RGB stays in colour; anything else is drawn in grey, its contrast
stretched between the 0.5th and 99.5th percentiles, as microscopy viewers
show a 12- or 16-bit image by default.

The PNG is written here (a few chunks and zlib, as the PNG specification
lays them out), which spares the portal an imaging library.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import tifffile

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.keys import ObjectKey

THUMBNAIL_READ_BYTES = 16 * 1024 * 1024
"""Bytes of the object read at most for one thumbnail."""
MAX_DECODED_BYTES = 64 * 1024 * 1024
"""The largest image (decoded, in memory) a thumbnail is drawn from."""
THUMBNAIL_EDGE = 256
"""The longest side of a thumbnail, in pixels."""

_RGB = 2  # TIFF Photometric RGB


@dataclass(frozen=True)
class Thumbnail:
    """A PNG of the image, or None with a note saying why there is none."""

    png: bytes | None
    note: str = ""
    width: int = 0
    height: int = 0


def tiff_thumbnail(store: ObjectStore, key: ObjectKey) -> Thumbnail:
    """The thumbnail of the TIFF at ``key``, read from at most `THUMBNAIL_READ_BYTES` of it."""
    with store.open(key) as stream:
        head = _read_up_to(stream, THUMBNAIL_READ_BYTES)
    try:
        with tifffile.TiffFile(io.BytesIO(head)) as tif:
            page = _drawable_page(tif, len(head))
            if isinstance(page, str):
                return Thumbnail(None, note=page)
            pixels = _pixels(page)
    except Exception as exc:  # tifffile raises many types for a damaged or unsupported file
        return Thumbnail(None, note=f"no thumbnail: the image cannot be read ({type(exc).__name__})")
    height, width = pixels.shape[:2]
    return Thumbnail(png_bytes(pixels), width=width, height=height)


def _read_up_to(stream: BinaryIO, limit: int) -> bytes:
    parts: list[bytes] = []
    left = limit
    while left > 0 and (chunk := stream.read(min(left, 1024 * 1024))):
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _within(page: Any, size: int) -> bool:
    return all(offset + count <= size for offset, count in zip(page.dataoffsets, page.databytecounts, strict=False))


def _drawable_page(tif: tifffile.TiffFile, size: int) -> Any:
    """The smallest level of the first image whose pixels lie in the head and fit in memory; else why there is none."""
    if not tif.pages:
        return "no thumbnail: the file holds no image"
    first = tif.pages.first
    try:
        levels = [level.keyframe for level in tif.series[0].levels] if tif.series else [first]
    except Exception:  # series parsing of a cut-off file can fail where the first page reads fine
        levels = [first]
    if not any(level is not None for level in levels):
        levels = [first]
    readable = [page for page in levels if page is not None and _within(page, size)]
    if not readable:
        return f"no thumbnail: the image's pixels lie beyond the first {THUMBNAIL_READ_BYTES:,} bytes, all it reads"
    # The smallest level still as large as the thumbnail, or the largest there is if every one is smaller.
    by_size = sorted(readable, key=lambda page: page.imagewidth * page.imagelength)
    page: Any = next((p for p in by_size if max(p.imagewidth, p.imagelength) >= THUMBNAIL_EDGE), by_size[-1])
    if math.prod(page.shape) * np.dtype(page.dtype).itemsize > MAX_DECODED_BYTES:
        return "no thumbnail: the image is too large to draw, and has no smaller level"
    return page


def _pixels(page: Any) -> np.ndarray:
    """The page's first plane, at most `THUMBNAIL_EDGE` on its longest side, as 8-bit grey or RGB."""
    array = np.asarray(page.asarray())
    axes = str(page.axes)
    rgb = page.photometric == _RGB and "S" in axes and array.shape[axes.index("S")] >= 3
    keep = {"Y", "X", "S"} if rgb else {"Y", "X"}
    index = tuple(slice(None) if axis in keep else 0 for axis in axes)
    array = array[index]
    kept = [axis for axis in axes if axis in keep]
    array = np.moveaxis(array, [kept.index(axis) for axis in ("Y", "X")], [0, 1])
    if rgb:
        array = array[..., :3]
    step = max(1, math.ceil(max(array.shape[:2]) / THUMBNAIL_EDGE))
    array = array[::step, ::step]
    if rgb and array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    return _stretched(array)


def _stretched(array: np.ndarray) -> np.ndarray:
    values = array.astype(np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(array.shape, dtype=np.uint8)
    low, high = np.percentile(finite, [0.5, 99.5])
    if high <= low:
        low, high = float(finite.min()), float(finite.max())
    if high <= low:
        return np.full(array.shape, 0 if low == 0 else 255, dtype=np.uint8)
    scaled = np.clip((np.nan_to_num(values, nan=low) - low) / (high - low), 0.0, 1.0)
    return np.ascontiguousarray(np.round(scaled * 255).astype(np.uint8))


def png_bytes(pixels: np.ndarray) -> bytes:
    """An 8-bit grey (height x width) or RGB (height x width x 3) image as PNG: signature, IHDR, IDAT, IEND."""
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ValueError(f"a PNG is drawn from 8-bit grey or RGB pixels, not {pixels.dtype} of shape {pixels.shape}")
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    # Each scanline opens with its filter type; 0 (none) lets zlib do the work.
    raw = np.concatenate([np.zeros((height, 1), dtype=np.uint8), rows], axis=1).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 8, 2 if pixels.ndim == 3 else 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
