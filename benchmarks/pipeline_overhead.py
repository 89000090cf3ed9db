"""Benchmark: `fastp` on a 200 MB FASTQ through labmesh, beside the same `fastp` run directly.

Each round generates its own FASTQ (uncompressed, ~200 MB by default, another
seed each round: 150 bp reads with qualities falling along the read, noisy,
some low-quality tails with Ns, and an Illumina adapter in the reads of short
inserts, so that fastp trims, filters and reports for real), lands and
promotes it into a fresh experiment of a local-profile lab whose pipelines
file (``LABMESH_PIPELINES``) holds only the built-in `fastp` pipeline (without
its fallback, which would need a second pipeline in the file). New reads each
round make new report passages, so their embedding is paid as in a lab rather
than found cached in the content index. Then, on that file:

- **direct**: the built-in pipeline's single-file ``command``, its
  placeholders filled as the runner fills them (same threads, same report
  title), run with `subprocess` on the raw zone's own file (the file the local
  store hands the tool), writing into a temporary folder;
- **labmesh**: one `processed_dataset` materialization, in process: the
  runner started through Dagster Pipes (its version command, fastp, staging
  the outputs with their checksums), publishing with a receipt, the manifest
  (extraction of fastp's JSON and HTML), the catalog revision, lineage and the
  content index of the outputs (with their passages' vectors);
- **reused**: the same materialization again, which must find the receipt and
  run no fastp.

Direct and labmesh alternate their order each round, so a busy machine (2
cores here, shared) slows both alike; the figures are medians, in wall
seconds (the goal's unit) and in CPU seconds of this process and every child
it waited for (the runner, fastp), which a loaded machine disturbs far less.
The overhead is labmesh's median minus direct's. Beside it, a breakdown of
labmesh's rounds (the Pipes run, publishing, manifest, index, the embedding
within it) timed by wrapping those steps in this process; how long an
interpreter takes to start with the runner's imports; and the runner alone
(`tool_runner.run_invocation`, no Pipes), timed once.

Goal (issue 18): overhead <= 10% of the tool's own time.

Run: .venv/bin/python benchmarks/pipeline_overhead.py [--megabytes 200] [--rounds 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import os
import pstats
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labmesh_dagster.connectors.search.local import SqliteContentIndex  # noqa: E402
from labmesh_dagster.core.keys import Zone  # noqa: E402
from labmesh_dagster.definitions import build_definitions  # noqa: E402
from labmesh_dagster.defs import pipeline_engines, processed_assets  # noqa: E402
from labmesh_dagster.pipelines import tool_runner  # noqa: E402
from labmesh_dagster.pipelines.commands import expand_command  # noqa: E402
from labmesh_dagster.pipelines.planning import file_stem  # noqa: E402
from labmesh_dagster.pipelines.spec import Pipeline, builtin_pipelines_path, load_pipelines  # noqa: E402
from labmesh_dagster.ports import open_store, store_config  # noqa: E402
from labmesh_dagster.settings import Settings  # noqa: E402
from labmesh_dagster.steps import processing  # noqa: E402

GOAL = 0.10
READ_LENGTH = 150
FASTQ_NAME = "S1_L001_R1_001.fastq"
ADAPTER = np.frombuffer(b"AGATCGGAAGAGCACACGTCTGAACTCCAGTCAC", dtype=np.uint8)
HEADER_PREFIX = b"@LM01:412:HBENCHDXX:1:"
HEADER_SUFFIX = b" 1:N:0:ACGTACGT\n"
EMBEDDING = "  of which embedding passages"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _digits(numbers: np.ndarray, width: int) -> np.ndarray:
    """Each number as ``width`` zero-padded ASCII digits, one row per number."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((numbers[:, None] // powers) % 10 + ord("0")).astype(np.uint8)


def fastq_block(rng: np.random.Generator, first: int, reads: int) -> bytes:
    """``reads`` records as an Illumina instrument writes them, numbered from ``first``, built in numpy."""
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, (reads, READ_LENGTH))]
    # Quality falls from ~37 to ~27 along the read, with noise; one read in twelve decays to Q2 ('#') at the end.
    position = np.arange(READ_LENGTH)
    mean = 37.0 - 10.0 * (position / READ_LENGTH) ** 2
    quality = rng.normal(mean, 3.5, (reads, READ_LENGTH))
    decaying = rng.random(reads) < 1 / 12
    start = rng.integers(90, READ_LENGTH, reads)
    tail = decaying[:, None] & (position[None, :] >= start[:, None])
    quality[tail] = rng.integers(2, 12, int(tail.sum()))
    quality = np.clip(np.rint(quality), 2, 41).astype(np.uint8)
    bases[quality <= 2] = ord("N")
    # One read in eight comes from an insert shorter than the read: the adapter follows the insert.
    short = np.flatnonzero(rng.random(reads) < 1 / 8)
    inserts = rng.integers(40, READ_LENGTH - 10, short.size)
    for row, insert in zip(short, inserts, strict=True):
        piece = ADAPTER[: READ_LENGTH - insert]
        bases[row, insert : insert + piece.size] = piece
    numbers = np.arange(first, first + reads, dtype=np.int64)
    tile, x, y = 1101 + numbers // 400_000 % 60, numbers // 1000 % 400 * 50 + 1000, numbers % 1000 * 30 + 1000
    colon = np.full((reads, 1), ord(":"), dtype=np.uint8)
    newline = np.full((reads, 1), ord("\n"), dtype=np.uint8)
    rows = np.hstack(
        [
            np.tile(np.frombuffer(HEADER_PREFIX, dtype=np.uint8), (reads, 1)),
            _digits(tile, 4),
            colon,
            _digits(x, 5),
            colon,
            _digits(y, 5),
            np.tile(np.frombuffer(HEADER_SUFFIX, dtype=np.uint8), (reads, 1)),
            bases,
            newline,
            np.tile(np.frombuffer(b"+\n", dtype=np.uint8), (reads, 1)),
            quality + 33,
            newline,
        ]
    )
    return rows.tobytes()


def write_fastq(path: Path, megabytes: float, seed: int = 18) -> int:
    """A deterministic FASTQ of about ``megabytes`` MB at ``path``; returns its size in bytes."""
    rng = np.random.default_rng(seed)
    record = len(fastq_block(np.random.default_rng(0), 0, 1))
    total = int(megabytes * 1e6) // record
    block = 50_000
    with path.open("wb") as out:
        for first in range(0, total, block):
            out.write(fastq_block(rng, first, min(block, total - first)))
    return path.stat().st_size


def fastp_pipeline() -> Pipeline:
    """The built-in pipelines file's `fastp`, as it is there."""
    return next(pipeline for pipeline in load_pipelines(builtin_pipelines_path()) if pipeline.name == "fastp")


def write_pipelines_file(path: Path, pipeline: Pipeline) -> None:
    """A pipelines file holding only ``pipeline``, without its fallback (the file would need it too)."""
    data = pipeline.model_dump(mode="json", exclude_none=True)
    data.pop("fallback", None)
    path.write_text(yaml.safe_dump({"version": 1, "pipelines": [data]}, sort_keys=False), encoding="utf-8")


def direct_argv(pipeline: Pipeline, fastq: Path, output_dir: Path) -> list[str]:
    """The single-file ``command`` filled as the runner fills it for one file."""
    values = {
        "input": str(fastq),
        "output_dir": str(output_dir),
        "name": file_stem(fastq.name),
        "threads": str(pipeline.threads),
        "experiment_id": "direct",
    }
    return expand_command(pipeline.command, values)


def cpu_seconds() -> float:
    """CPU seconds this process and every child it has waited for (the runner, fastp) have used so far."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def runner_start(repeats: int = 3) -> float:
    """Median seconds a Pipes runner takes to start: an interpreter importing what the runner imports."""
    imports = "import dagster_pipes, labmesh_dagster.pipelines.tool_runner, labmesh_dagster.ports"
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", imports], check=True)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


class Timers:
    """Seconds (wall, CPU of this process and its waited-for children) spent in wrapped functions, per round."""

    def __init__(self) -> None:
        self.spent: dict[str, tuple[float, float]] = defaultdict(lambda: (0.0, 0.0))

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            cpu, started = cpu_seconds(), time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                wall_sum, cpu_sum = self.spent[name]
                self.spent[name] = (wall_sum + time.perf_counter() - started, cpu_sum + cpu_seconds() - cpu)

        return timed


@contextmanager
def timed_steps(timers: Timers) -> Iterator[None]:
    """The processed_dataset steps wrapped where the asset's modules look them up."""
    patches: list[tuple[Any, str, str]] = [
        (pipeline_engines, "run_local", "pipes run of the runner"),
        (processing, "reusable_receipt", "receipt check"),
        (processing, "publish_outputs", "publish outputs + receipt"),
        (processed_assets, "clear_staging", "clear staging"),
        (processed_assets, "build_manifest", "manifest (extraction)"),
        (processed_assets, "publish", "publish (catalog, lineage, index)"),
        (SqliteContentIndex, "_new_vectors", EMBEDDING),
        (processed_assets, "fastq_qc_failures", "QC verdicts"),
    ]
    originals = [(module, attribute, getattr(module, attribute)) for module, attribute, _ in patches]
    for module, attribute, name in patches:
        setattr(module, attribute, timers.wrap(name, getattr(module, attribute)))
    try:
        yield
    finally:
        for module, attribute, original in originals:
            setattr(module, attribute, original)


class Lab:
    """A local-profile lab whose pipelines file holds only fastp."""

    def __init__(self, root: Path, pipelines_file: Path) -> None:
        self.settings = Settings.from_env(
            {
                "LABMESH_HOME": str(root / "home"),
                "LABMESH_DEMO": "0",
                "LABMESH_LANDING_SETTLE_SECONDS": "0",
                "LABMESH_PIPELINES": str(pipelines_file),
            }
        )
        self.settings.eln_dir.mkdir(parents=True, exist_ok=True)
        self.job = build_definitions(self.settings).resolve_implicit_global_asset_job_def()
        self.instance = dg.DagsterInstance.ephemeral()

    def promote(self, experiment: str, fastq: Path) -> Path:
        """Register the experiment, land the FASTQ and promote it; the raw zone's file."""
        record: dict[str, Any] = {"id": experiment, "title": "Pipeline overhead", "owner": "bench", "group": "bench"}
        record |= {"platform": "Illumina NovaSeq 6000", "samples": [{"id": "S1"}]}
        (self.settings.eln_dir / f"{experiment}.yaml").write_text(yaml.safe_dump(record), encoding="utf-8")
        self.instance.add_dynamic_partitions("experiments", [experiment])
        self.materialize(experiment, "experiment")
        landing = self.settings.store_dir / Zone.LANDING.value / experiment / "reads" / fastq.name
        landing.parent.mkdir(parents=True)
        shutil.copyfile(fastq, landing)
        self.materialize(experiment, "raw_dataset")
        raw = self.settings.store_dir / Zone.RAW.value / experiment / "reads" / fastq.name
        if not raw.is_file():
            raise SystemExit(f"{experiment}: {fastq.name} was not promoted")
        return raw

    def materialize(self, experiment: str, asset: str) -> dg.ExecuteInProcessResult:
        result = self.job.execute_in_process(
            run_config=QUIET,
            instance=self.instance,
            partition_key=experiment,
            asset_selection=[dg.AssetKey(asset)],
        )
        if not result.success:
            raise SystemExit(f"{asset} of {experiment} failed")
        return result

    def processed(self, experiment: str) -> tuple[float, float, dict[str, int]]:
        """Seconds (wall, CPU) one processed_dataset materialization takes, and how many invocations ran,
        were reused and failed."""
        cpu, started = cpu_seconds(), time.perf_counter()
        result = self.materialize(experiment, "processed_dataset")
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        metadata = result.asset_materializations_for_node("processed_dataset")[0].metadata
        counts = {name: int(metadata[f"pipelines_{name}"].value) for name in ("ran", "reused", "failed")}  # type: ignore[arg-type]
        return seconds, cpu, counts


def direct_round(argv_for: Callable[[Path], list[str]], workdir: Path) -> tuple[float, float]:
    """Seconds (wall, CPU) fastp takes run directly."""
    output_dir = workdir / "direct"
    output_dir.mkdir()
    argv = argv_for(output_dir)
    cpu, started = cpu_seconds(), time.perf_counter()
    subprocess.run(argv, cwd=workdir, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    shutil.rmtree(output_dir)
    return seconds, cpu


def runner_alone(lab: Lab, experiment: str, raw: Path, pipeline: Pipeline, scratch: Path) -> tuple[float, float]:
    """Seconds (wall, CPU) `run_invocation` takes in this process (no Pipes): versions, fastp, staging."""
    store = open_store(store_config(lab.settings))
    sha256 = ""  # the local store hands over its own file; the planned checksum is not re-read
    invocation = {
        "invocation_id": "fastp-benchmark000000",
        "pipeline": pipeline.model_dump(mode="json"),
        "experiment_id": experiment,
        "label": f"reads/{file_stem(raw.name)}",
        "name": file_stem(raw.name),
        "inputs": [{"key": f"raw/{experiment}/reads/{raw.name}", "sha256": sha256, "role": "input"}],
        "staging_prefix": f"processed/{experiment}/_labmesh/runs/benchmark/fastp-benchmark000000/",
        "publish_prefix": f"processed/{experiment}/fastp/reads/",
    }
    cpu, started = cpu_seconds(), time.perf_counter()
    result = tool_runner.run_invocation(store, invocation, scratch=scratch)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    if result["status"] != "succeeded":
        raise SystemExit(f"the runner alone failed: {result['reason']}")
    shutil.rmtree(lab.settings.store_dir / Zone.PROCESSED.value / experiment / "_labmesh" / "runs" / "benchmark")
    return seconds, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--megabytes", type=float, default=200, help="size of the generated FASTQ (uncompressed)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print where labmesh's first round spends its time")
    args = parser.parse_args(argv)
    if shutil.which("fastp") is None:
        raise SystemExit("fastp is not installed (apt-get install fastp)")
    pipeline = fastp_pipeline()
    workdir = Path(tempfile.mkdtemp(prefix="labmesh-pipeline-overhead-"))
    wall: dict[str, list[float]] = {"direct": [], "labmesh": [], "reused": []}
    cpu: dict[str, list[float]] = {"direct": [], "labmesh": [], "reused": []}
    breakdowns: list[dict[str, tuple[float, float]]] = []
    try:
        pipelines_file = workdir / "pipelines.yaml"
        write_pipelines_file(pipelines_file, pipeline)
        lab = Lab(workdir / "lab", pipelines_file)
        experiment, raw = "", workdir
        for number in range(args.rounds):
            # Each round its own reads (another seed), as each experiment brings: the outputs' passages are new
            # to the content index, so their embedding is paid as it is in a lab, not found cached.
            experiment = f"BENCH-PIPE-{number + 1:03}"
            started = time.perf_counter()
            fastq = workdir / FASTQ_NAME
            size = write_fastq(fastq, args.megabytes, seed=18 + number)
            made = time.perf_counter() - started
            raw = lab.promote(experiment, fastq)
            fastq.unlink()
            print(
                f"  round {number + 1}: {size / 1e6:.0f} MB FASTQ made in {made:.1f} s, landed and promoted "
                f"as {experiment} in {time.perf_counter() - started - made:.1f} s"
            )
            if number == 0:
                print(f"  fastp directly: {shlex.join(direct_argv(pipeline, raw, workdir / 'direct'))}")
            for name in ("direct", "labmesh") if number % 2 == 0 else ("labmesh", "direct"):
                if name == "direct":
                    seconds, used = direct_round(functools.partial(direct_argv, pipeline, raw), workdir)
                else:
                    timers = Timers()
                    profiler = cProfile.Profile() if args.profile and number == 0 else None
                    with timed_steps(timers):
                        if profiler:
                            profiler.enable()
                        seconds, used, counts = lab.processed(experiment)
                        if profiler:
                            profiler.disable()
                    if counts != {"ran": 1, "reused": 0, "failed": 0}:
                        raise SystemExit(f"{experiment}: expected one fastp run, got {counts}")
                    breakdowns.append(dict(timers.spent))
                    if profiler:
                        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
                wall[name].append(seconds)
                cpu[name].append(used)
                print(f"  round {number + 1} {name:<8} {seconds:6.2f} s, CPU {used:6.2f} s")
            seconds, used, counts = lab.processed(experiment)
            if counts != {"ran": 0, "reused": 1, "failed": 0}:
                raise SystemExit(f"{experiment}: rematerializing should reuse fastp's run, got {counts}")
            wall["reused"].append(seconds)
            cpu["reused"].append(used)
            print(f"  round {number + 1} reused   {seconds:6.2f} s, CPU {used:6.2f} s (no fastp run)")
        alone = runner_alone(lab, experiment, raw, pipeline, workdir)
        start = runner_start()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report(wall, cpu, breakdowns, alone, start)


def report(
    wall: dict[str, list[float]],
    cpu: dict[str, list[float]],
    breakdowns: list[dict[str, tuple[float, float]]],
    alone: tuple[float, float],
    start: float,
) -> int:
    """Print the medians, the overhead and the breakdown; 0 when the goal is met."""
    median = {name: statistics.median(values) for name, values in wall.items()}
    cpu_median = {name: statistics.median(values) for name, values in cpu.items()}
    overhead = median["labmesh"] - median["direct"]
    share = overhead / median["direct"]
    cpu_overhead = cpu_median["labmesh"] - cpu_median["direct"]
    print()
    print(f"{'':<22} {'wall s':>8} {'CPU s':>8}   (medians of {len(wall['direct'])} rounds)")
    print(f"{'fastp directly':<22} {median['direct']:8.2f} {cpu_median['direct']:8.2f}")
    print(f"{'fastp through labmesh':<22} {median['labmesh']:8.2f} {cpu_median['labmesh']:8.2f}")
    print(f"{'overhead':<22} {overhead:8.2f} {cpu_overhead:8.2f}")
    print(
        f"{'overhead / direct':<22} {share:8.1%} {cpu_overhead / cpu_median['direct']:8.1%}   goal <= {GOAL:.0%} (wall)"
    )
    print(f"{'rematerialized (reuse)':<22} {median['reused']:8.2f} {cpu_median['reused']:8.2f}   no fastp run")
    print()
    print("where labmesh's time goes (medians of its rounds):")
    print(f"  {'':<36} {'wall s':>8} {'CPU s':>8}")
    steps = sorted({step for breakdown in breakdowns for step in breakdown}, key=lambda step: (step == EMBEDDING, step))
    for step in steps:
        spent = [breakdown.get(step, (0.0, 0.0)) for breakdown in breakdowns]
        step_wall, step_cpu = statistics.median(w for w, _ in spent), statistics.median(c for _, c in spent)
        print(f"  {step:<36} {step_wall:8.2f} {step_cpu:8.2f}")
    outer = [{step: spent for step, spent in breakdown.items() if step != EMBEDDING} for breakdown in breakdowns]
    rest_wall = median["labmesh"] - statistics.median(sum(w for w, _ in spent.values()) for spent in outer)
    rest_cpu = cpu_median["labmesh"] - statistics.median(sum(c for _, c in spent.values()) for spent in outer)
    print(f"  {'rest (Dagster run, step, records)':<36} {rest_wall:8.2f} {rest_cpu:8.2f}")
    print(f"  of the Pipes run: an interpreter starting with the runner's imports {start:.2f} s;")
    print(
        f"  the runner alone in this process (no Pipes, one run): {alone[0]:.2f} s, CPU {alone[1]:.2f} s "
        f"(direct's medians + {alone[0] - median['direct']:.2f} s, CPU + {alone[1] - cpu_median['direct']:.2f} s)"
    )
    return 0 if share <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
