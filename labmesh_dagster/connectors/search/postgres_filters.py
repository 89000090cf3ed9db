"""The facet and access conditions of a PostgreSQL content index query, on a document's number.

The same conditions as the SQLite index's (`SqliteContentIndex._filter_clauses`):
a facet holds when the document has a value row of that name matching it
(exactly, among the format's compressed forms, or within the dates), and a
viewer's principals when one of them is a principal row of the document. Each
is a semi-join on an indexed table, inside the query that ranks, counts or
lists, before its limit: a document a viewer may not see never takes a place.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from labmesh_dagster.connectors.search.base import CREATED, FORMAT, SAMPLE_IDS, ContentFilter


@dataclass
class Conditions:
    """SQL conditions with their named parameters (``c0``, ``c1``...), to be joined with ``AND``."""

    clauses: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def param(self, value: Any) -> str:
        """A new parameter holding ``value``, as the placeholder to write."""
        name = f"c{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses) or "TRUE"

    def __bool__(self) -> bool:
        return bool(self.clauses)


def document_conditions(filters: ContentFilter, principals: Collection[str] | None, doc: str) -> Conditions:
    """The conditions on the document numbered ``doc`` (a column) for the facets and the viewer's principals.

    ``principals`` None: no access condition (labmesh itself, an admin).
    """
    found = Conditions()

    def has_value(name: str, test: str) -> None:
        found.clauses.append(
            f"EXISTS (SELECT 1 FROM content_values AS v WHERE v.doc = {doc} AND v.name = {found.param(name)}"
            f" AND {test})"
        )

    for name, value in filters.equalities().items():
        has_value(name, f"v.text_value = {found.param(value)}")
    if filters.sample_id is not None:
        has_value(SAMPLE_IDS, f"v.text_value = {found.param(filters.sample_id)}")
    if formats := filters.format_values():
        has_value(FORMAT, f"v.text_value = ANY({found.param(list(formats))}::text[])")
    since, until = filters.created_bounds()
    if since is not None:
        has_value(CREATED, f"v.number_value >= {found.param(since.timestamp())}")
    if until is not None:
        has_value(CREATED, f"v.number_value <= {found.param(until.timestamp())}")
    if principals is not None:
        found.clauses.append(
            "EXISTS (SELECT 1 FROM content_principals AS a"
            f" WHERE a.doc = {doc} AND a.principal = ANY({found.param(sorted(principals))}::text[]))"
        )
    return found
