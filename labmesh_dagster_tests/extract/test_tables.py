"""Tables (CSV, TSV, XLSX) are read whatever encoding and delimiter the lab's PC wrote, and name their samples.

Pinned here: the encoding is sniffed (UTF-8 with or without BOM, UTF-16 with
a BOM, Windows-1252, and UTF-8 that turns into Windows-1252 after the first
64 KiB); the delimiter is sniffed, so a European ``.csv`` separated by ``;``
with decimal commas is read right; CRLF, lone CR and quoted fields holding
newlines; the sample id column is found by its header, its values become the
file's samples (capped); ragged rows are counted, not fatal; binary content, an
endless line, a truncated or foreign zip are errors naming the file; memory
stays flat and the time budget is honoured. Every file goes through
``extract`` from a one-way stream.
"""

from __future__ import annotations

import csv
import gzip
import io
import random
import tracemalloc
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import openpyxl
import pytest

from labmesh_dagster.extract import Extraction, extract
from labmesh_dagster.extract.base import MAX_SAMPLES
from labmesh_dagster.extract.tables import MAX_CSV_LINE, sample_column
from labmesh_dagster_tests.extract.test_registry import OneWayStream, extract_bytes

DATA = Path(__file__).parent.parent / "data" / "tables"


def assert_failed(extraction: Extraction, reason: str, name: str) -> str:
    assert extraction.error is not None, extraction
    assert (extraction.error.reason, extraction.error.name) == (reason, name)
    return extraction.error.detail


def workbook_bytes(sheets: Mapping[str, Sequence[Sequence[object]]]) -> bytes:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# Delimited text ---------------------------------------------------------------


def test_a_european_excel_csv_in_windows_1252_with_semicolons_is_read_right() -> None:
    data = (DATA / "nanodrop_export_de.csv").read_bytes()
    extraction = extract_bytes(data, "nanodrop_export_de.csv")
    expected_rows = list(csv.reader(io.StringIO(data.decode("cp1252"), newline=""), delimiter=";"))
    assert extraction.error is None
    assert extraction.metadata == {
        "columns": expected_rows[0],
        "column_count": 5,
        "rows": len(expected_rows) - 1,
        "encoding": "cp1252",
        "delimiter": ";",
        "sample_column": "Sample ID",
        "ragged_rows": 0,
    }
    assert extraction.samples == tuple(row[0] for row in expected_rows[1:])
    assert "Konzentration [µg/ml]" in extraction.text and "Trübung" in extraction.text


def test_a_quoted_field_holding_a_newline_is_one_row() -> None:
    content = 'sample,comment\r\nS1,"two\r\nlines"\r\nS2,plain\r\n'
    extraction = extract_bytes(content.encode(), "notes.csv")
    assert (extraction.metadata["rows"], extraction.metadata["ragged_rows"]) == (2, 0)
    assert extraction.samples == ("S1", "S2")


def test_old_mac_line_endings_split_rows() -> None:
    extraction = extract_bytes(b"sample,od\rS1,0.1\rS2,0.2\r", "mac.csv")
    assert (extraction.metadata["rows"], extraction.samples) == (2, ("S1", "S2"))


def test_a_utf8_bom_is_reported_and_kept_out_of_the_first_column_name() -> None:
    extraction = extract_bytes(b"\xef\xbb\xbfSample_ID,value\nS1,3\n", "values.csv")
    assert extraction.metadata["encoding"] == "utf-8-sig"
    assert extraction.metadata["columns"] == ["Sample_ID", "value"]
    assert extraction.samples == ("S1",)
    assert extraction.text.startswith("Sample_ID")


@pytest.mark.parametrize(("codec", "expected"), [("utf-16-le", "utf-16-le"), ("utf-16-be", "utf-16-be")])
def test_utf16_with_a_bom_is_decoded(codec: str, expected: str) -> None:
    text = "Sample Name\tDosis µl\r\nMaus-01\t5\r\nMaus-02\t7,5\r\n"
    data = ("\ufeff" + text).encode(codec)
    extraction = extract_bytes(data, "dosing.tsv")
    assert extraction.error is None
    assert extraction.metadata["encoding"] == expected
    assert extraction.metadata["columns"] == ["Sample Name", "Dosis µl"]
    assert extraction.samples == ("Maus-01", "Maus-02")
    assert extraction.text == text


def test_utf8_that_turns_into_windows_1252_after_the_head_switches_codec_instead_of_failing() -> None:
    ascii_part = b"sample,temperature\n" + b"".join(b"S%d,4\n" % n for n in range(20_000))
    assert len(ascii_part) > 64 * 1024
    data = ascii_part + "S-last,4 °C\n".encode("cp1252")
    extraction = extract_bytes(data, "fridge.csv")
    assert extraction.error is None
    assert extraction.metadata["encoding"] == "cp1252"
    assert extraction.metadata["encoding_fallback_at_byte"] == data.index(b"\xb0")
    assert extraction.metadata["rows"] == 20_001


def test_a_csv_that_is_really_comma_separated_keeps_commas_despite_semicolons_in_quotes() -> None:
    content = 'sample,treatment,note\nS1,"A; B",x\nS2,"C; D",y\nS3,E,z\n'
    extraction = extract_bytes(content.encode(), "design.csv")
    assert extraction.metadata["delimiter"] == ","
    assert extraction.metadata["column_count"] == 3


def test_a_single_column_file_falls_back_to_the_delimiter_its_suffix_implies() -> None:
    extraction = extract_bytes(b"specimen\nB-1\nB-2\n", "ids.tsv")
    assert extraction.metadata["delimiter"] == "\t"
    assert extraction.samples == ("B-1", "B-2")


def test_a_pipe_separated_file_is_sniffed() -> None:
    extraction = extract_bytes(b"run|sample|reads\nr1|S1|100\nr1|S2|200\n", "runs.csv")
    assert (extraction.metadata["delimiter"], extraction.samples) == ("|", ("S1", "S2"))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (["well", "Sample_ID"], 1),
        (["sample id", "x"], 0),
        (["SAMPLE-NAME", "x"], 0),
        (["x", "Specimen"], 1),
        (["sampleName", "Sample_ID"], 1),
        (["well", "od600"], None),
        (["subsample_count", "x"], None),
    ],
)
def test_the_sample_column_is_found_by_its_header_name_whatever_the_case_and_punctuation(
    header: list[str], expected: int | None
) -> None:
    assert sample_column(header) == expected


def test_sample_ids_are_capped_while_every_row_is_counted() -> None:
    rows = MAX_SAMPLES + 500
    content = "Sample_ID,reads\n" + "".join(f"S{n},{n}\n" for n in range(rows))
    extraction = extract_bytes(content.encode(), "reads.csv")
    assert extraction.metadata["rows"] == rows
    assert len(extraction.samples) == MAX_SAMPLES
    assert extraction.samples[:2] == ("S0", "S1")


def test_ragged_rows_are_counted_not_fatal() -> None:
    content = "sample,a,b\nS1,1,2\nS2,1\nS3,1,2,3\nS4,1,2\n"
    extraction = extract_bytes(content.encode(), "ragged.csv")
    assert extraction.error is None
    assert (extraction.metadata["rows"], extraction.metadata["ragged_rows"]) == (4, 2)
    assert extraction.samples == ("S1", "S2", "S3", "S4")


def test_the_searchable_text_is_the_header_and_first_rows() -> None:
    content = "sample,value\n" + "".join(f"S{n},{n * 7}\n" for n in range(1000))
    extraction = extract_bytes(content.encode(), "big.csv")
    assert extraction.text == content[:2000]


def test_a_gzipped_semicolon_csv_is_sniffed_through_the_compression() -> None:
    data = gzip.compress((DATA / "nanodrop_export_de.csv").read_bytes())
    extraction = extract_bytes(data, "nanodrop_export_de.csv.gz")
    assert (extraction.format, extraction.metadata["delimiter"]) == ("csv.gz", ";")


def test_a_binary_file_named_csv_is_an_error_naming_the_file() -> None:
    data = random.Random(5).randbytes(5000)
    extraction = extract_bytes(data, "results.csv")
    assert extraction.format == "csv"
    assert "not text" in assert_failed(extraction, "bad_format", "results.csv")


def test_a_line_longer_than_the_limit_is_an_error_with_the_rows_read_before() -> None:
    rows = b"".join(b"S%d,x\n" % n for n in range(100))
    data = b"sample,blob\n" + rows + b"S100," + b"A" * (MAX_CSV_LINE + 10) + b"\nS101,y\n"
    extraction = extract_bytes(data, "blob.csv")
    assert "longer than" in assert_failed(extraction, "bad_format", "blob.csv")
    assert extraction.metadata["rows_before_error"] == 100
    assert extraction.metadata["columns"] == ["sample", "blob"]


def test_an_endless_quoted_field_is_an_error_not_a_memory_leak() -> None:
    data = b'sample,note\nS1,"never closed\n' + b"more text\n" * 20_000
    extraction = extract_bytes(data, "open_quote.csv")
    assert "field larger than field limit" in assert_failed(extraction, "bad_format", "open_quote.csv")


def test_broken_utf16_is_an_error_naming_the_encoding() -> None:
    data = "\ufeffsample\tx\nS1\t1\n".encode("utf-16-le") + b"\x00\xdc" * 2 + "\n".encode("utf-16-le")
    extraction = extract_bytes(data, "broken16.tsv")
    assert "utf-16-le" in assert_failed(extraction, "bad_format", "broken16.tsv")


def test_a_large_csv_streams_in_flat_memory() -> None:
    row = b"S%07d,ACGTACGTAC,0.123456,some free text here\n"
    data = b"sample,index,od,comment\n" + b"".join(row % n for n in range(150_000))
    assert len(data) > 7 * 1024 * 1024
    stream = OneWayStream(data, piece=1 << 20)
    tracemalloc.start()
    try:
        extraction = extract(stream, "plate.csv")  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert extraction.metadata["rows"] == 150_000
    assert peak < len(data) / 2, f"peak {peak} bytes for a {len(data)} byte file"


def test_an_expired_time_budget_stops_at_a_batch_and_says_so() -> None:
    data = b"sample,x\n" + b"".join(b"S%d,1\n" % n for n in range(25_000))
    stream = OneWayStream(data)
    extraction = extract(stream, "slow.csv", budget_seconds=0)  # type: ignore[arg-type]
    assert stream.exhausted
    assert extraction.partial == "time_budget"
    assert 0 < extraction.metadata["rows"] < 25_000


# Excel workbooks --------------------------------------------------------------


def test_a_workbook_lists_its_sheets_and_takes_samples_from_the_first_sheet_naming_them() -> None:
    layout: list[list[object]] = [["Plate", "Well", "Volume"], ["P1", "A1", 50], ["P1", "A2", 50]]
    results: list[list[object]] = [
        ["Sample Name", "Well", "Ct"],
        ["LIV-01", "A1", 23.4],
        ["LIV-02", "A2", 25.1],
        ["LIV-01", "A3", 23.9],
    ]
    metadata_rows = [["specimen", "tissue"], ["X-1", "kidney"]]
    data = workbook_bytes({"Layout": layout, "Results": results, "Metadata": metadata_rows})
    extraction = extract_bytes(data, "qpcr_run.xlsx")
    assert extraction.error is None
    assert extraction.format == "xlsx"
    assert extraction.metadata == {
        "sheet_names": ["Layout", "Results", "Metadata"],
        "sheet_count": 3,
        "sheets": [
            {"name": "Layout", "dimensions": "A1:C3", "rows": 2, "columns": layout[0], "column_count": 3,
             "sample_column": None},
            {"name": "Results", "dimensions": "A1:C4", "rows": 3, "columns": results[0], "column_count": 3,
             "sample_column": "Sample Name"},
            {"name": "Metadata", "dimensions": "A1:B2", "rows": 1, "columns": metadata_rows[0], "column_count": 2,
             "sample_column": "specimen"},
        ],
        "sample_sheet": "Results",
    }  # fmt: skip
    assert extraction.samples == ("LIV-01", "LIV-02")
    assert extraction.text.startswith("[Layout]\nPlate\tWell\tVolume\nP1\tA1\t50\n")
    assert "[Results]\nSample Name\tWell\tCt\nLIV-01\tA1\t23.4" in extraction.text


def test_numeric_sample_ids_in_a_workbook_become_text() -> None:
    data = workbook_bytes({"Sheet1": [["Sample_ID", "value"], [1001, 1.5], [1002, 2.5]]})
    assert extract_bytes(data, "ids.xlsx").samples == ("1001", "1002")


def test_a_truncated_workbook_is_truncated() -> None:
    data = workbook_bytes({"Sheet1": [["sample"], ["S1"]]})
    extraction = extract_bytes(data[: len(data) // 2], "cut.xlsx")
    assert "cut short" in assert_failed(extraction, "truncated", "cut.xlsx")


def test_a_zip_named_xlsx_that_is_no_workbook_is_bad_format() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photos/plate.txt", "not a workbook")
    extraction = extract_bytes(buffer.getvalue(), "plate.xlsx")
    assert "not an Excel workbook" in assert_failed(extraction, "bad_format", "plate.xlsx")


def test_a_workbook_with_a_corrupted_sheet_is_bad_format() -> None:
    rng = random.Random(7)
    rows = [["sample", "text"]] + [[f"S{n}", "".join(rng.choice("ACGT") for _ in range(50))] for n in range(400)]
    data = bytearray(workbook_bytes({"Sheet1": rows}))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        member = archive.getinfo("xl/worksheets/sheet1.xml")
    start = member.header_offset + 30 + len(member.filename) + member.compress_size // 2
    data[start : start + 16] = bytes(byte ^ 0xFF for byte in data[start : start + 16])
    extraction = extract_bytes(bytes(data), "damaged.xlsx")
    assert "a part of the workbook is broken" in assert_failed(extraction, "bad_format", "damaged.xlsx")
    assert extraction.metadata == {"sheet_names": ["Sheet1"]}


def test_a_stray_cell_far_below_the_data_neither_widens_the_header_nor_stalls_the_scan() -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Plate"
    sheet.append(["Sample_ID", "OD"])
    sheet.append(["S1", 0.4])
    sheet["Z200000"] = "note"
    buffer = io.BytesIO()
    workbook.save(buffer)
    [described] = extract_bytes(buffer.getvalue(), "sparse.xlsx").metadata["sheets"]
    assert described == {
        "name": "Plate",
        "dimensions": "A1:Z200000",
        "rows": 2,
        "columns": ["Sample_ID", "OD"],
        "column_count": 2,
        "sample_column": "Sample_ID",
    }
