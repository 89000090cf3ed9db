"""Instrument exports are recognised by their vendor's signature and summarised through allotropy.

Pinned here: each export in ``data/allotropy`` is recognised as its instrument
and summarised to the instrument, the technique, the measurement, plate and
well counts and the sample ids it names (the expected values are read from the
export itself, independently of allotropy); a plain table, or an export under
an extension its parser does not take, is not recognised; a recognised export
its parser cannot read comes back as ``bad_format`` naming the parser, with the
file still described as a table when it is one; an export past the size cap is
``too_large``; the metadata is a summary, never the ASM; and importing the
extract package does not import allotropy or pandas.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from labmesh_dagster.core.errors import ExtractionError
from labmesh_dagster.extract import instruments
from labmesh_dagster.extract.base import FileContext
from labmesh_dagster_tests.extract.test_registry import extract_bytes

DATA = Path(__file__).parent.parent / "data" / "allotropy"

SOFTMAX = "softmax_pro_elisa_endpoint.txt"
VI_CELL = "vi_cell_blu_counts.csv"
CFX = "cfx_maestro_cq_results.csv"
NANODROP = "nanodrop_eight_dsdna.txt"

METADATA_KEYS = {
    "instrument",
    "instrument_parser",
    "technique",
    "asm_manifest",
    "allotropy_version",
    "model",
    "serial_number",
    "device_id",
    "manufacturer",
    "software",
    "software_version",
    "experiment_types",
    "detection_types",
    "measurements",
    "plates",
    "plate_ids",
    "wells",
    "plate_well_count",
    "sample_count",
    "measurement_time_first",
    "measurement_time_last",
}


# What each export names, read with the csv module rather than allotropy.


def vi_cell_rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((DATA / VI_CELL).read_text(encoding="utf-8"))))


def cfx_measured_rows() -> list[dict[str, str]]:
    """Rows with a sample or a Cq: CFX Maestro writes empty wells (NTC without Cq) that measure nothing."""
    rows = csv.DictReader(io.StringIO((DATA / CFX).read_text(encoding="utf-8")))
    return [row for row in rows if row["Sample"] or row["Cq"] != "NaN"]


def nanodrop_header_and_rows() -> tuple[dict[str, str], list[dict[str, str]]]:
    lines = (DATA / NANODROP).read_text(encoding="utf-8").splitlines()
    header = {}
    while ":\t" in lines[0]:
        key, value = lines.pop(0).split(":\t")
        header[key] = value
    return header, list(csv.DictReader(lines, delimiter="\t"))


def softmax_plate_and_group() -> tuple[list[str], list[list[str]]]:
    """The plate header fields and the Group block's rows of the SoftMax Pro export."""
    lines = (DATA / SOFTMAX).read_bytes().decode("cp1252").split("\r\n")
    plate = next(line for line in lines if line.startswith("Plate:")).split("\t")
    start = next(i for i, line in enumerate(lines) if line.startswith("Group:")) + 2
    end = lines.index("", start)
    return plate, [line.split("\t") for line in lines[start:end]]


# Recognition.


@pytest.mark.parametrize(
    ("name", "vendor"),
    [
        (SOFTMAX, "MOLDEV_SOFTMAX_PRO"),
        (VI_CELL, "BECKMAN_VI_CELL_BLU"),
        (CFX, "CFXMAESTRO"),
        (NANODROP, "THERMO_FISHER_NANODROP_EIGHT"),
    ],
)
def test_each_export_is_recognised_as_its_instrument_from_its_first_bytes(name: str, vendor: str) -> None:
    head = (DATA / name).read_bytes()[: instruments.HEAD_BYTES]
    assert instruments.recognise(name, head) == vendor
    assert instruments.recognise(f"runs/2024/{name}.gz", head) == vendor


def test_a_nanodrop_export_saved_as_tsv_and_a_vi_cell_export_in_utf16_are_recognised() -> None:
    assert instruments.recognise("plasmids.tsv", (DATA / NANODROP).read_bytes()) == "THERMO_FISHER_NANODROP_EIGHT"
    utf16 = (DATA / VI_CELL).read_text(encoding="utf-8").encode("utf-16")
    assert instruments.recognise("counts.csv", utf16) == "BECKMAN_VI_CELL_BLU"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("results.csv", b"Sample ID,Concentration (ng/uL),A260/A280\nS1,12.5,1.9\nS2,8.1,1.8\n"),
        ("qpcr_by_hand.csv", b"Well,Sample,Target,Cq\nA1,S1,GAPDH,21.3\nA2,S2,GAPDH,22.8\n"),
        ("viability.csv", b"Sample ID,Viability (%)\nS1,95\n"),
        ("notes.txt", b"##BLOCKS= 2\nThese are my notes on plate blocks.\n"),
        ("notes.txt", b"Application:\tdsDNA\nUser Name:\tjlee\n\nDone on the NanoDrop.\n"),
        ("empty.txt", b""),
        ("cells.xlsx", b"PK\x03\x04" + bytes(60)),
    ],
)
def test_a_plain_table_or_text_is_not_taken_for_an_instrument_export(name: str, content: bytes) -> None:
    assert instruments.recognise(name, content) is None


@pytest.mark.parametrize(
    ("export", "name"),
    [(SOFTMAX, "plate.csv"), (VI_CELL, "counts.xlsx"), (VI_CELL, "counts.txt"), (NANODROP, "dsdna.csv")],
)
def test_an_export_under_an_extension_its_parser_does_not_take_is_not_recognised(export: str, name: str) -> None:
    assert instruments.recognise(name, (DATA / export).read_bytes()) is None


def test_every_signature_only_claims_extensions_its_allotropy_parser_accepts() -> None:
    from allotropy.parser_factory import Vendor

    for signature in instruments.SIGNATURES:
        assert signature.extensions <= set(Vendor(signature.vendor).supported_extensions), signature.vendor


def test_a_plain_csv_still_goes_to_the_table_extractor() -> None:
    extraction = extract_bytes(b"Sample ID,Viability (%)\nS1,95\nS2,91\n", "viability.csv")
    assert extraction.format == "csv"
    assert extraction.metadata["rows"] == 2


# Summaries.


def test_a_softmax_pro_plate_export_is_summarised_to_its_plate_wells_and_group_samples() -> None:
    plate, group_rows = softmax_plate_and_group()
    extraction = extract_bytes((DATA / SOFTMAX).read_bytes(), SOFTMAX)

    assert extraction.format == "instrument"
    assert extraction.error is None
    metadata = extraction.metadata
    assert metadata["instrument_parser"] == "MOLDEV_SOFTMAX_PRO"
    assert metadata["technique"] == "Plate Reader"
    assert metadata["detection_types"] == [plate[5]]
    assert metadata["plate_ids"] == [plate[1]]
    assert metadata["plates"] == 1
    assert metadata["plate_well_count"] == int(plate[18])
    assert metadata["wells"] == metadata["measurements"] == int(plate[18])
    named = [row[0] for row in group_rows if row[0]]
    assert sorted(extraction.samples) == sorted(named)
    assert metadata["sample_count"] == len(named)
    assert metadata["asm_manifest"].startswith("http://purl.allotrope.org/manifests/plate-reader/")
    assert named[0] in extraction.text


def test_a_vi_cell_blu_export_is_summarised_to_its_samples_and_analysis_times() -> None:
    rows = vi_cell_rows()
    extraction = extract_bytes((DATA / VI_CELL).read_bytes(), VI_CELL)

    metadata = extraction.metadata
    assert extraction.format == "instrument"
    assert metadata["instrument_parser"] == "BECKMAN_VI_CELL_BLU"
    assert metadata["technique"] == "Cell Counting"
    assert extraction.samples == tuple(row["Sample ID"] for row in rows)
    assert metadata["measurements"] == len(rows)
    assert metadata["wells"] == metadata["plates"] == 0
    analysed = sorted(datetime.strptime(row["Analysis date/time"], "%m/%d/%Y %H:%M") for row in rows)
    # The export has no time zone; allotropy takes UTC.
    assert datetime.fromisoformat(metadata["measurement_time_first"]) == analysed[0].replace(tzinfo=UTC)
    assert datetime.fromisoformat(metadata["measurement_time_last"]) == analysed[-1].replace(tzinfo=UTC)


def test_a_cfx_maestro_export_is_summarised_to_its_wells_and_samples_without_a_placeholder_time() -> None:
    rows = cfx_measured_rows()
    extraction = extract_bytes((DATA / CFX).read_bytes(), CFX)

    metadata = extraction.metadata
    assert metadata["instrument_parser"] == "CFXMAESTRO"
    assert metadata["technique"] == "qPCR"
    assert metadata["manufacturer"] == "Bio-Rad"
    assert metadata["measurements"] == len(rows)
    assert metadata["wells"] == len({row["Well"] for row in rows})
    assert extraction.samples == tuple(dict.fromkeys(row["Sample"] for row in rows if row["Sample"]))
    assert metadata["measurement_time_first"] is None, "allotropy's 1970 stand-in is not a measurement time"


def test_a_nanodrop_eight_export_is_summarised_to_its_serial_number_application_and_samples() -> None:
    header, rows = nanodrop_header_and_rows()
    extraction = extract_bytes((DATA / NANODROP).read_bytes(), NANODROP)

    metadata = extraction.metadata
    assert metadata["instrument_parser"] == "THERMO_FISHER_NANODROP_EIGHT"
    assert metadata["technique"] == "Spectrophotometry"
    assert metadata["serial_number"] == header["Serial Number"]
    assert metadata["experiment_types"] == [header["Application"]]
    assert extraction.samples == tuple(row["Sample ID"] for row in rows)
    assert metadata["wells"] == len({row["Location"] for row in rows})
    assert metadata["serial_number"] in extraction.text


def test_a_vi_cell_export_written_in_utf16_or_windows_1252_is_read_like_the_utf8_one() -> None:
    text = (DATA / VI_CELL).read_text(encoding="utf-8")
    expected = tuple(row["Sample ID"] for row in vi_cell_rows())
    for data in (text.encode("utf-16"), text.replace("\u03bc", "\u00b5").encode("cp1252")):
        extraction = extract_bytes(data, VI_CELL)
        assert extraction.error is None
        assert extraction.samples == expected


def test_a_gzipped_export_is_recognised_and_summarised_from_its_inflated_bytes() -> None:
    extraction = extract_bytes(gzip.compress((DATA / VI_CELL).read_bytes()), f"{VI_CELL}.gz")
    assert extraction.format == "instrument.gz"
    assert extraction.samples == tuple(row["Sample ID"] for row in vi_cell_rows())


@pytest.mark.parametrize("name", [SOFTMAX, VI_CELL, CFX, NANODROP])
def test_the_metadata_is_a_small_summary_with_the_same_keys_for_every_instrument(name: str) -> None:
    extraction = extract_bytes((DATA / name).read_bytes(), name)
    assert set(extraction.metadata) == METADATA_KEYS
    for value in extraction.metadata.values():
        assert value is None or isinstance(value, (str, int)) or all(isinstance(item, str) for item in value)
    assert len(json.dumps(extraction.metadata)) < 2000


# Failures.


def test_a_softmax_pro_export_cut_off_inside_its_plate_is_bad_format_naming_the_parser() -> None:
    lines = (DATA / SOFTMAX).read_bytes().split(b"\r\n")
    cut = b"\r\n".join(lines[:6])
    extraction = extract_bytes(cut, SOFTMAX)

    assert extraction.format == "instrument"
    assert extraction.error is not None
    assert extraction.error.reason == "bad_format"
    assert extraction.error.name == SOFTMAX
    assert "MOLDEV_SOFTMAX_PRO" in extraction.error.detail
    assert extraction.metadata == {"instrument_parser": "MOLDEV_SOFTMAX_PRO"}


def test_a_vi_cell_export_its_parser_rejects_is_still_described_as_a_table() -> None:
    rows = list(csv.reader(io.StringIO((DATA / VI_CELL).read_text(encoding="utf-8"))))
    rows[1][rows[0].index("Viability (%)")] = "high"
    broken = io.StringIO()
    csv.writer(broken, quoting=csv.QUOTE_ALL).writerows(rows)
    extraction = extract_bytes(broken.getvalue().encode("utf-8"), VI_CELL)

    assert extraction.error is not None
    assert extraction.error.reason == "bad_format"
    assert "BECKMAN_VI_CELL_BLU" in extraction.error.detail
    assert extraction.metadata["instrument_parser"] == "BECKMAN_VI_CELL_BLU"
    assert extraction.metadata["rows"] == len(rows) - 1
    assert extraction.metadata["columns"] == rows[0]


def test_an_empty_sample_id_is_not_reported_as_a_sample() -> None:
    rows = list(csv.reader(io.StringIO((DATA / VI_CELL).read_text(encoding="utf-8"))))
    rows[1][rows[0].index("Sample ID")] = ""
    edited = io.StringIO()
    csv.writer(edited, quoting=csv.QUOTE_ALL).writerows(rows)
    extraction = extract_bytes(edited.getvalue().encode("utf-8"), VI_CELL)

    assert extraction.error is None
    assert extraction.samples == tuple(row[0] for row in rows[2:])
    assert extraction.metadata["measurements"] == len(rows) - 1


def test_a_nanodrop_header_without_its_table_is_bad_format() -> None:
    header = b"Application:\tdsDNA\r\nSerial Number:\tAZY2209481\r\nUser Name:\tmkowalski\r\n"
    extraction = extract_bytes(header, NANODROP)
    assert extraction.error is not None
    assert extraction.error.reason == "bad_format"
    assert "THERMO_FISHER_NANODROP_EIGHT" in extraction.error.detail


def test_garbage_after_a_cfx_header_is_bad_format_not_an_exception() -> None:
    header = (DATA / CFX).read_bytes().split(b"\n")[0] + b"\n"
    extraction = extract_bytes(header + bytes(range(256)) * 8, CFX)
    assert extraction.error is not None
    assert extraction.error.reason == "bad_format"
    assert extraction.error.name == CFX


def test_a_truncated_gzipped_export_reports_the_truncation() -> None:
    packed = gzip.compress((DATA / NANODROP).read_bytes())
    extraction = extract_bytes(packed[: len(packed) - 12], f"{NANODROP}.gz")
    assert extraction.error is not None
    assert extraction.error.reason == "truncated"


def test_an_export_larger_than_the_cap_is_too_large_and_still_read_to_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    data = (DATA / SOFTMAX).read_bytes()
    monkeypatch.setattr(instruments, "MAX_INSTRUMENT_BYTES", len(data) - 1)
    extraction = extract_bytes(data, SOFTMAX)
    assert extraction.error is not None
    assert extraction.error.reason == "too_large"
    assert extraction.metadata == {"instrument_parser": "MOLDEV_SOFTMAX_PRO"}


def test_the_extractor_called_on_a_file_it_does_not_recognise_says_unsupported() -> None:
    stream = io.BytesIO(b"Sample ID,Viability (%)\nS1,95\n")
    with pytest.raises(ExtractionError) as raised:
        instruments.extract_instrument(stream, FileContext(name="viability.csv"))
    assert raised.value.reason == "unsupported"


# Import cost.


def test_importing_the_extract_package_loads_neither_allotropy_nor_pandas() -> None:
    code = (
        "import sys, labmesh_dagster.extract, labmesh_dagster.extract.instruments; "
        "print(sorted(name for name in ('allotropy', 'pandas') if name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"
