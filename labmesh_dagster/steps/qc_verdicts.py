"""Which FASTQ files failed QC, read from what the QC tools wrote and what extraction found.

fastp exits 0 on a FASTQ it cannot read to its end or that holds no reads: it
reports 0 reads (and says why on stderr). A pipeline that succeeded is
therefore not a QC that passed; the verdict comes from the reports
themselves, plus the raw dataset's own extraction errors (a truncated file is
flagged there already):

- a fastp JSON whose ``summary.before_filtering.total_reads`` is 0;
- a labmesh FASTQ QC document (the fallback) whose ``status`` is not ``ok``;
- a raw FASTQ whose extraction failed;
- a raw FASTQ a pipeline failed on (fastp stops with an error on a file that is not gzip it can read).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.errors import ObjectNotFound
from labmesh_dagster.core.keys import ObjectKey
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.extract.formats import format_by_suffix
from labmesh_dagster.steps.pipeline_outputs import Receipt
from labmesh_dagster.steps.processing import FailedInvocation

FASTP_REPORT = ".fastp.json"
FASTQ_QC_DOCUMENT = ".qc.json"


def _is_fastq(key: str, content_format: str) -> bool:
    return content_format.startswith("fastq") or format_by_suffix(key.rsplit("/", 1)[-1]) == "fastq"


def _report_verdict(store: ObjectStore, key: str) -> str | None:
    """Why the QC report at ``key`` fails its input, or None when it passes (or is not a QC report)."""
    if not key.endswith((FASTP_REPORT, FASTQ_QC_DOCUMENT)):
        return None
    try:
        document = json.loads(store.read_bytes(ObjectKey.parse(key)))
    except (ObjectNotFound, ValueError):
        return "its QC report could not be read"
    if key.endswith(FASTP_REPORT):
        reads = document.get("summary", {}).get("before_filtering", {}).get("total_reads")
        return "fastp read no reads from it (empty, or not FASTQ it could read)" if reads == 0 else None
    if document.get("status") == "ok":
        return None
    error = document.get("error") or {}
    return f"{error.get('reason', 'failed')}: {error.get('detail', '')}".rstrip(": ")


def fastq_qc_failures(
    store: ObjectStore,
    raw_manifest: Manifest,
    receipts: Iterable[Receipt],
    failed: Iterable[FailedInvocation] = (),
) -> dict[str, str]:
    """Raw FASTQ key -> why its QC failed."""
    fastqs = {entry.key for entry in raw_manifest.entries if _is_fastq(entry.key, entry.format)}
    failures: dict[str, str] = {}
    for entry in raw_manifest.entries:
        if entry.error and entry.key in fastqs:
            failures[entry.key] = f"{entry.error.get('reason', 'unreadable')}: {entry.error.get('detail', '')}"
    for failure in failed:
        for key in failure.inputs:
            if key in fastqs:
                failures.setdefault(key, f"{failure.pipeline} failed on it: {failure.reason}")
    for receipt in receipts:
        for output in receipt.outputs:
            verdict = _report_verdict(store, output.key)
            if verdict is None:
                continue
            for key in receipt.input_keys:
                failures.setdefault(key, verdict)
    return dict(sorted(failures.items()))
