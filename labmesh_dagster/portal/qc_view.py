"""What QC measured on each FASTQ file, as the QC page and a FASTQ's file page show it.

Two kinds of QC report are read from the experiment's processed dataset, each
mapped to the raw FASTQ it measured through the manifest's ``derived_from``
(the invocation's inputs, in order: a pair's read 1, then its read 2):

- fastp's JSON report (``processed/<exp>/fastp/<folder>/<name>.fastp.json``,
  or any JSON that pipeline ``fastp`` made), one per file or per pair. Each
  mate is a row of its own, from ``read1_before_filtering`` and
  ``read2_before_filtering``: reads (``total_reads``), % of bases at Q30 or
  better (``q30_bases / total_bases``; for one file it equals the summary's
  ``q30_rate``) and the per-position curve (``quality_curves.mean``). fastp
  reports no mean quality, so it is the curve's mean: exact when every read has
  the same length, as an untrimmed Illumina run's do. fastp exits 0 on a file
  it read no reads from, so a report whose ``summary.before_filtering.total_reads``
  (or its mate's) is 0 shows as failed, as `labmesh_dagster.steps.qc_verdicts` judges it.
- labmesh's own QC document (``*.qc.json`` in any folder: where fastp's
  fallback, pipeline ``fastq-qc``, writes it, or ``qc/`` where the QC pipeline
  before it did), recognised by the document's own ``pipeline`` name.

A file measured by both (fastp installed after the fallback ran) shows fastp's
row. The QC page reads every report of the dataset; a FASTQ's page reads only
those derived from that file, found through the manifest rather than by
listing the store. The experiment's access is checked by the caller before.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from markupsafe import Markup

from labmesh_dagster.connectors.catalog.base import Catalog
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.errors import ObjectNotFound
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import ManifestEntry
from labmesh_dagster.pipelines.fastq_qc_file import PIPELINE as LABMESH_QC
from labmesh_dagster.portal.charts import line_chart
from labmesh_dagster.portal.reports import view_href

FASTP = "fastp"
FASTQ_QC = "fastq-qc"
FASTP_SUFFIX = ".fastp.json"
QC_SUFFIX = ".qc.json"
MATES = ("read1_before_filtering", "read2_before_filtering")
MEASURED_BY = {FASTP: "fastp", FASTQ_QC: "labmesh's FASTQ QC (fastp's fallback)"}
NO_READS = "fastp read no reads from it (empty, or not FASTQ it could read)"
MAX_PHRED = 42
"""The quality axis' top: Illumina's highest quality score, so plots of different files compare."""


def qc_kind(entry: ManifestEntry) -> str | None:
    """``fastp`` or ``fastq-qc`` when the entry is a QC report this page reads, else None (by name and maker)."""
    name = ObjectKey.parse(entry.key).name
    made_by = entry.produced_by.pipeline if entry.produced_by else None
    if name.endswith(FASTP_SUFFIX) or (made_by == FASTP and name.endswith(".json")):
        return FASTP
    if name.endswith(QC_SUFFIX):
        return FASTQ_QC
    return None


def is_qc_document(entry: ManifestEntry) -> bool:
    return qc_kind(entry) is not None


def _read(store: ObjectStore, entry: ManifestEntry) -> dict[str, Any] | None:
    try:
        document = json.loads(store.read_bytes(ObjectKey.parse(entry.key)))
    except (ObjectNotFound, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _row(entry: ManifestEntry, kind: str, source: str, fallback_name: str, keys: Collection[str]) -> dict[str, Any]:
    """A row's naming part: the raw file it measured, the report, and what made it."""
    report = entry.key.removesuffix(".json") + ".html"
    return {
        "name": source.rsplit("/", 1)[-1] or fallback_name,
        "input": source,
        "document": entry.key,
        "pipeline": entry.produced_by.pipeline if entry.produced_by else kind,
        "measured_by": MEASURED_BY[kind],
        "report": view_href(report) if report in keys else None,
    }


def _fastp_rows(entry: ManifestEntry, document: dict[str, Any], keys: Collection[str]) -> list[dict[str, Any]]:
    summary = (document.get("summary") or {}).get("before_filtering")
    if not isinstance(summary, dict) or "total_reads" not in summary:
        return []  # not fastp's report, or not one this page understands
    stem = ObjectKey.parse(entry.key).name.removesuffix(FASTP_SUFFIX)
    sources: Sequence[str] = entry.derived_from or ("",)
    rows = []
    for mate, source in zip(MATES, sources, strict=False):
        section = document.get(mate)
        if not isinstance(section, dict):
            continue
        reads, bases = section.get("total_reads"), section.get("total_bases")
        curve = [float(value) for value in (section.get("quality_curves") or {}).get("mean") or []]
        failed = not summary["total_reads"] or not reads
        rows.append(
            {
                **_row(entry, FASTP, source, stem, keys),
                "status": "failed" if failed else "ok",
                "reason": NO_READS if failed else None,
                "reads": reads,
                "mean_quality": round(sum(curve) / len(curve), 2) if curve else None,
                "q30_percent": round(100 * section.get("q30_bases", 0) / bases, 2) if bases else None,
                "per_position_mean_quality": curve,
            }
        )
    return rows


def _labmesh_rows(entry: ManifestEntry, document: dict[str, Any], keys: Collection[str]) -> list[dict[str, Any]]:
    if document.get("pipeline") != LABMESH_QC:
        return []  # some other tool's *.qc.json
    stats = document.get("stats") or {}
    error = document.get("error") or {}
    # The QC pipeline before fastp named its input's key; the fallback command only knows a local path's name.
    source = entry.derived_from[0] if entry.derived_from else str(document.get("input") or "")
    return [
        {
            **_row(entry, FASTQ_QC, source, ObjectKey.parse(entry.key).name, keys),
            "status": document.get("status"),
            "reason": f"{error.get('reason', 'failed')}: {error.get('detail', '')}".rstrip(": ") if error else None,
            "reads": stats.get("reads"),
            "mean_quality": stats.get("mean_quality"),
            "q30_percent": stats.get("q30_percent"),
            "per_position_mean_quality": [
                float(value) for value in document.get("per_position_mean_quality") or [] if value is not None
            ],
        }
    ]


def qc_rows(store: ObjectStore, entry: ManifestEntry, keys: Collection[str] = ()) -> list[dict[str, Any]]:
    """The rows of one QC report, one per FASTQ file it measured (two for a fastp pair); none when it is
    gone, is not JSON or is not a report this page reads (the page skips it). ``keys`` are the dataset's
    keys, to link fastp's HTML report beside its JSON."""
    kind = qc_kind(entry)
    document = _read(store, entry) if kind else None
    if document is None:
        return []
    return _fastp_rows(entry, document, keys) if kind == FASTP else _labmesh_rows(entry, document, keys)


def qc_row(store: ObjectStore, entry: ManifestEntry) -> dict[str, Any] | None:
    """The first row of `qc_rows` (a pair's read 1), or None: for callers that take one row per report."""
    return next(iter(qc_rows(store, entry)), None)


def _preferred(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """fastp's rows, and the fallback's only for files fastp has not measured; by input key, mates in order."""
    fastp = MEASURED_BY[FASTP]
    by_fastp = {row["input"] for row in rows if row["measured_by"] == fastp and row["input"]}
    kept = [row for row in rows if row["measured_by"] == fastp or row["input"] not in by_fastp]
    return sorted(kept, key=lambda row: (row["input"], row["document"]))


def experiment_qc(catalog: Catalog, store: ObjectStore, experiment_id: str) -> list[dict[str, Any]]:
    """Every QC report of the experiment's processed dataset, one row per FASTQ file."""
    dataset = catalog.get_dataset(experiment_id, Zone.PROCESSED)
    files = dataset.files if dataset else ()
    keys = {entry.key for entry in files}
    return _preferred([row for entry in files if is_qc_document(entry) for row in qc_rows(store, entry, keys)])


def file_qc(catalog: Catalog, store: ObjectStore, experiment_id: str, file_key: str) -> dict[str, Any] | None:
    """The QC of one raw file: its row of the processed dataset's reports derived from it, if QC has run on it."""
    dataset = catalog.get_dataset(experiment_id, Zone.PROCESSED)
    files = dataset.files if dataset else ()
    keys = {entry.key for entry in files}
    rows = [
        row
        for entry in files
        if file_key in entry.derived_from and is_qc_document(entry)
        for row in qc_rows(store, entry, keys)
        if row["input"] == file_key
    ]
    return next(iter(_preferred(rows)), None)


def quality_chart(rows: list[dict[str, Any]]) -> Markup:
    """Mean quality by position, one line per file, on the same scale whichever page draws it."""
    return line_chart(
        "Mean quality by position",
        [(row["name"], row["per_position_mean_quality"]) for row in rows],
        x_label="position in the read",
        y_label="mean Phred quality",
        y_max=MAX_PHRED,
    )
