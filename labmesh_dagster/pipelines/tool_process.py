"""Run one tool as a child process with a time limit, a memory limit and its stderr kept.

The tool gets a process group of its own, so a time limit ends everything it
started (a shell's children, a pipeline's helpers), not only the process we
spawned. Memory is capped with ``RLIMIT_AS`` set in the child between fork and
exec: allocation beyond it fails inside the tool, which then exits with an
error (MemoryError, ``std::bad_alloc``, "Cannot allocate memory") or a signal.
stdout and stderr go to files, never to pipes, so a chatty tool can neither
fill our memory nor block on a pipe nobody reads; the result keeps the last
4,000 characters of stderr, read from the end of its file.

No Dagster here: the Pipes runner and the tests call this as plain Python.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

STDERR_TAIL_CHARS = 4000
KILL_GRACE_SECONDS = 5.0
"""How long a timed-out tool has between SIGTERM and SIGKILL to tidy up (flush, remove its temp files)."""

_OUT_OF_MEMORY = re.compile(
    r"MemoryError|bad_alloc|Cannot allocate memory|out of memory|memory exhausted|failed to allocate|"
    r"mmap\(\) failed|fatal error: runtime: cannot allocate",
    re.IGNORECASE,
)


class ToolNotInstalled(Exception):
    """The command's program is not on the PATH (or not executable): the tool is missing, not failing."""

    def __init__(self, tool: str) -> None:
        super().__init__(f"tool not installed: {tool}")
        self.tool = tool


@dataclass(frozen=True)
class ToolOutcome:
    """How one tool run ended."""

    exit_code: int
    """The process's exit status; negative for a signal (``-9``: SIGKILL), as `subprocess` reports it."""
    timed_out: bool
    stderr_tail: str
    started: datetime
    ended: datetime
    pid: int
    memory_mib: int | None

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def out_of_memory(self) -> bool:
        """Whether the tool most likely failed for want of memory (what its stderr or its death says)."""
        if self.succeeded or self.timed_out or self.memory_mib is None:
            return False
        # A SIGKILL we did not send (we send one only past the time limit) is the kernel's OOM killer.
        return bool(_OUT_OF_MEMORY.search(self.stderr_tail)) or self.exit_code == -signal.SIGKILL

    def reason(self, tool: str, timeout_seconds: float) -> str | None:
        """One line a scientist understands, or None when the tool succeeded."""
        if self.timed_out:
            return f"{tool} ran longer than its time limit of {timeout_seconds:g} s and was stopped"
        if self.exit_code == 0:
            return None
        if self.out_of_memory:
            return f"{tool} ran out of memory (limit {self.memory_mib} MiB)"
        if self.exit_code < 0:
            return f"{tool} was killed by signal {signal.Signals(-self.exit_code).name}"
        return f"{tool} failed with exit code {self.exit_code}"


def resolve_program(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The executable ``argv[0]`` names on the child's PATH; raises `ToolNotInstalled` if there is none."""
    if not argv:
        raise ValueError("empty command")
    found = shutil.which(argv[0], path=env.get("PATH", os.defpath))
    if found is None:
        raise ToolNotInstalled(argv[0])
    return found


def tail(path: Path, chars: int = STDERR_TAIL_CHARS) -> str:
    """The last ``chars`` characters of a text file, read from its end whatever its size."""
    try:
        with path.open("rb") as stream:
            size = stream.seek(0, os.SEEK_END)
            stream.seek(max(0, size - chars * 4))  # UTF-8 needs at most 4 bytes a character
            text = stream.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return text[-chars:]


def _limit_memory(memory_mib: int | None) -> Callable[[], None] | None:
    if not memory_mib:
        return None
    limit = memory_mib * 1024 * 1024

    def apply() -> None:
        # Runs in the child after fork and before exec. It calls one C function and touches no lock a
        # thread of the parent could hold, which is what makes `preexec_fn` safe enough here.
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Signal every process of a group; a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def run_tool(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdout_path: Path,
    stderr_path: Path,
    timeout_seconds: float,
    memory_mib: int | None,
    grace_seconds: float = KILL_GRACE_SECONDS,
) -> ToolOutcome:
    """Run ``argv`` to its end or its time limit; raises `ToolNotInstalled` when its program is missing.

    When the time limit passes, the whole process group gets SIGTERM, then
    SIGKILL after ``grace_seconds``. Whatever the tool leaves running in its
    group after it exits (a forgotten background job) is killed too, so
    nothing outlives the invocation.
    """
    program = resolve_program(argv, env)
    started = datetime.now(UTC)
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        try:
            process = subprocess.Popen(
                [program, *argv[1:]],
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                process_group=0,
                preexec_fn=_limit_memory(memory_mib),
            )
        except FileNotFoundError as exc:  # removed between `which` and exec, or a broken interpreter line
            raise ToolNotInstalled(argv[0]) from exc
        timed_out = False
        try:
            process.wait(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                kill_group(process.pid, signal.SIGKILL)
                process.wait()
        finally:
            # Also on our own interruption (the run was cancelled): the tool must not outlive us.
            kill_group(process.pid, signal.SIGKILL)
            if process.returncode is None:
                process.wait()
    return ToolOutcome(
        exit_code=process.returncode,
        timed_out=timed_out,
        stderr_tail=tail(stderr_path),
        started=started,
        ended=datetime.now(UTC),
        pid=process.pid,
        memory_mib=memory_mib,
    )
