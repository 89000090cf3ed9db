"""The content index port and its implementations: SQLite FTS5 locally (PostgreSQL where the lab shares a
database), a Bedrock knowledge base or Amazon Kendra in AWS.

Only the port is imported here; implementations are imported where a profile
picks one, so the local profile never needs boto3's Kendra model.
"""

from labmesh_dagster.connectors.search.base import (
    CONTENT_ATTRIBUTES,
    AttributeType,
    ContentDocument,
    ContentFilter,
    ContentHit,
    ContentIndex,
    ContentIndexUnavailable,
    IndexReport,
)

__all__ = [
    "CONTENT_ATTRIBUTES",
    "AttributeType",
    "ContentDocument",
    "ContentFilter",
    "ContentHit",
    "ContentIndex",
    "ContentIndexUnavailable",
    "IndexReport",
]
