"""Benchmark 1: a landing sensor tick costs what the new events cost, not what the bucket holds.

Two buckets on moto's server, one holding 1,000 objects and one 100,000; each
time 10 new objects arrive and their S3 event notifications reach the SQS queue.
The tick (drain the queue, sort, request the run) is timed on both, side by
side, several rounds, and every AWS call it makes is counted.

Goal: median tick time with 100,000 objects / with 1,000 <= 1.2, and zero LIST calls.

Run: .venv/bin/python benchmarks/landing_sensor_tick.py [--large 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _aws import buckets, moto_server  # noqa: E402

from labmesh_dagster.connectors.aws import make_client  # noqa: E402
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog  # noqa: E402
from labmesh_dagster.core.experiment import ExperimentRecord  # noqa: E402
from labmesh_dagster.definitions import build_definitions  # noqa: E402
from labmesh_dagster.settings import Settings  # noqa: E402
from labmesh_dagster_tests.aws_fakes import ServiceClients  # noqa: E402


def fill(endpoint: str, bucket: str, count: int) -> None:
    """Put ``count`` old objects into the bucket.

    moto's server runs in this process, so its backend is filled directly: the
    same objects a LIST over HTTP returns, in seconds instead of half an hour of
    PUTs. Everything timed below still goes over HTTP.
    """
    from moto.s3.models import s3_backends

    backend = s3_backends["123456789012"]["aws"]
    for number in range(count):
        backend.put_object(bucket, f"EXP-OLD/{number:07}.fastq", b"x", disable_notification=True)
    s3 = make_client("s3", endpoint_url=endpoint, region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="EXP-OLD/", MaxKeys=1)
    assert listed.get("KeyCount") == 1, "the filled objects must be visible over HTTP"


def lab(endpoint: str, objects: int, home: Path) -> tuple[dg.Definitions, dict[str, str], ServiceClients]:
    names = buckets(endpoint)
    sqs = make_client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    queue = sqs.create_queue(QueueName=f"{names['landing']}-events")["QueueUrl"]
    settings = Settings.from_env(
        {
            "LABMESH_HOME": str(home),
            "LABMESH_PROFILE": "aws",
            "LABMESH_AWS_ENDPOINT_URL": endpoint,
            "LABMESH_AWS_REGION": "us-east-1",
            "LABMESH_SQS_LANDING_QUEUE_URL": queue,
            **{f"LABMESH_S3_BUCKET_{zone.upper()}": name for zone, name in names.items()},
        }
    )
    # The objects are in the bucket before it is subscribed to the queue: they are history, not news.
    fill(endpoint, names["landing"], objects)
    clients = ServiceClients()  # records every AWS operation the sensors make
    defs = build_definitions(settings, clients=clients)
    defs.resources["store"].get_store().provision("EXP-1")  # subscribes the bucket to the queue
    SqliteCatalog(settings.catalog_path).upsert_experiment(ExperimentRecord(id="EXP-1", title="bench"), {})
    return defs, names, clients


def tick(
    defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None, name: str = "landing_sensor"
) -> tuple[float, str | None, int]:
    sensor = defs.resolve_sensor_def(name)
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
    ) as context:
        started = time.perf_counter()
        result = sensor(context)
        return time.perf_counter() - started, result.cursor, len(result.run_requests or [])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as tmp, dg.instance_for_test() as instance:
        print(f"filling buckets with {args.small} and {args.large} objects ...", flush=True)
        labs = {size: lab(endpoint, size, Path(tmp) / str(size)) for size in (args.small, args.large)}
        s3 = make_client("s3", endpoint_url=endpoint, region_name="us-east-1")
        cursors: dict[int, str | None] = {}
        for size, (defs, _, _) in labs.items():
            _, cursors[size], _ = tick(defs, instance, None)  # drains the provisioning's own events
        times: dict[int, list[float]] = {size: [] for size in labs}
        lists = 0
        for round_number in range(args.rounds):
            for _, names, _ in labs.values():
                for number in range(10):
                    key = f"EXP-1/r{round_number}/{number}.fastq"
                    s3.put_object(Bucket=names["landing"], Key=key, Body=b"@r\nA\n+\nI\n")
            # Alternate which bucket goes first, so drift on a noisy machine falls on both.
            order = list(labs) if round_number % 2 == 0 else list(reversed(labs))
            for size in order:
                defs, _, clients = labs[size]
                clients.calls.clear()
                elapsed, cursors[size], requested = tick(defs, instance, cursors[size])
                lists += sum(1 for call in clients.calls if call.startswith("ListObjects"))
                assert requested == 1, f"expected one run request, got {requested}"
                times[size].append(elapsed)
        small, large = statistics.median(times[args.small]), statistics.median(times[args.large])
        print(f"median tick, {args.small:>7} objects in the bucket: {small * 1000:.1f} ms")
        print(f"median tick, {args.large:>7} objects in the bucket: {large * 1000:.1f} ms")
        print(f"ratio large/small: {large / small:.2f} (goal <= 1.2)")
        print(f"LIST calls on the event path: {lists} (goal 0)")
        # landing_retry_sensor lists landing once an hour to find files whose run failed, a slice a tick.
        for size, (defs, _, clients) in labs.items():
            clients.calls.clear()
            elapsed, _, _ = tick(defs, instance, None, "landing_retry_sensor")
            pages = sum(1 for call in clients.calls if call.startswith("ListObjects"))
            print(f"retry sweep slice (landing_retry_sensor), {size:>7} objects: {elapsed * 1000:.1f} ms, {pages} LIST")


if __name__ == "__main__":
    main()
