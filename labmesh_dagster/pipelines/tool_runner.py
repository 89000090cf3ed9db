"""The Pipes-side runner: each invocation of a pipeline's real tool, run and staged, with what it reports.

``python -m labmesh_dagster.pipelines.tool_runner`` runs inside Dagster Pipes
(a local subprocess, or the ECS container's command) with the extras
``{"store": <store config>, "invocations": [<invocation>, ...]}`` (the issue 18
contract, section 2), and from the local engine ``"tool_versions_cache"``. For each invocation, in order:

1. its inputs become local paths (the local store's own files, or downloads
   from S3 checked against their planned sha256) and ``{input_dir}`` is laid out;
2. the pipeline's ``versions`` commands run; the first missing tool ends the
   invocation as failed, ``tool not installed: <tool>`` (the Dagster side
   runs the pipeline's ``fallback`` then);
3. the command, its placeholders expanded, runs in a fresh output folder with
   the pipeline's time and memory limits, stderr kept, stdout to a file of
   the run's temporary folder (or, where an invocation's pipeline names one in
   ``stdout``, a field proposed for the pipelines file, to that output file);
4. every ``outputs`` glob must match a file; then every file of the output
   folder is uploaded under the invocation's ``staging_prefix``.

Each invocation's result (contract section 3) goes back as a custom message
``{"results": [result]}`` as soon as it is known, so a long batch reports as it
goes, and a failing invocation never stops the ones after it. The runner
never writes under ``publish_prefix``: publishing follows success, on the
Dagster side.

The tool's PATH starts with this interpreter's folder, so tools installed in
labmesh's own environment (MultiQC from PyPI) and ``python`` itself resolve
to the environment that runs labmesh, whatever PATH Dagster was started with.
"""

from __future__ import annotations

import math
import os
import shlex
import signal
import socket
import sys
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.keys import ObjectKey
from labmesh_dagster.pipelines.commands import Value, expand_command, expand_value
from labmesh_dagster.pipelines.tool_files import (
    InputUnavailable,
    LocalInput,
    local_inputs,
    missing_globs,
    stage_outputs,
)
from labmesh_dagster.pipelines.tool_process import ToolNotInstalled, run_tool
from labmesh_dagster.pipelines.tool_versions import VersionCache, tool_versions

DEFAULT_RESOURCES = {"cpu": 1, "memory_mib": 2048, "timeout_seconds": 3600}
TOOL_VERSIONS_CACHE_EXTRA = "tool_versions_cache"
"""The extra naming the file where tools' versions are kept between runs (`VersionCache`); absent, none is."""


def name_of(invocation: Mapping[str, Any]) -> str:
    """What ``{name}`` becomes: planning's ``name`` when the invocation carries one, else worked out the same way.

    One file: its name without compression and format suffixes (``S1_R1.fastq.gz`` -> ``S1_R1``); a pair:
    the mates' common stem (``S1``); per experiment: the experiment id.
    """
    if invocation.get("name"):
        return str(invocation["name"])
    # Imported here, not at the top: planning pulls in the pipelines file's schema (pydantic) and the extractors
    # (numpy), a quarter of a second of CPU that every runner would pay at start for invocations planning named.
    from labmesh_dagster.pipelines.planning import file_stem, mate_of

    inputs = invocation["inputs"]
    if invocation["pipeline"].get("per") == "experiment" or not inputs:
        return str(invocation["experiment_id"])
    first = ObjectKey.parse(str(inputs[0]["key"])).name
    mate = mate_of(first) if len(inputs) == 2 else None
    return mate[0] if mate else file_stem(first)


def placeholder_values(
    invocation: Mapping[str, Any], inputs: Sequence[LocalInput], input_dir: Path, output_dir: Path
) -> dict[str, Value]:
    """The value of every placeholder for this invocation (contract section 1)."""
    pipeline = invocation["pipeline"]
    resources = {**DEFAULT_RESOURCES, **(pipeline.get("resources") or {})}
    by_role = {item.role: item for item in inputs}
    per = pipeline.get("per", "file")
    values: dict[str, Value] = {
        "inputs": [str(item.path) for item in sorted(inputs, key=lambda item: str(item.key))],
        "input_dir": str(input_dir),
        "output_dir": str(output_dir),
        "threads": str(max(1, math.ceil(float(resources["cpu"])))),
        "experiment_id": str(invocation["experiment_id"]),
        "name": name_of(invocation),
    }
    if "read1" in by_role and "read2" in by_role:
        values["read1"], values["read2"] = str(by_role["read1"].path), str(by_role["read2"].path)
    elif per != "experiment" and len(inputs) == 1:
        values["input"] = str(inputs[0].path)
    return values


def command_of(invocation: Mapping[str, Any]) -> list[str]:
    """The argv template this invocation runs: a pair's ``paired_command`` where there is one."""
    pipeline = invocation["pipeline"]
    roles = {str(item.get("role", "input")) for item in invocation["inputs"]}
    if {"read1", "read2"} <= roles and pipeline.get("paired_command"):
        return list(pipeline["paired_command"])
    return list(pipeline["command"])


def tool_environment(work_dir: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tools' environment: labmesh's interpreter folder first on PATH, temporary files in the run's folder."""
    env = dict(os.environ if base is None else base)
    interpreter_dir = str(Path(sys.executable).parent)
    path = env.get("PATH", os.defpath)
    if path.split(os.pathsep)[0] != interpreter_dir:
        env["PATH"] = interpreter_dir + os.pathsep + path
    tmp = work_dir / "tmp"
    tmp.mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp)
    return env


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def stdout_file(pipeline: Mapping[str, Any], values: Mapping[str, Value], output_dir: Path) -> Path | None:
    """Where the tool's stdout goes when the pipeline names a ``stdout`` output file (placeholders allowed).

    Not in the pipelines file's schema yet (proposed): the runner honours it in an invocation so
    that tools reporting on stdout only need no wrapper once the schema takes it.
    """
    name = pipeline.get("stdout")
    if not name:
        return None
    path = (output_dir / expand_value(str(name), values)).resolve()
    if not path.is_relative_to(output_dir.resolve()):
        raise ValueError(f"stdout file {name!r} is outside the output folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def run_invocation(
    store: ObjectStore,
    invocation: Mapping[str, Any],
    *,
    scratch: Path | None = None,
    versions_cache: VersionCache | None = None,
) -> dict[str, Any]:
    """Run one invocation to its result (contract section 3). Never raises for the tool's or the inputs' faults."""
    pipeline = invocation["pipeline"]
    resources = {**DEFAULT_RESOURCES, **(pipeline.get("resources") or {})}
    timeout_seconds = float(resources["timeout_seconds"])
    memory_mib = int(resources["memory_mib"]) if resources.get("memory_mib") else None
    result: dict[str, Any] = {
        "invocation_id": invocation["invocation_id"],
        "status": "failed",
        "engine": pipeline.get("engine", "local"),
        "engine_run_id": None,
        "command_line": None,
        "tool_versions": {},
        "outputs": [],
        "exit_code": None,
        "stderr_tail": "",
        "started": _now(),
        "ended": None,
        "reason": None,
    }
    with tempfile.TemporaryDirectory(prefix=f"{invocation['invocation_id']}-", dir=scratch) as temp:
        work_dir = Path(temp)
        input_dir, output_dir = work_dir / "inputs", work_dir / "outputs"
        output_dir.mkdir()
        env = tool_environment(work_dir)
        try:
            inputs = local_inputs(store, invocation["inputs"], input_dir)
            values = placeholder_values(invocation, inputs, input_dir, output_dir)
            argv = expand_command(command_of(invocation), values)
            result["command_line"] = shlex.join(argv)
            result["tool_versions"] = tool_versions(
                pipeline.get("versions") or {}, cwd=work_dir, env=env, cache=versions_cache
            )
            stdout_path = stdout_file(pipeline, values, output_dir) or work_dir / "stdout.txt"
            outcome = run_tool(
                argv,
                cwd=work_dir,
                env=env,
                stdout_path=stdout_path,
                stderr_path=work_dir / "stderr.txt",
                timeout_seconds=timeout_seconds,
                memory_mib=memory_mib,
            )
        except ToolNotInstalled as exc:
            result.update(reason=str(exc), ended=_now())
            return result
        except (InputUnavailable, ValueError, KeyError, IndexError) as exc:
            result.update(reason=f"could not start {pipeline['name']}: {exc}", ended=_now())
            return result
        result.update(
            engine_run_id=f"{socket.gethostname()}:{outcome.pid}",
            exit_code=outcome.exit_code,
            stderr_tail=outcome.stderr_tail,
            started=outcome.started.isoformat(timespec="seconds"),
            ended=outcome.ended.isoformat(timespec="seconds"),
        )
        tool = Path(argv[0]).name
        if outcome.timed_out:
            result.update(status="timed_out", reason=outcome.reason(tool, timeout_seconds))
            return result
        if not outcome.succeeded:
            result["reason"] = outcome.reason(tool, timeout_seconds)
            return result
        if missing := missing_globs(output_dir, pipeline.get("outputs") or []):
            result["reason"] = f"{tool} wrote no output matching {', '.join(missing)}"
            return result
        try:
            result["outputs"] = stage_outputs(store, output_dir, str(invocation["staging_prefix"]))
        except Exception as exc:  # the store's fault, not the tool's: this invocation fails, the next ones run
            result["reason"] = f"could not stage the outputs of {tool}: {type(exc).__name__}: {exc}"
            return result
        result["status"] = "succeeded"
        return result


def stop_on_sigterm() -> None:
    """Turn SIGTERM (a cancelled run) into an exception, so the running tool's group is killed on the way out."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def main() -> None:
    from dagster_pipes import open_dagster_pipes

    from labmesh_dagster.ports import open_store

    stop_on_sigterm()
    with open_dagster_pipes() as pipes:
        store = open_store(pipes.get_extra("store"))
        invocations = pipes.get_extra("invocations")
        cache_file = pipes.extras.get(TOOL_VERSIONS_CACHE_EXTRA)
        versions_cache = VersionCache(Path(cache_file)) if cache_file else None
        pipes.log.info(f"running {len(invocations)} invocation(s)")
        for invocation in invocations:
            pipes.log.info(f"{invocation['invocation_id']}: {invocation['pipeline']['name']} on {invocation['label']}")
            result = run_invocation(store, invocation, versions_cache=versions_cache)
            if result["status"] != "succeeded":
                pipes.log.warning(f"{invocation['invocation_id']} {result['status']}: {result['reason']}")
            pipes.report_custom_message({"results": [result]})


if __name__ == "__main__":
    main()
