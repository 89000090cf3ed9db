"""`labmesh deploy local` as subprocesses, and what a lab that has converged looks like, for the kill-and-restart test.

`Supervisor` is one running `labmesh deploy local` command (all four
processes, or ``--only`` some); `lab_problems` lists what is still missing,
doubled or unfinished in a demo lab, an empty list once it has converged.
A wait gives up only when the lab stops moving, with a message naming what it waited for.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import dagster as dg
import pytest

from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.demo import demo_drops
from labmesh_dagster.ports import Ports
from labmesh_dagster_tests.scenarios.dev_server import DEMO_IDS, REPOSITORY

UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
RUNNING_LINE = "labmesh deploy: running"


@dataclass
class Supervisor:
    """One `labmesh deploy local` command, its output in ``log_path``."""

    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] | None = field(default=None, repr=False)

    @classmethod
    def start(cls, argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> Supervisor:
        log = log_path.open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "labmesh_dagster.cli", "deploy", "local", *argv],
            cwd=REPOSITORY,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return cls(process, log_path, log)

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_running(self, progress: Callable[[], object], patience: float) -> None:
        """Until it says every process answers; fails with its output if it exits, or if neither it nor
        ``progress`` moves for ``patience`` seconds (its own wait for each process ends it sooner)."""
        wait_for(
            "labmesh deploy local to say every process answers",
            lambda: self._running(),
            progress=lambda: (len(self.output()), progress()),
            patience=patience,
            poll=0.5,
        )

    def _running(self) -> bool:
        output = self.output()
        code = self.process.poll()
        assert code is None or RUNNING_LINE in output, f"labmesh deploy local exited with {code}:\n{output[-6000:]}"
        return RUNNING_LINE in output

    def interrupt(self, cap: float) -> int:
        """SIGINT, as Ctrl-C; its exit code. Killed, and AssertionError, if it does not stop within ``cap``."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
            try:
                return self.process.wait(timeout=cap)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"labmesh deploy local did not stop within {cap:.0f} s") from None
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None


def pid_of(pid_file: Path) -> int:
    return int(pid_file.read_text(encoding="ascii"))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()[0] not in {"Z", "X"}
    except (OSError, IndexError):
        return False


def command_lines_of_children(pid: int) -> list[str]:
    """The command lines of ``pid``'s live child processes, from /proc (each process's parent is in its stat)."""
    lines = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()
            argv = (proc / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] not in {"Z", "X"}:
            lines.append(argv.replace(b"\0", b" ").decode("utf-8", "replace").strip())
    return lines


def wait_for(
    what: str,
    condition: Callable[[], bool],
    *,
    patience: float,
    progress: Callable[[], object] = lambda: None,
    poll: float = 1.0,
) -> float:
    """Seconds until ``condition`` holds.

    A busy machine makes this slower, never failing: it gives up only when
    ``progress`` (what the lab has done so far) has not changed for
    ``patience`` seconds, naming ``what`` it waited for. With no progress
    given, ``patience`` bounds the whole wait (for what the OS does at once)."""
    started = still_since = time.monotonic()
    seen = progress()
    while not condition():
        moved = progress()
        if moved != seen:
            seen, still_since = moved, time.monotonic()
        elif time.monotonic() - still_since > patience:
            pytest.fail(f"{what}: nothing moved for {patience:.0f} s")
        time.sleep(poll)
    return time.monotonic() - started


def log_sizes(folder: Path) -> tuple[int, ...]:
    """How much each process has logged: a lab that still works keeps writing."""
    return tuple(path.stat().st_size for path in sorted(folder.glob("*.log")))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expected_files() -> dict[ObjectKey, str]:
    """Where each demo file must end (a landed file in raw, a final file where it was put) and its checksum."""
    expected = {}
    for drop in demo_drops():
        zone = Zone.RAW if drop.key.zone is Zone.LANDING else drop.key.zone
        expected[drop.key.in_zone(zone)] = sha256(drop.content())
    return expected


def data_keys(ports: Ports, zone: Zone) -> list[ObjectKey]:
    """The data files of a zone (manifests and labmesh's own state left out), with any repeats kept."""
    return [
        info.key
        for info in ports.store().list(zone)
        if info.key.first_segment != "_labmesh" and not info.key.is_labmesh_internal
    ]


def lab_problems(ports: Ports, instance: dg.DagsterInstance, expected: Mapping[ObjectKey, str]) -> list[str]:
    """What keeps the demo lab from having converged: empty once everything is there exactly once, and done."""
    problems = []
    store, catalog = ports.store(), ports.catalog()
    for experiment_id in sorted(DEMO_IDS):
        if catalog.get_experiment(experiment_id) is None:
            problems.append(f"{experiment_id} is not registered")
    if waiting := data_keys(ports, Zone.LANDING):
        problems.append(f"still in landing: {sorted(map(str, waiting))}")
    for zone in (Zone.RAW, Zone.FINAL):
        keys = data_keys(ports, zone)
        wanted = sorted(key for key in expected if key.zone is zone)
        if sorted(keys) != wanted:
            problems.append(f"{zone.value} holds {sorted(map(str, keys))}, not {sorted(map(str, wanted))}")
    for key, checksum in expected.items():
        if store.exists(key) and sha256(store.read_bytes(key)) != checksum:
            problems.append(f"{key} does not hold what was landed")
    for experiment_id in sorted(DEMO_IDS):
        for zone in (Zone.RAW, Zone.PROCESSED):
            dataset = catalog.get_dataset(experiment_id, zone)
            if dataset is None:
                problems.append(f"no {zone.value} dataset of {experiment_id} in the catalog")
                continue
            files = [entry.key for entry in dataset.files]
            if len(files) != len(set(files)):
                problems.append(f"the {zone.value} dataset of {experiment_id} lists a file twice: {files}")
            if zone is Zone.RAW:
                wanted_files = sorted(str(k) for k in expected if k.zone is zone and k.experiment_id == experiment_id)
                if sorted(files) != wanted_files:
                    problems.append(f"the raw dataset of {experiment_id} lists {sorted(files)}, not {wanted_files}")
    for key in expected:
        if key.zone is Zone.FINAL and catalog.get_dataset(key.experiment_id, Zone.FINAL) is None:
            problems.append(f"no final dataset of {key.experiment_id} in the catalog")
    unfinished = instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED))
    if unfinished:
        problems.append(f"runs not finished: {sorted((run.run_id[:8], run.status.value) for run in unfinished)}")
    return problems
