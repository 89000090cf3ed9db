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
    what the ELN and the catalog know. One query asks about them all: a tick that requests a hundred runs
    would otherwise spend a query on each.
    """
    wanted = sorted(set(experiment_ids))
    if not wanted:
        return []
    missing = sorted(set(wanted) - set(instance.get_existing_dynamic_partitions(EXPERIMENTS, wanted)))
    return [experiments_partitions.build_add_request(missing)] if missing else []
