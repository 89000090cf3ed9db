"""A pipeline's staged outputs are published only on success, and a receipt lets the same invocation be reused.

Pinned here: publishing copies each staged output under the invocation's
publish prefix and writes the receipt last, with the inputs' checksums and how
the outputs were made; a failed invocation is never published; a receipt is
honoured only while every output it names is intact (deleted or rewritten
outputs make the invocation run again) and only for the same inputs; an
unreadable receipt is ignored; staging is cleared to the last file and folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.steps.pipeline_outputs import (
    clear_staging,
    provenance_by_key,
    publish_outputs,
    receipt_key,
    reusable_receipt,
)

STAGING = "processed/EXP-1/_labmesh/runs/run-1/fastp-0123456789abcdef/"


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "store")


def invocation(sha: str = "aa" * 32) -> dict[str, Any]:
    return {
        "invocation_id": "fastp-0123456789abcdef",
        "pipeline": {"name": "fastp", "version": "1", "engine": "local"},
        "experiment_id": "EXP-1",
        "label": "fastq/S1_R1",
        "inputs": [{"key": "raw/EXP-1/fastq/S1_R1.fastq.gz", "sha256": sha, "role": "input"}],
        "staging_prefix": STAGING,
        "publish_prefix": "processed/EXP-1/fastp/fastq/",
    }


def staged_result(store: LocalObjectStore, files: dict[str, bytes], status: str = "succeeded") -> dict[str, Any]:
    outputs = []
    for name, content in files.items():
        key = STAGING + name
        store.put(ObjectKey.parse(key), content)
        outputs.append({"name": name, "key": key, "sha256": hashlib.sha256(content).hexdigest(), "size": len(content)})
    return {
        "invocation_id": "fastp-0123456789abcdef",
        "status": status,
        "engine": "local",
        "engine_run_id": "4242",
        "command_line": "fastp --in1 S1_R1.fastq.gz --json S1_R1.fastp.json",
        "tool_versions": {"fastp": "0.23.2"},
        "outputs": outputs,
        "exit_code": 0 if status == "succeeded" else 1,
        "stderr_tail": "",
        "started": "2026-12-06T06:00:00+00:00",
        "ended": "2026-12-06T06:00:03+00:00",
        "reason": None if status == "succeeded" else "exit status 1",
    }


def test_success_is_published_in_place_with_a_receipt_saying_how(store: LocalObjectStore) -> None:
    result = staged_result(store, {"S1_R1.fastp.json": b"{}", "report/S1_R1.fastp.html": b"<html/>"})

    receipt = publish_outputs(store, invocation(), result, run_id="run-1")

    assert store.read_bytes(ObjectKey.parse("processed/EXP-1/fastp/fastq/S1_R1.fastp.json")) == b"{}"
    assert store.read_bytes(ObjectKey.parse("processed/EXP-1/fastp/fastq/report/S1_R1.fastp.html")) == b"<html/>"
    assert store.exists(receipt_key("EXP-1", "fastp-0123456789abcdef"))
    made = provenance_by_key([receipt])["processed/EXP-1/fastp/fastq/S1_R1.fastp.json"]
    assert (made.pipeline, made.version, made.run_id, made.engine_run_id) == ("fastp", "1", "run-1", "4242")
    assert made.tool_versions == {"fastp": "0.23.2"}
    assert made.to_dict()["inputs"] == [{"key": "raw/EXP-1/fastq/S1_R1.fastq.gz", "sha256": "aa" * 32}]


def test_a_failed_invocation_is_never_published(store: LocalObjectStore) -> None:
    result = staged_result(store, {"S1_R1.fastp.json": b"{}"}, status="failed")

    with pytest.raises(ValueError, match="did not succeed"):
        publish_outputs(store, invocation(), result, run_id="run-1")

    assert not store.exists(ObjectKey.parse("processed/EXP-1/fastp/fastq/S1_R1.fastp.json"))
    assert not store.exists(receipt_key("EXP-1", "fastp-0123456789abcdef"))


def test_an_output_reported_outside_staging_is_refused(store: LocalObjectStore) -> None:
    result = staged_result(store, {"S1_R1.fastp.json": b"{}"})
    result["outputs"][0]["key"] = "raw/EXP-1/fastq/S1_R1.fastq.gz"

    with pytest.raises(ValueError, match="outside its staging prefix"):
        publish_outputs(store, invocation(), result, run_id="run-1")


def test_an_intact_receipt_is_reused_and_says_so(store: LocalObjectStore) -> None:
    publish_outputs(store, invocation(), staged_result(store, {"S1_R1.fastp.json": b"{}"}), run_id="run-1")

    receipt = reusable_receipt(store, invocation())

    assert receipt is not None and receipt.reused and receipt.made.run_id == "run-1"


def test_other_inputs_or_a_damaged_output_make_the_invocation_run_again(store: LocalObjectStore) -> None:
    publish_outputs(store, invocation(), staged_result(store, {"S1_R1.fastp.json": b"{}"}), run_id="run-1")
    output = ObjectKey.parse("processed/EXP-1/fastp/fastq/S1_R1.fastp.json")

    assert reusable_receipt(store, invocation(sha="bb" * 32)) is None
    store.put(output, b"[]")  # same size, other content
    assert reusable_receipt(store, invocation()) is None
    store.delete(output)
    assert reusable_receipt(store, invocation()) is None


def test_an_unreadable_receipt_is_ignored(store: LocalObjectStore) -> None:
    store.put(receipt_key("EXP-1", "fastp-0123456789abcdef"), b"{not json")

    assert reusable_receipt(store, invocation()) is None


def test_clearing_staging_leaves_no_file_and_no_folder(store: LocalObjectStore, tmp_path: Path) -> None:
    staged_result(store, {"S1_R1.fastp.json": b"{}", "multiqc_data/multiqc.log": b"log"})
    store.put(ObjectKey.parse("processed/EXP-1/fastp/kept.json"), b"{}")

    assert clear_staging(store, "EXP-1") == 2

    assert [info.key.path for info in store.list(Zone.PROCESSED, "EXP-1/")] == ["EXP-1/fastp/kept.json"]
    assert not (tmp_path / "store" / "processed" / "EXP-1" / "_labmesh" / "runs").exists()
