"""Benchmark 3: `labmesh sync` uploads as fast as plain boto3 `upload_file` of the same files.

The same folder of files goes to moto's server twice, side by side, alternating
which goes first: once with boto3's `upload_file` (its defaults: multipart above
8 MiB, 10 threads per file), once with the agent (local sha256, upload with S3
checksums, verification, ledger); both send four files at a time.

Goal: agent throughput >= 90% of plain boto3's.

Run: .venv/bin/python benchmarks/sync_throughput.py [--files 24] [--mib 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _aws import buckets, moto_server  # noqa: E402

from labmesh_dagster.connectors.aws import make_client  # noqa: E402
from labmesh_dagster.connectors.store.s3 import S3ObjectStore  # noqa: E402
from labmesh_dagster.sync.agent import SyncAgent, SyncOptions  # noqa: E402
from labmesh_dagster.sync.layout import Layout  # noqa: E402
from labmesh_dagster.sync.ledger import Ledger  # noqa: E402

WORKERS = 4


def plain(client: Any, folder: Path, bucket: str) -> float:
    """boto3's upload_file, four files at a time like the agent, so only the agent's own work differs."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for path in sorted(folder.iterdir()):
            pool.submit(client.upload_file, str(path), bucket, f"PLAIN/{path.name}")
    return time.perf_counter() - started


def agent(client: Any, folder: Path, names: dict[str, str], ledger: Path, files: int) -> float:
    sync = SyncAgent(
        folder,
        S3ObjectStore(client, names),
        Layout(experiment="EXP-1"),
        Ledger(ledger),
        SyncOptions(quiet_seconds=0, workers=WORKERS),
        log=lambda _: None,
    )
    started = time.perf_counter()
    report = sync.run_once()
    elapsed = time.perf_counter() - started
    assert len(report.uploaded) == files and not report.failed, report.failed
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--mib", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "instrument"
        folder.mkdir()
        for number in range(args.files):
            (folder / f"S{number:03}.fastq.gz").write_bytes(os.urandom(args.mib * 1024 * 1024))
        total = args.files * args.mib * 1024 * 1024
        plain_times, agent_times = [], []
        for round_number in range(args.rounds):
            names = buckets(endpoint)
            client = make_client("s3", endpoint_url=endpoint, region_name="us-east-1")

            ledger = Path(tmp) / f"ledger-{round_number}.sqlite"
            plain_first = round_number % 2 == 0
            for which in ("plain", "agent") if plain_first else ("agent", "plain"):
                if which == "plain":
                    plain_times.append(plain(client, folder, names["landing"]))
                else:
                    agent_times.append(agent(client, folder, names, ledger, args.files))
        plain_rate = total / statistics.median(plain_times) / 1e6
        agent_rate = total / statistics.median(agent_times) / 1e6
        print(f"{args.files} files x {args.mib} MiB, median of {args.rounds} rounds")
        print(f"plain boto3 upload_file: {plain_rate:.1f} MB/s")
        print(f"labmesh sync:            {agent_rate:.1f} MB/s (hashing, checksums, verification and ledger included)")
        print(f"ratio sync/plain: {agent_rate / plain_rate:.2f} (goal >= 0.90)")


if __name__ == "__main__":
    main()
