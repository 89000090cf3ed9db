"""Every experiment is a dynamic partition, added by the sensor that first requests a run for it."""

from collections.abc import Iterable

import dagster as dg

EXPERIMENTS = "experiments"
experiments_partitions = dg.DynamicPartitionsDefinition(name=EXPERIMENTS)


def partitions_to_add(
    instance: dg.DagsterInstance, experiment_ids: Iterable[str]
) -> list[dg.AddDynamicPartitionsRequest]:
    """A request adding the experiments Dagster does not know yet.

    Every sensor adds the partition of each experiment it requests a run for,
    so that a Dagster instance whose storage was reset recovers by itself from
    what the ELN and the catalog know.
    """
    missing = sorted({e for e in experiment_ids if not instance.has_dynamic_partition(EXPERIMENTS, e)})
    return [experiments_partitions.build_add_request(missing)] if missing else []
