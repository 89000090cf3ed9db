"""A Pipes runner starts light: importing `tool_runner` (what every local run and ECS task does first) pulls in
neither numpy nor pydantic, whose import costs a quarter of a second of CPU per run; planning's helpers, which
need them, are imported only for an invocation that does not carry its planned ``name``."""

from __future__ import annotations

import json
import subprocess
import sys

from labmesh_dagster.pipelines.tool_runner import name_of

HEAVY = ("numpy", "pydantic", "dagster")


def test_importing_the_runner_loads_no_heavy_dependency() -> None:
    probe = (
        "import json, sys\n"
        "import dagster_pipes, labmesh_dagster.pipelines.tool_runner, labmesh_dagster.ports\n"
        f"print(json.dumps(sorted({{name.split('.')[0] for name in sys.modules}} & set({list(HEAVY)!r}))))\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(completed.stdout) == []


def test_an_invocation_without_its_planned_name_still_gets_one() -> None:
    pipeline = {"name": "fastp", "per": "pair"}
    pair = [
        {"key": "raw/EXP-1/fastq/S1_R1.fastq.gz", "sha256": "0" * 64, "role": "read1"},
        {"key": "raw/EXP-1/fastq/S1_R2.fastq.gz", "sha256": "1" * 64, "role": "read2"},
    ]
    assert name_of({"pipeline": pipeline, "experiment_id": "EXP-1", "inputs": pair}) == "S1"
    assert name_of({"pipeline": pipeline, "experiment_id": "EXP-1", "inputs": pair[:1]}) == "S1_R1"
    assert name_of({"pipeline": pipeline, "experiment_id": "EXP-1", "inputs": pair, "name": "planned"}) == "planned"
