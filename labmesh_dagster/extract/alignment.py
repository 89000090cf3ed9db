"""Metadata of SAM, BAM and CRAM, read through htslib (pysam) from a stream that cannot seek.

htslib reads only from paths and file descriptors, while the stream here is a
one-way S3 body, so it is fed through the pipe of
:mod:`labmesh_dagster.extract.hts_pipe`. Its watchers see the raw bytes as they
pass (BGZF block boundaries, the end-of-file marker, line numbers), because
pysam calls nearly every fault "truncated file": those observations are what
tell a file that was cut short from one with garbage inside, and give a bad
line its number.

Read counts come from a BAM index stored beside the file when there is one
(``samtools idxstats`` semantics, no scan at all), else from the record flags,
read for at most :data:`SCAN_RECORD_LIMIT` records and within the time budget.
``counts_from`` says which: ``"index"`` (``records``, ``mapped`` and
``unmapped`` only), ``"full_scan"`` (every record seen, exact) or ``"scan"``
(stopped early: the counts cover the first ``records_scanned`` records).
Counts are of records, as samtools counts them: secondary and supplementary
alignments are records too. A CRAM is counted without its reference: only
the flags are decoded, so a CRAM whose reference is not at hand still gets
counts, and htslib never goes looking for a reference (on local paths named
in the file or online).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

import pysam

from labmesh_dagster.core.errors import ExtractionError
from labmesh_dagster.extract.base import Extractor, FileContext, Summary, spooled, unique_samples
from labmesh_dagster.extract.compression import chain_head, read_head
from labmesh_dagster.extract.hts_pipe import (
    BgzfBlocks,
    HtsPipe,
    Tail,
    TextLines,
    Watcher,
    checked_start,
    close_quietly,
    quiet_htslib,
    shortened,
)

SCAN_RECORD_LIMIT = 10_000_000
"""Most alignment records read to count flags when no index spares the scan (a few seconds of htslib)."""

SCAN_BATCH = 100_000
"""Records read between two looks at the clock."""

LISTED_REFERENCES = 50
LISTED_READ_GROUPS = 100
LISTED_PROGRAMS = 20
COMMAND_LINE_CHARS = 200

CRAM_EOF: dict[int, bytes] = {
    2: bytes.fromhex("0b000000ffffffffffe0454f460000000001000001000606010001000100"),
    3: bytes.fromhex("0f000000ffffffff0fe0454f4600000000010005bdd94f0001000606010001000100ee63014b"),
}
"""The end-of-file container of CRAM 2.1 and 3.x, by major version (CRAM specification, 9)."""

_BAM_MAGIC = b"BAM\x01"
_CRAM_REQUIRED_FIELDS = 0x2 | 0x4
"""SAM_FLAG | SAM_RNAME: all a count needs, and no CRAM data series that would need the reference."""

_FLAG_UNMAPPED = 0x4
_FLAG_SECONDARY = 0x100
_FLAG_QC_FAIL = 0x200
_FLAG_DUPLICATE = 0x400
_FLAG_SUPPLEMENTARY = 0x800

_READ_GROUP_TAGS = {
    "ID": "id",
    "SM": "sample",
    "PL": "platform",
    "PM": "platform_model",
    "LB": "library",
    "PU": "platform_unit",
    "CN": "center",
    "DT": "date",
    "DS": "description",
}
_PROGRAM_TAGS = {"ID": "id", "PN": "name", "VN": "version", "CL": "command_line"}


@dataclass
class FlagTally:
    """Counts of alignment records by flag, fed a batch at a time; partial counts survive a read fault."""

    flags: Counter[int] = field(default_factory=Counter)

    @property
    def scanned(self) -> int:
        return sum(self.flags.values())

    def add(self, segments: Iterator[pysam.AlignedSegment], limit: int) -> int:
        """Count up to ``limit`` more records; return how many there were."""
        before = self.scanned
        self.flags.update(segment.flag for segment in islice(segments, limit))
        return self.scanned - before

    def counts(self) -> dict[str, int]:
        def having(bit: int) -> int:
            return sum(count for flag, count in self.flags.items() if flag & bit)

        unmapped = having(_FLAG_UNMAPPED)
        return {
            "records": self.scanned,
            "mapped": self.scanned - unmapped,
            "unmapped": unmapped,
            "secondary": having(_FLAG_SECONDARY),
            "supplementary": having(_FLAG_SUPPLEMENTARY),
            "duplicates": having(_FLAG_DUPLICATE),
            "qc_fail": having(_FLAG_QC_FAIL),
        }


@dataclass(frozen=True)
class _Layout:
    """What one alignment format looks like on the wire."""

    label: str
    bgzf: bool = False
    lines: bool = False
    cram: bool = False


def _header_metadata(handle: pysam.AlignmentFile, layout: _Layout) -> dict[str, Any]:
    """Header facts: read groups, samples, platforms, references, programs, sort order, versions."""
    header = handle.header.to_dict()
    hd = header.get("HD") or {}
    read_groups = [
        {name: str(group[tag]) for tag, name in _READ_GROUP_TAGS.items() if tag in group}
        for group in header.get("RG") or []
    ]
    programs = [
        {name: str(program[tag]) for tag, name in _PROGRAM_TAGS.items() if tag in program}
        for program in header.get("PG") or []
    ]
    for program in programs:
        if "command_line" in program:
            program["command_line"] = shortened(program["command_line"], COMMAND_LINE_CHARS)
    references = list(handle.references)
    assemblies = unique_samples([sq.get("AS") for sq in header.get("SQ") or []])
    return {
        "sam_version": hd.get("VN"),
        "cram_version": ".".join(map(str, handle.version)) if layout.cram else None,
        "sort_order": hd.get("SO"),
        "read_group_count": len(read_groups),
        "read_groups": read_groups[:LISTED_READ_GROUPS],
        "samples": list(unique_samples([group.get("sample") for group in read_groups])),
        "platforms": list(unique_samples([group.get("platform") for group in read_groups])),
        "reference_count": len(references),
        "references": references[:LISTED_REFERENCES],
        "reference_total_length": sum(handle.lengths),
        "assemblies": list(assemblies),
        "program_count": len(programs),
        "programs": programs[:LISTED_PROGRAMS],
    }


def _index_names(name: str, layout: _Layout) -> list[str]:
    """Where samtools would look for this file's index, beside it."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, suffix = base.rpartition(".")
    if layout.cram:
        return [f"{base}.crai"] + ([f"{stem}.crai"] if dot and suffix.lower() == "cram" else [])
    return [f"{base}.bai"] + ([f"{stem}.bai"] if dot and suffix.lower() == "bam" else []) + [f"{base}.csi"]


def _open_sibling(ctx: FileContext, name: str) -> tuple[BinaryIO | None, str | None]:
    """Open a sibling file; an index that cannot be fetched only costs a scan, so its error becomes a note."""
    try:
        return ctx.open_sibling(name), None
    except Exception as exc:  # the index is an optional shortcut: any failure to get it means "scan instead"
        return None, f"index {name} could not be opened ({type(exc).__name__}: {exc}); counted by scanning"


def _index_stats(ctx: FileContext, sibling: BinaryIO, name: str, header: pysam.AlignmentHeader) -> tuple[int, int]:
    """Mapped and unmapped counts from a BAI or CSI index, against this file's own header.

    The data stream is already open in htslib and cannot be reopened, so the
    index is loaded beside a header-only copy of the BAM written to a
    temporary folder: a corrupt index then fails alone, and the stream is
    still there to be scanned.
    """
    suffix = ".csi" if name.lower().endswith(".csi") else ".bai"
    with (
        contextlib.closing(sibling),
        spooled(sibling, ctx, suffix) as index_path,
        tempfile.TemporaryDirectory(prefix="labmesh-bam-index-") as folder,
    ):
        header_only = str(Path(folder) / "header.bam")
        with pysam.AlignmentFile(header_only, "wb", header=header):
            pass
        with pysam.AlignmentFile(header_only, "rb", index_filename=str(index_path)) as indexed:
            return int(indexed.mapped), int(indexed.unmapped)


def _find_index(
    ctx: FileContext, layout: _Layout, header: pysam.AlignmentHeader
) -> tuple[str | None, tuple[int, int] | None, str | None]:
    """The index beside the file (name, its counts if usable, a note on why not)."""
    note = None
    for name in _index_names(ctx.name, layout):
        sibling, note = _open_sibling(ctx, name)
        if sibling is None:
            if note:
                return None, None, note
            continue
        if layout.cram:
            sibling.close()
            return name, None, "a CRAM index holds no read counts; counted from the record flags (no reference needed)"
        try:
            return name, _index_stats(ctx, sibling, name, header), None
        except (OSError, ValueError, ExtractionError) as exc:
            return name, None, f"index {name} is unreadable ({exc}); counted by scanning"
    return None, None, note


def _scan(segments: Iterator[pysam.AlignedSegment], tally: FlagTally, ctx: FileContext) -> str:
    """Count records until the end, the record limit or the deadline; return ``counts_from``."""
    limit = max(1, SCAN_RECORD_LIMIT)
    while True:
        wanted = min(SCAN_BATCH, limit - tally.scanned)
        if tally.add(segments, wanted) < wanted:
            return "full_scan"
        if tally.scanned >= limit:
            if next(segments, None) is None:
                return "full_scan"
            ctx.stop_early("scan_limit")
            return "scan"
        if ctx.deadline.expired():
            ctx.stop_early("time_budget")
            return "scan"


@dataclass
class _Watch:
    """What the pipe's watchers learnt about one file's raw bytes."""

    layout: _Layout
    blocks: BgzfBlocks | None = None
    tail: Tail | None = None
    lines: TextLines | None = None
    cram_major: int | None = None

    def watchers(self) -> list[Watcher]:
        return [watcher for watcher in (self.blocks, self.tail, self.lines) if watcher is not None]

    def has_end_marker(self) -> bool:
        """Whether this file's format version ends with a marker that the watchers can check."""
        return self.blocks is not None or (self.tail is not None and self.cram_major in CRAM_EOF)

    def end_problem(self) -> str | None:
        """Why the bytes seen end unlike a complete file, or None when they end well (or there is no marker)."""
        if self.blocks is not None:
            if not self.blocks.ended_on_boundary:
                return "the BGZF data ends inside a block"
            if not self.blocks.ends_with_eof_block:
                return "the BGZF data ends without its end-of-file block (cut at a block boundary)"
        marker = CRAM_EOF.get(self.cram_major or 0) if self.tail is not None else None
        if marker is not None and self.tail is not None and not self.tail.data.endswith(marker):
            return "the CRAM data ends without its end-of-file container"
        return None


def _fault(
    ctx: FileContext, pipe: HtsPipe, watch: _Watch, exc: Exception, records_before: int | None
) -> ExtractionError:
    """Turn pysam's word for a read fault (almost always "truncated file") into the real reason.

    The writer first reads the rest of the stream, so that the watchers have
    seen how the file ends; an error of the stream itself is raised instead.
    """
    pipe.close(read_rest=True)
    where = "in the header" if records_before is None else f"after {records_before} records"
    if records_before is not None:
        ctx.partial["records_before_error"] = records_before
    if watch.blocks is not None and watch.blocks.invalid_at is not None:
        return ctx.error("bad_format", f"bytes at offset {watch.blocks.invalid_at} are not a BGZF block ({where})")
    if watch.lines is not None:
        line = watch.lines.line_of_record(records_before or 0)
        if records_before is None:
            return ctx.error("bad_format", f"not a valid {watch.layout.label} header ({pipe.message(exc, ctx.name)})")
        if pipe.reached_end and watch.lines.is_cut_last_line(line):
            return ctx.error("truncated", f"line {line}, the last, is cut short ({where})")
        return ctx.error("bad_format", f"line {line} is not a valid {watch.layout.label} record ({where})")
    problem = watch.end_problem() if pipe.reached_end else None
    if problem is not None:
        return ctx.error("truncated", f"{problem} ({where})")
    if not pipe.reached_end:
        return ctx.error("bad_format", f"{watch.layout.label} could not be read {where}: {pipe.message(exc, ctx.name)}")
    return ctx.error("bad_format", f"{watch.layout.label} could not be decoded {where}: {pipe.message(exc, ctx.name)}")


def _summary_text(layout: _Layout, metadata: dict[str, Any]) -> str:
    parts = [layout.label]
    if metadata["sort_order"]:
        parts.append(f"sorted by {metadata['sort_order']}")
    if metadata["samples"]:
        parts.append("samples: " + ", ".join(metadata["samples"][:20]))
    if metadata["platforms"]:
        parts.append("platforms: " + ", ".join(metadata["platforms"]))
    if metadata["reference_count"]:
        listed = ", ".join(metadata["references"][:10])
        more = ", ..." if metadata["reference_count"] > 10 else ""
        parts.append(f"references: {metadata['reference_count']} ({listed}{more})")
    if metadata["assemblies"]:
        parts.append("assemblies: " + ", ".join(metadata["assemblies"]))
    programs = [" ".join(filter(None, (p.get("name") or p.get("id"), p.get("version")))) for p in metadata["programs"]]
    if programs:
        parts.append("programs: " + ", ".join(programs))
    if metadata["records"] is not None:
        exact = "" if metadata["counts_from"] in ("index", "full_scan") else " (first records only)"
        parts.append(f"records={metadata['records']} mapped={metadata['mapped']}{exact}")
    return "; ".join(parts)


def _counts_metadata(
    counts_from: str | None, counts: Mapping[str, int], scanned: int | None, index: str | None, note: str | None
) -> dict[str, Any]:
    keys = ("records", "mapped", "unmapped", "secondary", "supplementary", "duplicates", "qc_fail")
    return {
        "counts_from": counts_from,
        **{key: counts.get(key) for key in keys},
        "records_scanned": scanned,
        "index": index,
        "counts_note": note,
    }


def _read_alignments(
    handle: pysam.AlignmentFile, ctx: FileContext, layout: _Layout, pipe: HtsPipe, watch: _Watch
) -> dict[str, Any]:
    """Header facts and counts from an open file; faults in the records are classified by ``_fault``."""
    metadata = _header_metadata(handle, layout)
    ctx.partial.update(metadata)
    index, index_counts, note = _find_index(ctx, layout, handle.header) if not layout.lines else (None, None, None)
    tally = FlagTally()
    segments = handle.fetch(until_eof=True)
    try:
        if index_counts is not None:
            mapped, unmapped = index_counts
            first = next(segments, None)
            if (first is None) == (mapped + unmapped == 0):
                counts = {"records": mapped + unmapped, "mapped": mapped, "unmapped": unmapped}
                return metadata | _counts_metadata("index", counts, None, index, None)
            note = f"index {index} does not match the file (it counts {mapped + unmapped} records); counted by scanning"
            if first is not None:
                tally.flags[first.flag] += 1
        counts_from = _scan(segments, tally, ctx)
    except (OSError, ValueError) as exc:
        raise _fault(ctx, pipe, watch, exc, tally.scanned) from exc
    return metadata | _counts_metadata(counts_from, tally.counts(), tally.scanned, index, note)


def _extract(stream: BinaryIO, ctx: FileContext, layout: _Layout) -> Summary:
    watch = _Watch(layout)
    if layout.bgzf:
        stream, compressed = checked_start(stream, ctx, _BAM_MAGIC, layout.label)
        watch.blocks = BgzfBlocks() if compressed else None
    if layout.cram:
        # The file definition's fifth byte is the major version, which says what end-of-file container to expect.
        head = read_head(stream, 6)
        stream = io.BufferedReader(chain_head(head, stream))  # type: ignore[arg-type]
        watch.cram_major = head[4] if len(head) > 4 else None
        watch.tail = Tail(max(map(len, CRAM_EOF.values())))
    if layout.lines:
        watch.lines = TextLines(b"@")
    options = [f"required_fields={_CRAM_REQUIRED_FIELDS}"] if layout.cram else None
    with quiet_htslib(), HtsPipe(stream, watch.watchers(), ctx.deadline) as pipe:
        try:
            handle = pysam.AlignmentFile(pipe.path, "r", check_sq=False, format_options=options)
        except (OSError, ValueError, NotImplementedError) as exc:
            raise _fault(ctx, pipe, watch, exc, None) from exc
        try:
            if handle.format != layout.label:
                raise ctx.error("bad_magic", f"htslib reads this as {handle.format}, not {layout.label}")
            metadata = _read_alignments(handle, ctx, layout, pipe, watch)
        finally:
            close_quietly(handle)
        pipe.close(read_rest=True)
    metadata["eof_checked"] = _check_end(ctx, pipe, watch, metadata)
    text = _summary_text(layout, metadata)
    return Summary(metadata=metadata, text=text, samples=tuple(metadata["samples"]))


def _check_end(ctx: FileContext, pipe: HtsPipe, watch: _Watch, metadata: dict[str, Any]) -> bool | None:
    """Whether the file was seen to its end-of-file marker; a missing one means the file was cut short.

    None for SAM (text has no marker); False when the time budget ran out
    before the end was reached.
    """
    if watch.lines is not None:
        return None
    if not pipe.reached_end:
        return False
    if watch.blocks is not None and watch.blocks.invalid_at is not None:
        ctx.partial["records_before_error"] = metadata["records_scanned"]
        raise ctx.error("bad_format", f"bytes at offset {watch.blocks.invalid_at} are not a BGZF block")
    problem = watch.end_problem()
    if problem is not None:
        if metadata["records_scanned"] is not None:
            ctx.partial["records_before_error"] = metadata["records_scanned"]
        raise ctx.error("truncated", problem)
    return watch.has_end_marker()


def extract_sam(stream: BinaryIO, ctx: FileContext) -> Summary:
    """SAM text (also a ``.sam.gz``, which arrives inflated)."""
    return _extract(stream, ctx, _Layout("SAM", lines=True))


def extract_bam(stream: BinaryIO, ctx: FileContext) -> Summary:
    """BAM as stored: BGZF blocks, read raw so that their end-of-file marker can be checked."""
    return _extract(stream, ctx, _Layout("BAM", bgzf=True))


def extract_cram(stream: BinaryIO, ctx: FileContext) -> Summary:
    """CRAM, counted from its record flags without its reference."""
    return _extract(stream, ctx, _Layout("CRAM", cram=True))


EXTRACTORS: dict[str, Extractor] = {"sam": extract_sam, "bam": extract_bam, "cram": extract_cram}
