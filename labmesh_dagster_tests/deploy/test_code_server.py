"""The local deployment's code server forks its runs from a process that preloaded `PRELOADED_MODULES`.

The fork server ignores a module it cannot import, and forks with whatever threads the imports started, so
both are pinned here; that the runs really fork from it is checked in `test_kill_and_restart`.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from labmesh_dagster.deploy.code_server import ONE_THREAD_ENVIRONMENT, PRELOADED_MODULES

IMPORT_AND_COUNT_THREADS = (
    "import importlib, os, sys\n"
    "for name in sys.argv[1:]:\n"
    "    importlib.import_module(name)\n"
    "print(len(os.listdir('/proc/self/task')))\n"
)


@pytest.mark.slow  # a new Python importing Dagster and labmesh: a few seconds
def test_every_preloaded_module_imports_and_starts_no_thread() -> None:
    """A thread (Python's or a native library's) running at fork time would be missing, mid-work, in every run."""
    imported = subprocess.run(
        [sys.executable, "-c", IMPORT_AND_COUNT_THREADS, *PRELOADED_MODULES],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, **ONE_THREAD_ENVIRONMENT},
    )

    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "1", f"threads after importing the preloaded modules: {imported.stdout}"
