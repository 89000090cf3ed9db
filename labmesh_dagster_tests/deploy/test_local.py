"""`labmesh deploy local` before anything starts: what it refuses, writes and runs.

Pinned here: without ``LABMESH_DATABASE_URL`` it refuses to start, naming
the variable; it writes Dagster's PostgreSQL instance file and a workspace
that points the webserver and the daemon at the gRPC code server's port, and
neither file holds the database URL; an instance file a person edited is
kept; the four processes are a gRPC code server, dagster-webserver,
dagster-daemon and `labmesh api`, none of them `dagster dev`; and ``--stop``
interrupts the processes its pid files name, while a pid file naming a
process that is gone, or now another program, is only removed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labmesh_dagster import cli
from labmesh_dagster.deploy.instance import deployment_dagster_yaml
from labmesh_dagster.deploy.local import SERVICES, Addresses, Layout, command, prepare
from labmesh_dagster_tests.conftest import make_settings

URL = "postgresql://lab:s3cret@db.internal:5432/labmesh"
ADDRESSES = Addresses(host="127.0.0.1", webserver_port=13000, grpc_port=14000, portal_port=18000)


def test_without_a_database_url_it_refuses_and_says_which_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path / "home")

    code = cli.main(["deploy", "local"], settings=settings)

    assert code == 2
    assert "LABMESH_DATABASE_URL is not set" in capsys.readouterr().err
    assert not (tmp_path / "home" / "deploy").exists()


def test_it_writes_the_postgres_instance_and_a_workspace_on_the_grpc_port(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", LABMESH_DATABASE_URL=URL)

    layout = prepare(settings, ADDRESSES)

    assert (layout.dagster_home / "dagster.yaml").read_text(encoding="utf-8") == deployment_dagster_yaml()
    workspace = yaml.safe_load(layout.workspace.read_text(encoding="utf-8"))
    assert workspace == {
        "load_from": [{"grpc_server": {"host": "127.0.0.1", "port": 14000, "location_name": "labmesh"}}]
    }
    for path in layout.root.rglob("*"):
        if path.is_file():
            assert "s3cret" not in path.read_text(encoding="utf-8"), path


def test_an_instance_file_a_person_edited_is_kept(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", LABMESH_DATABASE_URL=URL)
    config = Layout.of(settings).dagster_home / "dagster.yaml"
    prepare(settings, ADDRESSES)
    edited = config.read_text(encoding="utf-8").replace("max_concurrent_runs: 4", "max_concurrent_runs: 16")
    config.write_text(edited, encoding="utf-8")

    prepare(settings, ADDRESSES)

    assert config.read_text(encoding="utf-8") == edited


def test_the_four_processes_are_the_production_shape_and_none_is_dagster_dev(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "deploy")
    argv = {name: command(name, layout, ADDRESSES) for name in SERVICES}

    assert argv["code-server"][1:5] == ["-m", "labmesh_dagster.deploy.code_server", "-m", "labmesh_dagster.definitions"]
    assert "14000" in argv["code-server"]
    assert Path(argv["webserver"][0]).name == "dagster-webserver"
    assert Path(argv["daemon"][0]).name == "dagster-daemon" and argv["daemon"][1] == "run"
    for name in ("webserver", "daemon"):
        assert str(layout.workspace) in argv[name], name
    assert argv["portal"][1:4] == ["-m", "labmesh_dagster.cli", "api"]
    assert all("dev" not in line for line in argv.values())


def test_stop_interrupts_the_recorded_processes_and_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path / "home")
    layout = Layout.of(settings)
    layout.pid_file("portal").parent.mkdir(parents=True)
    # Stands in for the portal: its command line names labmesh's CLI, and Ctrl-C ends it as it ends the portal.
    # Its SIGINT is at the default even where the tests run with it ignored (a background job), as the portal
    # sets its own handler.
    portal = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "labmesh_dagster.cli"],
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    layout.pid_file("portal").write_text(f"{portal.pid}\n", encoding="ascii")
    layout.pid_file("webserver").write_text(f"{gone.pid}\n", encoding="ascii")
    layout.pid_file("daemon").write_text(f"{os.getpid()}\n", encoding="ascii")  # another program: this test
    try:
        code = cli.main(["deploy", "local", "--stop"], settings=settings)

        assert code == 0
        assert portal.wait(timeout=30) != 0  # ended by the interrupt (KeyboardInterrupt), not by itself
        assert f"stopped portal (pid {portal.pid})" in capsys.readouterr().err
        assert not any(layout.pid_file(name).exists() for name in ("portal", "webserver", "daemon"))
    finally:
        portal.kill()
        portal.wait()
