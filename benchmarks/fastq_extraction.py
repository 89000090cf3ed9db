"""Benchmark 4: FASTQ extraction runs at the speed of the fastest tools that do less, on every shape of read.

Generates three FASTQ files of the same size (1 GB each by default) and their
gzip copies, each in a process of its own, with numpy:

- ``fixed``: NovaSeq-like 151 bp reads, CASAVA read names, binned qualities, a few Ns;
- ``trimmed``: the same reads after adapter and quality trimming (cutadapt
  ``-m 35``): 35 to 151 bp, most of them full length, the rest spread by
  insert size and trimmed tails;
- ``long``: nanopore-like reads, log-normal lengths (median about 5 kb, up
  to 200 kb), UUID read names with run fields, unbinned qualities Q2 to Q50.

On each, side by side in one run and alternating the order every round:

- labmesh: ``extract()`` as the platform runs it (format detection, the full
  statistics: reads, lengths, N50, GC, N, mean quality, Q20/Q30, encoding,
  Illumina read name, lanes), timed inside its process after its imports;
- ``labmesh extract FILE``: the command, start-up and SHA-256 of every byte included;
- ``seqkit stats -a -j 1`` (the same figures and more; Debian's ``seqkit``,
  installed with apt-get when it is missing and this runs as root; without it
  the comparisons with it are left out, and said so);
- dnaio count-only (parse every record, count them, nothing else);
- on the gzip copies: labmesh, seqkit, and isal decompress-only (inflate to nowhere).

Both wall time and CPU time are measured (``getrusage``: RUSAGE_SELF inside
the Python tools, the child's own usage for commands). labmesh reads, inflates
and counts on two or three threads against single-threaded tools, so wall
ratios swing with the machine's load; CPU ratios say what the work costs.
A ratio is the other tool's time over labmesh's: above 1, labmesh is faster.
Peak memory is each process's maximum RSS. labmesh's figures (in process and
from the command) are checked against seqkit's.

Goals, on every shape: labmesh >= 1.0x seqkit, in process and as the command
with hashing; >= 0.5x dnaio count-only on plain FASTQ; on gzip >= 1.0x seqkit
and >= 0.7x isal decompress-only.

Run: .venv/bin/python benchmarks/fastq_extraction.py [--gb 1.0] [--rounds 3] [--shapes fixed,trimmed,long]
     [--workdir DIR] [--no-gzip]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHAPES = ("fixed", "trimmed", "long")
QUALITY_BINS = b"#,:F"
"""NovaSeq's binned quality characters (Q2, Q11, Q25, Q37)."""

TIMED = """
import json, resource, sys, time
def peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
"""

LABMESH = (
    TIMED
    + """
from labmesh_dagster.extract import extract
started, cpu_started = time.perf_counter(), cpu()
with open(sys.argv[1], "rb") as stream:
    extraction = extract(stream, sys.argv[1], budget_seconds=None)
seconds, cpu_seconds = time.perf_counter() - started, cpu() - cpu_started
assert extraction.error is None, extraction.error
print(json.dumps({"seconds": seconds, "cpu": cpu_seconds, "metadata": extraction.metadata, "peak_mib": peak_mib()}))
"""
)

DNAIO_COUNT = (
    TIMED
    + """
import dnaio
started, cpu_started = time.perf_counter(), cpu()
reads = 0
with dnaio.open(sys.argv[1]) as records:
    for _ in records:
        reads += 1
seconds, cpu_seconds = time.perf_counter() - started, cpu() - cpu_started
print(json.dumps({"seconds": seconds, "cpu": cpu_seconds, "reads": reads, "peak_mib": peak_mib()}))
"""
)

ISAL_DECOMPRESS = (
    TIMED
    + """
from isal import igzip
started, cpu_started = time.perf_counter(), cpu()
size = 0
with igzip.open(sys.argv[1], "rb") as stream:
    while chunk := stream.read(1 << 20):
        size += len(chunk)
seconds, cpu_seconds = time.perf_counter() - started, cpu() - cpu_started
print(json.dumps({"seconds": seconds, "cpu": cpu_seconds, "bytes": size, "peak_mib": peak_mib()}))
"""
)


@dataclass(frozen=True)
class Run:
    """One tool's run on one file: wall and CPU seconds, peak memory, and what it printed."""

    seconds: float
    cpu: float
    peak_mib: float
    output: dict[str, Any] = field(default_factory=dict)


def _lengths(shape: str, count: int, rng: Any) -> Any:
    import numpy as np

    if shape == "fixed":
        return np.full(count, 151)
    if shape == "trimmed":
        # Reads shorter than 151 bp read through their insert into the adapter, which cutadapt
        # removes; quality trimming shortens some more; reads under 35 bp are dropped (-m 35).
        inserts = rng.normal(230, 70, count).astype(np.int64)
        tails = np.where(rng.random(count) < 0.3, rng.geometric(0.25, count), 0)
        lengths = np.minimum(inserts, 151) - tails
        return lengths[lengths >= 35]
    return np.clip(rng.lognormal(8.5, 1.0, count), 200, 200_000).astype(np.int64)


def _names(shape: str, first: int, count: int) -> list[bytes]:
    if shape == "long":
        return [
            f"@{number:08x}-6d1c-4f5e-9a3b-{number:012x} runid=8f3c2a1b0d4e5f6a7b8c9d0e1f2a3b4c5d6e7f80 "
            f"read={number} ch={1 + number % 512} start_time=2026-11-09T10:{number % 60:02d}:00Z "
            f"flow_cell_id=FAX12345 basecall_model_version_id=dna_r10.4.1_e8.2_400bps_sup@v4.3.0".encode()
            for number in range(first, first + count)
        ]
    return [
        f"@A00123:45:HJK7LDSX2:{1 + number // 5_000_000}:{1101 + (number // 20_000) % 60}:"
        f"{number % 30_000}:{number % 27_000} 1:N:0:ACGTACGT+TTGGCCAA".encode()
        for number in range(first, first + count)
    ]


def generate(path: Path, shape: str, target_bytes: int, seed: int = 1) -> None:
    """Write reads of ``shape`` until the file reaches ``target_bytes``, a batch at a time, with numpy."""
    import numpy as np

    rng = np.random.default_rng(seed)
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)
    quality_bins = np.frombuffer(QUALITY_BINS, dtype=np.uint8)
    written, number = 0, 0
    batch = 2_000 if shape == "long" else 200_000
    with path.open("wb") as out:
        while written < target_bytes:
            lengths = _lengths(shape, batch, rng)
            total = int(lengths.sum())
            sequences = bases[rng.integers(0, 4, total)]
            sequences[rng.random(total) < 0.001] = ord("N")
            if shape == "long":
                qualities = (np.clip(rng.normal(18, 7, total), 2, 50) + 33).astype(np.uint8)
            else:
                qualities = quality_bins[rng.choice(4, total, p=[0.02, 0.03, 0.15, 0.8])]
            sequence_bytes, quality_bytes = sequences.tobytes(), qualities.tobytes()
            names = _names(shape, number, len(lengths))
            records, at, size = [], 0, written
            for name, length in zip(names, lengths.tolist(), strict=True):
                end = at + length
                record = b"%s\n%s\n+\n%s\n" % (name, sequence_bytes[at:end], quality_bytes[at:end])
                if size + len(record) > target_bytes and size > 0:
                    break
                records.append(record)
                size += len(record)
                at = end
            if not records:
                break
            number += len(records)
            out.write(b"".join(records))
            written = size


def compress(source: Path, target: Path) -> None:
    from isal import igzip

    with source.open("rb") as plain, igzip.open(target, "wb", compresslevel=1) as packed:
        shutil.copyfileobj(plain, packed, 8 << 20)


def find_seqkit() -> str | None:
    """seqkit's path, installing Debian's package when it is missing and this runs as root; None if absent."""
    found = shutil.which("seqkit")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("seqkit is missing: apt-get install seqkit ...", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "seqkit"], check=False, capture_output=True)
        found = shutil.which("seqkit")
    if not found:
        print(
            "seqkit is NOT installed and could not be (as root: apt-get install seqkit): "
            "the comparisons with seqkit, and the check of labmesh's figures against it, are left out.",
            flush=True,
        )
    return found


def labmesh_command() -> list[str]:
    """The ``labmesh`` command of this environment: the script beside this Python, else the module."""
    script = Path(sys.executable).parent / "labmesh"
    return [str(script)] if script.exists() else [sys.executable, "-m", "labmesh_dagster.cli"]


def _run_with_rusage(command: list[str]) -> tuple[float, float, float, str]:
    """Run a command: (wall seconds, CPU seconds, peak RSS in MiB from wait4, stdout).

    Linux counts a child's memory from before its exec too, so this peak is
    only meaningful because the parent stays small (generation runs in a
    process of its own).
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.posix_spawn(
            command[0],
            command,
            dict(os.environ),
            file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1), (os.POSIX_SPAWN_DUP2, err.fileno(), 2)],
        )
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{' '.join(command)} failed: {err.read().decode()[-2000:]}")
        return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read().decode()


def run_python(script: str, path: Path) -> Run:
    """A Python tool, timed inside its process after its imports (the figures a long-running worker sees)."""
    _, _, _, out = _run_with_rusage([sys.executable, "-c", script, str(path)])
    result = json.loads(out)
    return Run(float(result["seconds"]), float(result["cpu"]), float(result["peak_mib"]), result)


def run_labmesh_command(path: Path) -> Run:
    """``labmesh extract``, timed as a whole: start-up, format detection, extraction and SHA-256."""
    wall, cpu, peak, out = _run_with_rusage([*labmesh_command(), "extract", "--budget-seconds", "0", str(path)])
    document = json.loads(out)
    if "error" in document or "sha256" not in document:
        sys.exit(f"labmesh extract {path}: {out[:2000]}")
    return Run(wall, cpu, peak, document)


def run_seqkit(seqkit: str, path: Path) -> Run:
    wall, cpu, peak, out = _run_with_rusage([seqkit, "stats", "-a", "-j", "1", "-T", str(path)])
    header, values = out.strip().splitlines()[:2]
    return Run(wall, cpu, peak, dict(zip(header.split("\t"), values.split("\t"), strict=True)))


def check_agreement(label: str, labmesh: dict[str, Any], seqkit: dict[str, str]) -> None:
    """labmesh's figures must be seqkit's: a fast wrong answer is no answer."""
    pairs = [
        ("reads", "num_seqs", 0),
        ("bases", "sum_len", 0),
        ("min_length", "min_len", 0),
        ("max_length", "max_len", 0),
        ("n50", "N50", 0),
        ("gc_percent", "GC(%)", 0.01),
        ("q20_percent", "Q20(%)", 0.01),
        ("q30_percent", "Q30(%)", 0.01),
    ]
    for ours, theirs, tolerance in pairs:
        mine, other = float(labmesh[ours]), float(seqkit[theirs].replace(",", ""))
        if abs(mine - other) > tolerance:
            sys.exit(f"{label}: labmesh {ours}={mine} but seqkit {theirs}={other}")


def prepare(workdir: Path, shapes: list[str], target: int, with_gzip: bool) -> dict[str, dict[str, Path]]:
    """Generate the files that are missing or of another size, two at a time, each in a process of its own."""
    files = {shape: {"plain": workdir / f"{shape}_R1_001.fastq"} for shape in shapes}
    if with_gzip:
        for shape in shapes:
            files[shape]["gzip"] = workdir / f"{shape}_R1_001.fastq.gz"
    pending = []
    for shape in shapes:
        plain = files[shape]["plain"]
        # The generator stops at the last whole record before the target size.
        stale = not plain.exists() or not target - 1_000_000 <= plain.stat().st_size <= target
        if stale or (with_gzip and not files[shape]["gzip"].exists()):
            pending.append(shape)
    for first in range(0, len(pending), 2):
        group = pending[first : first + 2]
        print(f"generating {', '.join(group)}: {target / 1e9:.2f} GB each, in {workdir} ...", flush=True)
        children = [
            subprocess.Popen(
                [sys.executable, __file__, "--generate-only", str(files[shape]["plain"]), shape, str(target)]
                + (["--gzip"] if with_gzip else [])
            )
            for shape in group
        ]
        for child in children:
            if child.wait() != 0:
                sys.exit("generating the benchmark files failed")
    return files


def median(runs: list[Run], attribute: str) -> float:
    return statistics.median(getattr(run, attribute) for run in runs)


def main() -> None:
    if sys.argv[1:2] == ["--generate-only"]:
        path, shape, target = Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
        generate(path, shape, target)
        if "--gzip" in sys.argv:
            compress(path, Path(f"{path}.gz"))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=1.0, help="size of each plain FASTQ in GB (10^9 bytes)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated, of {', '.join(SHAPES)}")
    parser.add_argument("--workdir", help="where the files go (kept); default: a temporary folder")
    parser.add_argument("--no-gzip", action="store_true", help="leave out the gzip copies")
    args = parser.parse_args()
    shapes = [shape for shape in args.shapes.split(",") if shape]
    if unknown := set(shapes) - set(SHAPES):
        parser.error(f"unknown shapes: {', '.join(sorted(unknown))}")

    seqkit = find_seqkit()
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="labmesh-fastq-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    files = prepare(workdir, shapes, int(args.gb * 1e9), not args.no_gzip)
    print(f"{os.cpu_count()} cores, load average {' '.join(f'{load:.2f}' for load in os.getloadavg())}")

    tools: dict[tuple[str, str], dict[str, Any]] = {}
    for shape in shapes:
        plain = files[shape]["plain"]
        tools[(shape, "plain")] = {
            "labmesh": lambda path=plain: run_python(LABMESH, path),
            "labmesh extract (cmd)": lambda path=plain: run_labmesh_command(path),
            "dnaio count-only": lambda path=plain: run_python(DNAIO_COUNT, path),
        }
        if "gzip" in files[shape]:
            packed = files[shape]["gzip"]
            tools[(shape, "gzip")] = {
                "labmesh": lambda path=packed: run_python(LABMESH, path),
                "isal decompress-only": lambda path=packed: run_python(ISAL_DECOMPRESS, path),
            }
        if seqkit:
            tools[(shape, "plain")]["seqkit"] = lambda path=plain: run_seqkit(seqkit, path)
            if "gzip" in files[shape]:
                tools[(shape, "gzip")]["seqkit"] = lambda path=files[shape]["gzip"]: run_seqkit(seqkit, path)

    runs: dict[tuple[str, str], dict[str, list[Run]]] = {
        key: {name: [] for name in group} for key, group in tools.items()
    }
    for round_number in range(args.rounds):
        for key, group in tools.items():
            names = list(group) if round_number % 2 == 0 else list(group)[::-1]
            for name in names:
                runs[key][name].append(group[name]())
        print(f"round {round_number + 1} of {args.rounds} done", flush=True)

    if seqkit:
        for (shape, kind), group in runs.items():
            reference = group["seqkit"][-1].output
            check_agreement(f"{shape} {kind}", group["labmesh"][-1].output["metadata"], reference)
            if "labmesh extract (cmd)" in group:
                check_agreement(
                    f"{shape} {kind} (cmd)", group["labmesh extract (cmd)"][-1].output["metadata"], reference
                )

    print(f"\n{'file':14} {'tool':22} {'wall s':>7} {'cpu s':>7} {'MB/s':>7} {'peak MiB':>9}")
    for (shape, kind), group in runs.items():
        size = files[shape]["plain"].stat().st_size
        for name, results in group.items():
            wall, cpu = median(results, "seconds"), median(results, "cpu")
            peak = max(run.peak_mib for run in results)
            print(f"{shape + ' ' + kind:14} {name:22} {wall:7.2f} {cpu:7.2f} {size / 1e6 / wall:7.0f} {peak:9.0f}")

    goals = [("labmesh", "seqkit", 1.0), ("labmesh extract (cmd)", "seqkit", 1.0), ("labmesh", "dnaio count-only", 0.5)]
    gzip_goals = [("labmesh", "seqkit", 1.0), ("labmesh", "isal decompress-only", 0.7)]
    print(f"\n{'file':14} {'speed of':22} {'over':22} {'wall':>6} {'cpu':>6}  goal")
    missed = []
    for (shape, kind), group in runs.items():
        for ours, theirs, goal in goals if kind == "plain" else gzip_goals:
            if ours not in group or theirs not in group:
                continue
            wall = median(group[theirs], "seconds") / median(group[ours], "seconds")
            cpu = median(group[theirs], "cpu") / median(group[ours], "cpu")
            verdict = "met" if min(wall, cpu) >= goal else ("met on wall time only" if wall >= goal else "MISSED")
            if verdict != "met":
                missed.append(f"{shape} {kind}: {ours} / {theirs}")
            print(f"{shape + ' ' + kind:14} {ours:22} {theirs:22} {wall:6.2f} {cpu:6.2f}  >= {goal:.2f} {verdict}")
    print(
        "\nMB/s are of the uncompressed FASTQ; ratios are the other tool's median time over labmesh's."
        + (" labmesh's figures agree with seqkit's (reads, bases, lengths, N50, GC, Q20, Q30)." if seqkit else "")
    )
    if not seqkit:
        print("seqkit was absent: no comparison with it was made.")
    if missed:
        print(f"{len(missed)} goal(s) not met on both wall and CPU time: {'; '.join(missed)}")


if __name__ == "__main__":
    main()
