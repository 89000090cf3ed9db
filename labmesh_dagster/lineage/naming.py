"""Dataset and job names by the OpenLineage naming spec (https://openlineage.io/docs/spec/naming).

Lineage graphs only join across tools when every producer names the same data
the same way, so labmesh follows the spec and the reference implementation
(openlineage-java's ``FilesystemDatasetUtils``) to the letter:

- S3: namespace ``s3://{bucket}``, name the object key or key prefix; ``s3a``
  and ``s3n`` (Hadoop's spellings, what a Spark job reading the same bucket
  reports) are the same store, so they map to ``s3`` too.
- Local file system: namespace ``file``, name the absolute path; a file URI
  naming another host (``file://nas01/...``) gets namespace ``file://nas01``.
- A folder is named without its trailing slash, and a bucket or file system
  root is ``/``: ``s3://lm-raw/EXP-1/`` and ``s3://lm-raw/EXP-1`` are one
  dataset, whoever spelled the URI.

S3 URIs are read literally, the way labmesh's S3 store and the AWS CLI write
them (``s3://bucket/run 1/ß.fastq``): an object key may contain ``%``, ``#``
or ``?``, and decoding or splitting on them would name another object. File
URIs are RFC 8089 URIs, as `pathlib.Path.as_uri` writes them, so they are
percent-decoded back to the path.
"""

from __future__ import annotations

import os
from typing import NamedTuple
from urllib.parse import unquote_to_bytes, urlsplit

# Jobs are labmesh's assets; one namespace keeps them apart from any other
# producer's jobs in a shared catalog.
JOB_NAMESPACE = "labmesh"

_S3_SCHEMES = ("s3", "s3a", "s3n")
_LOCAL_HOSTS = ("", "localhost")


class DatasetName(NamedTuple):
    """A dataset's identity in OpenLineage: unpacks as ``(namespace, name)``."""

    namespace: str
    name: str


class JobName(NamedTuple):
    """A job's identity in OpenLineage: unpacks as ``(namespace, name)``."""

    namespace: str
    name: str


def _folder_name(path: str) -> str:
    """A path without its trailing slashes; the root stays ``/`` so a name is never empty."""
    return path.rstrip("/") or "/"


def dataset_name(uri: str) -> DatasetName:
    """The OpenLineage namespace and name of the object or folder at a store URI.

    Accepts what the stores' ``uri`` and ``location`` return: ``s3://bucket/key``
    and ``file:///abs/path``. Raises `ValueError` for any other scheme, for an
    S3 URI without a bucket and for a file URI with a relative path, because
    a name guessed for those would silently split one dataset into two.
    """
    scheme, separator, rest = uri.partition("://")
    scheme = scheme.lower()
    if separator and scheme in _S3_SCHEMES:
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise ValueError(f"S3 URI {uri!r} names no bucket")
        return DatasetName(f"s3://{bucket}", _folder_name(key.lstrip("/")))
    if uri.lower().startswith("file:"):
        parts = urlsplit(uri)
        if not parts.path.startswith("/"):
            raise ValueError(f"file URI {uri!r} must hold an absolute path")
        # The inverse of Path.as_uri, which quotes the path's bytes: names that are not UTF-8 survive.
        path = os.fsdecode(unquote_to_bytes(parts.path))
        host = parts.netloc
        namespace = "file" if host.lower() in _LOCAL_HOSTS else f"file://{host}"
        return DatasetName(namespace, _folder_name(path))
    raise ValueError(f"cannot name a dataset at {uri!r}: labmesh stores are s3:// or file:// URIs")


def dataset_location(namespace: str, name: str) -> str:
    """Where a named dataset is, written for people: an S3 URI, or a plain path on the local file system.

    The inverse of `dataset_name` up to the trailing slash; names from other
    producers' namespaces are joined the way the spec builds them.
    """
    if namespace == "file":
        return name
    if name == "/":
        return f"{namespace}/"
    return f"{namespace}/{name.lstrip('/')}" if namespace.startswith("s3://") else f"{namespace}{name}"


def job_name(asset: str, namespace: str = JOB_NAMESPACE) -> JobName:
    """A labmesh asset as an OpenLineage job: the partition (experiment) belongs to the run, not the job.

    One job per asset keeps every experiment's runs of ``raw_dataset`` in one
    history, which is what a catalog shows as the job's runs.
    """
    if not asset:
        raise ValueError("a job needs an asset name")
    return JobName(namespace, asset)
