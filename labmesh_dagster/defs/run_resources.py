"""How big each asset's runs are, told to the run launcher through run tags.

On ECS (`dagster_aws.ecs.EcsRunLauncher`) each run is a Fargate task sized by
its ``ecs/cpu`` (CPU units, 1024 to a vCPU) and ``ecs/memory`` (MiB) tags;
on Kubernetes (`dagster_k8s.K8sRunLauncher`) each run is a pod whose
container takes its requests and limits from ``dagster-k8s/config``. A
run launched locally ignores both. Registering an experiment moves no data;
promoting reads every file once; a pipeline's tools want the most.
The sizes are valid Fargate pairs. A run that materializes several assets
(a resumed run, a person's) is sized for the largest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class RunSize:
    cpu_units: int
    """ECS CPU units: 1024 is one vCPU."""
    memory_mib: int


RUN_SIZES = {
    "experiment": RunSize(256, 512),
    "raw_dataset": RunSize(1024, 4096),
    "processed_dataset": RunSize(2048, 8192),
    "final_dataset": RunSize(1024, 4096),
    "sequence_read_sets": RunSize(256, 1024),
}
DEFAULT_SIZE = RunSize(1024, 2048)
"""What the launcher's own default gives a run these tags do not size (deploy/aws/dagster.yaml)."""


def run_size(*assets: str) -> RunSize:
    sizes = [RUN_SIZES.get(asset, DEFAULT_SIZE) for asset in assets] or [DEFAULT_SIZE]
    return RunSize(max(size.cpu_units for size in sizes), max(size.memory_mib for size in sizes))


def run_tags(*assets: str) -> dict[str, str]:
    """The run tags that size a run materializing ``assets`` on ECS and on Kubernetes."""
    size = run_size(*assets)
    millicores = size.cpu_units * 1000 // 1024
    resources = {
        "requests": {"cpu": f"{millicores}m", "memory": f"{size.memory_mib}Mi"},
        "limits": {"memory": f"{size.memory_mib}Mi"},
    }
    return {
        "ecs/cpu": str(size.cpu_units),
        "ecs/memory": str(size.memory_mib),
        "dagster-k8s/config": json.dumps({"container_config": {"resources": resources}}, sort_keys=True),
    }
