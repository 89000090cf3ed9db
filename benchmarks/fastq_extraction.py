"""Benchmark 4: FASTQ extraction runs at the speed of the fastest tools that do less.

Generates a 1 GB FASTQ (NovaSeq-like: 151 bp reads, CASAVA read names, binned
qualities, a few Ns) and its gzip, then measures, side by side and alternating
the order each round:

- labmesh: ``extract()`` as the platform runs it (format detection, the full
  statistics: reads, lengths, N50, GC, N, mean quality, Q20/Q30, encoding,
  Illumina read name, lanes);
- ``seqkit stats -a -j 1`` (the same figures and more; Debian's ``seqkit``,
  installed with apt-get when it is missing and this runs as root);
- dnaio count-only (parse every record, count them, nothing else);
- on the gzip, isal decompress-only (inflate to nowhere).

Each runs in its own process; peak memory is that process's maximum RSS. The
Python tools are timed inside their process after their imports (the figure a
long-running worker sees); seqkit, a native binary, is timed as a whole.
labmesh's numbers are checked against seqkit's.

Goals: labmesh >= 1.0x seqkit's speed, >= 50% of dnaio count-only on plain
FASTQ, and >= 70% of isal decompress-only on gzip.

Run: .venv/bin/python benchmarks/fastq_extraction.py [--gb 1.0] [--rounds 3] [--workdir DIR]
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
from pathlib import Path
from typing import Any

READ_LENGTH = 151
QUALITY_BINS = b"#,:F"
"""NovaSeq's binned quality characters (Q2, Q11, Q25, Q37)."""

PEAK = """
def peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

LABMESH = (
    PEAK
    + """
import json, sys, time
from labmesh_dagster.extract import extract
started = time.perf_counter()
with open(sys.argv[1], "rb") as stream:
    extraction = extract(stream, sys.argv[1], budget_seconds=None)
elapsed = time.perf_counter() - started
assert extraction.error is None, extraction.error
print(json.dumps({"seconds": elapsed, "metadata": extraction.metadata, "peak_mib": peak_mib()}))
"""
)

DNAIO_COUNT = (
    PEAK
    + """
import json, sys, time
import dnaio
started = time.perf_counter()
reads = 0
with dnaio.open(sys.argv[1]) as records:
    for _ in records:
        reads += 1
print(json.dumps({"seconds": time.perf_counter() - started, "reads": reads, "peak_mib": peak_mib()}))
"""
)

ISAL_DECOMPRESS = (
    PEAK
    + """
import json, sys, time
from isal import igzip
started = time.perf_counter()
size = 0
with igzip.open(sys.argv[1], "rb") as stream:
    while chunk := stream.read(1 << 20):
        size += len(chunk)
print(json.dumps({"seconds": time.perf_counter() - started, "bytes": size, "peak_mib": peak_mib()}))
"""
)


def generate(path: Path, target_bytes: int, seed: int = 1) -> None:
    """Write reads until the file reaches ``target_bytes``, a batch of 200,000 reads at a time, with numpy."""
    import numpy as np

    quality_bins = np.frombuffer(QUALITY_BINS, dtype=np.uint8)
    rng = np.random.default_rng(seed)
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)
    written, number = 0, 0
    with path.open("wb") as out:
        while written < target_bytes:
            count = 200_000
            sequences = bases[rng.integers(0, 4, (count, READ_LENGTH))]
            sequences[rng.random((count, READ_LENGTH)) < 0.001] = ord("N")
            qualities = quality_bins[rng.choice(4, (count, READ_LENGTH), p=[0.02, 0.03, 0.15, 0.8])]
            records = []
            for row in range(count):
                lane, tile = 1 + number // 5_000_000, 1101 + (number // 20_000) % 60
                name = f"@A00123:45:HJK7LDSX2:{lane}:{tile}:{number % 30_000}:{number % 27_000} 1:N:0:ACGTACGT+TTGGCCAA"
                records.append(b"%s\n%s\n+\n%s\n" % (name.encode(), sequences[row].tobytes(), qualities[row].tobytes()))
                number += 1
            block = b"".join(records)
            out.write(block)
            written += len(block)


def compress(source: Path, target: Path) -> None:
    from isal import igzip

    with source.open("rb") as plain, igzip.open(target, "wb", compresslevel=1) as packed:
        shutil.copyfileobj(plain, packed, 8 << 20)


def find_seqkit() -> str:
    found = shutil.which("seqkit")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "seqkit"], check=True, capture_output=True)
        found = shutil.which("seqkit")
    if not found:
        sys.exit("seqkit is not installed and could not be: apt-get install seqkit (Debian) first")
    return found


def run_python(script: str, path: Path) -> tuple[float, float, dict[str, Any]]:
    """Time a Python tool inside its process; its peak RSS is the high-water mark of its own memory map."""
    _, _, out = _run_with_rusage([sys.executable, "-c", script, str(path)])
    result = json.loads(out)
    return float(result["seconds"]), float(result["peak_mib"]), result


def _run_with_rusage(command: list[str]) -> tuple[float, float, str]:
    """Run a command: (wall seconds, peak RSS in MiB from wait4, stdout).

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
            file_actions=[
                (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
            ],
        )
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{command[0]} failed: {err.read().decode()[-2000:]}")
        return wall, usage.ru_maxrss / 1024, out.read().decode()


def run_seqkit(seqkit: str, path: Path) -> tuple[float, float, dict[str, str]]:
    wall, peak, out = _run_with_rusage([seqkit, "stats", "-a", "-j", "1", "-T", str(path)])
    header, values = out.strip().splitlines()[:2]
    return wall, peak, dict(zip(header.split("\t"), values.split("\t"), strict=True))


def check_agreement(labmesh: dict[str, Any], seqkit: dict[str, str]) -> None:
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
            sys.exit(f"labmesh {ours}={mine} but seqkit {theirs}={other}")


def main() -> None:
    if sys.argv[1:2] == ["--generate-only"]:
        generate(Path(sys.argv[2]), int(sys.argv[3]))
        compress(Path(sys.argv[2]), Path(sys.argv[2] + ".gz"))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=1.0, help="size of the plain FASTQ in GB (10^9 bytes)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", help="where the files go (kept); default: a temporary folder")
    args = parser.parse_args()

    seqkit = find_seqkit()
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="labmesh-fastq-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    plain, packed = workdir / "reads_R1_001.fastq", workdir / "reads_R1_001.fastq.gz"
    target = int(args.gb * 1e9)
    if not plain.exists() or abs(plain.stat().st_size - target) > 10_000_000:
        print(f"generating {target / 1e9:.2f} GB of FASTQ in {workdir} ...", flush=True)
        # In a process of its own, so this one stays small (see _run_with_rusage).
        subprocess.run([sys.executable, __file__, "--generate-only", str(plain), str(target)], check=True)
    size_plain, size_packed = plain.stat().st_size, packed.stat().st_size
    print(
        f"plain {size_plain / 1e9:.2f} GB, gzip {size_packed / 1e9:.2f} GB; seqkit at {seqkit}; {os.cpu_count()} cores"
    )

    tools: dict[str, dict[str, Any]] = {
        "plain": {
            "labmesh": lambda: run_python(LABMESH, plain),
            "seqkit": lambda: run_seqkit(seqkit, plain),
            "dnaio count-only": lambda: run_python(DNAIO_COUNT, plain),
        },
        "gzip": {
            "labmesh": lambda: run_python(LABMESH, packed),
            "seqkit": lambda: run_seqkit(seqkit, packed),
            "isal decompress-only": lambda: run_python(ISAL_DECOMPRESS, packed),
        },
    }
    seconds: dict[str, dict[str, list[float]]] = {kind: {name: [] for name in group} for kind, group in tools.items()}
    peaks: dict[str, dict[str, float]] = {kind: {name: 0.0 for name in group} for kind, group in tools.items()}
    outputs: dict[str, dict[str, Any]] = {kind: {} for kind in tools}
    for round_number in range(args.rounds):
        for kind, group in tools.items():
            names = list(group)
            order = names if round_number % 2 == 0 else names[::-1]
            for name in order:
                elapsed, peak, output = group[name]()
                seconds[kind][name].append(elapsed)
                peaks[kind][name] = max(peaks[kind][name], peak)
                outputs[kind][name] = output
    for kind in tools:
        check_agreement(outputs[kind]["labmesh"]["metadata"], outputs[kind]["seqkit"])

    print(f"\n{'input':6} {'tool':22} {'median s':>9} {'MB/s':>8} {'peak MiB':>9}")
    for kind, group in seconds.items():
        for name, values in group.items():
            median = statistics.median(values)
            print(f"{kind:6} {name:22} {median:9.2f} {size_plain / 1e6 / median:8.0f} {peaks[kind][name]:9.0f}")

    def ratio(kind: str, other: str) -> float:
        return statistics.median(seconds[kind][other]) / statistics.median(seconds[kind]["labmesh"])

    goals = [
        ("plain: labmesh speed / seqkit", ratio("plain", "seqkit"), 1.0),
        ("plain: labmesh speed / dnaio count-only", ratio("plain", "dnaio count-only"), 0.5),
        ("gzip:  labmesh speed / seqkit", ratio("gzip", "seqkit"), 1.0),
        ("gzip:  labmesh speed / isal decompress-only", ratio("gzip", "isal decompress-only"), 0.7),
    ]
    print()
    for label, value, goal in goals:
        print(f"{label:45} {value:5.2f}  (goal >= {goal:.2f}) {'met' if value >= goal else 'MISSED'}")
    print(
        "MB/s are of the uncompressed FASTQ. labmesh's figures agree with seqkit's (reads, bases, N50, GC, Q20, Q30)."
    )


if __name__ == "__main__":
    main()
