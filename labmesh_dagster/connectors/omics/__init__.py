"""The sequence store port (read sets imported from the raw zone) and its HealthOmics implementation."""

from labmesh_dagster.connectors.omics.base import (
    ImportedReadSet,
    ImportResult,
    OmicsImportError,
    OmicsImportTimeout,
    ReadSetSource,
    SequenceStore,
)

__all__ = [
    "ImportResult",
    "ImportedReadSet",
    "OmicsImportError",
    "OmicsImportTimeout",
    "ReadSetSource",
    "SequenceStore",
]
