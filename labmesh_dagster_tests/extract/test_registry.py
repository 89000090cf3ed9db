"""``extract`` turns any file stream into an Extraction and never raises because of what the file holds.

Pinned here: each format family gets its metadata and searchable text,
from the module named for it, imported only when a file of its format comes;
corrupt or undecodable content comes back with ``error`` set, a stable reason
and the facts known before the fault; zero bytes are "empty" without error;
the stream is read once, forwards, without ``seek``, and to its very end (so a
caller hashing through a tee sees every byte); metadata is plain JSON; an
error of the stream itself (not of the file) is not disguised as bad content.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import importlib
import json
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.extract import Extraction, extract, fastq_stats
from labmesh_dagster.extract.registry import EXTRACTOR_MODULES, EXTRACTORS

DATA = Path(__file__).parent.parent / "data" / "dnaio"


class OneWayStream:
    """A stream that can only be read, in short pieces, like a socket: no seek, no tell, no peek."""

    def __init__(self, data: bytes, piece: int = 1000) -> None:
        self._data = data
        self._offset = 0
        self._piece = piece
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        size = self._piece if size < 0 else min(size, self._piece)
        chunk = self._data[self._offset : self._offset + size]
        self._offset += len(chunk)
        self.hash.update(chunk)
        return chunk

    @property
    def exhausted(self) -> bool:
        return self._offset == len(self._data)


class FailingStream(OneWayStream):
    """A stream whose connection drops after some bytes."""

    def __init__(self, data: bytes, fail_after: int) -> None:
        super().__init__(data)
        self._fail_after = fail_after

    def read(self, size: int = -1) -> bytes:
        if self._offset >= self._fail_after:
            raise ConnectionResetError("connection reset by peer")
        return super().read(size)


def extract_bytes(data: bytes, name: str, *, piece: int = 1000, **options: Any) -> Extraction:
    """Extract from a one-way stream, checking the promises every extraction keeps."""
    stream = OneWayStream(data, piece=piece)
    extraction = extract(stream, name, **options)  # type: ignore[arg-type]
    assert stream.exhausted, "extract must read the stream to its end"
    assert stream.hash.hexdigest() == hashlib.sha256(data).hexdigest()
    json.dumps(extraction.metadata)
    assert len(extraction.text) <= 2000
    return extraction


def generated_fastq(reads: int, seed: int = 3) -> bytes:
    rng = random.Random(seed)
    return "".join(
        f"@r{n}\n{''.join(rng.choice('ACGT') for _ in range(80))}\n+\n{'I' * 80}\n" for n in range(reads)
    ).encode("ascii")


def test_a_fastq_gz_from_a_one_way_stream_gets_its_stats_and_a_summary_line() -> None:
    data = (DATA / "simple.fastq.gz").read_bytes()
    extraction = extract_bytes(data, "simple.fastq.gz")
    with (DATA / "simple.fastq").open("rb") as plain:
        expected = fastq_stats(plain, "simple.fastq")
    assert extraction.format == "fastq.gz"
    assert extraction.error is None
    assert {key: extraction.metadata[key] for key in expected} == expected
    assert extraction.metadata["first_read"] == "first_sequence"
    assert extraction.text == "FASTQ reads=2 bases=18 mean_length=9.0 gc_percent=11.11"


def test_a_fastq_larger_than_the_detection_head_is_counted_in_full() -> None:
    data = generated_fastq(2000)
    assert len(data) > 64 * 1024
    extraction = extract_bytes(gzip.compress(data), "lane1.fastq.gz")
    assert extraction.error is None
    assert extraction.metadata["reads"] == 2000


def test_a_fastq_saved_as_txt_is_summarised_as_fastq() -> None:
    extraction = extract_bytes((DATA / "small.fastq").read_bytes(), "reads.txt")
    assert (extraction.format, extraction.metadata["reads"]) == ("fastq", 3)


def test_a_truncated_fastq_gz_is_reported_with_the_reads_read_before_the_cut() -> None:
    compressed = gzip.compress(generated_fastq(3000))
    extraction = extract_bytes(compressed[: len(compressed) // 2], "lane1.fastq.gz")
    assert extraction.format == "fastq.gz"
    assert extraction.error is not None
    assert (extraction.error.reason, extraction.error.name) == ("truncated", "lane1.fastq.gz")
    assert 0 < extraction.metadata["reads_before_error"] < 3000


def test_a_gzip_corrupted_in_its_middle_is_bad_gzip_even_if_the_parser_stumbles_first() -> None:
    corrupted = bytearray(gzip.compress(generated_fastq(3000)))
    middle = len(corrupted) // 2
    corrupted[middle : middle + 8] = bytes(byte ^ 0xFF for byte in corrupted[middle : middle + 8])
    extraction = extract_bytes(bytes(corrupted), "lane1.fastq.gz")
    assert extraction.error is not None and extraction.error.reason == "bad_gzip"


def test_invalid_fastq_is_bad_format() -> None:
    extraction = extract_bytes((DATA / "withplus.fastq").read_bytes(), "withplus.fastq")
    assert extraction.error is not None and extraction.error.reason == "bad_format"
    assert extraction.metadata == {"reads_before_error": 0}


def test_a_fasta_gets_records_total_length_and_gc() -> None:
    extraction = extract_bytes((DATA / "simple.fasta").read_bytes(), "simple.fasta")
    sequences = ["SEQUENCE1", "SEQUENCE2"]
    gc = sum(base in "GCgc" for sequence in sequences for base in sequence)
    assert extraction.format == "fasta"
    assert extraction.metadata == {
        "records": 2,
        "total_length": 18,
        "min_length": 9,
        "max_length": 9,
        "n50": 9,
        "gc_percent": round(100 * gc / 18, 2),
        "n_percent": round(100 * 2 / 18, 4),
        "first_records": ["first_sequence", "second_sequence"],
    }


def test_zero_bytes_are_empty_without_error() -> None:
    assert extract_bytes(b"", "run.fastq") == Extraction(format="empty", metadata={"empty": True})


def test_a_text_file_gets_its_line_count_and_its_first_characters() -> None:
    content = "".join(f"line {n}: Zentrifuge 4 °C\n" for n in range(500)) + "last line without newline"
    extraction = extract_bytes(content.encode(), "notes.txt")
    assert extraction.format == "text"
    assert extraction.metadata == {"lines": 501, "encoding": "utf-8"}
    assert extraction.text == content[:2000]


def test_a_non_utf8_txt_is_not_utf8_with_the_offending_byte() -> None:
    extraction = extract_bytes(b"ok line\ncaf\xe9 au lait\n", "notes.txt")
    assert extraction.format == "text"
    assert extraction.error is not None
    assert extraction.error.reason == "not_utf8"
    assert "byte 11" in extraction.error.detail
    assert extraction.metadata == {"lines_before_error": 1}


def test_markdown_gets_its_title_and_headings_and_yaml_its_shape() -> None:
    assert extract_bytes(b"# Protocol\n\nSpin.\n", "README.md").metadata == {
        "lines": 3,
        "encoding": "utf-8",
        "title": "Protocol",
        "headings": [{"level": 1, "text": "Protocol"}],
    }
    assert extract_bytes(b"instrument: x\n", "run.yaml").metadata == {
        "parsed": True,
        "type": "object",
        "keys": ["instrument"],
        "key_count": 1,
    }


def test_a_csv_gets_its_columns_and_row_count() -> None:
    content = 'well,sample,od600\nA1,"E. coli, K12",0.41\n\nA2,blank,0.02\n'
    extraction = extract_bytes(content.encode(), "plate.csv")
    assert extraction.metadata == {
        "columns": ["well", "sample", "od600"],
        "column_count": 3,
        "rows": 2,
        "encoding": "utf-8",
        "delimiter": ",",
        "sample_column": "sample",
        "ragged_rows": 0,
    }
    assert extraction.samples == ("E. coli, K12", "blank")
    assert extraction.text == content


def test_a_gzipped_tsv_is_read_through_the_compression() -> None:
    extraction = extract_bytes(gzip.compress(b"gene\tcount\nTP53\t12\n"), "counts.tsv.gz")
    assert extraction.format == "tsv.gz"
    assert (extraction.metadata["columns"], extraction.metadata["rows"]) == (["gene", "count"], 1)


def test_a_json_object_gets_its_type_and_keys() -> None:
    extraction = extract_bytes(b'{"instrument": "NovaSeq", "lanes": [1, 2]}', "run.json")
    assert extraction.metadata == {"parsed": True, "type": "object", "keys": ["instrument", "lanes"], "key_count": 2}


def test_a_json_array_gets_its_length() -> None:
    assert extract_bytes(b"[1, 2, 3]", "values.json").metadata == {"parsed": True, "type": "array", "length": 3}


def test_invalid_json_is_bad_format() -> None:
    extraction = extract_bytes(b'{"instrument": ', "run.json")
    assert extraction.error is not None and extraction.error.reason == "bad_format"


def test_json_over_eight_mebibytes_is_not_parsed_but_still_read_to_the_end() -> None:
    big = b'{"values": [' + b"1234567," * (9 * 1024 * 1024 // 8) + b"0]}"
    extraction = extract_bytes(big, "big.json")
    assert extraction.metadata == {"parsed": False}
    assert extraction.error is None


@pytest.mark.parametrize(
    ("name", "data", "expected", "mime"),
    [
        ("blob", b"\x00\x01\x02" * 30000, "binary", "application/octet-stream"),
        ("gel.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "png", "image/png"),
        ("photo.JPG", b"\xff\xd8\xff\xe0" + b"\x00" * 100, "jpeg", "image/jpeg"),
        ("archive.tar", b"\x00ustar" * 50, "binary", "application/x-tar"),
        ("data.bin.gz", gzip.compress(b"\x00\x01" * 100, mtime=0), "gz", "application/gzip"),
    ],
)
def test_formats_without_an_extractor_get_their_format_and_mime_type(
    name: str, data: bytes, expected: str, mime: str
) -> None:
    assert extract_bytes(data, name) == Extraction(format=expected, metadata={"mime_type": mime})


@pytest.mark.parametrize(
    ("name", "compress"),
    [("lane1.fastq", lambda data: data), ("lane1.fastq.gz", gzip.compress), ("lane1.fastq.bz2", bz2.compress)],
)
@pytest.mark.parametrize("fail_after", [10, 70_000])
def test_a_failing_stream_raises_instead_of_being_called_a_corrupt_file(
    name: str, compress: Callable[[bytes], bytes], fail_after: int
) -> None:
    stream = FailingStream(compress(generated_fastq(3000)), fail_after=fail_after)
    with pytest.raises(ConnectionResetError):
        extract(stream, name)  # type: ignore[arg-type]


EXTRACTOR_MODULE_NAMES = sorted(set(EXTRACTOR_MODULES.values()))


@pytest.mark.parametrize("module_name", EXTRACTOR_MODULE_NAMES)
def test_the_registry_names_every_format_an_extractor_module_lists_and_no_other(module_name: str) -> None:
    module = importlib.import_module(f"labmesh_dagster.extract.{module_name}")
    named = {fmt for fmt, owner in EXTRACTOR_MODULES.items() if owner == module_name}
    assert named == set(module.EXTRACTORS)
    assert all(EXTRACTORS[fmt] is module.EXTRACTORS[fmt] for fmt in named)


def test_extracting_a_fastq_imports_no_other_format_s_libraries() -> None:
    """`labmesh extract reads.fastq` starts without the PDF, image or alignment libraries (a fifth of a second)."""
    script = (
        "import io, sys\n"
        "from labmesh_dagster.extract import extract\n"
        "assert extract(io.BytesIO(b'@r\\nACGT\\n+\\nIIII\\n'), 'r.fastq').metadata['reads'] == 1\n"
        "print(sorted(name for name in ('pypdf', 'tifffile', 'pysam', 'markdown_it') if name in sys.modules))\n"
    )
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "[]"
