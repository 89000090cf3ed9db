"""Building a store from plain configuration, for code that runs outside Dagster (Pipes pipelines, the CLI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.connectors.store.local import LocalObjectStore


def open_store(config: Mapping[str, Any]) -> ObjectStore:
    """``{"kind": "local", "root": ...}`` or ``{"kind": "s3", "buckets": {...}, ...}`` -> the store it describes.

    Credentials are never part of the configuration: S3 clients find them the
    usual way (environment, profile, instance role), in a subprocess too.
    """
    kind = config.get("kind")
    if kind == "local":
        return LocalObjectStore(config["root"])
    if kind == "s3":
        from labmesh_dagster.connectors.aws import make_client
        from labmesh_dagster.connectors.store.s3 import S3ObjectStore

        client = make_client("s3", endpoint_url=config.get("endpoint_url"), region_name=config.get("region_name"))
        return S3ObjectStore(
            client,
            config["buckets"],
            multipart_threshold=int(config["multipart_threshold"]),
            part_size=int(config["part_size"]),
            notification_queues=config.get("notification_queues") or {},
        )
    raise ValueError(f"unknown store kind {kind!r} in {dict(config)!r}")
