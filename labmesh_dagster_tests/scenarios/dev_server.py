"""`labmesh dev` as a subprocess: what the dev-server test and `benchmarks/dev_demo.py` share.

`start_dev` runs the real `labmesh` command (which execs `dagster dev`) on a
fresh home and a free port, with the demo on; `watch_demo` polls the UI and the
GraphQL API until every demo experiment has materialized `raw_dataset` and
`processed_dataset` partitions, noting when each stage was first seen;
`DevServer.stop` sends SIGINT, as Ctrl-C does, and returns the exit code.
Nothing here asserts time: the test asserts the outcome, the benchmark prints
the figures.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from labmesh_dagster.demo import LIMS_EXPORT, RECORDS

REPOSITORY = Path(__file__).resolve().parents[2]
DEMO_IDS = frozenset([record["id"] for record in RECORDS] + [e["experiment_id"] for e in LIMS_EXPORT["experiments"]])
QUERY = "{ assetNodes { assetKey { path } assetMaterializations(limit: 100) { partition } } }"
LOCATIONS = (
    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus"
    " locationOrLoadError { __typename ... on PythonError { message } } } } } }"
)
# What the server may answer while it is still starting (refused, reset, a 5xx, no assetNodes yet).
NOT_YET = (urllib.error.URLError, ConnectionError, TimeoutError, KeyError, TypeError, ValueError)


def labmesh_command() -> Path | None:
    """The `labmesh` command next to this interpreter, or None when the package is not installed."""
    command = Path(sys.executable).parent / "labmesh"
    return command if command.exists() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DevServer:
    """A running `labmesh dev`; ``started`` is the monotonic time just before it was started."""

    process: subprocess.Popen[bytes]
    port: int
    portal_port: int
    log_path: Path
    started: float
    _log: IO[bytes] | None = field(default=None, repr=False)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError as error:
            return f"(no log: {error})"

    def ui_answers(self) -> bool:
        """Dagster's UI page itself (not only the API) answers with 200."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=10) as response:
                response.read()
                return response.status == 200
        except NOT_YET:
            return False

    def portal_answers(self) -> bool:
        """The portal's sign-in page answers with 200."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.portal_port}/login", timeout=10) as response:
                response.read()
                return response.status == 200
        except NOT_YET:
            return False

    def graphql(self, query: str) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql",
            data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)["data"]

    def materialized(self) -> dict[str, set[str]]:
        """Asset key -> materialized partitions, through the GraphQL API (empty while it is not up)."""
        try:
            nodes = self.graphql(QUERY)["assetNodes"]
        except NOT_YET:
            return {}
        return {"/".join(n["assetKey"]["path"]): {m["partition"] for m in n["assetMaterializations"]} for n in nodes}

    def location_status(self) -> tuple[bool, str | None]:
        """(loaded, error): whether the code location has finished loading, and its load error if it failed."""
        try:
            entries = self.graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
        except NOT_YET:
            return False, None
        errors = [
            f"{entry['name']}: {entry['locationOrLoadError']['message']}"
            for entry in entries
            if (entry["locationOrLoadError"] or {}).get("__typename") == "PythonError"
        ]
        loaded = bool(entries) and all(entry["loadStatus"] == "LOADED" for entry in entries)
        return loaded, "\n".join(errors) or None

    def stop(self, timeout: float = 60) -> int:
        """SIGINT, as Ctrl-C sends it; the exit code. Killed (and TimeoutExpired raised) if it does not stop."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None


def start_dev(workdir: Path, command: Path) -> DevServer:
    """`labmesh dev` on ``workdir/home`` (which must not exist yet: the demo seeds only an empty home)."""
    port, portal_port = free_port(), free_port()
    env = {**os.environ, "LABMESH_HOME": str(workdir / "home"), "LABMESH_DEMO": "1"}
    env.pop("DAGSTER_HOME", None)
    log_path = workdir / "dev.log"
    log = log_path.open("wb")
    started = time.monotonic()
    process = subprocess.Popen(
        [str(command), "dev", "--port", str(port), "--portal-port", str(portal_port)],
        cwd=REPOSITORY,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return DevServer(process, port, portal_port, log_path, started, log)


@dataclass
class DemoProgress:
    """Seconds from start to each stage first seen (None: not reached), and the last partitions seen."""

    ui: float | None = None
    raw: float | None = None
    processed: float | None = None
    seen: dict[str, set[str]] = field(default_factory=dict)
    exited: int | None = None
    """The server's exit code if it stopped by itself while watched."""
    location_error: str | None = None
    """Why the code location failed to load (an import error, say): nothing will materialize."""

    @property
    def done(self) -> bool:
        return self.raw is not None and self.processed is not None

    def describe(self) -> str:
        def at(seconds: float | None) -> str:
            return "never" if seconds is None else f"{seconds:.1f} s"

        text = f"UI {at(self.ui)}, every raw_dataset {at(self.raw)}, every processed_dataset {at(self.processed)}"
        return text + (f"; code location failed to load: {self.location_error}" if self.location_error else "")


def watch_demo(
    server: DevServer,
    cap_seconds: float,
    poll_seconds: float = 3.0,
    report: Callable[[str], None] = lambda _: None,
) -> DemoProgress:
    """Poll until the demo has filled raw and processed for every demo experiment, the cap passes, or it exits."""
    progress = DemoProgress()
    location_loaded = False
    while server.elapsed() < cap_seconds:
        progress.exited = server.process.poll()
        if progress.exited is not None:
            break
        if progress.ui is None and server.ui_answers():
            progress.ui = server.elapsed()
            report(f"UI answers after {progress.ui:.1f} s")
        if progress.ui is not None and not location_loaded:
            # The webserver answers while the code location still loads; one that fails to load stays
            # failed, so waiting for the cap would only hide the error.
            location_loaded, progress.location_error = server.location_status()
            if progress.location_error is not None:
                report(f"the code location failed to load: {progress.location_error}")
                break
        if location_loaded:
            progress.seen = server.materialized()
            now = server.elapsed()
            for stage, asset in (("raw", "raw_dataset"), ("processed", "processed_dataset")):
                if getattr(progress, stage) is None and DEMO_IDS.issubset(progress.seen.get(asset, ())):
                    setattr(progress, stage, now)
                    report(f"every demo {asset} materialized after {now:.1f} s")
            if progress.done:
                break
        time.sleep(poll_seconds)
    return progress
