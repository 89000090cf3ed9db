"""The eLabFTW API v2 operations and fields the labmesh connector relies on, as small Python data.

Copied by hand from the official OpenAPI description, ``elabftw-openapi-v2.yaml``
(``info.version`` 2.0.0; ``elabftw/elabftw`` ``apidoc/v2/openapi.yaml``). The spec
itself is AGPL-licensed and is not vendored: these lists are the facts the
connector depends on, narrowed to what it actually sends, so that

- the fake server refuses (and the session test reports) any request outside them, and
- ``scripts/check_elabftw_spec.py`` checks each of them against a copy of the
  real spec (the test suite never reads it).

Paths are relative to the API root ``/api/v2``, spelt as the spec spells them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SPEC_FILE = "elabftw-openapi-v2.yaml"
SPEC_VERSION = "2.0.0"
API_ROOT = "/api/v2"


@dataclass(frozen=True)
class Operation:
    """One operation: its method and path template, the query parameters (and values) and body keys labmesh sends."""

    method: str
    path: str
    operation_id: str
    query: frozenset[str] = frozenset()
    # Query parameters with a closed set of values (comma-separated lists are checked value by value).
    query_values: dict[str, frozenset[str]] = field(default_factory=dict)
    body: frozenset[str] = frozenset()


OPERATIONS: tuple[Operation, ...] = (
    # components/parameters (the `searchParams` group): order enum includes "lastchange" and "id";
    # state: 1 normal, 2 archived, 3 deleted, comma separated; scope: 1 self, 2 team, 3 everything.
    Operation(
        "GET",
        "/experiments",
        "read-experiments",
        query=frozenset({"order", "sort", "limit", "offset", "state", "scope", "q", "extended"}),
        query_values={
            "order": frozenset({"lastchange", "id"}),
            "sort": frozenset({"asc", "desc"}),
            "state": frozenset({"1", "2", "3"}),
            "scope": frozenset({"1", "2", "3"}),
        },
    ),
    Operation("GET", "/experiments/{id}", "get-experiment"),
    # requestBodies/PatchEntity: anyOf PatchAction, entity_editable; `metadatamerge` is in entity_editable.
    Operation("PATCH", "/experiments/{id}", "patch-experiment", body=frozenset({"metadatamerge"})),
    # Only to name a linked resource in an `items` extra field when the entry's own links do not.
    Operation("GET", "/items/{id}", "get-item"),
)

# Inside `metadatamerge` (schema `metadata`): the keys labmesh writes, and those of each extra field.
METADATA_KEYS_WRITTEN = frozenset({"extra_fields"})
EXTRA_FIELD_KEYS_WRITTEN = frozenset({"type", "value", "description"})
EXTRA_FIELD_TYPES_WRITTEN = frozenset({"url"})

# schemas/metadata: extra_fields.additionalProperties.properties.type enum, the types the connector reads.
EXTRA_FIELD_TYPES_READ = frozenset(
    {
        "checkbox",
        "compounds",
        "date",
        "datetime-local",
        "email",
        "experiments",
        "items",
        "number",
        "radio",
        "select",
        "text",
        "time",
        "uploads",
        "url",
        "users",
    }
)

# schemas/entity (allOf entity_editable): the response fields the connector relies on.
ENTITY_FIELDS_READ = frozenset(
    {
        "id",
        "title",
        "body",
        "content_type",
        "fullname",
        "created_at",
        "modified_at",
        "state",
        "tags",
        "metadata",
        "items_links",
        "experiments_links",
    }
)
# schemas/link: what names a linked entry.
LINK_FIELDS_READ = frozenset({"entityid", "title"})

# Read when present, but not in the v2 description of an experiment: `team_name` (one of the
# default sources of `group`) and an extra field's `unit` (documented on doc.elabftw.net/metadata).
UNDOCUMENTED_FIELDS_READ = frozenset({"team_name", "unit"})


def operation_for(method: str, path: str) -> Operation | None:
    """The listed operation a request (path under ``/api/v2``, no query) is an instance of, if any."""
    parts = path.strip("/").split("/")
    for operation in OPERATIONS:
        template = operation.path.strip("/").split("/")
        if operation.method != method.upper() or len(template) != len(parts):
            continue
        if all(t == p or (t == "{id}" and p.isdigit()) for t, p in zip(template, parts, strict=True)):
            return operation
    return None
