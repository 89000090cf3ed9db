"""Benchmark: 1,000 files of one experiment, landing to cataloged, through labmesh and through a bare script.

The same generated delivery (FASTQ.gz reads, CSV tables, run logs and JSON
settings, named by their samples; 160 MB by default, files of a few kB to
250 kB, where real sequencing files run to gigabytes) lands twice on the local
profile. labmesh
ingests it the way `make dev` does: one `raw_dataset` run of the real
Definitions, executed in process (promotion with its checksum verification
and journal, extraction, manifest, catalog revision, content index with its
vectors, lineage). The bare script does what any ingestion must do, with
nothing around it: copy each file from landing to raw, verify the copy's
sha256 against the original's, remove the original, read the copy once for
its sha256 and labmesh's own extraction, and insert one row per file into a
SQLite table in one transaction. Like labmesh, it makes each copy durable
(fsync) before it removes the original: a mover that deletes first can lose
a file to a power cut.

labmesh describes two files at a time (`DESCRIBE_WORKERS`), so the script
runs twice: as written, one file after another, which is what the goal is
measured against, and with as many threads as labmesh, whose ratio is
labmesh's own overhead, free of its use of a second thread.

Rounds rotate among the three, each on a fresh copy of the delivery, so a
busy machine slows all alike; the ratio of their median throughputs is the
figure. Each round also prints the CPU seconds its process spent (all its
threads), and the end the ratio of their medians: on a machine other jobs
keep busy, fsync latency swings the wall times, and the CPU ratio shows
whether labmesh's own work changed.

Goal (issue 17): labmesh's throughput >= 70% of the bare script's.

Run: .venv/bin/python benchmarks/ingest_throughput.py [--files 1000] [--rounds 3] [--reads 2000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import hashlib
import io
import json
import os
import pstats
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import numpy as np
import yaml

from labmesh_dagster.core.keys import Zone
from labmesh_dagster.definitions import build_definitions
from labmesh_dagster.extract import extract
from labmesh_dagster.settings import Settings
from labmesh_dagster.steps.manifests import DESCRIBE_WORKERS

EXPERIMENT = "BENCH-INGEST-001"
SAMPLES = [f"S{number:03}" for number in range(1, 21)]
GOAL = 0.7


def fastq(rng: np.random.Generator, reads: int, sample: str) -> bytes:
    """Gzipped FASTQ of ``reads`` random 100 bp reads, made with numpy (a Python loop would take minutes)."""
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, (reads, 100))]
    qualities = rng.integers(33 + 20, 33 + 41, (reads, 100), dtype=np.uint8)
    lines = []
    for number in range(reads):
        lines.append(f"@{sample}:{number} 1:N:0:ACGT\n{bases[number].tobytes().decode()}\n+\n")
        lines.append(f"{qualities[number].tobytes().decode()}\n")
    return gzip.compress("".join(lines).encode(), compresslevel=1)


def delivery(count: int, reads: int = 2000, seed: int = 7) -> dict[str, bytes]:
    """``count`` files as instruments and people deliver them: mostly reads (``reads`` a file), then tables,
    logs and settings."""
    rng, generator = random.Random(seed), np.random.default_rng(seed)
    files: dict[str, bytes] = {}
    for number in range(count):
        sample = SAMPLES[number % len(SAMPLES)]
        kind = number % 10
        if kind < 6:
            files[f"reads/{sample}_L{number:04}_R1.fastq.gz"] = fastq(generator, reads, sample)
        elif kind < 8:
            rows = "\n".join(f"{sample},{i},{rng.random():.4f},{rng.randint(1, 999)}" for i in range(60))
            files[f"tables/{sample}_{number:04}.csv"] = f"sample,well,od600,count\n{rows}\n".encode()
        elif kind == 8:
            steps = (f"2026-11-03 10:{i % 60:02}:00 {sample} step {i} ok, {rng.randint(1, 99)}%" for i in range(80))
            log = "\n".join(steps)
            files[f"logs/run_{number:04}.txt"] = log.encode()
        else:
            settings = {"sample": sample, "instrument": "NovaSeq", "cycles": [151, 8, 8, 151], "run": number}
            files[f"settings/{sample}_{number:04}.json"] = json.dumps(settings, indent=2).encode()
    return files


def land(root: Path, files: dict[str, bytes]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def labmesh_round(workdir: Path, files: dict[str, bytes], profile: bool) -> tuple[float, float]:
    """Seconds labmesh takes from landed to cataloged (one raw_dataset run), the experiment registered before,
    and the CPU seconds it spent."""
    home = workdir / "labmesh"
    settings = Settings.from_env(
        {"LABMESH_HOME": str(home), "LABMESH_DEMO": "0", "LABMESH_LANDING_SETTLE_SECONDS": "0"}
    )
    settings.eln_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "id": EXPERIMENT,
        "title": "Ingest throughput",
        "owner": "bench",
        "group": "bench",
        "platform": "NovaSeq 6000",
        "samples": [{"id": sample} for sample in SAMPLES],
    }
    (settings.eln_dir / f"{EXPERIMENT}.yaml").write_text(yaml.safe_dump(record), encoding="utf-8")
    defs = build_definitions(settings)
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("experiments", [EXPERIMENT])
        job.execute_in_process(instance=instance, partition_key=EXPERIMENT, asset_selection=[dg.AssetKey("experiment")])
        land(settings.store_dir / Zone.LANDING.value / EXPERIMENT, files)
        profiler = cProfile.Profile() if profile else None
        started, cpu_started = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        result = job.execute_in_process(
            instance=instance, partition_key=EXPERIMENT, asset_selection=[dg.AssetKey("raw_dataset")]
        )
        if profiler:
            profiler.disable()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
    raw = list((settings.store_dir / Zone.RAW.value / EXPERIMENT).rglob("*"))
    promoted = sum(1 for path in raw if path.is_file() and "_labmesh" not in path.parts)
    if not result.success or promoted != len(files):
        raise SystemExit(f"labmesh promoted {promoted} of {len(files)} files (run success: {result.success})")
    return seconds, cpu


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class HashingStream(io.RawIOBase):
    """A file read through once for its sha256 while the extractor reads it."""

    def __init__(self, handle: io.BufferedReader) -> None:
        self.handle, self.digest = handle, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = self.handle.readinto(buffer)
        self.digest.update(memoryview(buffer)[:count])
        return count


def bare_file(source: Path, landing: Path, raw: Path) -> tuple[str, int, str, str, str]:
    """One file through the bare script: copied, verified, removed from landing, read for its row."""
    relative = source.relative_to(landing)
    target = raw / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as reading, target.open("wb") as writing:
        shutil.copyfileobj(reading, writing, 1 << 20)
        writing.flush()
        os.fsync(writing.fileno())  # durable before the original goes, as any safe mover must
    if sha256_of(target) != sha256_of(source):
        raise SystemExit(f"{relative}: the copy differs")
    source.unlink()
    with target.open("rb") as handle:
        stream = HashingStream(handle)
        # The file's size too, as labmesh hands it in: the extractor reads a small file without threads.
        size = os.fstat(handle.fileno()).st_size
        extraction = extract(io.BufferedReader(stream), target.name, size=size)  # type: ignore[arg-type]
        while stream.read(1 << 20):
            pass
    metadata = json.dumps(extraction.metadata, default=str)
    return str(relative), target.stat().st_size, stream.digest.hexdigest(), extraction.format, metadata


def bare_round(workdir: Path, files: dict[str, bytes], workers: int = 1) -> tuple[float, float]:
    """Seconds the bare script takes for the same copies, checksums, extraction and inserts, and its CPU seconds.

    With ``workers`` > 1 it takes that many files at once, as labmesh describes files (`DESCRIBE_WORKERS`),
    so the ratio shows labmesh's own overhead rather than its use of a second thread."""
    landing, raw = workdir / "bare" / "landing", workdir / "bare" / "raw"
    land(landing, files)
    db = sqlite3.connect(workdir / "bare" / "catalog.sqlite")
    db.execute("CREATE TABLE files (key TEXT PRIMARY KEY, size INTEGER, sha256 TEXT, format TEXT, metadata TEXT)")
    started, cpu_started = time.perf_counter(), time.process_time()
    sources = sorted(path for path in landing.rglob("*") if path.is_file())
    if workers == 1:
        rows = [bare_file(source, landing, raw) for source in sources]
    else:
        with ThreadPoolExecutor(workers) as pool:
            rows = list(pool.map(lambda source: bare_file(source, landing, raw), sources))
    with db:
        db.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?)", rows)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    db.close()
    return seconds, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--reads", type=int, default=2000, help="reads per FASTQ file (2,000: about 250 kB gzipped; 150 for tiny files)"
    )
    parser.add_argument("--profile", action="store_true", help="print where labmesh's first round spends its time")
    args = parser.parse_args(argv)
    files = delivery(args.files, args.reads)
    megabytes = sum(len(content) for content in files.values()) / 1e6
    print(f"delivery: {len(files)} files, {megabytes:.1f} MB, one experiment")
    threaded = f"bare x{DESCRIBE_WORKERS}"
    names = ["labmesh", "bare script", threaded]
    timings: dict[str, list[float]] = {name: [] for name in names}
    cpu_times: dict[str, list[float]] = {name: [] for name in names}
    for number in range(args.rounds):
        # Each round starts with a different one, so a busy spell of the machine falls on each alike.
        for name in names[number % 3 :] + names[: number % 3]:
            workdir = Path(tempfile.mkdtemp(prefix="labmesh-ingest-"))
            try:
                if name == "labmesh":
                    seconds, cpu = labmesh_round(workdir, files, args.profile and number == 0)
                else:
                    seconds, cpu = bare_round(workdir, files, DESCRIBE_WORKERS if name == threaded else 1)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            timings[name].append(seconds)
            cpu_times[name].append(cpu)
            rate = len(files) / seconds
            print(f"  round {number + 1} {name:<11} {seconds:6.2f} s  {rate:7.1f} files/s  (cpu {cpu:6.2f} s)")
    throughput = {name: len(files) / statistics.median(seconds) for name, seconds in timings.items()}
    print()
    for name, value in throughput.items():
        print(f"{name:<11} median {len(files) / value:6.2f} s, {value:7.1f} files/s")
    for bare in ("bare script", threaded):
        cpu_ratio = statistics.median(cpu_times[bare]) / statistics.median(cpu_times["labmesh"])
        print(f"labmesh / {bare}: {throughput['labmesh'] / throughput[bare]:.2f} (CPU seconds: {cpu_ratio:.2f})")
    ratio = throughput["labmesh"] / throughput["bare script"]
    print(f"labmesh / bare script: {ratio:.2f} (goal >= {GOAL}, against the script as written, one file at a time)")
    return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
