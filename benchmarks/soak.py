"""Benchmark: a soak of the multi-process deployment on PostgreSQL, experiments x files, landing to cataloged.

`labmesh deploy local` (a gRPC code server, dagster-webserver, one
dagster-daemon and the portal, Dagster's instance and labmesh's own state in
a fresh PostgreSQL database) runs in a temporary home. The benchmark writes
the ELN records of ``--experiments`` experiments into the folder ELN, in
waves, and lands ``--files`` files for each as soon as its record is written,
as an instrument would; the deployment's sensors, runs and automation do the
rest, as in production. It polls labmesh's catalog (through `Ports`, as the
portal reads it) until every raw dataset lists all its files, and samples the
daemon's memory while it waits.

Printed: files per minute (all files over the time from the first landing to
the last cataloged); p50 and p95 of the time from an experiment's landing to
its raw dataset being cataloged; the PostgreSQL database's size, and the
share of it that is Dagster's; the daemon's peak resident memory (``VmHWM``);
and how many runs Dagster made and how many failed, with why (the first few). While it runs it prints a
line every ``--report-every`` seconds (experiments cataloged, files a minute
over the last interval and over the whole, runs waiting in Dagster's queue),
so a soak of hours shows whether it slows as the lab grows, and one stopped
by its timeout still reports what it measured. At the end it also counts the
experiments whose processed dataset is cataloged too: the pipelines' runs
share the machine with ingestion and may trail it.

The issue asks for 1,000 experiments x 10 files, which takes hours on a
two-core machine (three runs per experiment, each a new process): that is the
default; ``--experiments 30`` gives a figure in minutes.

``--processed`` waits, after the raw datasets, until every experiment's
processed dataset is cataloged too, and prints how long that took from
landing (p50, p95) and the experiments processed a minute: whether the
pipelines keep up with the instruments, not only ingestion.

``--pipeline-slots N`` sets the ``pipelines-local`` pool's limit (the
experiments whose pipelines run at once; 2 by default), as an operator would
with ``dagster instance concurrency set``.

``--pipelines FILE`` runs another pipelines file than the built-in one
(fastp, seqkit, MultiQC). ``benchmarks/pipelines-none.yaml`` has none, so the
soak measures ingestion alone: on two cores the pipelines take most of the
CPU, and without them the 1,000 experiments finish in under two hours.

Run: .venv/bin/python benchmarks/soak.py [--experiments 1000] [--files 10] [--wave 20] [--timeout 14400]
     [--report-every 300] [--pipelines FILE] [--processed]
     [--pipeline-slots N]
(PostgreSQL at 127.0.0.1:5432 with trust auth, or LABMESH_TEST_POSTGRES_URL; a database is made and dropped)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, LiteralString

import psycopg
import yaml

from labmesh_dagster.core.keys import Zone
from labmesh_dagster.deploy.local import Addresses, Deployment, instance_environment
from labmesh_dagster.ports import Ports
from labmesh_dagster.settings import Settings
from labmesh_dagster_tests.postgres_databases import fresh_database
from labmesh_dagster_tests.scenarios.dev_server import free_port

POLL_SECONDS = 2.0


def record(number: int, files: int) -> dict[str, object]:
    samples = [f"S{number:04}-{sample}" for sample in range(1, max(2, files // 2) + 1)]
    return {
        "id": f"SOAK-{number:04}",
        "title": f"Soak experiment {number}",
        "owner": "soak",
        "group": f"group-{number % 5}",
        "platform": "NovaSeq 6000",
        "samples": samples,
    }


def delivery(experiment: dict[str, object], files: int) -> dict[str, bytes]:
    """``files`` small files of one experiment: reads per sample, then a sample sheet and a run log."""
    samples = list(experiment["samples"])  # type: ignore[call-overload]
    out: dict[str, bytes] = {}
    for number in range(files):
        sample = samples[number % len(samples)]
        if number < files - 2:
            reads = "".join(f"@{sample}:{read}\nACGTACGTAC\n+\nIIIIIIIIII\n" for read in range(200))
            out[f"run/{sample}_R{number % 2 + 1}_{number:02}.fastq"] = reads.encode()
        elif number == files - 2:
            rows = "\n".join(f"{sample},{index}" for index, sample in enumerate(samples))
            out["run/SampleSheet.csv"] = f"sample_id,index\n{rows}\n".encode()
        else:
            out["run/run-log.txt"] = f"Run of {experiment['id']} finished, {len(samples)} samples.\n".encode()
    return out


def peak_rss_mib(pid: int) -> float | None:
    """The process's peak resident memory so far (the kernel's high-water mark), in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def database_sizes(url: str) -> tuple[int, int]:
    """The whole database's bytes, and those of Dagster's own tables (runs, events, schedules)."""
    with psycopg.connect(url) as db:
        total = one(db, "SELECT pg_database_size(current_database())")
        dagster = one(
            db,
            """SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind = 'r'
                 AND (c.relname LIKE 'run%' OR c.relname LIKE 'event%' OR c.relname LIKE 'asset%'
                      OR c.relname LIKE 'job%' OR c.relname LIKE 'instigator%' OR c.relname LIKE 'concurrency%'
                      OR c.relname LIKE 'dynamic_partitions' OR c.relname LIKE 'daemon%' OR c.relname LIKE 'kvs'
                      OR c.relname LIKE 'bulk_actions' OR c.relname LIKE 'secondary_indexes'
                      OR c.relname LIKE 'snapshots' OR c.relname LIKE 'alembic_version'
                      OR c.relname LIKE 'pending_steps')""",
        )
    return total, dagster


def one(db: psycopg.Connection[tuple[Any, ...]], query: LiteralString) -> int:
    row = db.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def queued_runs(url: str) -> int:
    with psycopg.connect(url) as db:
        return one(db, "SELECT count(*) FROM runs WHERE status = 'QUEUED'")


def progress(started: float, cataloged: dict[str, float], since: tuple[float, int], files: int, url: str) -> str:
    """One line of a running soak: cataloged so far, files a minute lately and since ``started``, the queue."""
    now = time.monotonic()
    last_at, last_count = since
    recent = (len(cataloged) - last_count) * files / max(1e-9, (now - last_at) / 60)
    overall = len(cataloged) * files / max(1e-9, (now - started) / 60)
    return (
        f"{(now - started) / 60:6.1f} min: {len(cataloged):5d} cataloged, {recent:6.1f} files/min lately, "
        f"{overall:6.1f} overall, {queued_runs(url)} runs queued"
    )


def set_pool_limit(deployment: Deployment, pool: str, slots: int) -> None:
    """The pool's limit in the deployment's instance, as `dagster instance concurrency set` sets it."""
    from dagster import DagsterInstance

    with instance_environment(deployment.env), DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots(pool, slots)


def run_counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as db:
        return one(db, "SELECT count(*) FROM runs"), one(db, "SELECT count(*) FROM runs WHERE status = 'FAILURE'")


def failures(url: str, most: int = 5) -> list[str]:
    """Why runs failed: each failed step's error (or the run's own message), read before the database is dropped."""
    with psycopg.connect(url) as db:
        rows = db.execute(
            """SELECT e.run_id, e.event FROM event_logs e JOIN runs r ON r.run_id = e.run_id
               WHERE r.status = 'FAILURE' AND e.dagster_event_type IN ('STEP_FAILURE', 'RUN_FAILURE')
               ORDER BY e.id LIMIT %s""",
            (most,),
        ).fetchall()
    reasons = []
    for run_id, body in rows:
        event = json.loads(body)
        data = (event.get("dagster_event") or {}).get("event_specific_data") or {}
        error = (data.get("error") or {}).get("message") if isinstance(data, dict) else None
        reasons.append(f"{str(run_id)[:8]}: {(error or event.get('user_message') or '').strip()[:300]}")
    return reasons


def soak(
    url: str,
    home: Path,
    experiments: int,
    files: int,
    wave: int,
    timeout: float,
    report_every: float,
    pipelines: Path | None,
    wait_for_processed: bool = False,
    pipeline_slots: int | None = None,
) -> int:
    env = {
        "LABMESH_HOME": str(home),
        "LABMESH_DEMO": "0",
        "LABMESH_DATABASE_URL": url,
        "LABMESH_LANDING_SETTLE_SECONDS": "1",
        "LABMESH_SENSOR_INTERVAL_SECONDS": "5",
    }
    if pipelines is not None:
        env["LABMESH_PIPELINES"] = str(pipelines.resolve())
    os.environ.update(env)
    settings = Settings.from_env(env)
    addresses = Addresses(webserver_port=free_port(), grpc_port=free_port(), portal_port=free_port(), host="127.0.0.1")
    deployment = Deployment(settings, addresses, base_env={**os.environ, **env})
    started = time.monotonic()
    deployment.start_all()
    if pipeline_slots is not None:
        set_pool_limit(deployment, "pipelines-local", pipeline_slots)
    print(f"deployment up in {time.monotonic() - started:.0f} s ({home})", flush=True)
    catalog = Ports(settings).catalog()
    landed: dict[str, float] = {}
    cataloged: dict[str, float] = {}
    processed: dict[str, float] = {}
    peak = 0.0
    records = [record(number, files) for number in range(1, experiments + 1)]
    deadline = time.monotonic() + timeout
    timed_out = False
    reported = (time.monotonic(), 0)
    try:
        while len(cataloged) < experiments or (wait_for_processed and len(processed) < experiments):
            if time.monotonic() > deadline:
                print(
                    f"timed out with {len(cataloged)} of {experiments} experiments cataloged"
                    + (f", {len(processed)} processed" if wait_for_processed else ""),
                    flush=True,
                )
                timed_out = True
                break
            waiting = len(landed) - len(cataloged)
            for experiment in records[len(landed) :][: max(0, wave - waiting)]:
                identifier = str(experiment["id"])
                (settings.eln_dir / f"{identifier}.yaml").write_text(yaml.safe_dump(experiment), encoding="utf-8")
                for relative, content in delivery(experiment, files).items():
                    path = settings.store_dir / Zone.LANDING.value / identifier / relative
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(content)
                landed[identifier] = time.monotonic()
            for identifier in [name for name in landed if name not in cataloged]:
                dataset = catalog.get_dataset(identifier, Zone.RAW)
                if dataset is not None and len(dataset.files) == files:
                    cataloged[identifier] = time.monotonic()
            if wait_for_processed:
                for identifier in [name for name in cataloged if name not in processed]:
                    if catalog.get_dataset(identifier, Zone.PROCESSED) is not None:
                        processed[identifier] = time.monotonic()
            peak = max(peak, peak_rss_mib(deployment.processes["daemon"].pid) or 0.0)
            if time.monotonic() - reported[0] >= report_every:
                line = progress(min(landed.values()), cataloged, reported, files, url)
                print(line + (f", {len(processed)} processed" if wait_for_processed else ""), flush=True)
                reported = (time.monotonic(), len(cataloged))
            time.sleep(POLL_SECONDS)
        if not wait_for_processed:
            # Without --processed, what the pipelines had finished by the time ingestion had.
            now = time.monotonic()
            processed = {name: now for name in cataloged if catalog.get_dataset(name, Zone.PROCESSED) is not None}
    finally:
        deployment.stop_all()
    if not cataloged:
        return 1
    # A soak cut short by its timeout still says what it measured, of the experiments cataloged by then.
    latencies = sorted(cataloged[name] - landed[name] for name in cataloged)
    span = max(cataloged.values()) - min(landed.values())
    total, dagster = database_sizes(url)
    runs, failed = run_counts(url)
    print(f"{len(cataloged)} of {experiments} experiments x {files} files on labmesh deploy local (PostgreSQL)")
    print(f"pipelines file:                {pipelines or 'the built-in one'}")
    print(f"pipelines-local pool:          {pipeline_slots or 'the default'}")
    print(f"files per minute:              {len(cataloged) * files / (span / 60):8.1f}")
    print(f"landing to cataloged p50:      {statistics.median(latencies):8.1f} s")
    print(f"landing to cataloged p95:      {percentile_95(latencies):8.1f} s")
    print(f"database size:                 {total / 2**20:8.1f} MiB ({dagster / 2**20:.1f} MiB Dagster's tables)")
    print(f"daemon peak resident memory:   {peak:8.1f} MiB")
    print(f"Dagster runs:                  {runs:8d} ({failed} failed)")
    for reason in failures(url) if failed else []:
        print(f"  failed: {reason}")
    print(f"processed dataset cataloged:   {len(processed):8d} of those experiments")
    if wait_for_processed and processed:
        to_processed = sorted(processed[name] - landed[name] for name in processed)
        processed_span = max(processed.values()) - min(landed.values())
        print(f"experiments processed a minute:{len(processed) / (processed_span / 60):8.2f}")
        print(f"landing to processed p50:      {statistics.median(to_processed):8.1f} s")
        print(f"landing to processed p95:      {percentile_95(to_processed):8.1f} s")
    return 1 if timed_out else 0


def percentile_95(ordered: list[float]) -> float:
    """The 95th percentile of ascending ``ordered`` (the nearest rank below)."""
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--wave", type=int, default=20, help="experiments landed and not yet cataloged, at most")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds before giving up")
    parser.add_argument("--report-every", type=float, default=300, help="seconds between progress lines")
    parser.add_argument("--pipelines", type=Path, help="the pipelines file to run (default: the built-in one)")
    parser.add_argument("--pipeline-slots", type=int, help="the pipelines-local pool's limit (default: 2)")
    parser.add_argument(
        "--processed", action="store_true", help="also wait until every experiment's processed dataset is cataloged"
    )
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="labmesh-soak-"))
    try:
        with fresh_database("labmesh_soak") as url:
            return soak(
                url,
                home,
                args.experiments,
                args.files,
                args.wave,
                args.timeout,
                args.report_every,
                args.pipelines,
                wait_for_processed=args.processed,
                pipeline_slots=args.pipeline_slots,
            )
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
