"""The built-in FASTQ QC pipeline, called as plain Python (the Pipes wiring is covered end to end).

Contract: one QC document per FASTQ with read statistics and the per-position
mean quality (Phred+33), plus a summary over all files; each output names the
raw file it came from; a corrupt file yields a document that says why instead
of failing the others; running again on unchanged input rewrites nothing.
"""

from __future__ import annotations

import json

from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.pipelines.fastq_qc import run_qc

# Qualities: 'I' = 40, '5' = 20, '+' = 10.
TINY = b"@a\nACGT\n+\nII55\n@b\nAC\n+\n5+\n"


def _raw(store: LocalObjectStore, name: str, content: bytes) -> dict[str, str]:
    key = ObjectKey.for_experiment(Zone.RAW, "EXP-1", name)
    store.put(key, content)
    return {"key": str(key), "sha256": store.sha256(key)}


def _document(store: LocalObjectStore, relative: str) -> dict:
    return json.loads(store.read_bytes(ObjectKey.for_experiment(Zone.PROCESSED, "EXP-1", relative)))


def test_qc_reports_statistics_and_per_position_quality_with_lineage(tmp_path) -> None:
    store = LocalObjectStore(tmp_path)
    inputs = [_raw(store, "S1_R1.fastq", TINY)]

    outputs = run_qc(store, "EXP-1", inputs)

    assert outputs == [
        {"key": "processed/EXP-1/qc/S1_R1.fastq.qc.json", "derived_from": ["raw/EXP-1/S1_R1.fastq"], "status": "ok"},
        {"key": "processed/EXP-1/qc/summary.json", "derived_from": ["raw/EXP-1/S1_R1.fastq"], "status": "ok"},
    ]
    document = _document(store, "qc/S1_R1.fastq.qc.json")
    assert document["input"] == "raw/EXP-1/S1_R1.fastq" and document["input_sha256"] == inputs[0]["sha256"]
    assert document["stats"]["reads"] == 2 and document["stats"]["bases"] == 6
    assert document["per_position_mean_quality"] == [30.0, 25.0, 20.0, 20.0]
    assert _document(store, "qc/summary.json")["files"][0]["stats"]["reads"] == 2


def test_a_corrupt_file_gets_a_failed_document_and_the_others_are_unaffected(tmp_path) -> None:
    store = LocalObjectStore(tmp_path)
    inputs = [_raw(store, "bad.fastq", b"@a\nACGT\n+\nII\n"), _raw(store, "good.fastq", TINY)]

    outputs = run_qc(store, "EXP-1", inputs)

    assert [output["status"] for output in outputs] == ["failed", "ok", "ok"]
    assert _document(store, "qc/bad.fastq.qc.json")["error"]["reason"] == "length_mismatch"
    assert _document(store, "qc/good.fastq.qc.json")["stats"]["reads"] == 2


def test_running_again_on_unchanged_input_rewrites_nothing(tmp_path) -> None:
    store = LocalObjectStore(tmp_path)
    inputs = [_raw(store, "S1.fastq", TINY)]
    run_qc(store, "EXP-1", inputs)
    before = {info.key: info.etag for info in store.list(Zone.PROCESSED)}

    assert run_qc(store, "EXP-1", inputs)
    assert {info.key: info.etag for info in store.list(Zone.PROCESSED)} == before
