"""The object store port and its implementations."""

from labmesh_dagster.connectors.store.base import ObjectInfo, ObjectStore

__all__ = ["ObjectInfo", "ObjectStore"]
