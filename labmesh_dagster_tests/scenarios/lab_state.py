"""A lab's end state, in a form two labs can be compared by: what a person or a tool would see of it.

Two labs given the same input at different times differ in their homes and in
file times, so both are left out: store bytes are compared by checksum, the
catalog and content index by their content, lineage by which runs ended how
and what their last completed runs wrote, the ELN by what it reads back.

A pipeline's outputs are compared by checksum too, which holds for the test
labs' quick pipeline (labmesh's own FASTQ QC, whose documents depend only on
the reads, `data/pipelines/quick.yaml`), not for real tools: they stamp their
reports with the time and their command line (fastp does). What differs between two runs of the same
invocation (the Dagster run, the process, the temporary folders in the
command line, when it started and ended) is left out of each file's
provenance and of the receipts.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from typing import Any

from labmesh_dagster.core.keys import Zone
from labmesh_dagster_tests.conftest import Lab

# Per-file values that depend on when a file was written, not on what it holds.
TIMED_FIELDS = ("created",)
# What a pipeline's provenance and receipts say of the run rather than of the invocation.
RUN_FIELDS = ("run_id", "engine_run_id", "command_line", "started", "ended")


def _without_run(made: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in made.items() if name not in RUN_FIELDS}


def _without_home(lab: Lab, value: Any) -> Any:
    return json.loads(json.dumps(value).replace(str(lab.settings.home), "<home>"))


def _rows(lab: Lab, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(lab.settings.catalog_path) as connection:
        return [tuple(row) for row in connection.execute(query)]


def _entry(text: str) -> dict[str, Any]:
    return file_entry(json.loads(text))


def file_entry(data: dict[str, Any]) -> dict[str, Any]:
    """A file's manifest entry without what depends on when and by which run it was made."""
    entry = {name: value for name, value in data.items() if name not in TIMED_FIELDS}
    if entry.get("produced_by"):
        entry["produced_by"] = _without_run(entry["produced_by"])
    return entry


def store_state(lab: Lab) -> dict[str, Any]:
    zones: dict[str, Any] = {}
    for zone in Zone:
        files = {}
        for info in lab.store.list(zone):
            if info.key.first_segment == "_labmesh":
                files[info.key.path] = "labmesh state"
            elif info.key.is_labmesh_internal:
                manifest = json.loads(lab.store.read_bytes(info.key))
                if "files" in manifest:
                    manifest = [_entry(json.dumps(entry)) for entry in manifest["files"]]
                elif "invocation_id" in manifest:  # a pipeline invocation's receipt
                    manifest = _without_run(manifest)
                files[info.key.path] = manifest
            else:
                files[info.key.path] = hashlib.sha256(lab.store.read_bytes(info.key)).hexdigest()
        zones[zone.value] = files
    return zones


def catalog_state(lab: Lab) -> dict[str, Any]:
    return {
        "experiments": _rows(lab, "SELECT experiment_id, title, fingerprint, locations FROM experiments ORDER BY 1"),
        "datasets": _rows(
            lab, "SELECT experiment_id, dataset, file_count, total_bytes, revision FROM datasets ORDER BY 1, 2"
        ),
        "files": [
            (experiment_id, dataset, key, _entry(entry))
            for experiment_id, dataset, key, entry in _rows(
                lab, "SELECT experiment_id, dataset, key, entry FROM files ORDER BY 1, 2, 3"
            )
        ],
    }


def content_state(lab: Lab) -> list[tuple[Any, ...]]:
    return _rows(lab, "SELECT document_id, title, text FROM content_documents ORDER BY 1")


def lineage_runs(lab: Lab, experiment_id: str) -> dict[str, list[str]]:
    """Each OpenLineage run of the experiment: the event types it recorded, in order."""
    runs: dict[str, list[str]] = {}
    for event in lab.ports.lineage_log().events(experiment_id):
        runs.setdefault(event["run"]["runId"], []).append(event["eventType"])
    return runs


def lineage_state(lab: Lab, experiment_id: str) -> dict[str, Any]:
    """What each job's last completed run read and wrote, and how many runs ended each way."""
    last_complete: dict[str, Any] = {}
    for event in lab.ports.lineage_log().events(experiment_id):
        if event["eventType"] == "COMPLETE":
            last_complete[event["job"]["name"]] = {
                "inputs": sorted(dataset["name"] for dataset in event.get("inputs", [])),
                "outputs": sorted(dataset["name"] for dataset in event.get("outputs", [])),
            }
    return _without_home(lab, last_complete)


def well_formed_runs(lab: Lab, experiment_id: str) -> Counter[str]:
    """Every run started once and ended once: the count of how they ended (COMPLETE or FAIL)."""
    endings: Counter[str] = Counter()
    for run_id, types in lineage_runs(lab, experiment_id).items():
        assert types[0] == "START" and types.count("START") == 1, f"run {run_id}: {types}"
        assert len(types) == 2 and types[1] in {"COMPLETE", "FAIL"}, f"run {run_id}: {types}"
        endings[types[1]] += 1
    return endings


def lab_state(lab: Lab, experiment_id: str) -> dict[str, Any]:
    """Everything a never-crashed run and a recovered one must agree on."""
    return _without_home(
        lab,
        {
            "store": store_state(lab),
            "catalog": catalog_state(lab),
            "content index": content_state(lab),
            "lineage": lineage_state(lab, experiment_id),
            "eln": lab.ports.eln().read_back(experiment_id),
        },
    )
