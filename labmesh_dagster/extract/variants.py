"""Metadata of VCF and BCF, read through htslib (pysam) from a stream that cannot seek.

The header says most of what a catalog wants (samples, contigs, reference,
the callers that made the file); the records are only counted, all of them,
because "how many variants" is the one fact of the body people search by. The
count stops at the time budget and then says so (``counts_from: "scan"``).

htslib is fed through the same pipe as alignments (see
:mod:`labmesh_dagster.extract.hts_pipe`), whose watchers number the lines of a
VCF (a bad record is reported with its line) and follow the BGZF blocks of a
BCF (a cut file is told from a corrupt one). A VCF arrives already inflated,
even from a ``.vcf.gz``; a BCF arrives as stored.
"""

from __future__ import annotations

import re
from typing import Any, BinaryIO

import pysam

from labmesh_dagster.core.errors import ExtractionError
from labmesh_dagster.extract.base import Extractor, FileContext, Summary, unique_samples
from labmesh_dagster.extract.hts_pipe import (
    BgzfBlocks,
    HtsPipe,
    TextLines,
    Watcher,
    checked_start,
    close_quietly,
    quiet_htslib,
    shortened,
)

COUNT_BATCH = 100_000
"""Records counted between two looks at the clock."""

LISTED_CONTIGS = 50
LISTED_IDS = 200
CALLER_CHARS = 120

_BCF_MAGIC = b"BCF\x02"
_VERSION_KEY = re.compile(r"^(?P<tool>.+?)_?[Vv]ersion$")
"""Header keys that carry a tool's version: ``bcftools_callVersion``, ``DeepVariant_version``, ``source_version``."""


def _callers(header: pysam.VariantHeader) -> list[str]:
    """The programs that made or touched the file, as their header lines name them.

    ``##source=`` (most callers), ``##<tool>Version=`` (bcftools, samtools),
    ``##<tool>_version=`` (DeepVariant; Strelka's ``source_version`` goes with
    its ``source``) and ``##<X>CommandLine=<ID=..,Version=..>`` (GATK,
    DRAGEN), in header order.
    """
    found: list[str] = []
    source_at = source_version = None
    for record in header.records:
        key = record.key or ""
        if record.type == "GENERIC" and record.value is not None:
            version = _VERSION_KEY.match(key)
            if key == "source":
                source_at = len(found) if source_at is None else source_at
                found.append(record.value)
            elif key == "source_version":
                source_version = record.value
            elif version is not None:
                found.append(f"{version.group('tool')} {record.value}")
        elif key.split(".", 1)[0].endswith("CommandLine"):
            tool = record.get("ID") or key.partition(".")[2] or key
            vendor = "GATK " if key.startswith("GATK") else ""
            found.append(" ".join(filter(None, (f"{vendor}{tool}", (record.get("Version") or "").strip('"')))))
    if source_at is not None and source_version is not None:
        found[source_at] = f"{found[source_at]} {source_version}"
    return list(dict.fromkeys(shortened(name, CALLER_CHARS) for name in found if name.strip()))


def _generic(header: pysam.VariantHeader, key: str) -> str | None:
    """The value of the first ``##key=value`` line, if any."""
    for record in header.records:
        if record.type == "GENERIC" and record.key == key:
            return str(record.value)
    return None


def _header_metadata(header: pysam.VariantHeader) -> dict[str, Any]:
    """Samples, contigs, reference, callers, version and the INFO/FORMAT/FILTER ids the header declares."""
    samples = list(header.samples)
    contigs = list(header.contigs.items())
    lengths = [contig.length for _name, contig in contigs if contig.length is not None]
    return {
        "fileformat": header.version,
        "file_date": _generic(header, "fileDate"),
        "sample_count": len(samples),
        "samples": list(unique_samples(tuple(samples))),
        "contig_count": len(contigs),
        "contigs": [name for name, _contig in contigs[:LISTED_CONTIGS]],
        "contig_total_length": sum(lengths) if lengths else None,
        "reference": _generic(header, "reference"),
        "callers": _callers(header),
        "info_ids": list(header.info)[:LISTED_IDS],
        "format_ids": list(header.formats)[:LISTED_IDS],
        "filter_ids": list(header.filters)[:LISTED_IDS],
    }


def _count(handle: pysam.VariantFile, ctx: FileContext) -> tuple[int, str, Exception | None]:
    """Count records to the end or the deadline: (records, counts_from, the read fault that stopped it)."""
    records = 0
    iterator = iter(handle)
    try:
        while True:
            batch_end = records + COUNT_BATCH
            for _record in iterator:
                records += 1
                if records >= batch_end:
                    break
            else:
                return records, "full_scan", None
            if ctx.deadline.expired():
                ctx.stop_early("time_budget")
                return records, "scan", None
    except (OSError, ValueError) as exc:
        return records, "scan", exc


def _fault(
    ctx: FileContext,
    pipe: HtsPipe,
    label: str,
    blocks: BgzfBlocks | None,
    lines: TextLines | None,
    exc: Exception,
    records: int | None,
) -> ExtractionError:
    """Name the real reason behind pysam's fault, once the watchers have seen how the file ends."""
    pipe.close(read_rest=True)
    where = "in the header" if records is None else f"after {records} records"
    if records is not None:
        ctx.partial["records_before_error"] = records
    if blocks is not None and blocks.invalid_at is not None:
        return ctx.error("bad_format", f"bytes at offset {blocks.invalid_at} are not a BGZF block ({where})")
    if lines is not None:
        if records is None:
            return ctx.error("bad_format", f"not a valid VCF header ({pipe.message(exc, ctx.name)})")
        line = lines.line_of_record(records)
        if pipe.reached_end and lines.is_cut_last_line(line):
            return ctx.error("truncated", f"line {line}, the last, is cut short ({where})")
        return ctx.error(
            "bad_format", f"line {line} is not a valid VCF record ({where}): {pipe.message(exc, ctx.name)}"
        )
    if blocks is not None and pipe.reached_end and not blocks.ends_with_eof_block:
        cut = "inside a block" if not blocks.ended_on_boundary else "without its end-of-file block"
        return ctx.error("truncated", f"the BGZF data ends {cut} ({where})")
    return ctx.error("bad_format", f"{label} could not be read {where}: {pipe.message(exc, ctx.name)}")


def _summary_text(label: str, metadata: dict[str, Any]) -> str:
    parts = [f"{label} {metadata['fileformat']}"]
    if metadata["samples"]:
        more = ", ..." if metadata["sample_count"] > 20 else ""
        parts.append(f"samples ({metadata['sample_count']}): " + ", ".join(metadata["samples"][:20]) + more)
    if metadata["reference"]:
        parts.append(f"reference: {metadata['reference']}")
    if metadata["contig_count"]:
        more = ", ..." if metadata["contig_count"] > 10 else ""
        parts.append(f"contigs: {metadata['contig_count']} (" + ", ".join(metadata["contigs"][:10]) + more + ")")
    if metadata["callers"]:
        parts.append("callers: " + ", ".join(metadata["callers"]))
    exact = "" if metadata["counts_from"] == "full_scan" else " (counted until the time budget ran out)"
    parts.append(f"records={metadata['records']}{exact}")
    return "; ".join(parts)


def _extract(stream: BinaryIO, ctx: FileContext, label: str) -> Summary:
    blocks = lines = None
    if label == "BCF":
        stream, compressed = checked_start(stream, ctx, _BCF_MAGIC, label)
        blocks = BgzfBlocks() if compressed else None
    else:
        lines = TextLines(b"#")
    watchers: list[Watcher] = [watcher for watcher in (blocks, lines) if watcher is not None]
    with quiet_htslib(), HtsPipe(stream, watchers, ctx.deadline) as pipe:
        try:
            handle = pysam.VariantFile(pipe.path, "r")
        except (OSError, ValueError) as exc:
            raise _fault(ctx, pipe, label, blocks, lines, exc, None) from exc
        try:
            if handle.format != label:
                raise ctx.error("bad_magic", f"htslib reads this as {handle.format}, not {label}")
            metadata = _header_metadata(handle.header)
            ctx.partial.update(metadata)
            records, counts_from, fault = _count(handle, ctx)
            if fault is not None:
                raise _fault(ctx, pipe, label, blocks, lines, fault, records)
        finally:
            close_quietly(handle)
        pipe.close(read_rest=True)
    metadata |= {"counts_from": counts_from, "records": records, "eof_checked": None}
    if blocks is not None:
        metadata["eof_checked"] = _check_bgzf_end(ctx, pipe, blocks, records)
    return Summary(metadata=metadata, text=_summary_text(label, metadata), samples=tuple(metadata["samples"]))


def _check_bgzf_end(ctx: FileContext, pipe: HtsPipe, blocks: BgzfBlocks, records: int) -> bool:
    """True when the BCF was seen to its end-of-file block; a BCF that ends any other way is cut or corrupt."""
    if not pipe.reached_end:
        return False
    if blocks.invalid_at is not None or not blocks.ends_with_eof_block:
        ctx.partial["records_before_error"] = records
        if blocks.invalid_at is not None:
            raise ctx.error("bad_format", f"bytes at offset {blocks.invalid_at} are not a BGZF block")
        raise ctx.error("truncated", "the BGZF data ends without its end-of-file block (cut at a block boundary)")
    return True


def extract_vcf(stream: BinaryIO, ctx: FileContext) -> Summary:
    """VCF text, also from a ``.vcf.gz`` (it arrives inflated)."""
    return _extract(stream, ctx, "VCF")


def extract_bcf(stream: BinaryIO, ctx: FileContext) -> Summary:
    """BCF as stored, BGZF blocks and all."""
    return _extract(stream, ctx, "BCF")


EXTRACTORS: dict[str, Extractor] = {"vcf": extract_vcf, "bcf": extract_bcf}
