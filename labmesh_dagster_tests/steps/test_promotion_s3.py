"""Promotion on S3 (moto's server over HTTP): server-side, verified by stored checksums, landing kept on doubt.

Contract: a promoted object is copied server-side and verified without being
downloaded (no GetObject), then removed from landing; a copy whose checksum
differs from the landing object's keeps the landing object and leaves no raw
copy; objects above the multipart threshold are promoted in parts and verified.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from labmesh_dagster.connectors.aws import make_client
from labmesh_dagster.connectors.store.s3 import MIB, S3ObjectStore
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.steps.promotion import promote_experiment
from labmesh_dagster_tests.connectors.test_store_contract import CountingClient
from labmesh_dagster_tests.s3_faults import ErrorAnswer

LATER = datetime.now(UTC) + timedelta(days=1)


@pytest.fixture
def s3(s3_buckets: dict[str, str], moto_endpoint: str) -> tuple[S3ObjectStore, CountingClient]:
    client = CountingClient(make_client("s3", endpoint_url=moto_endpoint, region_name="us-east-1"))
    store = S3ObjectStore(client, s3_buckets, multipart_threshold=6 * MIB, part_size=5 * MIB, upload_part_size=5 * MIB)
    return store, client


def landing(name: str) -> ObjectKey:
    return ObjectKey.for_experiment(Zone.LANDING, "EXP-1", name)


def test_promotion_copies_server_side_and_verifies_without_downloading(s3: tuple[S3ObjectStore, Any]) -> None:
    store, client = s3
    for name in ("S1_R1.fastq.gz", "S1 R2+%.fastq.gz"):
        store.put(landing(name), b"@r\nACGT\n+\nIIII\n" * 1000)
    client.requests.clear()

    report = promote_experiment(store, "EXP-1", settled_before=LATER)

    assert len(report.promoted) == 2 and report.failed == []
    assert "get_object" not in client.calls
    assert [info.key.path for info in store.list(Zone.LANDING)] == []
    raw = sorted(info.key.path for info in store.list(Zone.RAW) if not info.key.is_labmesh_internal)
    assert raw == ["EXP-1/S1 R2+%.fastq.gz", "EXP-1/S1_R1.fastq.gz"]


def test_a_copy_that_does_not_verify_keeps_the_landing_object(s3: tuple[S3ObjectStore, Any]) -> None:
    store, client = s3
    store.put(landing("S1.fastq"), b"@r\nACGT\n+\nIIII\n")
    real_copy = store.copy

    def corrupting_copy(source: ObjectKey, destination: ObjectKey, **options: Any) -> Any:
        real_copy(source, destination, **options)
        return store.put(destination, b"bit rot")

    store.copy = corrupting_copy  # type: ignore[method-assign]

    report = promote_experiment(store, "EXP-1", settled_before=LATER)

    [failure] = report.failed
    assert "checksum mismatch for landing/EXP-1/S1.fastq" in failure.reason
    assert store.read_bytes(landing("S1.fastq")) == b"@r\nACGT\n+\nIIII\n"
    assert list(store.list(Zone.RAW)) == []


def test_objects_above_the_threshold_are_promoted_in_parts(s3: tuple[S3ObjectStore, Any]) -> None:
    store, client = s3
    data = b"ACGT" * (3 * MIB)  # 12 MiB
    assert store.put(landing("big.bam"), data).etag.endswith("-3")  # uploaded in three parts
    client.requests.clear()

    report = promote_experiment(store, "EXP-1", settled_before=LATER)

    # Uploaded in parts and copied in parts, yet verified by the full-object CRC64NVME: nothing is read.
    assert len(report.promoted) == 1 and client.calls.count("upload_part_copy") == 3
    assert "get_object" not in client.calls
    assert store.read_bytes(landing("big.bam").in_zone(Zone.RAW)) == data
    assert list(store.list(Zone.LANDING)) == []


def SlowDown(times: int) -> ErrorAnswer:  # noqa: N802 - reads as the S3 error it answers
    return ErrorAnswer(times, 503, "SlowDown", "Please reduce your request rate.")


@pytest.mark.slow
def test_throttled_copies_are_retried_and_then_succeed(s3_buckets: dict[str, str], moto_endpoint: str) -> None:
    client = make_client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    store = S3ObjectStore(client, s3_buckets)
    store.put(landing("S1.fastq"), b"@r\nACGT\n+\nIIII\n")
    slow_down = SlowDown(times=3)
    client.meta.events.register("before-send.s3.CopyObject", slow_down)

    report = promote_experiment(store, "EXP-1", settled_before=LATER)

    assert slow_down.sent == 3 and len(report.promoted) == 1 and report.failed == []
    assert list(store.list(Zone.LANDING)) == []


@pytest.mark.slow
def test_throttling_that_does_not_stop_fails_clearly_and_keeps_the_landing_object(
    s3_buckets: dict[str, str], moto_endpoint: str
) -> None:
    client = make_client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", max_attempts=3)
    store = S3ObjectStore(client, s3_buckets)
    store.put(landing("S1.fastq"), b"@r\nACGT\n+\nIIII\n")
    client.meta.events.register("before-send.s3.CopyObject", SlowDown(times=10**6))

    report = promote_experiment(store, "EXP-1", settled_before=LATER)

    [failure] = report.failed
    assert "SlowDown" in failure.reason and failure.source == landing("S1.fastq")
    assert store.read_bytes(landing("S1.fastq")) == b"@r\nACGT\n+\nIIII\n"
    assert list(store.list(Zone.RAW)) == []


@pytest.mark.parametrize("operation", ["CopyObject", "DeleteObject"])
def test_a_conflicting_conditional_operation_is_waited_out_not_left_for_the_next_retry_period(
    s3_buckets: dict[str, str], moto_endpoint: str, operation: str
) -> None:
    client = make_client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    waits: list[float] = []
    store = S3ObjectStore(client, s3_buckets, sleep=waits.append)
    store.put(landing("S1.fastq"), b"@r\nACGT\n+\nIIII\n")
    conflict = ErrorAnswer(2, 409, "OperationAborted", "A conflicting conditional operation is currently in progress")
    client.meta.events.register(f"before-send.s3.{operation}", conflict)

    report = promote_experiment(store, "EXP-1", settled_before=LATER)

    assert conflict.sent == 2 and len(waits) == 2
    assert report.failed == [] and [p.destination for p in report.promoted] == [landing("S1.fastq").in_zone(Zone.RAW)]
    assert list(store.list(Zone.LANDING)) == []


def test_the_landing_object_is_deleted_only_if_it_is_still_the_version_copied(
    s3: tuple[S3ObjectStore, Any],
) -> None:
    """S3 enforces If-Match on the delete (moto does not, so the request is pinned and S3's 412 played back)."""
    from botocore.exceptions import ClientError

    store, client = s3
    store.put(landing("S1.fastq"), b"@r\nACGT\n+\nIIII\n")
    etag = store.stat(landing("S1.fastq")).etag
    store.put(landing("S2.fastq"), b"@r\nTTTT\n+\nIIII\n")
    client.requests.clear()
    client.fail["delete_object"] = ClientError(
        {"Error": {"Code": "PreconditionFailed", "Message": "At least one of the pre-conditions did not hold"}},
        "DeleteObject",
    )

    report = promote_experiment(store, "EXP-1", settled_before=LATER)

    deletes = [kwargs for name, kwargs in client.requests if name == "delete_object"]
    assert deletes[0]["Key"] == "EXP-1/S1.fastq" and deletes[0]["IfMatch"] == f'"{etag}"'
    assert sorted(f.source.path for f in report.failed) == ["EXP-1/S1.fastq", "EXP-1/S2.fastq"]
    assert all("changed during promotion" in f.reason for f in report.failed)
    assert sorted(info.key.path for info in store.list(Zone.LANDING)) == ["EXP-1/S1.fastq", "EXP-1/S2.fastq"]
