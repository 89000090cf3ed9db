"""What `labmesh dev` sets up before it becomes `dagster dev`: Dagster's instance file, and the demo's dropper.

Pinned here: the `dagster.yaml` it writes is valid for Dagster (it loads into
a `DagsterInstance`) and turns run monitoring on with timeouts the run
launcher supports, and the launcher tells run monitoring when a run's worker
process is gone, so a run whose worker the OS killed fails (and is retried)
instead of holding its experiment's one run slot for ever; the demo's file dropper is
not left a child of dagster (which never waits for it, so it stayed a zombie
for as long as `make dev` ran), and it stops once dagster has exited.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import dagster as dg

from labmesh_dagster.cli import DAGSTER_YAML, prepare_home
from labmesh_dagster_tests.conftest import make_settings

CAP_SECONDS = 120
"""Against a dropper that never stops; a working one stops at its first look at the pipe."""

FAKE_DAGSTER = """\
#!{python}
# Stands in for `dagster dev`: it is exec'd in place of `labmesh dev`, so its children are what
# `labmesh dev` left it. It reports them and exits, as dagster would after Ctrl-C.
import json, os, sys

me = os.getpid()
children = []
for entry in os.listdir("/proc"):
    if entry.isdigit():
        try:
            with open(f"/proc/{{entry}}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            children.append(int(entry))
print(json.dumps({{"children": children, "argv": sys.argv[1:], "warnings": os.environ.get("PYTHONWARNINGS")}}))
"""


def test_the_written_dagster_yaml_loads_and_monitors_runs(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")

    prepare_home(settings)
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))

    try:
        monitoring = instance.get_settings("run_monitoring")
        assert monitoring.get("enabled") is True
        # The default launcher cannot resume a run (Dagster refuses non-zero), nor check a worker's health:
        # a killed worker's run is ended by the runtime limit, a stuck start or cancel by their timeouts.
        assert monitoring["max_resume_run_attempts"] == 0
        assert not instance.run_launcher.supports_resume_run
        for timeout in ("start_timeout_seconds", "cancel_timeout_seconds", "poll_interval_seconds"):
            assert 0 < monitoring[timeout] <= 600, timeout
        assert monitoring["poll_interval_seconds"] < monitoring["start_timeout_seconds"]
        assert 3600 <= monitoring["max_runtime_seconds"] <= 24 * 3600
        assert instance.get_settings("run_retries") == {"enabled": True, "max_retries": 2}
        # Without a health check, the daemon never learns that a STARTED run's worker is gone.
        assert instance.run_launcher.supports_check_run_worker_health
    finally:
        instance.dispose()


@dg.op
def nothing() -> None:
    """A step that does nothing: the run is what the test needs."""


@dg.job
def idle() -> None:
    nothing()


def test_run_monitoring_learns_when_a_runs_worker_process_is_gone(tmp_path: Path) -> None:
    """The launcher answers from the pid the worker recorded at its start: gone means the run has failed."""
    settings = make_settings(tmp_path / "home")
    prepare_home(settings)
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    try:
        run = instance.get_run_by_id(idle.execute_in_process(instance=instance).run_id)
        assert run is not None
        launcher = instance.run_launcher
        finished = subprocess.Popen([sys.executable, "-c", "pass"])
        finished.wait()  # reaped: its pid names no process now

        before_start = launcher.check_run_worker_health(run)
        instance.report_engine_event(f"Started process for run (pid: {finished.pid}).", run)
        gone = launcher.check_run_worker_health(run)
        instance.report_engine_event(f"Started process for run (pid: {os.getpid()}).", run)  # resumed, say
        alive = launcher.check_run_worker_health(run)
    finally:
        instance.dispose()

    assert before_start.status.value == "RUNNING"  # nothing recorded yet: left to the runtime limit
    assert gone.status.value == "FAILED" and str(finished.pid) in (gone.msg or "")
    assert alive.status.value == "RUNNING"


@dg.op(pool="healthomics_import")
def import_step() -> None:
    """A step of the pool `sequence_read_sets` runs in."""


@dg.job
def importing() -> None:
    import_step()


def test_the_written_dagster_yaml_bounds_the_healthomics_import_pool_and_keeps_one_run_per_experiment(
    tmp_path: Path,
) -> None:
    """Pools take their limit from `concurrency`, which replaces `run_queue`: the run limits must survive the move."""
    settings = make_settings(tmp_path / "home")
    prepare_home(settings)
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    try:
        importing.execute_in_process(instance=instance)
        pool = instance.event_log_storage.get_concurrency_info("healthomics_import")
        run_queue = instance.get_concurrency_config().run_queue_config
    finally:
        instance.dispose()

    assert pool.slot_count == 2
    assert run_queue is not None and run_queue.max_concurrent_runs == 4
    assert run_queue.tag_concurrency_limits == [
        {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    ]


def test_the_written_dagster_yaml_shows_no_first_visit_prompts(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")

    prepare_home(settings)
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    try:
        assert instance.nux_enabled is False  # no newsletter dialog on the first visit
        assert instance.get_settings("telemetry") == {"enabled": False}
    finally:
        instance.dispose()


def _daemon_warnings(dagster_home: Path) -> list[str]:
    """What the run-retry daemon logs when it reads its cursors, as on its first start."""
    from dagster._daemon.auto_run_reexecution.event_log_consumer import (
        DAGSTER_EVENT_TYPES,
        _fetch_persisted_cursors,
    )

    records: list[logging.LogRecord] = []
    logger = logging.getLogger("labmesh-test-daemon")
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        _fetch_persisted_cursors(instance, DAGSTER_EVENT_TYPES, logger)
    finally:
        instance.dispose()
        logger.removeHandler(handler)
    return [record.getMessage() for record in records if record.levelno >= logging.WARNING]


def test_the_daemon_starts_quietly_on_a_new_home(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")

    prepare_home(settings)

    assert _daemon_warnings(settings.dagster_home) == []


def test_a_home_with_runs_keeps_the_daemons_own_cursor_logic(tmp_path: Path) -> None:
    """A cursor at 0 on a home with history would replay old failures: such a home is left to the daemon."""
    settings = make_settings(tmp_path / "home")
    settings.dagster_home.mkdir(parents=True)
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    try:
        idle.execute_in_process(instance=instance)
    finally:
        instance.dispose()

    prepare_home(settings)

    assert any("No cursor" in warning for warning in _daemon_warnings(settings.dagster_home))


def test_a_dagster_yaml_an_earlier_labmesh_wrote_and_nobody_changed_is_brought_up_to_date(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    settings.dagster_home.mkdir(parents=True)
    config = settings.dagster_home / "dagster.yaml"
    nux = "# No first-visit prompts in the UI (Dagster's newsletter dialog).\nnux:\n  enabled: false\n"
    earlier = DAGSTER_YAML.replace(nux, "")
    assert earlier != DAGSTER_YAML
    config.write_text(earlier, encoding="utf-8")

    prepare_home(settings)

    assert config.read_text(encoding="utf-8") == DAGSTER_YAML


def test_a_dagster_yaml_the_user_changed_is_kept(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    settings.dagster_home.mkdir(parents=True)
    (settings.dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: true\n", encoding="utf-8")

    prepare_home(settings)

    assert (settings.dagster_home / "dagster.yaml").read_text(encoding="utf-8") == "telemetry:\n  enabled: true\n"


def _executable(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_the_demo_dropper_is_no_child_of_dagster_and_stops_when_dagster_exits(tmp_path: Path) -> None:
    """`labmesh dev` on a fresh home, with a stand-in `dagster` in the environment's bin folder.

    `subprocess.run` returns once every holder of the output pipes has closed
    them, the dropper included: its return says the dropper stopped when
    the stand-in exited.
    """
    environment = tmp_path / "bin"
    environment.mkdir()
    python = _executable(environment / "python", f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    _executable(environment / "dagster", FAKE_DAGSTER.format(python=sys.executable))
    # `labmesh dev` finds dagster beside its own interpreter and starts the dropper with that interpreter.
    script = (
        f"import sys\nsys.executable = {str(python)!r}\nfrom labmesh_dagster.cli import main\nsys.exit(main(['dev']))\n"
    )
    env = {**os.environ, "LABMESH_HOME": str(tmp_path / "home")}

    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=CAP_SECONDS
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["argv"][0] == "dev"
    assert "labmesh demo: wrote ELN record" in done.stderr  # the demo was seeded, so its dropper was started
    assert "labmesh: the lab's lineage: http://127.0.0.1:3000/asset-groups" in done.stderr
    assert report["children"] == [], "dagster was left a child it will never wait for"
    # dagster dev's warning that `dg dev` supersedes it is silenced, by its text only.
    assert report["warnings"] == "ignore:Function `dev_command` is superseded:FutureWarning"
