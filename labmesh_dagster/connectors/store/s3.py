"""The S3 object store: one bucket per zone, objects keyed ``<experiment_id>/<relative path>``.

Copies are server-side (``CopyObject``, or ``UploadPartCopy`` parts above the
multipart threshold, since a single copy is limited to 5 GB), conditional on
the source's ETag so a landing object rewritten mid-promotion is never
half-copied, and, into raw, conditional on the destination being absent
(``If-None-Match: *``) so raw is never overwritten.

Verification costs HEAD requests, not downloads: S3 keeps a checksum of every
object, and `checksum` answers from it whenever it covers the whole object. A
CRC of type ``FULL_OBJECT`` does even for multipart objects (S3 combines the
parts' CRCs), which is why labmesh writes CRC64NVME (S3's own default) and
copies in the algorithm the source already carries. Only objects with nothing
but per-part (``COMPOSITE``) checksums, or none, are read to be verified.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, BinaryIO

from botocore.exceptions import ClientError

from labmesh_dagster.connectors.aws import clear_failure, error_code, retry_conflicts
from labmesh_dagster.connectors.store.base import ObjectInfo, ObjectStore
from labmesh_dagster.connectors.store.s3_setup import experiment_access_policy, with_abort_rule, with_notification
from labmesh_dagster.core.checksums import CRC64NVME, FULL_OBJECT_CAPABLE, S3_NAMES, Checksum
from labmesh_dagster.core.errors import (
    ChecksumMismatch,
    InvalidObjectKey,
    ObjectExists,
    ObjectNotFound,
    StoreUnavailable,
)
from labmesh_dagster.core.keys import LABMESH_DIR, ObjectKey, Zone, experiment_prefix

GIB = 1024**3
MIB = 1024**2
# S3's own limit for a single CopyObject; larger objects must be copied in parts.
SINGLE_COPY_LIMIT = 5 * GIB

_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
ACCESS_POLICY_PATH = f"{LABMESH_DIR}/access-policy.json"
_PRECONDITION = frozenset({"412", "PreconditionFailed"})


def _clear_failure(action: str) -> AbstractContextManager[None]:
    return clear_failure("S3", action, StoreUnavailable, passthrough=_MISSING | _PRECONDITION)


def stored_checksum(head: Mapping[str, Any]) -> Checksum | None:
    """The checksum S3 keeps for the whole object, from a ``ChecksumMode=ENABLED`` HEAD; None if it has none.

    ``COMPOSITE`` checksums (a checksum of the parts' checksums, written
    ``<base64>-<parts>``) say nothing about the whole and are ignored; that is
    what the SDKs' default multipart uploads carry (CRC32 without a type).
    Where the type is not reported (S3-compatible stores), a CRC32/CRC32C/SHA
    is trusted on a single-part object only.
    """
    kind = head.get("ChecksumType")
    for algorithm, s3_name in S3_NAMES.items():
        value = head.get(f"Checksum{s3_name}")
        if not value or "-" in value or kind == "COMPOSITE":
            continue
        # S3 keeps CRC64NVME only as FULL_OBJECT, whatever a store reports for the type.
        if kind == "FULL_OBJECT" or algorithm == CRC64NVME or "-" not in head.get("ETag", ""):
            return Checksum.from_s3(s3_name, value)
    return None


class S3ObjectStore(ObjectStore):
    """Zones as buckets."""

    complete_when_visible = True

    def __init__(
        self,
        client: Any,
        buckets: Mapping[Zone | str, str],
        *,
        multipart_threshold: int = SINGLE_COPY_LIMIT,
        part_size: int = 512 * MIB,
        upload_part_size: int = 64 * MIB,
        upload_concurrency: int = 8,
        notification_queues: Mapping[Zone | str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        # How a conflicting conditional write (409) is waited out; tests hand in one that does not sleep.
        self.sleep = sleep
        # Zone -> SQS queue ARN that receives the zone bucket's object events (landing, final).
        self.notification_queues = {Zone(zone): arn for zone, arn in (notification_queues or {}).items()}
        self._buckets_ready: set[str] = set()
        self.buckets = {Zone(zone): bucket for zone, bucket in buckets.items()}
        missing = set(Zone) - set(self.buckets)
        if missing:
            raise ValueError(f"no bucket configured for zone(s) {', '.join(sorted(z.value for z in missing))}")
        for name, size in (("part_size", part_size), ("upload_part_size", upload_part_size)):
            if not 5 * MIB <= size <= SINGLE_COPY_LIMIT:
                raise ValueError(f"{name} must be between 5 MiB and 5 GiB (S3's limits for a part)")
        self.multipart_threshold = min(multipart_threshold, SINGLE_COPY_LIMIT)
        self.part_size = part_size
        # Uploads go in parallel parts above one part's size: with a full-object CRC kept for the
        # whole, a multipart upload is as cheap to verify as a single PUT.
        self.upload_part_size = upload_part_size
        self.upload_concurrency = max(1, upload_concurrency)

    def bucket(self, zone: Zone) -> str:
        return self.buckets[Zone(zone)]

    def zone_of(self, bucket: str) -> Zone | None:
        """The zone a bucket holds, or None for a bucket that is not one of ours."""
        return next((zone for zone, name in self.buckets.items() if name == bucket), None)

    def _info(self, key: ObjectKey, size: int, modified: Any, etag: str) -> ObjectInfo:
        return ObjectInfo(key=key, size=int(size), modified=modified, etag=etag.strip('"'))

    def list(self, zone: Zone, prefix: str = "", *, start_after: str = "") -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        where = {"StartAfter": start_after} if start_after else {}
        # Pages are fetched as the caller iterates, so a listing of any size stays small in memory.
        with _clear_failure(f"list s3://{self.bucket(zone)}/{prefix}"):
            for page in paginator.paginate(Bucket=self.bucket(zone), Prefix=prefix, **where):
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/"):
                        continue  # a folder marker, not an object
                    try:
                        key = ObjectKey(zone, item["Key"])
                    except InvalidObjectKey:
                        # S3 allows keys like "a//b" or "a/../b" that no zone path may take; they are
                        # never listed (so never promoted), rather than stopping every listing.
                        continue
                    yield self._info(key, item["Size"], item["LastModified"], item["ETag"])

    def _head(self, key: ObjectKey, **extra: Any) -> dict[str, Any]:
        try:
            with _clear_failure(f"read the metadata of {self.uri(key)}"):
                return self.client.head_object(Bucket=self.bucket(key.zone), Key=key.path, **extra)  # type: ignore[no-any-return]
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                raise ObjectNotFound(str(key)) from exc
            raise

    def stat(self, key: ObjectKey) -> ObjectInfo:
        head = self._head(key)
        return self._info(key, head["ContentLength"], head["LastModified"], head["ETag"])

    def open(self, key: ObjectKey) -> AbstractContextManager[BinaryIO]:
        try:
            with _clear_failure(f"read {self.uri(key)}"):
                response = self.client.get_object(Bucket=self.bucket(key.zone), Key=key.path)
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                raise ObjectNotFound(str(key)) from exc
            raise
        return contextlib.closing(response["Body"])  # type: ignore[return-value]

    def put(self, key: ObjectKey, data: bytes | BinaryIO) -> ObjectInfo:
        from boto3.s3.transfer import TransferConfig

        stream = io.BytesIO(data) if isinstance(data, bytes) else data
        config = TransferConfig(
            multipart_threshold=self.upload_part_size,
            multipart_chunksize=self.upload_part_size,
            max_concurrency=self.upload_concurrency,
        )
        with _clear_failure(f"write {self.uri(key)}"):
            # CRC64NVME is always FULL_OBJECT, multipart or not: the HEAD after the upload verifies the whole.
            self.client.upload_fileobj(
                stream, self.bucket(key.zone), key.path, ExtraArgs={"ChecksumAlgorithm": "CRC64NVME"}, Config=config
            )
        return self.stat(key)

    def copy(self, source: ObjectKey, destination: ObjectKey, *, if_absent: bool = False) -> ObjectInfo:
        head = self._head(source, ChecksumMode="ENABLED")
        info = self._info(source, head["ContentLength"], head["LastModified"], head["ETag"])
        algorithm = self._copy_algorithm(stored_checksum(head), info.size)
        copy_source = {"Bucket": self.bucket(source.zone), "Key": source.path}
        conditions = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            with _clear_failure(f"copy {self.uri(source)} to {self.uri(destination)}"):
                if info.size > self.multipart_threshold:
                    self._multipart_copy(copy_source, destination, info, algorithm, conditions)
                else:
                    retry_conflicts(
                        lambda: self.client.copy_object(
                            Bucket=self.bucket(destination.zone),
                            Key=destination.path,
                            CopySource=copy_source,
                            CopySourceIfMatch=f'"{info.etag}"',
                            ChecksumAlgorithm=S3_NAMES[algorithm],
                            **conditions,
                        ),
                        sleep=self.sleep,
                    )
        except ClientError as exc:
            if error_code(exc) in _PRECONDITION:
                if if_absent and not self._changed_since(source, info):
                    raise ObjectExists(str(destination)) from exc
                raise ChecksumMismatch(str(source), info.etag, "the source changed while it was copied") from exc
            if error_code(exc) in _MISSING:
                raise ObjectNotFound(str(source)) from exc
            raise
        return self.stat(destination)

    def _changed_since(self, source: ObjectKey, info: ObjectInfo) -> bool:
        """Which of two preconditions failed: the source's ``If-Match`` or the destination's ``If-None-Match``."""
        try:
            return self.stat(source).etag != info.etag
        except ObjectNotFound:
            return True

    def _copy_algorithm(self, source_checksum: Checksum | None, size: int) -> str:
        """The source's own algorithm where the copy can carry it whole, so comparing them needs no read.

        A SHA cannot cover a multipart copy; a source without a full-object
        checksum is read to be verified anyway, so its copy gets S3's default.
        """
        if source_checksum is None:
            return CRC64NVME
        if source_checksum.algorithm in FULL_OBJECT_CAPABLE or size <= self.multipart_threshold:
            return source_checksum.algorithm
        return CRC64NVME

    def _multipart_copy(
        self,
        copy_source: dict[str, str],
        destination: ObjectKey,
        info: ObjectInfo,
        algorithm: str,
        conditions: Mapping[str, str],
    ) -> None:
        """Copy in parts (UploadPartCopy), each conditional on the source ETag; abort on any failure.

        The upload is ``FULL_OBJECT`` in the source's CRC, so S3 keeps one
        checksum for the whole copy, comparable with the source's.
        """
        bucket = self.bucket(destination.zone)
        s3_name = S3_NAMES[algorithm]
        upload = self.client.create_multipart_upload(
            Bucket=bucket, Key=destination.path, ChecksumAlgorithm=s3_name, ChecksumType="FULL_OBJECT"
        )
        upload_id = upload["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, info.size, self.part_size), start=1):
                end = min(start + self.part_size, info.size) - 1
                result = self.client.upload_part_copy(
                    Bucket=bucket,
                    Key=destination.path,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=copy_source,
                    CopySourceRange=f"bytes={start}-{end}",
                    CopySourceIfMatch=f'"{info.etag}"',
                )["CopyPartResult"]
                part = {"PartNumber": number, "ETag": result["ETag"]}
                if f"Checksum{s3_name}" in result:
                    part[f"Checksum{s3_name}"] = result[f"Checksum{s3_name}"]
                parts.append(part)
            retry_conflicts(
                lambda: self.client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=destination.path,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                    ChecksumType="FULL_OBJECT",
                    **conditions,
                ),
                sleep=self.sleep,
            )
        except BaseException:
            with contextlib.suppress(ClientError):
                self.client.abort_multipart_upload(Bucket=bucket, Key=destination.path, UploadId=upload_id)
            raise

    def delete(self, key: ObjectKey) -> None:
        with _clear_failure(f"delete {self.uri(key)}"):
            retry_conflicts(
                lambda: self.client.delete_object(Bucket=self.bucket(key.zone), Key=key.path), sleep=self.sleep
            )

    def delete_if_unchanged(self, key: ObjectKey, etag: str) -> None:
        """``DeleteObject`` with ``If-Match``: S3 itself refuses to delete a rewritten object."""
        try:
            with _clear_failure(f"delete {self.uri(key)}"):
                retry_conflicts(
                    lambda: self.client.delete_object(Bucket=self.bucket(key.zone), Key=key.path, IfMatch=f'"{etag}"'),
                    sleep=self.sleep,
                )
        except ClientError as exc:
            if error_code(exc) in _PRECONDITION:
                raise ChecksumMismatch(str(key), etag, "the object changed since it was copied") from exc
            if error_code(exc) not in _MISSING:
                raise

    def remove_empty_folder(self, zone: Zone, folder: str) -> bool:
        """Delete the zero-byte ``folder/`` marker if a listing shows nothing else under it.

        S3 has no folders, only keys; the S3 console, DataSync (for each
        directory it copies) and many clients mark one with such an object.
        A marker is an object like any other, so deleting it can never take a
        file that arrived after the listing.
        """
        bucket, marker = self.bucket(zone), f"{folder}/"
        with _clear_failure(f"list s3://{bucket}/{marker}"):
            # Two keys tell "only the marker" (which sorts first under its own prefix) from "the marker and more".
            listed = self.client.list_objects_v2(Bucket=bucket, Prefix=marker, MaxKeys=2).get("Contents", [])
        if [(item["Key"], item["Size"]) for item in listed] != [(marker, 0)]:
            return False
        with _clear_failure(f"delete s3://{bucket}/{marker}"):
            retry_conflicts(lambda: self.client.delete_object(Bucket=bucket, Key=marker), sleep=self.sleep)
        return True

    def provision(self, experiment_id: str) -> dict[Zone, str]:
        """The experiment's place in every zone, and what the buckets need around it.

        Buckets get their event notifications and the multipart clean-up rule
        (once); every zone gets a folder marker tagged with the experiment; the
        experiment's least-privilege access policy is stored in its raw folder.
        """
        for zone in Zone:
            self._prepare_bucket(zone)
        prefix = experiment_prefix(experiment_id)
        for zone in Zone:
            self.client.put_object(
                Bucket=self.bucket(zone),
                Key=prefix,
                Body=b"",
                Tagging=f"labmesh-experiment={experiment_id}&labmesh-zone={zone.value}",
            )
        policy = experiment_access_policy({zone.value: self.bucket(zone) for zone in Zone}, experiment_id)
        policy_key = ObjectKey.for_experiment(Zone.RAW, experiment_id, ACCESS_POLICY_PATH)
        content = (json.dumps(policy, indent=2, sort_keys=True) + "\n").encode("utf-8")
        if not self.exists(policy_key) or self.read_bytes(policy_key) != content:
            self.put(policy_key, content)
        return {zone: self.location(zone, experiment_id) for zone in Zone}

    def _prepare_bucket(self, zone: Zone) -> None:
        bucket = self.bucket(zone)
        if bucket in self._buckets_ready:
            return
        arn = self.notification_queues.get(zone)
        if arn:
            current = self.client.get_bucket_notification_configuration(Bucket=bucket)
            wanted = with_notification(current, arn)
            if wanted is not None:
                self.client.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=wanted)
        try:
            rules = self.client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
        except ClientError as exc:
            if error_code(exc) != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        wanted_rules = with_abort_rule(rules)
        if wanted_rules is not None:
            self.client.put_bucket_lifecycle_configuration(
                Bucket=bucket, LifecycleConfiguration={"Rules": wanted_rules}
            )
        self._buckets_ready.add(bucket)

    def uri(self, key: ObjectKey) -> str:
        return f"s3://{self.bucket(key.zone)}/{key.path}"

    def location(self, zone: Zone, experiment_id: str) -> str:
        return f"s3://{self.bucket(zone)}/{experiment_prefix(experiment_id)}"

    def checksum(self, key: ObjectKey, algorithm: str | None = None) -> Checksum:
        """S3's stored full-object checksum when it is in the algorithm asked for (a HEAD); else the data, streamed."""
        stored = stored_checksum(self._head(key, ChecksumMode="ENABLED"))
        if stored is not None and algorithm in (None, stored.algorithm):
            return stored
        return super().checksum(key, algorithm)
