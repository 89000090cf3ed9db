"""Benchmark 5: how long `labmesh dev` takes to show the demo lab on a fresh home.

Starts the real `labmesh dev` (which execs `dagster dev`: webserver, daemon, a
subprocess per run) on a fresh temporary home and a free port, with the demo on,
and measures the seconds from start to:

- the UI answering (``GET /`` returns 200);
- every demo experiment's ``raw_dataset`` partition materialized (GraphQL);
- every demo experiment's ``processed_dataset`` partition materialized;

then the seconds SIGINT (Ctrl-C) takes to stop it, and its exit code. It is
the figure a person sees after `make dev`, and what the README promises; the
test `scenarios/test_dev_server.py` checks only that the demo gets there.

The demo has a floor of its own: its last instrument file lands 40 s after
start, the landing sensor waits for files to settle (10 s) and the sensors and
the automation sensor tick every 10 s. Above that floor the time is Dagster
starting, loading the code location and launching each run in a new process, so
it depends on the machine and on what else runs on it: the CPU count and load
average at start are printed with the figures. Progress is polled every
``--poll`` seconds, so each figure is late by up to that much.

Run: .venv/bin/python benchmarks/dev_demo.py [--runs 1] [--poll 1] [--cap 600]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from labmesh_dagster_tests.scenarios.dev_server import DEMO_IDS, labmesh_command, start_dev, watch_demo

COLUMNS = ("UI", "raw", "processed", "stop")


def machine() -> str:
    one, five, fifteen = os.getloadavg()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{os.cpu_count()} CPUs ({usable} usable), load average {one:.2f} {five:.2f} {fifteen:.2f}"


def run(number: int, command: Path, cap: float, poll: float) -> tuple[dict[str, float | None], int]:
    """One fresh start: seconds to each stage (None: not reached within the cap) and the exit code."""
    with tempfile.TemporaryDirectory(prefix="labmesh-dev-demo-") as tmp:
        print(f"run {number}: {machine()} at start", flush=True)
        server = start_dev(Path(tmp), command)
        try:
            progress = watch_demo(server, cap, poll, report=lambda line: print(f"  {line}", flush=True))
        finally:
            stopping = time.monotonic()
            code = server.stop(timeout=120)
            stopped = time.monotonic() - stopping
        if not progress.done or code != 0:
            print(f"  run {number} did not finish the demo or stop cleanly (exit code {code}):", file=sys.stderr)
            print(f"  {progress.describe()}; last partitions seen: {progress.seen}", file=sys.stderr)
            print(server.log_tail(), file=sys.stderr)
    figures = {"UI": progress.ui, "raw": progress.raw, "processed": progress.processed, "stop": stopped}
    return figures, code


def cell(seconds: float | None) -> str:
    return f"{'never':>9}" if seconds is None else f"{seconds:>9.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1, help="fresh starts to measure; the median is printed")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between polls of the UI and GraphQL")
    parser.add_argument("--cap", type=float, default=600.0, help="seconds to wait for the demo before giving up")
    args = parser.parse_args()
    command = labmesh_command()
    if command is None:
        sys.exit("the `labmesh` command is not installed next to this Python; run `make dev` or `make test` once")
    print(f"labmesh dev with the demo ({len(DEMO_IDS)} experiments) on a fresh home, {args.runs} run(s)")
    print(f"machine at start: {machine()}")
    results = [run(number, command, args.cap, args.poll) for number in range(1, args.runs + 1)]
    print()
    print(f"seconds from start (polled every {args.poll:g} s); stop: SIGINT to exit")
    print(f"{'run':>6}" + "".join(f"{name:>10}" for name in COLUMNS) + f"{'exit':>6}")
    for number, (figures, code) in enumerate(results, 1):
        print(f"{number:>6}" + "".join(f" {cell(figures[name])}" for name in COLUMNS) + f"{code:>6}")
    if args.runs > 1:
        medians = []
        for name in COLUMNS:
            reached = [value for figures, _ in results if (value := figures[name]) is not None]
            medians.append(statistics.median(reached) if len(reached) == len(results) else None)
        print(f"{'median':>6}" + "".join(f" {cell(value)}" for value in medians))
    print(f"machine at end:   {machine()}")
    if any(figures["raw"] is None or figures["processed"] is None or code != 0 for figures, code in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
