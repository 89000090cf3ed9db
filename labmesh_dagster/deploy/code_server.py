"""The code server of `labmesh deploy local`: `dagster api grpc`, its runs forked from a preloaded process.

Dagster's code server starts every run as a new Python process through
``multiprocessing``'s ``spawn``: the process re-runs the server's main script,
then imports Dagster, its PostgreSQL storage and labmesh's definitions
before it does any work. Measured in the soak, that is two seconds of CPU
per run and most of a run's cost when an experiment's runs each move a few
small files; on two cores it is what bounds how many experiments an hour a
lab's machine ingests.

This server is Dagster's own with one difference: runs are started through
``multiprocessing``'s ``forkserver`` instead, a process that imports
`PRELOADED_MODULES` once and forks one child per run. Forking the gRPC
server itself would not be safe (its threads and connections would be
copied half-way), but the fork server is a separate, single-threaded
process that holds no connection, so each child starts clean. Everything
else is Dagster's code path: the same ``start_run_in_subprocess`` target,
event queue and termination event, and the children are still waited on,
cancelled and reported by the code server.

It serves only where Dagster's default run launcher starts runs through
the code server (one machine). With ``EcsRunLauncher`` or ``K8sRunLauncher``
each run is a task or pod of its own, and the image's ``dagster code-server``
command is the right one.

Run: ``python -m labmesh_dagster.deploy.code_server <arguments of dagster api grpc>``
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Sequence
from typing import Any

from dagster._grpc import server as dagster_grpc_server

PRELOADED_MODULES = (
    "dagster._grpc.impl",
    "dagster_postgres",
    "psycopg",
    "upath",
    "labmesh_dagster.definitions",
    "labmesh_dagster.lineage.events",
)
"""What every run imports before its first step: Dagster's run machinery, the instance's PostgreSQL storage,
labmesh's definitions and what they import when a run starts (its database driver, lineage events).
Only modules whose import starts no thread and opens no connection belong here: the fork server forks
with whatever they leave behind."""

START_METHOD = "forkserver"

ONE_THREAD_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1"}
"""numpy's OpenBLAS starts a pool of threads when it is imported. OpenBLAS stops them around a fork, but the
fork server is kept to one thread outright: a run's work here is hashing, parsing and database writes, never
linear algebra. Set only where the operator has not set it."""


class ForkingApiServer(dagster_grpc_server.DagsterApiServer):
    """Dagster's gRPC servicer, starting its runs from the fork server rather than by spawn."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mp_ctx = multiprocessing.get_context(START_METHOD)  # type: ignore[assignment]


def main(argv: Sequence[str] | None = None) -> None:
    """`dagster api grpc` with ``argv``, serving through `ForkingApiServer`."""
    for name, value in ONE_THREAD_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    multiprocessing.set_forkserver_preload(list(PRELOADED_MODULES))
    # `dagster api grpc` imports the servicer class from this module when it builds the server.
    dagster_grpc_server.DagsterApiServer = ForkingApiServer  # type: ignore[misc]
    from dagster._cli import main as dagster_main

    sys.argv = ["dagster", "api", "grpc", *(sys.argv[1:] if argv is None else argv)]
    dagster_main()


if __name__ == "__main__":
    main()
