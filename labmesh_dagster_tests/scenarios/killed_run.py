"""Run `raw_dataset` for one experiment in this process and SIGKILL the process after its Nth landing delete.

Used by the crash matrix as ``python -m labmesh_dagster_tests.scenarios.killed_run HOME DAGSTER_HOME EXP N``:
the kernel stops the run mid-promotion, with no exception handler, ``finally`` or lineage FAIL to help.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import dagster as dg

from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.definitions import build_definitions
from labmesh_dagster_tests.conftest import make_settings


def kill_after(calls: int) -> None:
    original = LocalObjectStore.delete_if_unchanged
    done = 0

    def delete_then_die(self: LocalObjectStore, *args: Any, **kwargs: Any) -> None:
        nonlocal done
        original(self, *args, **kwargs)
        done += 1
        if done == calls:
            os.kill(os.getpid(), signal.SIGKILL)

    LocalObjectStore.delete_if_unchanged = delete_then_die  # type: ignore[method-assign]


def main(home: str, dagster_home: str, experiment_id: str, calls: str) -> None:
    kill_after(int(calls))
    defs = build_definitions(make_settings(Path(home)))
    instance = dg.DagsterInstance.local_temp(dagster_home)
    defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, partition_key=experiment_id, asset_selection=[dg.AssetKey("raw_dataset")]
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
