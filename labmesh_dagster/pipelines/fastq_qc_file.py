"""labmesh's own FASTQ QC of one local file, as a command: the fallback when ``fastp`` is not installed.

``python -m labmesh_dagster.pipelines.fastq_qc_file IN.fastq.gz OUT.qc.json``
writes the file's QC document: read statistics (reads, bases, lengths, GC,
mean quality) and the per-position mean quality, named by this QC's
``pipeline`` and ``pipeline_version``. It is a tool like fastp: it reads a path and writes into
the output folder the runner gives it, so the runner stages it and the Dagster
side publishes it (``processed/<exp>/fastq-qc/<folder>/<name>.qc.json``, the
raw input in the manifest's ``derived_from``). A file QC cannot read, or one
without reads, still gets its document saying why, and the command then exits
1 with the reason on stderr, as a failing tool does.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labmesh_dagster.core.errors import ExtractionError
from labmesh_dagster.extract.fastq import fastq_stats

PIPELINE = "labmesh.fastq_qc"
"""The document's own name for the QC that wrote it: how a reader recognises one without a manifest."""
PIPELINE_VERSION = "2"  # 2: an empty FASTQ is a failed QC, not a pass with no reads
USAGE = "usage: python -m labmesh_dagster.pipelines.fastq_qc_file IN.fastq[.gz] OUT.json"


def qc_document(path: Path) -> dict[str, Any]:
    """The QC document of the FASTQ file at ``path``; a file that cannot be read gets one saying why."""
    document: dict[str, Any] = {"pipeline": PIPELINE, "pipeline_version": PIPELINE_VERSION, "input": path.name}
    try:
        with path.open("rb") as stream:
            stats = fastq_stats(stream, path.name, track_positions=True)
    except ExtractionError as exc:
        document.update(status="failed", error={"reason": exc.reason, "detail": exc.detail})
        return document
    document["per_position_mean_quality"] = stats.pop("per_position_mean_quality", [])
    document.update(status="ok", stats=stats)
    if not stats.get("reads"):
        document.update(status="failed", error={"reason": "empty", "detail": "the file holds no reads"})
    return document


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print(USAGE, file=sys.stderr)
        return 2
    source, target = Path(args[0]), Path(args[1])
    document = qc_document(source)
    target.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if error := document.get("error"):
        print(f"QC of {source.name} failed: {error['reason']}: {error['detail']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
