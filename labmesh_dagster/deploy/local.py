"""`labmesh deploy local`: the production shape on one machine, every process on its own, on PostgreSQL.

Four processes, as a deployment runs them in containers, none of them
`dagster dev`:

- ``code-server``: `dagster api grpc` serving labmesh's definitions; runs are
  launched through it (forked from its preloaded fork server,
  `labmesh_dagster.deploy.code_server`), as in a deployment whose code
  location is its own service;
- ``webserver``: `dagster-webserver`, the UI and GraphQL API;
- ``daemon``: one `dagster-daemon`: sensors, declarative automation, the
  queued run coordinator, run retries and run monitoring;
- ``portal``: `labmesh api`, the portal and the ELN webhooks.

Dagster's instance (its own ``DAGSTER_HOME`` under ``$LABMESH_HOME/deploy``)
is on PostgreSQL (`labmesh_dagster.deploy.instance`), and the webserver and
daemon find the code server through a workspace file naming its port. Each
process writes its own log file and pid file there, and ``--stop`` stops,
from another shell, what those pid files name.

Each process is started in a session of its own, so Ctrl-C in a terminal
reaches only `labmesh deploy local`, which then stops them in order (the
code server last) with the interrupt Dagster expects, and kills any that
does not stop in time. A process that dies is reported, not restarted: the
machine's supervisor (systemd, a container platform) owns restarts, and a
person restarts one process alone with ``--only``. Nothing is lost meanwhile:
sensor cursors, queued runs and run status are in PostgreSQL; a run whose
worker died is failed by run monitoring and retried.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, TextIO

from labmesh_dagster.connectors.postgres import redacted
from labmesh_dagster.core.errors import LabmeshError
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.deploy.instance import (
    DAGSTER_DATABASE_URL_VARIABLE,
    DATABASE_URL_VARIABLE,
    dagster_database_url,
    deployment_dagster_yaml,
    write_dagster_yaml,
)
from labmesh_dagster.settings import Settings

if TYPE_CHECKING:
    import dagster as dg

SERVICES = ("code-server", "webserver", "daemon", "portal")
"""In the order they start; they stop in the reverse order."""

LOCATION_NAME = "labmesh"
DEFINITIONS_MODULE = "labmesh_dagster.definitions"
CODE_SERVER_MODULE = "labmesh_dagster.deploy.code_server"
READY_SECONDS = 180.0
"""How long a process may take to answer. Loading the definitions on a busy two-core machine takes 10-30 s."""
STOP_SECONDS = 30.0
"""How long a process may take to stop after its interrupt before it is killed."""
POLL_SECONDS = 0.5


class DeploymentError(LabmeshError):
    """A process of the deployment would not start or answer; the message names it and ends with its log."""


@dataclass(frozen=True)
class Addresses:
    """Where the processes listen: one host, a port each."""

    host: str = "127.0.0.1"
    webserver_port: int = 3000
    grpc_port: int = 4000
    portal_port: int = 8000

    def url(self, port: int) -> str:
        return f"http://{self.host}:{port}"


@dataclass(frozen=True)
class Layout:
    """The deployment's files under ``$LABMESH_HOME/deploy``: Dagster's home, the workspace, logs and pids."""

    root: Path

    @classmethod
    def of(cls, settings: Settings) -> Layout:
        return cls(settings.home / "deploy")

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    @property
    def workspace(self) -> Path:
        return self.root / "workspace.yaml"

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def pid_file(self, name: str) -> Path:
        return self.root / "run" / f"{name}.pid"

    def supervisor_file(self, pid: int) -> Path:
        """The pid file of one `labmesh deploy local` command (there may be several: all four, and ``--only``)."""
        return self.root / "run" / f"supervisor-{pid}.pid"


def workspace_yaml(addresses: Addresses) -> str:
    """The workspace the webserver and the daemon load: the one code location, served over gRPC."""
    return (
        "# Written by `labmesh deploy local`: the code location is the gRPC code server it starts.\n"
        "load_from:\n"
        "  - grpc_server:\n"
        f"      host: {addresses.host}\n"
        f"      port: {addresses.grpc_port}\n"
        f"      location_name: {LOCATION_NAME}\n"
    )


def database_url(settings: Settings) -> str:
    if not settings.database_url:
        raise DeploymentError(
            f"{DATABASE_URL_VARIABLE} is not set: a deployment keeps Dagster's instance in PostgreSQL "
            f"({DATABASE_URL_VARIABLE}=postgresql://user@host:5432/labmesh)"
        )
    return settings.database_url


def prepare(settings: Settings, addresses: Addresses) -> Layout:
    """The home's folders, Dagster's PostgreSQL instance file and the workspace; quiet first cursors."""
    database_url(settings)
    layout = Layout.of(settings)
    for folder in (settings.eln_dir, layout.dagster_home, layout.log("x").parent, layout.pid_file("x").parent):
        folder.mkdir(parents=True, exist_ok=True)
    for zone in Zone:
        (settings.store_dir / zone.value).mkdir(parents=True, exist_ok=True)
    # Kept if a person edited it, as `labmesh dev` keeps its own; no earlier deployment file exists yet.
    write_dagster_yaml(layout.dagster_home / "dagster.yaml", deployment_dagster_yaml())
    layout.workspace.write_text(workspace_yaml(addresses), encoding="utf-8")
    return layout


def environment(settings: Settings, layout: Layout, addresses: Addresses, base: Mapping[str, str]) -> dict[str, str]:
    """Every process's environment: the caller's, with the home, Dagster's home and the database named."""
    return {
        **base,
        "LABMESH_HOME": str(settings.home),
        "DAGSTER_HOME": str(layout.dagster_home),
        DATABASE_URL_VARIABLE: database_url(settings),
        DAGSTER_DATABASE_URL_VARIABLE: dagster_database_url(database_url(settings)),
        "LABMESH_DAGSTER_URL": addresses.url(addresses.webserver_port),
    }


def find_command(name: str) -> str:
    """A console script of this environment (the one labmesh is installed in), else the first on PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise DeploymentError(f"the `{name}` command is not installed in this environment")
    return found


def command(name: str, layout: Layout, addresses: Addresses) -> list[str]:
    """The command line of one process."""
    host = addresses.host
    if name == "code-server":
        # `dagster api grpc` whose runs fork from a preloaded process (labmesh_dagster.deploy.code_server); run
        # workers are started as `<this python> -m dagster`, whatever `dagster` is first on PATH.
        return [
            *(sys.executable, "-m", CODE_SERVER_MODULE, "-m", DEFINITIONS_MODULE, "--location-name", LOCATION_NAME),
            *("-h", host, "-p", str(addresses.grpc_port), "--use-python-environment-entry-point"),
        ]
    if name == "webserver":
        return [
            *(find_command("dagster-webserver"), "-h", host, "-p", str(addresses.webserver_port)),
            *("-w", str(layout.workspace)),
        ]
    if name == "daemon":
        return [find_command("dagster-daemon"), "run", "-w", str(layout.workspace)]
    if name == "portal":
        portal = [sys.executable, "-m", "labmesh_dagster.cli", "api"]
        return [*portal, "--host", host, "--port", str(addresses.portal_port)]
    raise DeploymentError(f"no process {name!r}: choose from {', '.join(SERVICES)}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            response.read()
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
        return False


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def grpc_answers(addresses: Addresses, env: Mapping[str, str]) -> bool:
    """The code server's listening socket is open and it answers Dagster's own health check."""
    if not port_open(addresses.host, addresses.grpc_port):
        return False
    check = [find_command("dagster"), "api", "grpc-health-check", "-h", addresses.host, "-p", str(addresses.grpc_port)]
    done = subprocess.run(check, env=dict(env), capture_output=True, timeout=60, check=False)
    return done.returncode == 0


@contextlib.contextmanager
def instance_environment(env: Mapping[str, str]) -> Iterator[None]:
    """This process's environment names the deployment's instance meanwhile, as its processes' environment does.

    The instance file names the database by a variable, read when the
    instance is loaded; a process that loads it must have the variable set.
    """
    saved = {key: os.environ.get(key) for key in ("DAGSTER_HOME", DAGSTER_DATABASE_URL_VARIABLE)}
    os.environ.update({key: env[key] for key in saved})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class DaemonBeats:
    """Whether every daemon of the instance has written a heartbeat since a given start.

    Dagster's `liveness-check` would accept the heartbeats a killed daemon
    left minutes ago; only a heartbeat newer than this start says that this
    daemon runs. The instance is opened once, on the first look, and closed
    with `close`.
    """

    def __init__(self, started: datetime, env: Mapping[str, str]) -> None:
        self.started = started.timestamp()
        self.env = env
        self._instance: dg.DagsterInstance | None = None

    def __call__(self) -> bool:
        instance = self._instance or self._open()
        beats = instance.get_daemon_heartbeats()
        return all(
            kind in beats and beats[kind].timestamp >= self.started for kind in instance.get_required_daemon_types()
        )

    def _open(self) -> dg.DagsterInstance:
        import dagster as dg

        with instance_environment(self.env):
            self._instance = dg.DagsterInstance.from_config(self.env["DAGSTER_HOME"])
        return self._instance

    def close(self) -> None:
        if self._instance is not None:
            self._instance.dispose()
            self._instance = None


@dataclass
class Process:
    """One started process of the deployment."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    started: datetime
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError as error:
            return f"(no log: {error})"

    def close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class Deployment:
    """The processes of one deployment, started, checked and stopped one by one or together."""

    def __init__(self, settings: Settings, addresses: Addresses, *, base_env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.addresses = addresses
        new_instance = not (Layout.of(settings).dagster_home / "dagster.yaml").exists()
        self.layout = prepare(settings, addresses)
        self.env = environment(settings, self.layout, addresses, os.environ if base_env is None else base_env)
        if new_instance:
            from labmesh_dagster.daemon_cursors import set_first_cursors

            # As for `labmesh dev`: a first daemon start with no run-retry cursor yet warns as if something
            # were wrong; an instance with no runs gets the cursors the daemon would settle on.
            with instance_environment(self.env):
                set_first_cursors(self.layout.dagster_home)
        self.processes: dict[str, Process] = {}
        self.interrupted = threading.Event()
        """Set (by a signal handler) to give up waiting for processes to answer."""

    def where(self, name: str) -> str:
        """Where a process answers, for people."""
        a = self.addresses
        return {
            "code-server": f"grpc://{a.host}:{a.grpc_port} (location {LOCATION_NAME})",
            "webserver": f"{a.url(a.webserver_port)}/",
            "daemon": f"Dagster instance on {redacted(self.env[DATABASE_URL_VARIABLE])}",
            "portal": f"{a.url(a.portal_port)}/",
        }[name]

    def start(self, name: str) -> Process:
        """Start one process alone (its log appended to, its pid file written); it is not waited for."""
        argv = command(name, self.layout, self.addresses)
        log_path = self.layout.log(name)
        log = log_path.open("ab")
        log.write(f"\n--- labmesh deploy: starting {name} at {datetime.now(UTC).isoformat()}\n".encode())
        log.flush()
        popen = subprocess.Popen(
            argv,
            env=self.env,
            cwd=self.settings.home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches `labmesh deploy local` only, which stops each in turn
        )
        process = Process(name, popen, log_path, datetime.now(UTC), log)
        self.processes[name] = process
        self.layout.pid_file(name).write_text(f"{popen.pid}\n", encoding="ascii")
        return process

    def ready_check(self, name: str) -> Callable[[], bool]:
        a = self.addresses
        if name == "code-server":
            return lambda: grpc_answers(a, self.env)
        if name == "webserver":
            return lambda: http_ok(f"{a.url(a.webserver_port)}/server_info")
        if name == "portal":
            return lambda: http_ok(f"{a.url(a.portal_port)}/healthz")
        return DaemonBeats(self.processes[name].started, self.env)

    def wait_ready(self, names: Iterable[str], timeout: float = READY_SECONDS) -> None:
        """Wait until each named process answers; DeploymentError (with its log) if one exits or never does."""
        checks = {name: self.ready_check(name) for name in names}
        waiting = dict(checks)
        deadline = time.monotonic() + timeout
        try:
            while waiting:
                if self.interrupted.is_set():
                    raise DeploymentError(f"interrupted while waiting for {', '.join(waiting)}")
                for name, answers in list(waiting.items()):
                    process = self.processes[name]
                    code = process.popen.poll()
                    if code is not None:
                        raise DeploymentError(f"{name} exited with code {code} while starting:\n{process.log_tail()}")
                    if answers():
                        del waiting[name]
                if waiting and time.monotonic() > deadline:
                    tails = "\n".join(f"--- {name}:\n{self.processes[name].log_tail()}" for name in waiting)
                    raise DeploymentError(f"no answer from {', '.join(waiting)} after {timeout:.0f} s:\n{tails}")
                if waiting:
                    time.sleep(POLL_SECONDS)
        finally:
            for check in checks.values():
                if isinstance(check, DaemonBeats):
                    check.close()

    def start_all(self, names: Iterable[str] = SERVICES, timeout: float = READY_SECONDS) -> None:
        """Start the named processes and wait for them: the code server first, which the others load from."""
        chosen = [name for name in SERVICES if name in set(names)]
        first = [name for name in chosen if name in {"code-server", "portal"}]
        for name in first:
            self.start(name)
        self.wait_ready([name for name in first if name == "code-server"], timeout)
        rest = [name for name in chosen if name not in first]
        for name in rest:
            self.start(name)
        self.wait_ready([name for name in chosen if name != "code-server"], timeout)

    def stop(self, name: str, timeout: float = STOP_SECONDS) -> int | None:
        """Interrupt one process as Ctrl-C would, kill its session if it is still there after ``timeout``."""
        process = self.processes.pop(name, None)
        if process is None:
            return None
        try:
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGINT)
            try:
                return process.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_session(process.pid)
                return process.popen.wait()
        finally:
            process.close_log()
            self.forget_pid(name, process.pid)

    def forget_pid(self, name: str, pid: int) -> None:
        """Remove the pid file if it still names ``pid`` (not a process another command started since)."""
        path = self.layout.pid_file(name)
        with contextlib.suppress(OSError, ValueError):
            if int(path.read_text(encoding="ascii")) == pid:
                path.unlink()

    def stop_all(self, timeout: float = STOP_SECONDS) -> dict[str, int | None]:
        """Stop every process, the code server last (runs launched through it may still report)."""
        return {name: self.stop(name, timeout) for name in reversed(SERVICES) if name in self.processes}


def _kill_session(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # the process leads its own session: its run workers go with it


def start_demo(
    settings: Settings, layout: Layout, env: Mapping[str, str], out: TextIO
) -> subprocess.Popen[bytes] | None:
    """On an empty home with the demo on: write its ELN records and start dropping its files, as `labmesh dev` does.

    The dropper watches its parent, this process, and stops once it is gone.
    """
    from labmesh_dagster import demo

    if not (settings.demo and demo.home_is_empty(settings)):
        return None
    for path in demo.seed_demo(settings):
        print(f"labmesh demo: wrote ELN record {path}", file=out)
    name, password = demo.add_demo_user(settings)
    print(f"labmesh demo: sign in to the portal as {name}, password {password!r}", file=out)
    log = layout.log("demo").open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "labmesh_dagster.demo"],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()


def serve(
    settings: Settings, addresses: Addresses, *, only: Iterable[str] = SERVICES, out: TextIO | None = None
) -> int:
    """Start the chosen processes, say where each is, and watch them until SIGINT or SIGTERM.

    All four on an empty home with the demo on also seed the demo lab, as
    `labmesh dev` does. Exit code 0 after a clean stop; 1 if a process would
    not start, or once every process has died by itself.
    """
    deployment = Deployment(settings, addresses)
    stopping = deployment.interrupted
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    supervisor = deployment.layout.supervisor_file(os.getpid())
    supervisor.write_text(f"{os.getpid()}\n", encoding="ascii")
    try:
        return _serve(deployment, only, out or sys.stderr)
    finally:
        supervisor.unlink(missing_ok=True)


def _serve(deployment: Deployment, only: Iterable[str], out: TextIO) -> int:
    settings, stopping = deployment.settings, deployment.interrupted
    chosen = [name for name in SERVICES if name in set(only)]
    print(f"labmesh deploy: starting {', '.join(chosen)}; logs in {deployment.layout.log('x').parent}", file=out)
    everything = chosen == list(SERVICES)
    dropper = start_demo(settings, deployment.layout, deployment.env, out) if everything else None
    try:
        deployment.start_all(chosen)
    except DeploymentError as error:
        print(f"labmesh deploy: {error}", file=out, flush=True)
        deployment.stop_all()
        _stop_dropper(dropper)
        return 1
    for name in chosen:
        print(f"labmesh deploy: {name:<11} pid {deployment.processes[name].pid:<7} {deployment.where(name)}", file=out)
    print("labmesh deploy: running; Ctrl-C stops every process", file=out, flush=True)
    watched = set(chosen)
    while watched and not stopping.wait(1.0):
        for name in sorted(watched):
            code = deployment.processes[name].popen.poll()
            if code is not None:
                watched.discard(name)
                print(
                    f"labmesh deploy: {name} exited with code {code} (log: {deployment.layout.log(name)}); "
                    f"start it alone with `labmesh deploy local --only {name}` and the same ports",
                    file=out,
                    flush=True,
                )
    codes = deployment.stop_all()
    _stop_dropper(dropper)
    if not watched:
        print("labmesh deploy: every process has exited", file=out, flush=True)
        return 1
    print(f"labmesh deploy: {', '.join(f'{name} {ending(code)}' for name, code in codes.items())}", file=out)
    return 0


def ending(code: int | None) -> str:
    """How a process ended, for people: uvicorn ends with the interrupt it was sent, once it has shut down."""
    if code in (0, -signal.SIGINT):
        return "stopped"
    if code == -signal.SIGKILL:
        return "killed"
    return f"exited with code {code}"


def _stop_dropper(dropper: subprocess.Popen[bytes] | None) -> None:
    if dropper is not None and dropper.poll() is None:
        dropper.terminate()
        dropper.wait()


MARKERS = {
    "supervisor": "deploy",
    "code-server": "code_server",
    "webserver": "dagster-webserver",
    "daemon": "dagster-daemon",
    "portal": "labmesh_dagster.cli",
}
"""A word each process's command line holds: a pid file whose pid another program took since is not obeyed."""


def running(pid: int, marker: str) -> bool:
    """Whether ``pid`` is a live process (not a zombie) whose command line holds ``marker``."""
    proc = Path(f"/proc/{pid}")
    try:
        state = (proc / "stat").read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()[0]
        argv = (proc / "cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return False
    return state not in {"Z", "X"} and any(marker.encode() in part for part in argv)


def _stop_pid(pid: int, timeout: float) -> bool:
    """SIGINT, then SIGKILL to its session after ``timeout``; True if it had to be killed."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not running(pid, ""):
            return False
        time.sleep(0.2)
    _kill_session(pid)
    return True


def stop_recorded(settings: Settings, *, out: TextIO | None = None, timeout: float = STOP_SECONDS) -> int:
    """`labmesh deploy local --stop`: stop what the pid files under the home name, from another shell.

    Each `labmesh deploy local` command is interrupted first, as Ctrl-C
    would, and stops its own processes; any process still recorded after
    that (its command was killed) is interrupted itself. A pid file naming a
    process that is gone, or now another program, is only removed.
    """
    out = out or sys.stderr
    layout = Layout.of(settings)
    stopped = 0
    recorded = [(path, "supervisor") for path in sorted(layout.pid_file("x").parent.glob("supervisor-*.pid"))]
    recorded += [(layout.pid_file(name), name) for name in reversed(SERVICES)]
    for path, name in recorded:
        try:
            pid = int(path.read_text(encoding="ascii"))
        except (OSError, ValueError):
            continue
        if running(pid, MARKERS[name]):
            killed = _stop_pid(pid, STOP_SECONDS + timeout if name == "supervisor" else timeout)
            print(f"labmesh deploy: {'killed' if killed else 'stopped'} {name} (pid {pid})", file=out)
            stopped += 1
        path.unlink(missing_ok=True)
    if not stopped:
        print(f"labmesh deploy: nothing is running from {layout.root}", file=out)
    return 0
