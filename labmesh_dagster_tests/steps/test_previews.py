"""Previews show the start of a file in the shape its format has, and never read the whole file.

Pinned here, on real files from other projects' test suites (see
labmesh_dagster_tests/data/README.md): FASTQ (plain and gzip) shows its first
reads, CSV a table head with the sniffed delimiter, VCF its header lines and
first records, XLSX a table head, other text its first lines, and anything else
a hex dump; a large object is read only to the preview's bound; a damaged
compressed file gets a note, not an error page.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pytest
from openpyxl import Workbook

from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.steps.previews import MAX_READS, PREVIEW_BYTES, preview_object

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "store")


def put(store: LocalObjectStore, name: str, data: bytes) -> ObjectKey:
    key = ObjectKey.for_experiment(Zone.RAW, "EXP-1", name)
    store.put(key, data)
    return key


def test_a_fastq_shows_its_first_reads_compressed_or_not(store: LocalObjectStore) -> None:
    plain = (DATA / "dnaio" / "simple.fastq").read_bytes()
    for name, data in [("r.fastq", plain), ("r.fastq.gz", (DATA / "dnaio" / "simple.fastq.gz").read_bytes())]:
        preview = preview_object(
            store, put(store, name, data), "fastq.gz" if name.endswith("gz") else "fastq", len(data)
        )
        assert preview.kind == "reads"
        first = plain.decode().splitlines()
        assert (preview.reads[0].name, preview.reads[0].sequence, preview.reads[0].qualities) == (
            first[0][1:],
            first[1],
            first[3],
        )


def test_a_long_fastq_shows_a_few_reads_and_says_there_are_more(store: LocalObjectStore) -> None:
    data = b"".join(b"@read%d\nACGT\n+\nIIII\n" % n for n in range(1000))
    preview = preview_object(store, put(store, "many.fastq", data), "fastq", len(data))
    assert len(preview.reads) == MAX_READS and preview.truncated


def test_a_csv_shows_a_table_head_with_its_own_delimiter(store: LocalObjectStore) -> None:
    data = (DATA / "tables" / "nanodrop_export_de.csv").read_bytes()
    preview = preview_object(store, put(store, "nanodrop.csv", data), "csv", len(data))
    assert preview.kind == "table" and len(preview.header) > 1 and preview.rows
    assert all(len(row) <= len(preview.header) + 5 for row in preview.rows)


def test_a_vcf_shows_its_header_and_first_records(store: LocalObjectStore) -> None:
    data = (DATA / "pysam" / "example_vcf42.vcf").read_bytes()
    preview = preview_object(store, put(store, "calls.vcf", data), "vcf", len(data))
    assert preview.kind == "vcf" and preview.header[:2] == ("CHROM", "POS")
    assert preview.lines[0].startswith("##fileformat=VCFv4.2") and preview.rows
    gz = (DATA / "pysam" / "example.vcf.gz").read_bytes()
    assert preview_object(store, put(store, "calls.vcf.gz", gz), "vcf.gz", len(gz)).rows


def test_a_workbook_shows_its_first_sheets_head(store: LocalObjectStore) -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = "Plate 1"
    sheet.append(["well", "od600"])
    sheet.append(["A1", 0.42])
    buffer = io.BytesIO()
    book.save(buffer)
    data = buffer.getvalue()
    preview = preview_object(store, put(store, "plate.xlsx", data), "xlsx", len(data))
    assert (preview.header, preview.rows, preview.extra) == (("well", "od600"), (("A1", "0.42"),), {"sheet": "Plate 1"})


def test_anything_else_is_a_hex_dump_of_its_head(store: LocalObjectStore) -> None:
    data = (DATA / "pysam" / "project.NIST_NIST7035_H7AP8ADXX_TAAGGCGA_1_NA12878.bwa.markDuplicates.bam").read_bytes()
    preview = preview_object(store, put(store, "reads.bam", data), "bam", len(data))
    assert preview.kind == "hex" and preview.lines[0].startswith("00000000  1f 8b") and preview.truncated


def test_a_damaged_compressed_file_gets_a_note(store: LocalObjectStore) -> None:
    data = gzip.compress(b"@r\nACGT\n+\nIIII\n")[:12]
    preview = preview_object(store, put(store, "cut.fastq.gz", data), "fastq.gz", len(data))
    assert preview.kind == "none" and preview.note.startswith("no preview")


class CountingStore(LocalObjectStore):
    """A local store that counts the bytes each preview reads from it."""

    read = 0

    @contextmanager
    def open(self, key: ObjectKey) -> Iterator[BinaryIO]:  # type: ignore[override]
        with super().open(key) as stream:
            outer = self

            class Counting(io.RawIOBase):
                def readable(self) -> bool:
                    return True

                def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
                    data = stream.read(len(buffer))
                    outer.read += len(data)
                    buffer[: len(data)] = data
                    return len(data)

            yield io.BufferedReader(Counting())  # type: ignore[arg-type]


def test_a_large_object_is_read_only_to_the_previews_bound(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "store")
    data = b"line of text\n" * 1_000_000  # 13 MB
    preview = preview_object(store, put(store, "big.txt", data), "txt", len(data))
    assert preview.truncated and store.read <= PREVIEW_BYTES + 256 * 1024
