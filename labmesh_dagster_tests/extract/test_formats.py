"""Format detection names a file from its first bytes first and its name second.

Pinned here: every suffix labmesh knows maps to its format; content that is
unmistakable (FASTQ in a ``.txt``, gzip without ``.gz``, BAM inside BGZF) beats
the name; the name decides when the bytes cannot (a zstd head with no library
to open it, a corrupt gzip head, a CSV that only sniffs as text); anything
else is "text" when it is UTF-8 without NULs and "binary" otherwise.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import pytest

from labmesh_dagster.extract import detect_format

DATA = Path(__file__).parent.parent / "data" / "dnaio"

FASTQ = b"@read1\nACGTNACGT\n+\nIIIIIIIII\n@read2\nGGCC\n+\n####\n"
FASTA = b">chr1 test\nACGTACGTAC\nGGT\n>chr2\nTTTT\n"
ZSTD_MAGIC_WITH_JUNK = b"\x28\xb5\x2f\xfd" + b"\x00\xff" * 8
"""A zstd frame start whose body no decoder accepts, so only the file name can tell what is inside."""

COMPRESSORS = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("run.fastq", FASTQ, "fastq"),
        ("run.fq", FASTQ, "fastq"),
        ("genome.fasta", FASTA, "fasta"),
        ("genome.fa", FASTA, "fasta"),
        ("genome.fna", FASTA, "fasta"),
        ("genome.fas", FASTA, "fasta"),
        ("aln.sam", b"@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:chr1\tLN:100\n", "sam"),
        ("aln.bam", gzip.compress(b"BAM\x01\x00\x00\x00\x00", mtime=0), "bam"),
        ("aln.cram", b"CRAM\x03\x00" + b"\x00" * 20, "cram"),
        ("calls.vcf", b"##fileformat=VCFv4.2\n#CHROM\tPOS\n", "vcf"),
        ("calls.vcf.gz", gzip.compress(b"##fileformat=VCFv4.2\n#CHROM\tPOS\n", mtime=0), "vcf.gz"),
        ("calls.bcf", gzip.compress(b"BCF\x02\x02\x00\x00", mtime=0), "bcf"),
        ("plate.csv", b"well,od600\nA1,0.42\n", "csv"),
        ("plate.tsv", b"well\tod600\nA1\t0.42\n", "tsv"),
        ("plate.xlsx", b"PK\x03\x04" + b"\x00" * 26, "xlsx"),
        ("run.json", b'{"instrument": "NovaSeq"}\n', "json"),
        ("run.yaml", b"instrument: NovaSeq\n", "yaml"),
        ("run.yml", b"instrument: NovaSeq\n", "yaml"),
        ("README.md", b"# Protocol\n\nSteps.\n", "md"),
        ("notes.txt", b"centrifuged at 4 C\n", "text"),
        ("report.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "pdf"),
        ("gel.tif", b"II*\x00\x08\x00\x00\x00", "tiff"),
        ("gel.tiff", b"MM\x00*\x00\x00\x00\x08", "tiff"),
        ("gel.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "png"),
        ("gel.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "jpeg"),
    ],
)
def test_each_known_suffix_with_matching_content_gets_its_format(name: str, head: bytes, expected: str) -> None:
    assert detect_format(name, head) == expected


@pytest.mark.parametrize("codec", ["gz", "bz2", "xz"])
@pytest.mark.parametrize(
    ("stem", "content", "inner"),
    [
        ("run.fastq", FASTQ, "fastq"),
        ("run.fq", FASTQ, "fastq"),
        ("genome.fa", FASTA, "fasta"),
        ("genome.fas", FASTA, "fasta"),
    ],
)
def test_compressed_sequences_are_named_inner_format_dot_codec(
    stem: str, content: bytes, inner: str, codec: str
) -> None:
    assert detect_format(f"{stem}.{codec}", COMPRESSORS[codec](content)) == f"{inner}.{codec}"


@pytest.mark.parametrize(
    ("name", "expected"), [("run.fastq.zst", "fastq.zst"), ("genome.fna.zst", "fasta.zst"), ("blob.zst", "zst")]
)
def test_a_zstd_head_that_cannot_be_opened_is_named_by_its_suffix(name: str, expected: str) -> None:
    assert detect_format(name, ZSTD_MAGIC_WITH_JUNK) == expected


def test_the_dnaio_sample_files_are_detected_by_content() -> None:
    for name, expected in [
        ("simple.fastq", "fastq"),
        ("simple.fastq.gz", "fastq.gz"),
        ("simple.fastq.bz2", "fastq.bz2"),
        ("simple.fastq.xz", "fastq.xz"),
        ("dos.fastq", "fastq"),
        ("simple.fasta", "fasta"),
    ]:
        assert detect_format("upload.bin", (DATA / name).read_bytes()) == expected, name


def test_a_txt_file_holding_fastq_is_fastq() -> None:
    assert detect_format("reads.txt", FASTQ) == "fastq"


def test_a_crlf_fastq_is_fastq() -> None:
    assert detect_format("reads.txt", FASTQ.replace(b"\n", b"\r\n")) == "fastq"


@pytest.mark.parametrize("name", ["reads", "reads.dat", "reads.txt", "reads.fastq"])
def test_gzip_without_gz_suffix_holding_fastq_is_fastq_gz(name: str) -> None:
    assert detect_format(name, gzip.compress(FASTQ)) == "fastq.gz"


def test_bgzf_whose_payload_is_bam_is_bam_whatever_the_name() -> None:
    assert detect_format("upload.gz", gzip.compress(b"BAM\x01\x10\x00\x00\x00@HD")) == "bam"


def test_a_gzip_head_too_corrupt_to_inflate_is_named_by_its_suffix() -> None:
    broken = gzip.compress(FASTQ)[:10] + b"\xff" * 40
    assert detect_format("aln.bam", broken) == "bam"
    assert detect_format("run.fastq.gz", broken) == "fastq.gz"
    assert detect_format("mystery", broken) == "gz"


def test_a_compressed_csv_keeps_the_name_format_inside() -> None:
    assert detect_format("plate.csv.gz", gzip.compress(b"well,od600\nA1,0.4\n")) == "csv.gz"


def test_a_gz_name_over_plain_content_is_taken_at_the_content_word() -> None:
    assert detect_format("run.fastq.gz", FASTQ) == "fastq"


def test_zip_that_is_not_xlsx_is_zip() -> None:
    assert detect_format("bundle.zip", b"PK\x03\x04" + b"\x00" * 26) == "zip"


def test_unknown_utf8_without_nuls_is_text() -> None:
    assert detect_format("LOG", "Zentrifuge 4 °C, 10 µl\n".encode()) == "text"


def test_a_multibyte_character_cut_by_the_head_boundary_is_still_text() -> None:
    assert detect_format("LOG", "µl ".encode() * 10 + "µ".encode()[:1]) == "text"


def test_bytes_with_nuls_or_invalid_utf8_are_binary() -> None:
    assert detect_format("blob", b"\x00\x01\x02\x03binary") == "binary"
    assert detect_format("blob", b"caf\xe9 latin-1\n") == "binary"


def test_a_markdown_quote_is_not_taken_for_fasta() -> None:
    assert detect_format("notes", b"> a quoted remark\nwith words after it\n") == "text"


def test_a_line_starting_with_at_is_not_taken_for_fastq() -> None:
    assert detect_format("script", b"@echo off\nset X=1\nrem done\n") == "text"


def test_no_bytes_is_empty() -> None:
    assert detect_format("run.fastq", b"") == "empty"
