"""The sequence store port (read sets imported from the raw zone) and its HealthOmics implementation."""

from labmesh_dagster.connectors.omics.base import (
    ImportedReadSet,
    ImportResult,
    OmicsImportError,
    OmicsImportTimeout,
    OmicsSourceError,
    ReadSetSource,
    SequenceStore,
    SourceCheck,
)

__all__ = [
    "ImportResult",
    "ImportedReadSet",
    "OmicsImportError",
    "OmicsImportTimeout",
    "OmicsSourceError",
    "ReadSetSource",
    "SequenceStore",
    "SourceCheck",
]
