"""TIFF and OME-TIFF images are summarised from their directories and OME-XML, never from their pixels.

Every image is written here by tifffile itself (plain, multi-page, BigTIFF,
ImageJ and OME flavours), then cut or spoiled the ways files get damaged in
transfer, and always handed to ``extract`` as a one-way stream.
"""

from __future__ import annotations

import io
import itertools
from typing import Any

import numpy as np
import pytest
import tifffile

from labmesh_dagster.extract.base import Deadline, FileContext
from labmesh_dagster.extract.images import PAGE_BATCH, extract_tiff
from labmesh_dagster_tests.extract.test_registry import OneWayStream, extract_bytes


def tiff_bytes(data: np.ndarray, **options: Any) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, data, **options)
    return buffer.getvalue()


OME_WITH_INSTRUMENT = """<?xml version="1.0" encoding="UTF-8"?>
<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" Creator="ZEN 3.4 (blue edition)">
  <Instrument ID="Instrument:0">
    <Microscope Manufacturer="Carl Zeiss" Model="Axio Observer.Z1 / 7" Type="Inverted"/>
    <Objective ID="Objective:0" Manufacturer="Carl Zeiss" Model="Plan-Apochromat 63x/1.40 Oil DIC M27"
               NominalMagnification="63" LensNA="1.4" Immersion="Oil"/>
  </Instrument>
  <Image ID="Image:0" Name="HeLa DAPI/GFP">
    <AcquisitionDate>2024-05-01T10:11:12</AcquisitionDate>
    <InstrumentRef ID="Instrument:0"/>
    <ObjectiveSettings ID="Objective:0"/>
    <Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" SizeX="64" SizeY="32" SizeC="2" SizeZ="1" SizeT="1"
            PhysicalSizeX="0.1" PhysicalSizeXUnit="µm" PhysicalSizeY="0.1" PhysicalSizeYUnit="µm">
      <Channel ID="Channel:0:0" Name="DAPI" SamplesPerPixel="1"/>
      <Channel ID="Channel:0:1" Name="EGFP" SamplesPerPixel="1"/>
      <TiffData IFD="0" PlaneCount="2"/>
    </Pixels>
  </Image>
</OME>"""


def test_a_plain_rgb_tiff_gets_its_geometry_sample_format_resolution_software_and_date() -> None:
    data = tiff_bytes(
        np.zeros((30, 40, 3), np.uint8),
        photometric="rgb",
        resolution=(300, 300),
        resolutionunit="INCH",
        software="ScanMaker 9800",
        datetime="2023:11:02 14:05:09",
    )
    extraction = extract_bytes(data, "gel.tif")
    assert extraction.format == "tiff"
    assert extraction.error is None
    metadata = extraction.metadata
    assert (metadata["width"], metadata["height"], metadata["pages"]) == (40, 30, 1)
    assert (metadata["dtype"], metadata["bits_per_sample"], metadata["samples_per_pixel"]) == ("uint8", 8, 3)
    assert (metadata["axes"], metadata["shape"], metadata["channels"]) == ("YXS", [30, 40, 3], 3)
    assert metadata["photometric"] == "rgb"
    assert metadata["pixel_size"]["source"] == "tiff_resolution"
    assert metadata["pixel_size"]["x"] == {"value": pytest.approx(25400 / 300), "unit": "µm"}
    assert metadata["software"] == "ScanMaker 9800"
    assert (metadata["acquisition_date"], metadata["acquisition_date_source"]) == (
        "2023-11-02T14:05:09",
        "tiff_datetime",
    )
    assert "ome" not in metadata and "imagej" not in metadata
    assert extraction.text.startswith("TIFF 40x30 uint8")


def test_a_multi_page_stack_counts_every_page() -> None:
    data = tiff_bytes(np.zeros((7, 16, 24), np.uint16), photometric="minisblack")
    metadata = extract_bytes(data, "stack.tiff").metadata
    assert (metadata["pages"], metadata["shape"], metadata["series_count"]) == (7, [7, 16, 24], 1)
    assert metadata["axes"].endswith("YX")
    assert (metadata["dtype"], metadata["bits_per_sample"]) == ("uint16", 16)


def test_a_bigtiff_is_read_like_a_classic_tiff() -> None:
    data = tiff_bytes(np.zeros((3, 8, 8), np.float32), bigtiff=True, photometric="minisblack")
    metadata = extract_bytes(data, "big.tif").metadata
    assert metadata["bigtiff"] is True
    assert (metadata["pages"], metadata["dtype"], metadata["bits_per_sample"]) == (3, "float32", 32)


def test_an_ome_tiff_written_by_tifffile_gets_channel_names_and_physical_pixel_size() -> None:
    data = tiff_bytes(
        np.zeros((2, 32, 48), np.uint16),
        ome=True,
        photometric="minisblack",
        metadata={
            "axes": "CYX",
            "Channel": {"Name": ["DAPI", "GFP"]},
            "PhysicalSizeX": 0.325,
            "PhysicalSizeXUnit": "µm",
            "PhysicalSizeY": 0.325,
            "PhysicalSizeYUnit": "µm",
        },
    )
    extraction = extract_bytes(data, "well_A1.ome.tif")
    metadata = extraction.metadata
    assert metadata["ome"] is True
    assert (metadata["axes"], metadata["shape"], metadata["pages"]) == ("CYX", [2, 32, 48], 2)
    assert (metadata["channels"], metadata["channel_names"]) == (2, ["DAPI", "GFP"])
    assert metadata["pixel_size"] == {
        "x": {"value": 0.325, "unit": "µm"},
        "y": {"value": 0.325, "unit": "µm"},
        "source": "ome",
    }
    assert "channels DAPI, GFP" in extraction.text


def test_an_ome_tiff_names_its_microscope_objective_and_acquisition_date() -> None:
    data = tiff_bytes(
        np.zeros((2, 32, 64), np.uint16),
        photometric="minisblack",
        description=OME_WITH_INSTRUMENT.encode(),
        metadata=None,
    )
    extraction = extract_bytes(data, "hela.ome.tiff")
    metadata = extraction.metadata
    assert metadata["instrument"] == {
        "microscope": {"manufacturer": "Carl Zeiss", "model": "Axio Observer.Z1 / 7", "type": "Inverted"},
        "objectives": [
            {
                "manufacturer": "Carl Zeiss",
                "model": "Plan-Apochromat 63x/1.40 Oil DIC M27",
                "nominal_magnification": 63,
                "lens_na": 1.4,
                "immersion": "Oil",
            }
        ],
    }
    assert (metadata["acquisition_date"], metadata["acquisition_date_source"]) == ("2024-05-01T10:11:12", "ome")
    assert metadata["ome_creator"] == "ZEN 3.4 (blue edition)"
    assert metadata["channel_names"] == ["DAPI", "EGFP"]
    assert metadata["series"][0]["name"] == "HeLa DAPI/GFP"
    assert "Carl Zeiss Plan-Apochromat 63x/1.40 Oil DIC M27 63x" in extraction.text


def test_an_imagej_hyperstack_gets_its_imagej_metadata_and_voxel_size() -> None:
    data = tiff_bytes(
        np.zeros((4, 16, 16), np.uint8),
        imagej=True,
        resolution=(1 / 0.2, 1 / 0.2),
        metadata={"axes": "ZYX", "spacing": 0.5, "unit": "um"},
    )
    metadata = extract_bytes(data, "zstack.tif").metadata
    assert metadata["imagej"]["slices"] == 4
    assert metadata["imagej"]["unit"] == "um"
    assert metadata["pixel_size"] == {
        "x": {"value": pytest.approx(0.2), "unit": "µm"},
        "y": {"value": pytest.approx(0.2), "unit": "µm"},
        "z": {"value": 0.5, "unit": "µm"},
        "source": "imagej",
    }


def test_pixels_are_never_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("pixel data was decoded")

    for owner in (tifffile.TiffFile, tifffile.TiffPage, tifffile.TiffFrame, tifffile.TiffPageSeries):
        monkeypatch.setattr(owner, "asarray", refuse)
    monkeypatch.setattr(tifffile.TiffPage, "decode", property(refuse))
    data = tiff_bytes(np.arange(5 * 64 * 64, dtype=np.uint16).reshape(5, 64, 64), compression="zlib")
    extraction = extract_bytes(data, "compressed.tif")
    assert extraction.error is None
    assert (extraction.metadata["compression"], extraction.metadata["pages"]) == ("adobe_deflate", 5)


def test_a_tiff_cut_inside_its_first_directory_is_truncated() -> None:
    data = tiff_bytes(np.zeros((16, 16), np.uint8))
    extraction = extract_bytes(data[:20], "cut.tif")
    assert extraction.error is not None
    assert (extraction.error.reason, extraction.error.name) == ("truncated", "cut.tif")
    assert "first image file directory" in extraction.error.detail


def test_a_tiff_cut_inside_its_pixel_data_is_truncated() -> None:
    data = tiff_bytes(np.zeros((64, 64), np.uint16))
    extraction = extract_bytes(data[:-100], "cut.tif")
    assert extraction.error is not None and extraction.error.reason == "truncated"
    assert "pixel data of page 0" in extraction.error.detail


def test_a_stack_cut_in_the_middle_of_its_directory_chain_is_truncated_not_shorter() -> None:
    data = tiff_bytes(np.zeros((50, 16, 16), np.uint8), photometric="minisblack", metadata=None)
    extraction = extract_bytes(data[: len(data) // 2], "stack.tif")
    assert extraction.error is not None and extraction.error.reason == "truncated"
    assert 0 < extraction.metadata["pages_before_error"] < 50


def test_an_ome_tiff_cut_inside_its_ome_xml_is_truncated_not_a_plain_tiff() -> None:
    data = tiff_bytes(np.zeros((2, 8, 8), np.uint8), ome=True, metadata={"axes": "CYX"})
    description_end = data.index(b"</OME>") + len(b"</OME>")
    extraction = extract_bytes(data[: description_end - 50], "cut.ome.tif")
    assert extraction.error is not None and extraction.error.reason == "truncated"
    assert "tag 270" in extraction.error.detail


@pytest.mark.parametrize(
    "tail",
    [
        b"\xff" * 100,
        b"\x08\x00\x00\x00" + b"\xff\xff" + b"\x00" * 100,
        bytes(range(256)) * 4,
    ],
)
def test_a_tiff_header_followed_by_garbage_is_an_error_not_a_crash(tail: bytes) -> None:
    extraction = extract_bytes(b"II*\x00" + tail, "garbage.tif")
    assert extraction.format == "tiff"
    assert extraction.error is not None
    assert extraction.error.reason in ("truncated", "bad_format")
    assert extraction.error.name == "garbage.tif"


def test_a_tif_that_is_not_a_tiff_at_all_is_bad_magic() -> None:
    extraction = extract_bytes(b"\x00\x01\x02\x03" * 500, "scan.tif")
    assert extraction.format == "tiff"
    assert extraction.error is not None and extraction.error.reason == "bad_magic"


def test_a_long_stack_that_runs_out_of_time_reports_the_pages_checked_so_far() -> None:
    pages = 3 * PAGE_BATCH
    data = tiff_bytes(np.zeros((pages, 4, 4), np.uint8), photometric="minisblack", metadata=None)
    ticks = itertools.count(0.0, 1.0)
    ctx = FileContext(name="long.tif", deadline=Deadline(1.5, clock=lambda: next(ticks)))
    summary = extract_tiff(OneWayStream(data), ctx)  # type: ignore[arg-type]
    assert ctx.partial_reason == "time_budget"
    assert 0 < summary.metadata["pages_checked"] < pages
    assert "pages" not in summary.metadata
