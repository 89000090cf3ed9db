"""Building a store from plain configuration, for code that runs outside Dagster (Pipes pipelines, the CLI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.connectors.store.local import LocalObjectStore


def open_store(config: Mapping[str, Any]) -> ObjectStore:
    """``{"kind": "local", "root": ...}`` -> the store it describes."""
    kind = config.get("kind")
    if kind == "local":
        return LocalObjectStore(config["root"])
    raise ValueError(f"unknown store kind {kind!r} in {dict(config)!r}")
