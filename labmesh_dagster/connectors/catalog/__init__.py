"""The metadata catalog port and its implementations."""

from labmesh_dagster.connectors.catalog.base import (
    Catalog,
    CatalogEntry,
    DatasetRecord,
    ExperimentSummary,
    FileHit,
    SearchHit,
    SearchQuery,
)

__all__ = [
    "Catalog",
    "CatalogEntry",
    "DatasetRecord",
    "ExperimentSummary",
    "FileHit",
    "SearchHit",
    "SearchQuery",
]
