"""What the QC pipeline measured, as the QC page and a FASTQ's file page show it.

The QC documents are files of the processed dataset (``qc/<name>.qc.json``),
each naming the raw FASTQ it measured as ``input`` and, in the manifest, as
its ``derived_from``. The QC page reads all of them; a FASTQ's page reads only
the one derived from that file, found through the manifest rather than by
listing the store. The experiment's access is checked by the caller before.
"""

from __future__ import annotations

import json
from typing import Any

from markupsafe import Markup

from labmesh_dagster.connectors.catalog.base import Catalog
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.errors import ObjectNotFound
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import ManifestEntry
from labmesh_dagster.portal.charts import line_chart

QC_SUFFIX = ".qc.json"
MAX_PHRED = 42
"""The quality axis' top: Illumina's highest quality score, so plots of different files compare."""


def is_qc_document(entry: ManifestEntry) -> bool:
    key = ObjectKey.parse(entry.key)
    return key.relative_path.startswith("qc/") and key.name.endswith(QC_SUFFIX)


def qc_row(store: ObjectStore, entry: ManifestEntry) -> dict[str, Any] | None:
    """One QC document as a row of numbers; None when it is gone or is not JSON (the page skips it)."""
    key = ObjectKey.parse(entry.key)
    try:
        document = json.loads(store.read_bytes(key))
    except (ObjectNotFound, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    stats = document.get("stats") or {}
    source = str(document.get("input") or "")
    return {
        "name": source.rsplit("/", 1)[-1] or key.name,
        "input": source,
        "document": entry.key,
        "status": document.get("status"),
        "reads": stats.get("reads"),
        "mean_quality": stats.get("mean_quality"),
        "q30_percent": stats.get("q30_percent"),
        "per_position_mean_quality": [
            float(value) for value in document.get("per_position_mean_quality") or [] if value is not None
        ],
    }


def experiment_qc(catalog: Catalog, store: ObjectStore, experiment_id: str) -> list[dict[str, Any]]:
    """Every QC document of the experiment's processed dataset, one row per FASTQ file."""
    dataset = catalog.get_dataset(experiment_id, Zone.PROCESSED)
    rows = (qc_row(store, entry) for entry in (dataset.files if dataset else ()) if is_qc_document(entry))
    return [row for row in rows if row is not None]


def file_qc(catalog: Catalog, store: ObjectStore, experiment_id: str, file_key: str) -> dict[str, Any] | None:
    """The QC of one raw file: the processed dataset's QC document derived from it, if QC has run on it."""
    dataset = catalog.get_dataset(experiment_id, Zone.PROCESSED)
    for entry in dataset.files if dataset else ():
        if file_key in entry.derived_from and is_qc_document(entry):
            return qc_row(store, entry)
    return None


def quality_chart(rows: list[dict[str, Any]]) -> Markup:
    """Mean quality by position, one line per file, on the same scale whichever page draws it."""
    return line_chart(
        "Mean quality by position",
        [(row["name"], row["per_position_mean_quality"]) for row in rows],
        x_label="position in the read",
        y_label="mean Phred quality",
        y_max=MAX_PHRED,
    )
