"""Whether HealthOmics can read the raw bucket: its Region against the store's, and its default encryption.

"Your Amazon S3 bucket must be in the same Region as your sequence store"
(HealthOmics Developer Guide, "Importing read sets into a HealthOmics sequence
store"). The store's Region is the fourth field of its ARN, which
``GetSequenceStore`` returns; the bucket's comes from ``HeadBucket``, which the
Amazon S3 API Reference recommends over ``GetBucketLocation`` for finding a
bucket's Region: ``BucketRegion`` on success, and the ``x-amz-bucket-region``
header even when the caller may not read the bucket.

A bucket whose default encryption is SSE-KMS (``GetBucketEncryption`` names
``aws:kms`` or ``aws:kms:dsse``) can only be read by a principal allowed
``kms:Decrypt`` on its key (Amazon S3 User Guide, "Using server-side encryption
with AWS KMS keys"), and the import job reads as the service role. Whether
the role may is for IAM and the key policy to decide, which labmesh's own
credentials cannot see, so it is reported as a requirement naming the key and
the role, not judged.

Throttling and 5xx are retried by the clients' adaptive retries; a bucket
labmesh may not ask about (AccessDenied) is reported as unchecked and the
import goes ahead, since the job itself will tell; anything else left after
the retries raises `OmicsImportError` naming the bucket.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from labmesh_dagster.connectors.aws import error_code
from labmesh_dagster.connectors.omics.base import OmicsImportError, SourceCheck

KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})
_DENIED = frozenset({"403", "AccessDenied", "AllAccessDisabled"})
_MISSING = frozenset({"404", "NoSuchBucket"})
_NO_DEFAULT_ENCRYPTION = "ServerSideEncryptionConfigurationNotFoundError"


def bucket_of(uri: str) -> str:
    """The bucket of an ``s3://bucket/key`` URI."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri}")
    return uri[len("s3://") :].split("/", 1)[0]


def arn_region(arn: str) -> str | None:
    """The Region field of an ARN (``arn:partition:service:region:account:resource``), if it has one."""
    parts = arn.split(":", 5)
    return (parts[3] or None) if len(parts) == 6 and parts[0] == "arn" else None


def _failure(bucket: str, action: str, exc: Exception) -> OmicsImportError:
    detail = f"{error_code(exc)}: {exc}" if isinstance(exc, ClientError) else str(exc)
    return OmicsImportError(f"S3 failed to {action} of raw bucket {bucket} before a HealthOmics import: {detail}")


def _bucket_region(s3: Any, bucket: str) -> tuple[str | None, str | None]:
    """(Region, None), or (None, why it is unknown); raises for a bucket that does not exist."""
    try:
        response = s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        if error_code(exc) in _MISSING:
            raise OmicsImportError(f"raw bucket {bucket} does not exist: HealthOmics cannot import from it") from exc
        if headers.get("x-amz-bucket-region"):
            return str(headers["x-amz-bucket-region"]), None
        if error_code(exc) in _DENIED:
            return None, f"the Region of bucket {bucket} (HeadBucket: {error_code(exc)})"
        raise _failure(bucket, "find the Region", exc) from exc
    except BotoCoreError as exc:
        raise _failure(bucket, "find the Region", exc) from exc
    region = response.get("BucketRegion") or response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get(
        "x-amz-bucket-region"
    )
    return (str(region), None) if region else (None, f"the Region of bucket {bucket} (HeadBucket named none)")


def _kms_keys(s3: Any, bucket: str) -> tuple[list[str], str | None]:
    """The KMS keys (or "its default aws/s3 key") the bucket encrypts new objects with, or why unknown."""
    try:
        response = s3.get_bucket_encryption(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) == _NO_DEFAULT_ENCRYPTION:
            return [], None
        if error_code(exc) in _DENIED:
            return [], f"the default encryption of bucket {bucket} (GetBucketEncryption: {error_code(exc)})"
        raise _failure(bucket, "read the default encryption", exc) from exc
    except BotoCoreError as exc:
        raise _failure(bucket, "read the default encryption", exc) from exc
    keys = []
    for rule in response.get("ServerSideEncryptionConfiguration", {}).get("Rules", []):
        default = rule.get("ApplyServerSideEncryptionByDefault") or {}
        if default.get("SSEAlgorithm") in KMS_ALGORITHMS:
            keys.append(str(default.get("KMSMasterKeyID") or "the AWS managed key aws/s3"))
    return keys, None


def check_buckets(s3: Any, buckets: Iterable[str], *, store_region: str | None, role_arn: str) -> SourceCheck:
    """Each bucket's Region against ``store_region``, and what its SSE-KMS default asks of ``role_arn``."""
    problems: list[str] = []
    requirements: list[str] = []
    unchecked: list[str] = []
    for bucket in sorted(set(buckets)):
        region, unknown = _bucket_region(s3, bucket)
        if unknown:
            unchecked.append(unknown)
        elif store_region and region != store_region:
            problems.append(
                f"raw bucket {bucket} is in {region} but the sequence store is in {store_region}: HealthOmics "
                "imports only from a bucket in the store's own Region (use a sequence store in "
                f"{region}, or a raw bucket in {store_region})"
            )
        keys, unknown = _kms_keys(s3, bucket)
        if unknown:
            unchecked.append(unknown)
        requirements += [
            f"raw bucket {bucket} encrypts with SSE-KMS key {key}: the import role {role_arn} must be allowed "
            "kms:Decrypt on it (IAM policy and key policy), or every file of the bucket fails to import"
            for key in keys
        ]
    return SourceCheck(tuple(problems), tuple(requirements), tuple(unchecked))
