"""Benchmark 2: promoting an S3 object reads (almost) none of it in the worker.

Objects of several sizes land on moto's server, single-part and multipart (as
the AWS CLI or DataSync upload them, with a full-object CRC64NVME);
`promote_experiment` copies each server-side (in parts above 8 MiB here, to
exercise UploadPartCopy), verifies it by the checksum S3 keeps for the whole
object (a HEAD each side), and deletes the landing object. Every byte the
worker reads from an object body is counted.

Goal: bytes read by the worker per promoted object <= 1 MiB.
Multipart uploads with only per-part (COMPOSITE) checksums, the SDKs' default,
cannot be verified without reading; one such object is promoted last and its
reads are reported on their own line.
(Metadata extraction, which `raw_dataset` runs after promotion, reads each
file once by design; it is measured separately by the extraction benchmark.)

Run: .venv/bin/python benchmarks/promotion_bytes_read.py
"""

from __future__ import annotations

import io
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _aws import buckets, moto_server  # noqa: E402

from labmesh_dagster.connectors.store.s3 import MIB, S3ObjectStore  # noqa: E402
from labmesh_dagster.core.keys import ObjectKey, Zone  # noqa: E402
from labmesh_dagster.settings import AwsConnection  # noqa: E402
from labmesh_dagster.steps.promotion import promote_experiment  # noqa: E402
from labmesh_dagster_tests.aws_fakes import ServiceClients  # noqa: E402

SIZES_MIB = [1, 4, 16, 64]


def main() -> None:
    import boto3
    import botocore.response
    from boto3.s3.transfer import TransferConfig

    read_bytes = 0
    real_read = botocore.response.StreamingBody.read

    def counting_read(self, amt=None):  # type: ignore[no-untyped-def]
        nonlocal read_bytes
        chunk = real_read(self, amt)
        read_bytes += len(chunk)
        return chunk

    with moto_server() as endpoint:
        names = buckets(endpoint)
        clients = ServiceClients()  # records every AWS operation the store makes
        client = clients("s3", AwsConnection(endpoint, "us-east-1", max_attempts=8))
        store = S3ObjectStore(client, names, multipart_threshold=8 * MIB, part_size=8 * MIB)
        cli = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        in_parts = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB)
        for size in SIZES_MIB:
            data = b"A" * (size * MIB)
            store.put(ObjectKey.for_experiment(Zone.LANDING, "EXP-1", f"single-{size}MiB.fastq"), data)
            cli.upload_fileobj(
                io.BytesIO(data),
                names["landing"],
                f"EXP-1/multipart-{size}MiB.bam",
                ExtraArgs={"ChecksumAlgorithm": "CRC64NVME"},
                Config=in_parts,
            )
        cli.upload_fileobj(io.BytesIO(b"C" * (16 * MIB)), names["landing"], "EXP-2/composite.bam", Config=in_parts)
        botocore.response.StreamingBody.read = counting_read  # type: ignore[method-assign]
        clients.calls.clear()
        started = time.perf_counter()
        report = promote_experiment(store, "EXP-1", settled_before=datetime.now(UTC) + timedelta(days=1))
        elapsed = time.perf_counter() - started
        calls = list(clients.calls)
        full_object_reads, read_bytes = read_bytes, 0
        composite = promote_experiment(store, "EXP-2", settled_before=datetime.now(UTC) + timedelta(days=1))
        botocore.response.StreamingBody.read = real_read  # type: ignore[method-assign]
    promoted = len(report.promoted)
    assert promoted == 2 * len(SIZES_MIB) and not report.failed, report
    assert len(composite.promoted) == 1 and not composite.failed, composite
    total = 2 * sum(SIZES_MIB) * MIB
    print(f"promoted {promoted} objects ({len(SIZES_MIB)} single-part, {len(SIZES_MIB)} multipart with CRC64NVME)")
    print(f"  {total / MIB:.0f} MiB in all, in {elapsed:.2f} s")
    print(
        f"bytes read by the worker: {full_object_reads} in all, {full_object_reads / promoted:.0f} per object "
        f"(goal <= {MIB})"
    )
    print("AWS calls: " + ", ".join(f"{name} x{calls.count(name)}" for name in sorted(set(calls))))
    print(f"a 16 MiB multipart object with only per-part checksums (SDK default): {read_bytes} bytes read to verify")


if __name__ == "__main__":
    main()
