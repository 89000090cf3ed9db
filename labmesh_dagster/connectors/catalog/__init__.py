"""The metadata catalog port and its implementations."""

from labmesh_dagster.connectors.catalog.base import (
    FACETS,
    Catalog,
    CatalogEntry,
    DatasetRecord,
    DatasetRevision,
    ExperimentSummary,
    FacetCounts,
    FileHit,
    RevisionNotFound,
    SearchHit,
    SearchQuery,
)

__all__ = [
    "FACETS",
    "Catalog",
    "CatalogEntry",
    "DatasetRecord",
    "DatasetRevision",
    "ExperimentSummary",
    "FacetCounts",
    "FileHit",
    "RevisionNotFound",
    "SearchHit",
    "SearchQuery",
]
