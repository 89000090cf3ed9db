"""A TIFF's thumbnail is a small PNG of its first image, drawn from a bounded head of the file.

Pinned here, on TIFFs tifffile writes in the test: a 16-bit grey image is
drawn in grey with its contrast stretched and its longest side cut to
`THUMBNAIL_EDGE`; RGB keeps its colours; of a stack the first plane is drawn;
of a pyramid the smallest level at least as large as the thumbnail; no more
than `THUMBNAIL_READ_BYTES` of the object is read, and an image whose pixels
lie beyond them gets a note, as does a file that is not a TIFF. The PNG is
checked by decoding it here, as the specification lays it out.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile

from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.steps import thumbnails
from labmesh_dagster.steps.thumbnails import png_bytes, tiff_thumbnail
from labmesh_dagster_tests.steps.test_previews import CountingStore


def decoded_png(data: bytes) -> np.ndarray:
    """The pixels of an 8-bit grey or RGB PNG whose scanlines are unfiltered, checking each chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position = 8
    chunks: dict[bytes, bytes] = {}
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind, body = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks[kind] = chunks.get(kind, b"") + body
        position += 12 + length
    width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    channels = {0: 1, 2: 3}[colour]
    assert depth == 8 and b"IEND" in chunks
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(height, 1 + width * channels)
    assert not rows[:, 0].any()  # filter type 0 on every scanline
    pixels = rows[:, 1:]
    return pixels.reshape(height, width, 3) if channels == 3 else pixels


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "store")


def put_tiff(store: LocalObjectStore, name: str, write: object) -> ObjectKey:
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tiff:
        write(tiff)  # type: ignore[operator]
    key = ObjectKey.for_experiment(Zone.RAW, "EXP-1", name)
    store.put(key, buffer.getvalue())
    return key


def test_a_16_bit_image_is_drawn_in_grey_stretched_and_no_larger_than_the_edge(store: LocalObjectStore) -> None:
    ramp = np.tile(np.linspace(1000, 1400, 600, dtype=np.uint16), (400, 1))  # a faint 16-bit ramp, left to right
    key = put_tiff(store, "ramp.tif", lambda tiff: tiff.write(ramp))

    thumbnail = tiff_thumbnail(store, key)

    assert thumbnail.png is not None
    pixels = decoded_png(thumbnail.png)
    assert pixels.shape == (thumbnail.height, thumbnail.width) == (134, 200)  # every third pixel of 400 x 600
    assert pixels[:, 0].max() <= 2 and pixels[:, -1].min() >= 253  # stretched to the whole grey range
    assert (np.diff(pixels[0].astype(int)) >= 0).all()


def test_rgb_keeps_its_colours_and_a_stack_shows_its_first_plane(store: LocalObjectStore) -> None:
    frames = np.zeros((3, 20, 30, 3), dtype=np.uint8)
    frames[0, :, :15] = (200, 30, 10)
    frames[1:] = 255
    key = put_tiff(store, "stack.tif", lambda tiff: tiff.write(frames, photometric="rgb"))

    thumbnail = tiff_thumbnail(store, key)

    assert thumbnail.png is not None
    pixels = decoded_png(thumbnail.png)
    assert pixels.shape == (20, 30, 3)
    assert tuple(pixels[5, 5]) == (200, 30, 10) and tuple(pixels[5, 25]) == (0, 0, 0)


def test_a_pyramid_is_drawn_from_its_smallest_level_as_large_as_the_thumbnail(store: LocalObjectStore) -> None:
    base = np.zeros((1024, 1024), dtype=np.uint8)
    level = np.tile(np.array([[0, 255], [255, 0]], dtype=np.uint8).repeat(64, 0).repeat(64, 1), (2, 2))  # 256 x 256

    def write(tiff: tifffile.TiffWriter) -> None:
        tiff.write(base, subifds=2, tile=(64, 64))
        tiff.write(level, subfiletype=1, tile=(64, 64))
        tiff.write(level[::2, ::2], subfiletype=1, tile=(64, 64))

    thumbnail = tiff_thumbnail(store, put_tiff(store, "pyramid.ome.tif", write))

    assert thumbnail.png is not None
    assert np.array_equal(decoded_png(thumbnail.png), level)


def test_only_the_head_is_read_and_pixels_beyond_it_get_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thumbnails, "THUMBNAIL_READ_BYTES", 64 * 1024)
    store = CountingStore(tmp_path / "store")
    big = np.arange(400 * 400, dtype=np.uint16).reshape(400, 400)  # 320 kB of pixels after its directory
    small_first = [np.full((64, 64), 7, dtype=np.uint8), np.zeros((400, 400), dtype=np.uint16)]

    beyond = tiff_thumbnail(store, put_tiff(store, "big.tif", lambda tiff: tiff.write(big)))
    read_for_big = store.read
    stack = tiff_thumbnail(
        store, put_tiff(store, "stack.tif", lambda tiff: [tiff.write(image) for image in small_first])
    )

    assert beyond.png is None and "beyond the first 65,536 bytes" in beyond.note
    assert read_for_big <= 64 * 1024 + 8 * 1024
    assert stack.png is not None and decoded_png(stack.png).shape == (64, 64)
    assert store.read - read_for_big <= 64 * 1024 + 8 * 1024


def test_a_file_that_is_not_a_tiff_gets_a_note(store: LocalObjectStore) -> None:
    key = ObjectKey.for_experiment(Zone.RAW, "EXP-1", "fake.tif")
    store.put(key, b"II*\x00 but then nothing a TIFF holds")

    thumbnail = tiff_thumbnail(store, key)

    assert thumbnail.png is None and thumbnail.note.startswith("no thumbnail")


def test_a_png_is_drawn_only_from_8_bit_grey_or_rgb() -> None:
    assert decoded_png(png_bytes(np.eye(3, dtype=np.uint8) * 9)).tolist() == [[9, 0, 0], [0, 9, 0], [0, 0, 9]]
    with pytest.raises(ValueError, match="8-bit grey or RGB"):
        png_bytes(np.zeros((2, 2), dtype=np.uint16))
