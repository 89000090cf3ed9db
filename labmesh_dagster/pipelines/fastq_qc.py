"""The built-in FASTQ QC pipeline, run as a subprocess through Dagster Pipes.

For every FASTQ file of an experiment's raw dataset it writes
``processed/<experiment>/qc/<raw relative path>.qc.json`` with the file's read
statistics and its per-position mean quality, plus ``qc/summary.json`` over all
files. It runs outside the Dagster process (as a production pipeline would, in
a container or on HealthOmics) and reports the outputs it wrote, with the raw
keys each came from, back through Pipes.

Outputs are deterministic and only rewritten when their content changes, and a
file whose recorded input checksum is unchanged is not recomputed, so running
the pipeline again on the same raw data changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.errors import ExtractionError, ObjectNotFound
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.extract.fastq import fastq_stats
from labmesh_dagster.extract.formats import format_by_suffix
from labmesh_dagster.ports import open_store

PIPELINE = "labmesh.fastq_qc"
PIPELINE_VERSION = "2"  # 2: an empty FASTQ is a failed QC, not a pass with no reads


def _put_if_changed(store: ObjectStore, key: ObjectKey, document: Mapping[str, Any]) -> None:
    content = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
    try:
        if store.read_bytes(key) == content:
            return
    except ObjectNotFound:
        pass
    store.put(key, content)


def _existing(store: ObjectStore, key: ObjectKey) -> dict[str, Any] | None:
    try:
        return json.loads(store.read_bytes(key))
    except (ObjectNotFound, ValueError):
        return None


def qc_inputs(raw_manifest: Manifest) -> list[dict[str, str]]:
    """The raw files this pipeline takes: every FASTQ, corrupt and empty ones included (their QC says why).

    A file is taken by its content's format or by its name: an empty
    ``S1_R1.fastq.gz`` has no content to be recognised by, and is exactly what QC must report.
    """
    return [
        {"key": entry.key, "sha256": entry.sha256}
        for entry in raw_manifest.entries
        if entry.format.startswith("fastq") or format_by_suffix(entry.name) == "fastq"
    ]


def qc_failures(outputs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Raw key -> why its QC failed, from the outputs `run_qc` reports."""
    return {
        source: str(output.get("reason") or "failed")
        for output in outputs
        if output.get("status") != "ok"
        for source in output.get("derived_from", ())
    }


def qc_output_key(raw_key: ObjectKey) -> ObjectKey:
    return ObjectKey.for_experiment(Zone.PROCESSED, raw_key.experiment_id, f"qc/{raw_key.relative_path}.qc.json")


def qc_file(store: ObjectStore, raw_key: ObjectKey, sha256: str) -> dict[str, Any]:
    """The QC document of one FASTQ file; a corrupt file gives a document saying why."""
    document: dict[str, Any] = {
        "pipeline": PIPELINE,
        "pipeline_version": PIPELINE_VERSION,
        "input": str(raw_key),
        "input_sha256": sha256,
    }
    try:
        with store.open(raw_key) as stream:
            stats = fastq_stats(stream, raw_key.name, track_positions=True)
    except ExtractionError as exc:
        document.update(status="failed", error={"reason": exc.reason, "detail": exc.detail})
        return document
    document["per_position_mean_quality"] = stats.pop("per_position_mean_quality", [])
    document.update(status="ok", stats=stats)
    if not stats.get("reads"):
        document.update(status="failed", error={"reason": "empty", "detail": "the file holds no reads"})
    return document


def run_qc(store: ObjectStore, experiment_id: str, inputs: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    """QC every input (``{"key": "raw/...", "sha256": ...}``); returns the outputs with their lineage."""
    outputs: list[dict[str, Any]] = []
    summary_files = []
    for item in sorted(inputs, key=lambda entry: entry["key"]):
        raw_key = ObjectKey.parse(item["key"])
        out_key = qc_output_key(raw_key)
        document = _existing(store, out_key)
        if (
            not document
            or document.get("input_sha256") != item["sha256"]
            or document.get("pipeline_version") != PIPELINE_VERSION
        ):
            document = qc_file(store, raw_key, item["sha256"])
            _put_if_changed(store, out_key, document)
        output = {"key": str(out_key), "derived_from": [str(raw_key)], "status": document["status"]}
        if error := document.get("error"):
            output["reason"] = f"{error.get('reason')}: {error.get('detail')}"
        outputs.append(output)
        summary_files.append(
            {
                "input": str(raw_key),
                "status": document["status"],
                "stats": document.get("stats"),
                "error": document.get("error"),
            }
        )
    if summary_files:
        summary_key = ObjectKey.for_experiment(Zone.PROCESSED, experiment_id, "qc/summary.json")
        _put_if_changed(
            store,
            summary_key,
            {
                "pipeline": PIPELINE,
                "pipeline_version": PIPELINE_VERSION,
                "experiment_id": experiment_id,
                "files": summary_files,
            },
        )
        outputs.append({"key": str(summary_key), "derived_from": [f["input"] for f in summary_files], "status": "ok"})
    return outputs


def main() -> None:
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:
        store = open_store(pipes.get_extra("store"))
        experiment_id = pipes.get_extra("experiment_id")
        inputs = pipes.get_extra("inputs")
        pipes.log.info(f"FASTQ QC of {len(inputs)} file(s) for experiment {experiment_id}")
        outputs = run_qc(store, experiment_id, inputs)
        failed = [output["key"] for output in outputs if output["status"] != "ok"]
        if failed:
            pipes.log.warning(f"QC could not read {len(failed)} file(s): {', '.join(failed)}")
        pipes.report_custom_message({"outputs": outputs})


if __name__ == "__main__":
    main()
