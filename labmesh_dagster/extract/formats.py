"""Format detection from a file's name and its first bytes.

Content wins over the name wherever the bytes are unambiguous, because lab
files are routinely misnamed (FASTQ saved as ``.txt``, gzip without ``.gz``);
the name decides only where the bytes cannot (a bzip2 block longer than the
head, a CSV that sniffs as plain text). A compressed file is named
``<inner>.<codec>`` ("fastq.gz", "vcf.gz"), or just the codec ("gz") when what
is inside is unknown; BAM and BCF are BGZF (gzip) by definition and are named
plainly.
"""

from __future__ import annotations

import codecs
import re

from labmesh_dagster.extract import instruments
from labmesh_dagster.extract.compression import decompress_head, sniff_compression, strip_compression_suffix

HEAD_SIZE = 64 * 1024
"""How many leading bytes detection looks at, compressed or inflated."""

FORMAT_BY_SUFFIX: dict[str, str] = {
    ".fastq": "fastq",
    ".fq": "fastq",
    ".fasta": "fasta",
    ".fa": "fasta",
    ".fna": "fasta",
    ".fas": "fasta",
    ".sam": "sam",
    ".bam": "bam",
    ".cram": "cram",
    ".vcf": "vcf",
    ".bcf": "bcf",
    ".csv": "csv",
    ".tsv": "tsv",
    ".xlsx": "xlsx",
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".md": "md",
    ".txt": "text",
    ".pdf": "pdf",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".xml": "xml",
    ".html": "html",
    ".htm": "html",
    ".mzml": "mzml",
    ".xls": "xls",
}

ILLUMINA_RUN_FILES: dict[str, str] = {
    "runinfo.xml": "illumina_runinfo",
    "runparameters.xml": "illumina_runparameters",
}
"""Illumina run folder files, known by name (their XML has no namespace to tell them by)."""

_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"BAM\x01", "bam"),
    (b"BCF\x02", "bcf"),
)

_SEQUENCE_LINE = re.compile(rb"[!-~]*\r?")
"""A sequence line: printable ASCII without spaces (test data and old instruments use digits too)."""
_SAM_HEADER = re.compile(rb"@(HD|SQ|RG|PG|CO)\t")
_XML_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)[\s>/]")
"""The first element name of an XML document (after any declaration, comments and doctype)."""
_SAMPLE_SHEET_START = re.compile(rb"\[(Header|Reads|Settings|Data|BCLConvert_Settings|BCLConvert_Data)\][,\s]")
"""An Illumina sample sheet (v1 or v2) starts with one of its bracketed sections."""
_BGZF_CONTAINERS = frozenset({"bam", "bcf"})
_UNKNOWN = frozenset({"binary", "empty"})


def format_by_suffix(name: str) -> str | None:
    """The format a file name claims, ignoring any compression suffix, or None."""
    base = strip_compression_suffix(name).lower()
    dot = base.rfind(".")
    return FORMAT_BY_SUFFIX.get(base[dot:]) if dot >= 0 else None


def _looks_like_fastq(head: bytes) -> bool:
    """``@`` on line 1, a sequence on line 2, ``+`` on line 3: the shape no other text format has."""
    if not head.startswith(b"@"):
        return False
    lines = head.split(b"\n", 3)
    return len(lines) == 4 and lines[2].startswith(b"+") and _SEQUENCE_LINE.fullmatch(lines[1]) is not None


def _looks_like_fasta(head: bytes) -> bool:
    """``>`` on line 1 and sequence letters on line 2, so a Markdown quote is not taken for FASTA."""
    if not head.startswith(b">"):
        return False
    lines = head.split(b"\n", 2)
    return len(lines) >= 2 and lines[1].strip() != b"" and _SEQUENCE_LINE.fullmatch(lines[1]) is not None


def _looks_like_text(head: bytes) -> bool:
    """UTF-8 without NULs; a character cut in two at the end of the head is allowed."""
    if b"\x00" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _base_name(name: str) -> str:
    return strip_compression_suffix(name).replace("\\", "/").rsplit("/", 1)[-1].lower()


def _xml_root(head: bytes) -> str | None:
    """The root element's local name, skipping the declaration, comments, doctype and a BOM."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not text.startswith(b"<"):
        return None
    position = 0
    while True:
        match = _XML_ROOT.search(text, position)
        if match is None:
            return None
        before = text[match.start() + 1 : match.start() + 2]
        if before not in (b"?", b"!"):
            return match.group(1).decode("ascii", "replace")
        position = match.end()


def _detect_xml(name: str, head: bytes) -> str | None:
    """mzML by its root element; Illumina run files by name; HTML (a tool's report) by its root; any other
    XML as "xml"."""
    root = _xml_root(head)
    if root is None:
        return None
    if root.lower() == "html":
        return "html"
    if root in ("mzML", "indexedmzML"):
        return "mzml"
    run_file = ILLUMINA_RUN_FILES.get(_base_name(name))
    if run_file is not None:
        return run_file
    if root == "RunInfo":
        return "illumina_runinfo"
    if root == "RunParameters":
        return "illumina_runparameters"
    return "xml"


def _detect_plain(name: str, head: bytes) -> str:
    """Detect the format of uncompressed bytes: magic, then text shapes, then the name, then a text sniff."""
    for magic, fmt in _BINARY_MAGIC:
        if head.startswith(magic):
            return fmt
    if head.startswith(b"CRAM") and head[4:5] in (b"\x01", b"\x02", b"\x03", b"\x04"):
        return "cram"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx" if format_by_suffix(name) == "xlsx" else "zip"
    if head.startswith(b"##fileformat=VCF"):
        return "vcf"
    if _looks_like_fastq(head):
        return "fastq"
    if _SAM_HEADER.match(head):
        return "sam"
    if _looks_like_fasta(head):
        return "fasta"
    if _SAMPLE_SHEET_START.match(head.removeprefix(b"\xef\xbb\xbf")):
        return "illumina_samplesheet"
    xml = _detect_xml(name, head)
    if xml is not None:
        return xml
    if instruments.recognise(name, head) is not None:
        return instruments.FORMAT
    claimed = format_by_suffix(name)
    if claimed is not None:
        return claimed
    return "text" if _looks_like_text(head) else "binary"


def _detect_compressed(name: str, head: bytes, codec: str) -> str:
    """Detect the format inside a compressed head, falling back on the name when it cannot be inflated."""
    inner_name = strip_compression_suffix(name)
    inner_head = decompress_head(codec, head, HEAD_SIZE)
    inner = _detect_plain(inner_name, inner_head) if inner_head else format_by_suffix(inner_name)
    if inner in _BGZF_CONTAINERS and codec == "gz":
        return inner
    if inner is None or inner in _UNKNOWN:
        return codec
    return f"{inner}.{codec}"


def detect_format(name: str, head: bytes) -> str:
    """Name the format of a file from its name and its first raw bytes (up to ~64 KiB).

    Returns "empty" for no bytes, a compound such as "fastq.gz" for compressed
    data, a format from the file's magic or shape, the format its suffix
    claims, "text" for other UTF-8, else "binary". A name with a compression
    suffix but no compression magic is taken at its content's word.
    """
    if not head:
        return "empty"
    codec = sniff_compression(head)
    if codec is not None:
        return _detect_compressed(name, head, codec)
    return _detect_plain(name, head)
