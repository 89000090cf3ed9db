"""Every object store keeps the port's promises: the local folders and S3 (moto's server, over HTTP) alike.

Contract: put/stat/open/list round trip with list in key order and by prefix;
copy and move keep the bytes; delete is idempotent; sha256 is the content's;
provision gives every zone a location; keys with spaces, `+`, `%` and unicode
survive; a missing object is `ObjectNotFound`; an empty folder (a directory,
or S3's zero-byte ``folder/`` marker) is removed once, and one that holds
anything is kept, on S3 even a file that arrives after the listing. The S3 store verifies a copy by
its stored checksum (no download) and copies large objects in parts.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from labmesh_dagster.connectors.aws import make_client
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.connectors.store.s3 import MIB, S3ObjectStore
from labmesh_dagster.core.checksums import CRC64NVME, Checksum, stream_checksums
from labmesh_dagster.core.errors import ChecksumMismatch, ObjectExists, ObjectNotFound
from labmesh_dagster.core.keys import ObjectKey, Zone

ODD_NAMES = ["run 1/S1 R1.fastq", "a+b.fastq", "100%.csv", "Probe_µ-α/über.txt", "x=1&y=2;z.txt"]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalObjectStore(tmp_path / "store")
        return
    buckets = request.getfixturevalue("s3_buckets")
    client = make_client("s3", endpoint_url=request.getfixturevalue("moto_endpoint"), region_name="us-east-1")
    yield S3ObjectStore(client, buckets)


def key(zone: Zone, text: str) -> ObjectKey:
    return ObjectKey(zone, text)


def test_put_stat_open_and_list_round_trip(store: ObjectStore) -> None:
    store.put(key(Zone.RAW, "EXP-1/b.txt"), b"bee")
    store.put(key(Zone.RAW, "EXP-1/a/z.txt"), b"zed")
    store.put(key(Zone.RAW, "EXP-10/c.txt"), b"sea")

    assert [info.key.path for info in store.list(Zone.RAW)] == ["EXP-1/a/z.txt", "EXP-1/b.txt", "EXP-10/c.txt"]
    assert [info.key.path for info in store.list(Zone.RAW, "EXP-1/")] == ["EXP-1/a/z.txt", "EXP-1/b.txt"]
    info = store.stat(key(Zone.RAW, "EXP-1/b.txt"))
    assert info.size == 3 and info.etag
    with store.open(info.key) as stream:
        assert stream.read() == b"bee"
    assert store.sha256(info.key) == hashlib.sha256(b"bee").hexdigest()


def test_a_listing_resumes_after_a_key(store: ObjectStore) -> None:
    for name in ("EXP-1/a.txt", "EXP-1/b/c.txt", "EXP-1/d.txt", "EXP-2/e.txt"):
        store.put(key(Zone.LANDING, name), b"x")

    assert [i.key.path for i in store.list(Zone.LANDING, start_after="EXP-1/b/c.txt")] == ["EXP-1/d.txt", "EXP-2/e.txt"]
    assert [i.key.path for i in store.list(Zone.LANDING, "EXP-1/", start_after="EXP-1/a.txt")] == [
        "EXP-1/b/c.txt",
        "EXP-1/d.txt",
    ]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_keys_with_spaces_plus_percent_and_unicode_survive(store: ObjectStore, name: str) -> None:
    odd = key(Zone.LANDING, f"EXP-1/{name}")
    store.put(odd, b"odd")

    assert [info.key for info in store.list(Zone.LANDING)] == [odd]
    store.copy(odd, odd.in_zone(Zone.RAW))
    assert store.read_bytes(odd.in_zone(Zone.RAW)) == b"odd"


def test_copy_move_and_delete(store: ObjectStore) -> None:
    source = key(Zone.LANDING, "EXP-1/reads.fastq")
    store.put(source, b"@r\nACGT\n+\nIIII\n")

    store.copy(source, source.in_zone(Zone.RAW))
    store.move(source, key(Zone.LANDING, "_quarantine/EXP-1/reads.fastq"))
    store.delete(source)
    store.delete(source)

    assert not store.exists(source)
    assert store.read_bytes(source.in_zone(Zone.RAW)) == b"@r\nACGT\n+\nIIII\n"
    assert store.read_bytes(key(Zone.LANDING, "_quarantine/EXP-1/reads.fastq")) == b"@r\nACGT\n+\nIIII\n"


def test_a_missing_object_is_not_found(store: ObjectStore) -> None:
    missing = key(Zone.RAW, "EXP-1/none.txt")
    for action in (store.stat, store.open, store.sha256):
        with pytest.raises(ObjectNotFound):
            action(missing)
    with pytest.raises(ObjectNotFound):
        store.copy(missing, missing.in_zone(Zone.FINAL))


def test_provision_gives_every_zone_a_location_and_lists_no_data_object(store: ObjectStore) -> None:
    locations = store.provision("EXP-7")

    assert set(locations) == set(Zone)
    assert all(location.endswith("/EXP-7/") for location in locations.values())
    assert all([i for i in store.list(zone) if not i.key.is_labmesh_internal] == [] for zone in Zone)
    assert store.provision("EXP-7") == locations


def make_folder(store: ObjectStore, zone: Zone, folder: str) -> None:
    """An empty folder as each store has one: a directory, or the zero-byte marker the S3 console and DataSync make."""
    if isinstance(store, LocalObjectStore):
        (store.zone_root(zone) / folder).mkdir(parents=True, exist_ok=True)
        return
    assert isinstance(store, S3ObjectStore)
    store.client.put_object(Bucket=store.bucket(zone), Key=f"{folder}/", Body=b"")


def folders(store: ObjectStore, zone: Zone) -> set[str]:
    """Every folder the zone shows a person: directories, or S3 folder markers."""
    if isinstance(store, LocalObjectStore):
        root = store.zone_root(zone)
        return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_dir()}
    assert isinstance(store, S3ObjectStore)
    listed = store.client.list_objects_v2(Bucket=store.bucket(zone)).get("Contents", [])
    return {item["Key"].rstrip("/") for item in listed if item["Key"].endswith("/")}


def test_an_empty_folder_is_removed_once_and_a_missing_one_is_no_error(store: ObjectStore) -> None:
    make_folder(store, Zone.LANDING, "EXP-1/run1/lane1")

    assert store.remove_empty_folder(Zone.LANDING, "EXP-1/run1/lane1") is True
    assert store.remove_empty_folder(Zone.LANDING, "EXP-1/run1/lane1") is False
    assert store.remove_empty_folder(Zone.LANDING, "EXP-9/never") is False
    assert "EXP-1/run1/lane1" not in folders(store, Zone.LANDING)


def test_a_folder_that_holds_anything_is_kept(store: ObjectStore) -> None:
    make_folder(store, Zone.LANDING, "EXP-1/run1")
    store.put(key(Zone.LANDING, "EXP-1/run1/S1.fastq"), b"@r\nACGT\n+\nIIII\n")
    make_folder(store, Zone.LANDING, "EXP-1/run2")
    make_folder(store, Zone.LANDING, "EXP-1/run2/lane1")

    assert store.remove_empty_folder(Zone.LANDING, "EXP-1/run1") is False
    assert store.remove_empty_folder(Zone.LANDING, "EXP-1/run2") is False
    assert store.read_bytes(key(Zone.LANDING, "EXP-1/run1/S1.fastq")) == b"@r\nACGT\n+\nIIII\n"
    assert {"EXP-1/run1", "EXP-1/run2", "EXP-1/run2/lane1"} <= folders(store, Zone.LANDING)


class CountingClient:
    """Wraps a boto3 client: records each operation and its arguments, and can fail one on purpose."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.fail: dict[str, Exception] = {}

    @property
    def calls(self) -> list[str]:
        return [name for name, _ in self.requests]

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if callable(attribute):

            def call(*args: Any, **kwargs: Any) -> Any:
                self.requests.append((name, kwargs))
                if name in self.fail:
                    raise self.fail[name]
                return attribute(*args, **kwargs)

            return call
        return attribute


@pytest.fixture
def s3(s3_buckets: dict[str, str], moto_endpoint: str) -> tuple[S3ObjectStore, CountingClient]:
    client = CountingClient(make_client("s3", endpoint_url=moto_endpoint, region_name="us-east-1"))
    return S3ObjectStore(client, s3_buckets, multipart_threshold=6 * MIB, part_size=5 * MIB), client


def test_s3_copies_are_verified_by_stored_checksum_without_downloading(
    s3: tuple[S3ObjectStore, CountingClient],
) -> None:
    store, client = s3
    source = key(Zone.LANDING, "EXP-1/reads.fastq")
    data = b"@r\nACGT\n+\nIIII\n" * 100
    store.put(source, data)
    client.requests.clear()

    store.copy(source, source.in_zone(Zone.RAW))
    landing = store.checksum(source)

    assert landing == store.checksum(source.in_zone(Zone.RAW), landing.algorithm)
    assert landing == Checksum(CRC64NVME, crc64nvme_hex(data))
    assert "get_object" not in client.calls and "copy_object" in client.calls


def crc64nvme_hex(data: bytes) -> str:
    return stream_checksums(io.BytesIO(data), (CRC64NVME,))[CRC64NVME].value


def upload_as_another_tool(moto_endpoint: str, bucket: str, name: str, data: bytes, **extra: str) -> None:
    """A multipart upload the way the AWS CLI or an instrument's SDK makes one, with its default checksums."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    plain = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    plain.upload_fileobj(io.BytesIO(data), bucket, name, ExtraArgs=extra or None, Config=config)


@pytest.mark.parametrize(
    "checksum_args",
    [
        {"ChecksumAlgorithm": "CRC64NVME"},
        {"ChecksumAlgorithm": "CRC32C", "ChecksumType": "FULL_OBJECT"},
        {"ChecksumAlgorithm": "CRC32", "ChecksumType": "FULL_OBJECT"},
    ],
    ids=["crc64nvme", "crc32c", "crc32"],
)
def test_s3_verifies_multipart_landing_objects_by_their_full_object_crc(
    s3: tuple[S3ObjectStore, CountingClient],
    moto_endpoint: str,
    s3_buckets: dict[str, str],
    checksum_args: dict[str, str],
) -> None:
    """Multipart objects carry a full-object CRC; the copy is made in the same algorithm and nothing is read."""
    store, client = s3
    data = bytes(range(256)) * (12 * MIB // 256)  # 12 MiB: uploaded in three parts, copied in three
    upload_as_another_tool(moto_endpoint, s3_buckets["landing"], "EXP-1/run.bam", data, **checksum_args)
    source = key(Zone.LANDING, "EXP-1/run.bam")
    client.requests.clear()

    landing = store.checksum(source)
    store.copy(source, source.in_zone(Zone.RAW))
    raw = store.checksum(source.in_zone(Zone.RAW), landing.algorithm)

    assert landing.algorithm != "sha256" and raw == landing
    assert "get_object" not in client.calls and client.calls.count("upload_part_copy") == 3
    assert stream_checksums(io.BytesIO(data), (landing.algorithm,))[landing.algorithm] == landing


@pytest.mark.parametrize(
    "checksum_args", [{}, {"ChecksumAlgorithm": "SHA256"}, {"ChecksumAlgorithm": "CRC32C"}], ids=str
)
def test_s3_reads_objects_that_have_only_per_part_checksums(
    s3: tuple[S3ObjectStore, CountingClient],
    moto_endpoint: str,
    s3_buckets: dict[str, str],
    checksum_args: dict[str, str],
) -> None:
    """A composite checksum (the SDKs' default CRC32 for multipart, any multipart SHA) is a checksum of the
    parts' checksums: it says nothing of the whole, so the data is read."""
    store, client = s3
    data = b"A" * (11 * MIB)
    upload_as_another_tool(moto_endpoint, s3_buckets["landing"], "EXP-1/run.bam", data, **checksum_args)
    client.requests.clear()

    assert store.checksum(key(Zone.LANDING, "EXP-1/run.bam")) == Checksum("sha256", hashlib.sha256(data).hexdigest())
    assert "get_object" in client.calls


def test_s3_copies_into_raw_only_where_nothing_is(s3: tuple[S3ObjectStore, CountingClient]) -> None:
    """``If-None-Match: *`` on the copy (and on completing a multipart copy): S3 refuses to replace raw.

    moto does not enforce it on copies, so the requests are pinned here and S3's 412 is played back.
    """
    store, client = s3
    small, big = key(Zone.LANDING, "EXP-1/small.txt"), key(Zone.LANDING, "EXP-1/big.bam")
    store.put(small, b"small")
    store.put(big, b"B" * (7 * MIB))

    store.copy(small, small.in_zone(Zone.RAW), if_absent=True)
    store.copy(big, big.in_zone(Zone.RAW), if_absent=True)
    [copy_call] = [kwargs for name, kwargs in client.requests if name == "copy_object"]
    [complete_call] = [kwargs for name, kwargs in client.requests if name == "complete_multipart_upload"]
    assert copy_call["IfNoneMatch"] == "*" and complete_call["IfNoneMatch"] == "*"

    client.fail["copy_object"] = ClientError(
        {"Error": {"Code": "PreconditionFailed", "Message": "At least one of the pre-conditions did not hold"}},
        "CopyObject",
    )
    with pytest.raises(ObjectExists):
        store.copy(small, small.in_zone(Zone.RAW), if_absent=True)


def test_the_local_store_copies_into_raw_only_where_nothing_is(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    source = key(Zone.LANDING, "EXP-1/a.txt")
    store.put(source, b"new")
    store.put(source.in_zone(Zone.RAW), b"old")

    with pytest.raises(ObjectExists):
        store.copy(source, source.in_zone(Zone.RAW), if_absent=True)
    assert store.read_bytes(source.in_zone(Zone.RAW)) == b"old"
    assert not any((tmp_path / ".tmp").iterdir())


def test_s3_copies_objects_above_the_threshold_in_parts(s3: tuple[S3ObjectStore, CountingClient]) -> None:
    store, client = s3
    data = bytes(range(256)) * (13 * MIB // 256)  # 13 MiB: three parts of at most 5 MiB
    source = key(Zone.LANDING, "EXP-1/big.bam")
    store.put(source, data)
    client.requests.clear()

    store.copy(source, source.in_zone(Zone.RAW))

    assert client.calls.count("upload_part_copy") == 3 and "copy_object" not in client.calls
    assert store.sha256(source.in_zone(Zone.RAW)) == hashlib.sha256(data).hexdigest()
    [create] = [kwargs for name, kwargs in client.requests if name == "create_multipart_upload"]
    assert create["ChecksumType"] == "FULL_OBJECT"
    assert store.checksum(source.in_zone(Zone.RAW)) == Checksum(CRC64NVME, crc64nvme_hex(data))


def test_s3_copies_only_the_version_it_looked_at(s3: tuple[S3ObjectStore, CountingClient]) -> None:
    """The copy is conditional on the ETag seen; S3 answers 412 if the source changed since (moto does not
    enforce the condition, so the request is pinned here and S3's answer is played back below)."""
    store, client = s3
    source = key(Zone.LANDING, "EXP-1/reads.fastq")
    store.put(source, b"first")
    etag = store.stat(source).etag

    store.copy(source, source.in_zone(Zone.RAW))

    [copy_call] = [kwargs for name, kwargs in client.requests if name == "copy_object"]
    assert copy_call["CopySourceIfMatch"] == f'"{etag}"' and copy_call["ChecksumAlgorithm"] == "CRC64NVME"


def test_s3_reports_a_source_changed_during_the_copy(s3: tuple[S3ObjectStore, CountingClient]) -> None:
    store, client = s3
    source = key(Zone.LANDING, "EXP-1/reads.fastq")
    store.put(source, b"first")
    client.fail["copy_object"] = ClientError(
        {"Error": {"Code": "PreconditionFailed", "Message": "At least one of the pre-conditions did not hold"}},
        "CopyObject",
    )

    with pytest.raises(ChecksumMismatch, match="changed while it was copied"):
        store.copy(source, source.in_zone(Zone.RAW))
    assert not store.exists(source.in_zone(Zone.RAW))


class FileArrivingAfterTheListing(CountingClient):
    """A file lands under the folder in the moment between labmesh's listing and its delete."""

    def list_objects_v2(self, **request: Any) -> Any:
        self.requests.append(("list_objects_v2", request))
        listed = self._client.list_objects_v2(**request)
        self._client.put_object(Bucket=request["Bucket"], Key=f"{request['Prefix']}S9.fastq", Body=b"late")
        return listed


def test_s3_deleting_a_folder_marker_never_takes_a_file_that_arrived_meanwhile(
    s3_buckets: dict[str, str], moto_endpoint: str
) -> None:
    client = FileArrivingAfterTheListing(make_client("s3", endpoint_url=moto_endpoint, region_name="us-east-1"))
    store = S3ObjectStore(client, s3_buckets)
    make_folder(store, Zone.LANDING, "EXP-1/run1")
    client.requests.clear()

    assert store.remove_empty_folder(Zone.LANDING, "EXP-1/run1") is True

    # The marker went, as the listing said it could; the file is an object of its own and stays.
    assert [info.key.path for info in store.list(Zone.LANDING)] == ["EXP-1/run1/S9.fastq"]
    deletes = [request["Key"] for name, request in client.requests if name == "delete_object"]
    assert deletes == ["EXP-1/run1/"]


def test_s3_keeps_a_key_ending_in_a_slash_that_holds_bytes(s3: tuple[S3ObjectStore, CountingClient]) -> None:
    store, client = s3
    client.put_object(Bucket=store.bucket(Zone.LANDING), Key="EXP-1/run1/", Body=b"not a marker")

    assert store.remove_empty_folder(Zone.LANDING, "EXP-1/run1") is False
    assert "EXP-1/run1" in folders(store, Zone.LANDING)
