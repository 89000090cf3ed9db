"""The production shape on one machine survives losing its daemon and its code server mid-flow.

Contract: `labmesh deploy local` brings up a gRPC code server,
dagster-webserver, one dagster-daemon and the portal on a fresh PostgreSQL
database and an empty home, each answering, and seeds the demo lab, whose
sensors (in the daemon) launch runs through the code server. While the first
runs are in flight the daemon and the code server are killed with SIGKILL
(no handler, no clean-up) and started again alone with ``--only``. The lab
then converges by itself: every demo experiment is registered, every landed
file is in raw exactly once with the bytes that landed and landing is empty,
the final file is where it was put, the catalog lists each raw dataset's
files once and has every processed and final dataset, and no run is left
queued, starting or started. Ctrl-C then stops both commands cleanly and
leaves none of their processes behind.

Nothing here asserts time: the phases' durations are printed, and a wait gives
up only when the lab has stopped moving (its logs, its runs, what is still
missing) for a while, so a busy machine makes it slower, never failing.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from labmesh_dagster.deploy.instance import DAGSTER_DATABASE_URL_VARIABLE, dagster_database_url
from labmesh_dagster.deploy.local import SERVICES, Layout
from labmesh_dagster.ports import Ports
from labmesh_dagster.settings import Settings
from labmesh_dagster_tests.conftest import QUICK_PIPELINES
from labmesh_dagster_tests.deploy.harness import (
    Supervisor,
    alive,
    command_lines_of_children,
    expected_files,
    lab_problems,
    log_sizes,
    pid_of,
    wait_for,
)
from labmesh_dagster_tests.scenarios.dev_server import free_port

START_PATIENCE_SECONDS = 300
"""Starting: the processes' logs and `labmesh deploy local`'s output unchanged this long is a hang."""
FIRST_RUN_PATIENCE_SECONDS = 240
CONVERGE_PATIENCE_SECONDS = 480
"""Converging: nothing missing changed and no run changed status this long is a lab that will not converge.
Above run monitoring's 300 s start timeout, so that a run left STARTING by the killed daemon (rare: it must
die between queueing a run and handing it to the code server) is failed, retried and finished."""
STOP_CAP_SECONDS = 90


def log_tails(layout: Layout, chars: int = 2500) -> str:
    tails = []
    for name in (*SERVICES, "demo"):
        path = layout.log(name)
        text = path.read_text(encoding="utf-8", errors="replace")[-chars:] if path.exists() else "(no log)"
        tails.append(f"--- {name}:\n{text}")
    return "\n".join(tails)


@pytest.mark.slow
def test_the_lab_converges_after_its_daemon_and_code_server_are_killed_mid_flow(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch, record_property: Callable[[str, object], None]
) -> None:
    home = tmp_path / "home"
    env = {
        **os.environ,
        "LABMESH_HOME": str(home),
        "LABMESH_DATABASE_URL": postgres_url,
        "LABMESH_DEMO": "1",
        # Sensors look every 2 s and landed files are taken at once: the flow is the same, only sooner.
        "LABMESH_SENSOR_INTERVAL_SECONDS": "2",
        "LABMESH_LANDING_SETTLE_SECONDS": "0",
        "LABMESH_ADMIN_NOTICE": "0",
        # What is under test is recovery, not the tools: the quick pipeline (the real tools run in test_dev_server).
        "LABMESH_PIPELINES": str(QUICK_PIPELINES),
    }
    env.pop("DAGSTER_HOME", None)
    addresses = ["--port", str(free_port()), "--grpc-port", str(free_port()), "--portal-port", str(free_port())]
    settings = Settings.from_env(env)
    layout = Layout.of(settings)
    phases: dict[str, float] = {}

    began = time.monotonic()
    everything = Supervisor.start(addresses, env, tmp_path / "deploy.log")
    restarted: Supervisor | None = None
    instance: dg.DagsterInstance | None = None
    try:
        everything.wait_running(lambda: log_sizes(layout.log("x").parent), START_PATIENCE_SECONDS)
        phases["all four answer"] = time.monotonic() - began
        printed = everything.output()
        for name in SERVICES:
            assert f"labmesh deploy: {name}" in printed, printed
        assert "sign in to the portal as demo" in printed

        monkeypatch.setenv(DAGSTER_DATABASE_URL_VARIABLE, dagster_database_url(postgres_url))
        instance = dg.DagsterInstance.from_config(str(layout.dagster_home))
        started = dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
        phases["first run started"] = wait_for(
            f"a run started by the daemon through the code server\n{log_tails(layout)}",
            lambda: bool(instance.get_runs(filters=started, limit=1)),
            progress=lambda: log_sizes(layout.log("x").parent),
            patience=FIRST_RUN_PATIENCE_SECONDS,
            poll=0.5,
        )
        # Runs fork from the code server's fork server, which imported Dagster and labmesh once, rather than
        # each being spawned as a new Python that imports them again.
        code_server_children = command_lines_of_children(pid_of(layout.pid_file("code-server")))
        assert any("multiprocessing.forkserver" in line for line in code_server_children), code_server_children
        assert not any("spawn_main" in line for line in code_server_children), code_server_children

        # Mid-flow: runs in flight, more to queue, files still landing. No handler runs on SIGKILL.
        killed = {name: pid_of(layout.pid_file(name)) for name in ("daemon", "code-server")}
        in_flight = len(instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])))
        for pid in killed.values():
            os.kill(pid, signal.SIGKILL)
        wait_for("the killed processes to be gone", lambda: not any(map(alive, killed.values())), patience=30, poll=0.2)
        wait_for(
            "labmesh deploy local to notice",
            lambda: everything.output().count("exited with code -9") == 2,
            progress=everything.output,
            patience=60,
        )
        assert everything.process.poll() is None, "the webserver and the portal went down with the others"

        restart_began = time.monotonic()
        restarted = Supervisor.start(
            [*addresses, "--only", "code-server", "--only", "daemon"], env, tmp_path / "restart.log"
        )
        restarted.wait_running(lambda: log_sizes(layout.log("x").parent), START_PATIENCE_SECONDS)
        phases["restarted"] = time.monotonic() - restart_began
        assert {pid_of(layout.pid_file(name)) for name in killed}.isdisjoint(killed.values())

        expected = expected_files()
        ports = Ports(settings)
        problems: list[str] = []

        def converged() -> bool:
            problems[:] = lab_problems(ports, instance, expected)
            return not problems

        converge_began = time.monotonic()
        try:
            wait_for(
                "the lab to converge",
                converged,
                progress=lambda: (tuple(problems), Counter(run.status for run in instance.get_runs())),
                patience=CONVERGE_PATIENCE_SECONDS,
                poll=3,
            )
        except pytest.fail.Exception as error:
            raise AssertionError(f"{error}; still: {problems}\n{log_tails(layout)}") from None
        phases["converged after the restart"] = time.monotonic() - converge_began
        runs = instance.get_runs()
        outcomes = Counter(run.status.value for run in runs)
        # Which partition ran what more than once (a retry, a request replayed after the restart): harmless,
        # as every step is idempotent, and worth seeing.
        again = Counter(
            (run.tags.get("dagster/partition"), run.tags.get("dagster/sensor_name", "automation")) for run in runs
        )
        print(
            f"\nlabmesh deploy local, killed with {in_flight} run(s) in flight: "
            + ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in phases.items())
            + f"; {len(runs)} runs {dict(outcomes)}; more than once: {[key for key, n in again.items() if n > 1]}"
        )
        for phase, seconds in phases.items():
            record_property(phase.replace(" ", "_"), round(seconds, 1))
    finally:
        if instance is not None:
            instance.dispose()
        codes = [supervisor.interrupt(STOP_CAP_SECONDS) for supervisor in (restarted, everything) if supervisor]
    assert codes == [0] * len(codes), f"Ctrl-C ended labmesh deploy local with {codes}:\n{everything.output()[-3000:]}"
    for name in SERVICES:
        assert not layout.pid_file(name).exists(), f"{name}'s pid file outlived the deployment"
