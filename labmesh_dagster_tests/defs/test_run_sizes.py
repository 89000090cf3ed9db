"""Each run carries the size its asset needs, in the tags ECS's and Kubernetes' run launchers read.

Pinned here: a registration run started by the ELN sensor and a promotion
run started by the landing sensor are tagged with their assets' CPU and
memory (``ecs/cpu``, ``ecs/memory``) and the same as a pod's requests and
limits (``dagster-k8s/config``); automation's runs are sized for processed
data; every size is a pair Fargate accepts; a run of several assets is sized
for the largest.
"""

from __future__ import annotations

import json

import dagster as dg

from labmesh_dagster.defs.run_resources import RUN_SIZES, run_size, run_tags
from labmesh_dagster_tests.conftest import Lab

FARGATE_MEMORY_MIB = {256: (512, 2048), 512: (1024, 4096), 1024: (2048, 8192), 2048: (4096, 16384)}


def test_the_sensors_runs_carry_their_assets_sizes(lab: Lab) -> None:
    lab.write_record("exp.yaml", {"id": "EXP-S", "title": "Sizes", "samples": ["S1"]})
    [registration] = lab.run_sensor("eln_sensor")
    lab.land("EXP-S", "S1.fastq", b"@r1\nACGT\n+\nIIII\n")
    [promotion] = lab.run_sensor("landing_sensor")

    assert registration.dagster_run.tags["ecs/cpu"] == "256" and registration.dagster_run.tags["ecs/memory"] == "512"
    assert promotion.dagster_run.tags["ecs/cpu"] == "1024" and promotion.dagster_run.tags["ecs/memory"] == "4096"
    pod = json.loads(promotion.dagster_run.tags["dagster-k8s/config"])
    assert pod["container_config"]["resources"]["requests"] == {"cpu": "1000m", "memory": "4096Mi"}


def test_automation_sizes_its_runs_for_processed_data(lab: Lab) -> None:
    automation = lab.defs.resolve_sensor_def("labmesh_automation")
    assert isinstance(automation, dg.AutomationConditionSensorDefinition)
    assert automation.run_tags["ecs/memory"] == str(RUN_SIZES["processed_dataset"].memory_mib)


def test_every_size_is_one_fargate_accepts() -> None:
    for asset, size in RUN_SIZES.items():
        low, high = FARGATE_MEMORY_MIB[size.cpu_units]
        assert low <= size.memory_mib <= high, asset


def test_a_run_of_several_assets_is_sized_for_the_largest() -> None:
    assert run_size("experiment", "processed_dataset") == RUN_SIZES["processed_dataset"]
    assert run_tags("experiment")["ecs/cpu"] == "256"
