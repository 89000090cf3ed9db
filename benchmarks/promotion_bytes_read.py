"""Benchmark 2: promoting an S3 object reads (almost) none of it in the worker.

Objects of several sizes land on moto's server; `promote_experiment` copies each
server-side, verifies it by S3's stored SHA-256 (HEAD), and deletes the landing
object. Every byte the worker reads from an object body is counted.

Goal: bytes read by the worker per promoted object <= 1 MiB.
(Metadata extraction, which `raw_dataset` runs after promotion, reads each
file once by design; it is measured separately by the extraction benchmark.)

Run: .venv/bin/python benchmarks/promotion_bytes_read.py
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _aws import ApiCalls, buckets, moto_server  # noqa: E402

from labmesh_dagster.connectors.aws import make_client  # noqa: E402
from labmesh_dagster.connectors.store.s3 import MIB, S3ObjectStore  # noqa: E402
from labmesh_dagster.core.keys import ObjectKey, Zone  # noqa: E402
from labmesh_dagster.steps.promotion import promote_experiment  # noqa: E402

SIZES_MIB = [1, 4, 16, 64]


def main() -> None:
    import botocore.response

    read_bytes = 0
    real_read = botocore.response.StreamingBody.read

    def counting_read(self, amt=None):  # type: ignore[no-untyped-def]
        nonlocal read_bytes
        chunk = real_read(self, amt)
        read_bytes += len(chunk)
        return chunk

    with moto_server() as endpoint:
        store = S3ObjectStore(make_client("s3", endpoint_url=endpoint, region_name="us-east-1"), buckets(endpoint))
        for size in SIZES_MIB:
            store.put(ObjectKey.for_experiment(Zone.LANDING, "EXP-1", f"reads-{size}MiB.fastq"), b"A" * (size * MIB))
        botocore.response.StreamingBody.read = counting_read  # type: ignore[method-assign]
        calls = ApiCalls()
        started = time.perf_counter()
        report = promote_experiment(store, "EXP-1", settled_before=datetime.now(UTC) + timedelta(days=1))
        elapsed = time.perf_counter() - started
        calls.close()
        botocore.response.StreamingBody.read = real_read  # type: ignore[method-assign]
    promoted = len(report.promoted)
    assert promoted == len(SIZES_MIB) and not report.failed, report
    total = sum(SIZES_MIB) * MIB
    print(f"promoted {promoted} objects, {total / MIB:.0f} MiB in all, in {elapsed:.2f} s")
    print(f"bytes read by the worker: {read_bytes} in all, {read_bytes / promoted:.0f} per object (goal <= {MIB})")
    print("AWS calls: " + ", ".join(f"{name} x{calls.calls.count(name)}" for name in sorted(set(calls.calls))))


if __name__ == "__main__":
    main()
