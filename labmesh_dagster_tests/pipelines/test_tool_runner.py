"""The Pipes-side tool runner (issue 18 contract, sections 2 to 4), on real processes and real stores.

Contract pinned here:
- a tool's version is the first version-looking token it prints;
- inputs reach the tool as local paths: the local store's own files (no copy), S3 objects downloaded and
  checked against their planned sha256; ``{input_dir}`` holds every input under its experiment path;
- a command runs with its time limit (status ``timed_out``, its whole process group killed) and its memory
  limit (a reason saying it ran out of memory), its stderr tail (last 4,000 characters) kept;
- a missing tool is ``failed`` with ``tool not installed: <tool>``; an ``outputs`` glob matching nothing
  fails naming the glob; only a success stages outputs, every file under the output folder at any depth,
  under the staging prefix with its sha256 and size, and nothing is written anywhere else;
- `main` under a real `PipesSubprocessClient` reports one custom message ``{"results": [result]}`` per
  invocation, on the local store and on S3 (moto's server).
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.defs.pipeline_engines import run_local
from labmesh_dagster.pipelines.tool_process import STDERR_TAIL_CHARS
from labmesh_dagster.pipelines.tool_runner import run_invocation
from labmesh_dagster.pipelines.tool_versions import parse_version
from labmesh_dagster.ports import open_store
from labmesh_dagster_tests.pipelines.tool_data import fastq_gz, invocation, pipeline, put_raw

PY = "python"  # the runner puts its own interpreter's folder first on the tools' PATH


def _alive(pid: int) -> bool:
    """Whether a process still runs (a zombie waiting for a parent that is gone counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def _ends(pid: int, within: float = 30.0) -> bool:
    """Whether the process has ended, waiting up to ``within`` s: a signal takes effect when its target next runs."""
    deadline = time.monotonic() + within
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def _keys(store: ObjectStore) -> list[str]:
    return [str(info.key) for info in store.list(Zone.PROCESSED)]


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "store")


@pytest.mark.parametrize(
    ("printed", "version"),
    [
        ("fastp 0.23.2", "0.23.2"),
        ("seqkit v2.3.0", "2.3.0"),
        ("samtools 1.16.1\nUsing htslib 1.16\nCopyright (C) 2022", "1.16.1"),
        ("multiqc, version 1.35", "1.35"),
        ("mytool 2.0rc1 (build 77)", "2.0rc1"),
        ("no version here", None),
    ],
)
def test_a_version_is_the_first_version_looking_token(printed: str, version: str | None) -> None:
    assert parse_version(printed) == version


def test_a_tool_runs_on_the_local_stores_own_files_and_its_outputs_are_staged_with_checksums(
    store: LocalObjectStore,
) -> None:
    raw = put_raw(store, "fastq/S1_R1.fastq.gz", fastq_gz())
    script = (
        "import os, shutil, sys; out = sys.argv[2]; os.makedirs(out + '/deep/er');"
        "shutil.copyfile(sys.argv[1], out + '/{name}.copy.gz');"
        "open(out + '/deep/er/listing.txt', 'w').write('\\n'.join(sorted(os.listdir(sys.argv[3] + '/fastq'))));"
        "os.symlink(sys.argv[1], out + '/link.gz'); print('tool 3.1.4', file=sys.stderr)"
    )
    spec = pipeline(
        command=[PY, "-c", script, "{input}", "{output_dir}", "{input_dir}"],
        versions={"tool": [PY, "-c", "import sys; print('tool 3.1.4', file=sys.stderr)"]},
        outputs=["*.copy.gz", "deep/**/*.txt"],
    )
    planned = invocation(spec, [raw], label="fastq/S1_R1")

    result = run_invocation(store, planned)

    assert result["status"] == "succeeded", result
    assert result["reason"] is None and result["exit_code"] == 0 and result["engine"] == "local"
    assert result["tool_versions"] == {"tool": "3.1.4"}
    # Zero copy: the command names the raw zone's own file.
    raw_key = ObjectKey.parse(raw["key"])
    assert str(store.path(raw_key)) in result["command_line"]
    assert "tool 3.1.4" in result["stderr_tail"]
    by_name = {output["name"]: output for output in result["outputs"]}
    assert sorted(by_name) == ["S1_R1.copy.gz", "deep/er/listing.txt"]  # the symlink is not an output
    copy = by_name["S1_R1.copy.gz"]
    assert copy["key"] == planned["staging_prefix"] + "S1_R1.copy.gz"
    assert copy["sha256"] == raw["sha256"] and copy["size"] == store.stat(raw_key).size
    assert store.read_bytes(ObjectKey.parse(by_name["deep/er/listing.txt"]["key"])) == b"S1_R1.fastq.gz"
    # Nothing but the staged outputs was written, and nothing under the publish prefix.
    assert sorted(_keys(store)) == sorted(output["key"] for output in result["outputs"])
    assert not any(key.startswith(planned["publish_prefix"]) for key in _keys(store))


def test_a_time_limit_stops_the_tool_and_everything_it_started(store: LocalObjectStore, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    spec = pipeline(
        command=["sh", "-c", f"sleep 300 & echo $! > {pid_file}; echo started >&2; wait"],
        resources={"timeout_seconds": 1},
    )

    result = run_invocation(store, invocation(spec, []))

    assert result["status"] == "timed_out"
    assert result["reason"] == "sh ran longer than its time limit of 1 s and was stopped"
    assert "started" in result["stderr_tail"] and result["outputs"] == []
    assert _ends(int(pid_file.read_text()))  # the background job dies with its group
    assert _keys(store) == []


def test_a_memory_limit_fails_the_tool_with_a_reason_saying_so(store: LocalObjectStore) -> None:
    spec = pipeline(
        command=[PY, "-c", "block = bytearray(1024 * 1024 * 1024)"],
        resources={"memory_mib": 512},
    )

    result = run_invocation(store, invocation(spec, []))

    assert result["status"] == "failed"
    assert result["reason"] == "python ran out of memory (limit 512 MiB)"
    assert "MemoryError" in result["stderr_tail"] and result["exit_code"] == 1


def test_a_failing_tool_fails_with_its_exit_code_and_the_tail_of_its_stderr(store: LocalObjectStore) -> None:
    script = "import sys; sys.stderr.write('x' * 10000 + 'the reason at the end'); sys.exit(3)"
    spec = pipeline(command=[PY, "-c", script, "{output_dir}"])

    result = run_invocation(store, invocation(spec, []))

    assert result["status"] == "failed" and result["exit_code"] == 3
    assert result["reason"] == "python failed with exit code 3"
    assert len(result["stderr_tail"]) == STDERR_TAIL_CHARS
    assert result["stderr_tail"].endswith("the reason at the end")
    assert result["outputs"] == [] and _keys(store) == []


def test_a_missing_tool_is_named_whether_its_version_or_its_command_finds_it_missing(
    store: LocalObjectStore,
) -> None:
    by_version = pipeline(command=["fastp-not-here"], versions={"fastp-not-here": ["fastp-not-here", "--version"]})
    by_command = pipeline(command=["fastp-not-here", "{output_dir}"])

    for spec in (by_version, by_command):
        result = run_invocation(store, invocation(spec, []))
        assert result["status"] == "failed"
        assert result["reason"] == "tool not installed: fastp-not-here"
        assert result["exit_code"] is None and result["outputs"] == []


def test_an_output_glob_that_matches_nothing_fails_naming_the_glob(store: LocalObjectStore) -> None:
    script = "import sys; open(sys.argv[1] + '/report.json', 'w').write('[]')"
    spec = pipeline(command=[PY, "-c", script, "{output_dir}"], outputs=["*.json", "*.html"])

    result = run_invocation(store, invocation(spec, []))

    assert result["status"] == "failed" and result["exit_code"] == 0
    assert result["reason"] == "python wrote no output matching *.html"
    assert _keys(store) == []  # a failed invocation stages nothing


def test_stdout_can_be_named_as_an_output_file(store: LocalObjectStore) -> None:
    """``stdout`` (proposed for the pipelines file, honoured by the runner already) makes stdout an output."""
    raw = put_raw(store, "S1.fastq.gz", fastq_gz(reads=3))
    spec = pipeline(command=[PY, "-c", "print('report of', __import__('sys').argv[1])", "{input}"], outputs=["*.txt"])
    planned = invocation(spec, [raw], stdout="{name}.report.txt")

    result = run_invocation(store, planned)

    assert [output["name"] for output in result["outputs"]] == ["S1.report.txt"]
    assert store.read_bytes(ObjectKey.parse(result["outputs"][0]["key"])).startswith(b"report of ")


def test_an_input_missing_from_the_store_fails_the_invocation_before_anything_runs(store: LocalObjectStore) -> None:
    gone = {"key": "raw/EXP-1/gone.fastq.gz", "sha256": "0" * 64, "role": "input"}
    spec = pipeline(command=[PY, "-c", "raise SystemExit(9)", "{input}", "{output_dir}"])

    result = run_invocation(store, invocation(spec, [gone]))

    assert result["status"] == "failed" and result["exit_code"] is None
    assert result["reason"] == "could not start tool: input raw/EXP-1/gone.fastq.gz is not in the store"


def _run_main(
    store_config: dict[str, Any], invocations: list[dict[str, Any]], tool_versions_cache: str | None = None
) -> list[dict[str, Any]]:
    """Run the runner's `main` as the local engine does, through a real `PipesSubprocessClient` inside an asset;
    the results it reported."""
    reported: list[dict[str, Any]] = []

    @dg.asset
    def processed(context):  # type: ignore[no-untyped-def]  # a string annotation (future import) is refused by @asset
        reported.extend(run_local(context, dg.PipesSubprocessClient(), store_config, invocations, tool_versions_cache))
        return dg.MaterializeResult()

    outcome = dg.materialize([processed], instance=dg.DagsterInstance.ephemeral())
    assert outcome.success
    return reported


def _echo_pipeline(**fields: Any) -> dict[str, Any]:
    script = "import shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2] + '/{name}.seen')"
    command = [PY, "-c", script, "{input}", "{output_dir}"]
    return pipeline(name="echo", command=command, outputs=["*.seen"], **fields)


@pytest.mark.slow
def test_main_reports_one_result_per_invocation_through_pipes(store: LocalObjectStore) -> None:
    good = invocation(_echo_pipeline(), [put_raw(store, "S1.fastq.gz", fastq_gz(reads=5))], label="S1")
    missing = invocation(pipeline(name="absent", command=["no-such-tool-here"]), [], label="EXP-1")

    results = _run_main({"kind": "local", "root": str(store.root)}, [missing, good])

    assert [(r["invocation_id"], r["status"]) for r in results] == [
        (missing["invocation_id"], "failed"),
        (good["invocation_id"], "succeeded"),
    ]
    assert results[0]["reason"] == "tool not installed: no-such-tool-here"
    (output,) = results[1]["outputs"]
    assert output["key"] == good["staging_prefix"] + "S1.seen"
    assert output["sha256"] == good["inputs"][0]["sha256"]


@pytest.mark.slow
def test_the_local_engine_keeps_the_tools_versions_in_the_file_it_names(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    spec = _echo_pipeline(versions={"tool": [PY, "-c", "print('tool 4.5.6')"]})
    one = invocation(spec, [put_raw(store, "S1.fastq.gz", fastq_gz(reads=5))], label="S1")
    other = invocation(spec, [put_raw(store, "S2.fastq.gz", fastq_gz(reads=6))], label="S2")
    cache = tmp_path / "home" / "cache" / "tool-versions.json"

    results = _run_main({"kind": "local", "root": str(store.root)}, [one, other], tool_versions_cache=str(cache))

    assert [(result["status"], result["tool_versions"]) for result in results] == [("succeeded", {"tool": "4.5.6"})] * 2
    assert list(json.loads(cache.read_text(encoding="utf-8")).values()) == ["4.5.6"]


@pytest.mark.slow
def test_on_s3_inputs_are_downloaded_and_checked_and_outputs_staged(
    moto_endpoint: str, s3_buckets: dict[str, str]
) -> None:
    config = {
        "kind": "s3",
        "buckets": s3_buckets,
        "endpoint_url": moto_endpoint,
        "region_name": "us-east-1",
        "max_attempts": 3,
        "multipart_threshold": 8 * 1024 * 1024,
        "part_size": 8 * 1024 * 1024,
    }
    s3 = open_store(config)
    content = fastq_gz(reads=20)
    good = invocation(_echo_pipeline(), [put_raw(s3, "fastq/S1.fastq.gz", content)], label="fastq/S1")
    changed_input = {**put_raw(s3, "fastq/S2.fastq.gz", content), "sha256": "f" * 64}
    changed = invocation(_echo_pipeline(), [changed_input], label="fastq/S2")

    results = _run_main(config, [good, changed])

    assert [result["status"] for result in results] == ["succeeded", "failed"]
    (output,) = results[0]["outputs"]
    assert output["key"] == good["staging_prefix"] + "S1.seen"
    assert s3.read_bytes(ObjectKey.parse(output["key"])) == content
    assert output["sha256"] == hashlib.sha256(content).hexdigest() and output["size"] == len(content)
    assert "raw/EXP-1/fastq/S2.fastq.gz changed since it was planned" in results[1]["reason"]
    assert [str(info.key) for info in s3.list(Zone.PROCESSED)] == [output["key"]]


def test_a_cancelled_runner_takes_its_running_tool_down_with_it(store: LocalObjectStore, tmp_path: Path) -> None:
    """Dagster cancels a run with SIGTERM to the runner; the tool, in a process group of its own, must die too."""
    pid_file = tmp_path / "child.pid"
    spec = pipeline(command=["sh", "-c", f"sleep 300 & echo $! > {pid_file}; wait"], resources={"timeout_seconds": 300})
    runner = (
        "import json, sys\n"
        "from labmesh_dagster.connectors.store.local import LocalObjectStore\n"
        "from labmesh_dagster.pipelines.tool_runner import run_invocation, stop_on_sigterm\n"
        "stop_on_sigterm()\n"
        "run_invocation(LocalObjectStore(sys.argv[1]), json.loads(sys.argv[2]))\n"
    )
    process = subprocess.Popen([sys.executable, "-c", runner, str(store.root), json.dumps(invocation(spec, []))])
    try:
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert process.poll() is None, "the runner ended before its tool started"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        process.kill()
    assert _ends(int(pid_file.read_text()))  # the tool's own child dies with the runner
