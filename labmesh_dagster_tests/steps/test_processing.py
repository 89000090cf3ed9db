"""Running an experiment's pipelines: stages, reuse, fallbacks and failures, with the engines behind one callable.

Pinned here: pipelines on raw files run before those taking their outputs,
which are planned from what the first stage published; a second run with
the same inputs and versions runs nothing and reuses every receipt; a new
version runs again; a pipeline whose tool is missing is replaced by its
fallback on exactly its inputs, and a fallback never runs on its own; a failed
invocation publishes nothing and is reported with its inputs and reason,
while the others are published; an invocation the engine reported nothing for
is a failure that says so; what invocations that no longer apply made is
removed after a run without failures, never files people put there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.experiment import ExperimentRecord, Sample
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.pipelines.spec import Pipeline, parse_pipelines
from labmesh_dagster.steps.processing import run_pipelines

RECORD = ExperimentRecord(id="EXP-1", title="t", samples=(Sample("S1"),))

PIPELINES = """
version: 1
pipelines:
  - name: qc
    version: "1"
    command: [qc, "{input}", "{output_dir}/{name}.qc.json"]
    outputs: ["*.qc.json"]
    takes: {formats: [fastq]}
    fallback: builtin-qc
  - name: builtin-qc
    version: "1"
    command: [python, "{input}"]
    outputs: ["*.json"]
    takes: {formats: [fastq]}
  - name: report
    version: "1"
    per: experiment
    command: [report, "{inputs}"]
    outputs: [report.html]
    takes: {outputs_of: [qc]}
"""


def pipelines(text: str = PIPELINES) -> tuple[Pipeline, ...]:
    return parse_pipelines(text, "pipelines.yaml")


def raw_manifest(*names: str, content: bytes = b"@r\nACGT\n+\nIIII\n") -> Manifest:
    entries = [
        ManifestEntry(
            key=f"raw/EXP-1/{name}",
            size=len(content),
            sha256=hashlib.sha256(content + name.encode()).hexdigest(),
            format="fastq",
            created="2026-12-06T00:00:00+00:00",
            sample_ids=("S1",),
        )
        for name in names
    ]
    return Manifest.build("EXP-1", "raw", entries)


class Engine:
    """Stages one small file per invocation, as a runner would; fails or lacks the tools it is told to."""

    def __init__(self, store: LocalObjectStore, *, failing: Sequence[str] = (), missing: Sequence[str] = ()) -> None:
        self.store, self.failing, self.missing = store, set(failing), set(missing)
        self.calls: list[list[str]] = []
        self.silent: set[str] = set()

    def __call__(self, invocations: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        self.calls.append([item["pipeline"]["name"] for item in invocations])
        results = []
        for invocation in invocations:
            name = invocation["pipeline"]["name"]
            if name in self.silent:
                continue
            result: dict[str, Any] = {"invocation_id": invocation["invocation_id"], "engine": "local", "outputs": []}
            if name in self.missing:
                results.append({**result, "status": "failed", "reason": f"tool not installed: {name}"})
                continue
            if name in self.failing:
                results.append({**result, "status": "failed", "reason": "exit status 2", "stderr_tail": "bad read"})
                continue
            output = "report.html" if name == "report" else f"{invocation['label'].rsplit('/', 1)[-1]}.{name}.json"
            version = invocation["pipeline"]["version"]
            content = f"{name} {version} of {[item['key'] for item in invocation['inputs']]}".encode()
            key = invocation["staging_prefix"] + output
            self.store.put(ObjectKey.parse(key), content)
            sha = hashlib.sha256(content).hexdigest()
            result["outputs"] = [{"name": output, "key": key, "sha256": sha, "size": len(content)}]
            results.append({**result, "status": "succeeded", "command_line": name, "tool_versions": {name: "1.0"}})
        return results


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "store")


def published(store: LocalObjectStore) -> list[str]:
    return sorted(info.key.path for info in store.list(Zone.PROCESSED, "EXP-1/") if not info.key.is_labmesh_internal)


def test_later_stages_take_what_earlier_ones_published(store: LocalObjectStore) -> None:
    engine = Engine(store)

    report = run_pipelines(
        store, pipelines(), RECORD, raw_manifest("a.fastq", "b.fastq"), run_id="run-1", execute=engine
    )

    assert engine.calls == [["qc", "qc"], ["report"]]
    assert published(store) == ["EXP-1/qc/a.qc.json", "EXP-1/qc/b.qc.json", "EXP-1/report/report.html"]
    [report_receipt] = [receipt for receipt in report.receipts if receipt.made.pipeline == "report"]
    assert list(report_receipt.input_keys) == [
        "processed/EXP-1/qc/a.qc.json",
        "processed/EXP-1/qc/b.qc.json",
    ]
    assert not report.failures and not report.reused


def test_the_same_inputs_and_versions_run_nothing_the_second_time(store: LocalObjectStore) -> None:
    manifest = raw_manifest("a.fastq")
    run_pipelines(store, pipelines(), RECORD, manifest, run_id="run-1", execute=Engine(store))
    engine = Engine(store)

    report = run_pipelines(store, pipelines(), RECORD, manifest, run_id="run-2", execute=engine)

    assert engine.calls == []
    assert len(report.reused) == 2 and not report.ran


def test_a_new_version_runs_again_and_so_does_what_takes_its_changed_outputs(store: LocalObjectStore) -> None:
    manifest = raw_manifest("a.fastq")
    run_pipelines(store, pipelines(), RECORD, manifest, run_id="run-1", execute=Engine(store))
    engine = Engine(store)

    report = run_pipelines(
        store,
        pipelines(PIPELINES.replace('version: "1"\n    command: [qc', 'version: "2"\n    command: [qc')),
        RECORD,
        manifest,
        run_id="run-2",
        execute=engine,
    )

    assert engine.calls == [["qc"], ["report"]]  # the report's input changed: qc's output has a new checksum
    assert {receipt.made.pipeline: receipt.made.version for receipt in report.ran} == {"qc": "2", "report": "1"}


def test_a_missing_tool_is_replaced_by_its_fallback_on_its_inputs(store: LocalObjectStore) -> None:
    engine = Engine(store, missing=["qc"])

    report = run_pipelines(store, pipelines(), RECORD, raw_manifest("a.fastq"), run_id="run-1", execute=engine)

    assert engine.calls == [["qc"], ["builtin-qc"], ["report"]]
    assert report.fallbacks == ["qc: tool not installed; builtin-qc ran instead on raw/EXP-1/a.fastq"]
    [report_receipt] = [receipt for receipt in report.receipts if receipt.made.pipeline == "report"]
    assert list(report_receipt.input_keys) == ["processed/EXP-1/builtin-qc/a.builtin-qc.json"]
    assert not report.failures


def test_a_failed_tool_publishes_nothing_of_its_own_and_says_on_what(store: LocalObjectStore) -> None:
    engine = Engine(store, failing=["qc"])

    report = run_pipelines(store, pipelines(), RECORD, raw_manifest("a.fastq"), run_id="run-1", execute=engine)

    [failure] = report.failures
    assert failure.describe() == "qc on raw/EXP-1/a.fastq: exit status 2"
    assert failure.stderr_tail == "bad read"
    assert published(store) == []  # and the report had no input to run on
    assert engine.calls == [["qc"]]


def test_an_invocation_the_engine_said_nothing_of_is_a_failure(store: LocalObjectStore) -> None:
    engine = Engine(store)
    engine.silent.add("qc")

    report = run_pipelines(store, pipelines(), RECORD, raw_manifest("a.fastq"), run_id="run-1", execute=engine)

    [failure] = report.failures
    assert "reported no result" in failure.reason


def test_what_an_invocation_that_no_longer_applies_made_is_removed_after_a_clean_run(store: LocalObjectStore) -> None:
    run_pipelines(store, pipelines(), RECORD, raw_manifest("a.fastq", "b.fastq"), run_id="run-1", execute=Engine(store))
    store.put(ObjectKey.parse("processed/EXP-1/qc/notes-by-a-person.md"), b"kept")

    report = run_pipelines(store, pipelines(), RECORD, raw_manifest("a.fastq"), run_id="run-2", execute=Engine(store))

    assert report.retired == ["processed/EXP-1/qc/b.qc.json"]  # the report was made again, from a.qc.json alone
    assert published(store) == ["EXP-1/qc/a.qc.json", "EXP-1/qc/notes-by-a-person.md", "EXP-1/report/report.html"]
    receipts = [info.key.name for info in store.list(Zone.PROCESSED, "EXP-1/_labmesh/pipelines/")]
    assert sorted(receipts) == sorted(f"{receipt.made.invocation_id}.json" for receipt in report.receipts)


def test_a_run_with_a_failure_retires_nothing(store: LocalObjectStore) -> None:
    run_pipelines(store, pipelines(), RECORD, raw_manifest("a.fastq"), run_id="run-1", execute=Engine(store))
    bumped = pipelines(PIPELINES.replace('version: "1"\n    command: [qc', 'version: "2"\n    command: [qc'))

    report = run_pipelines(
        store, bumped, RECORD, raw_manifest("a.fastq"), run_id="run-2", execute=Engine(store, failing=["qc"])
    )

    assert report.failures and report.retired == []
    assert published(store) == ["EXP-1/qc/a.qc.json", "EXP-1/report/report.html"]  # the last good outputs
