"""Sensors add the partitions of the experiments they request runs for, and only those Dagster lacks."""

from __future__ import annotations

import dagster as dg

from labmesh_dagster.defs.partitions import EXPERIMENTS, partitions_to_add


def test_only_the_experiments_dagster_lacks_are_added_once_each_in_order() -> None:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(EXPERIMENTS, ["EXP-1", "EXP-3"])

        [request] = partitions_to_add(instance, ["EXP-4", "EXP-1", "EXP-2", "EXP-4", "EXP-3"])

        assert request.partitions_def_name == EXPERIMENTS
        assert request.partition_keys == ["EXP-2", "EXP-4"]


def test_nothing_is_requested_when_dagster_knows_them_all_or_none_are_asked_about() -> None:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(EXPERIMENTS, ["EXP-1"])

        assert partitions_to_add(instance, ["EXP-1"]) == []
        assert partitions_to_add(instance, []) == []
