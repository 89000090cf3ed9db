"""`LocalRunLauncher`: Dagster's default run launcher, which can also say whether a run's process is alive.

Run monitoring (the daemon) asks the run launcher whether each STARTED
run's worker is still there (`check_run_worker_health`). The default
launcher cannot answer, so the only one who noticed a dead worker was the
code server that started it; when the code server went down too (killed by
the OS with its runs, `labmesh dev` stopped mid-run), the run stayed
STARTED for ever and held its experiment's one run slot. A worker of the
default launcher is a process on this machine that records its pid when it
starts (the "Started process for run" engine event), so whether it lives is
one signal 0 away. A worker found gone fails its run, which run retries
then start again; a run whose pid is not recorded yet, or whose pid another
process took since, reads as running, and the runtime limit ends it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import dagster as dg

# The launcher interface names its answer with these; Dagster exports no public alias for them.
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus

STARTED_PROCESS = re.compile(r"Started process for run \(pid: (\d+)\)")


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid the run's latest worker recorded when it started, or None before it did."""
    for record in reversed(instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)):
        event = record.dagster_event
        message = (event.message if event is not None else None) or record.message or ""
        found = STARTED_PROCESS.search(message)
        if found:
            return int(found.group(1))
    return None


def process_alive(pid: int) -> bool:
    """Whether a process of this pid runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        state = stat.read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (macOS), or gone meanwhile: signal 0 said it was there
        return True
    return state not in {"Z", "X"}


class LocalRunLauncher(dg.DefaultRunLauncher):
    """Launches runs as the default launcher does; answers run monitoring's health check from the worker's pid."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        pid = worker_pid(self._instance, run.run_id)
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no worker pid recorded yet")
        if process_alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker pid {pid} is alive")
        return CheckRunHealthResult(WorkerStatus.FAILED, f"the run's worker process (pid {pid}) is gone")
