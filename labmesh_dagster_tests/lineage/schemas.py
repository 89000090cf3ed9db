"""Offline validation of OpenLineage events against the vendored specification.

The schemas name each other by `$id` URLs; the registry holds exactly the
vendored files plus labmesh's own facet schemas and has no way to retrieve
anything else, so an unknown reference fails the test instead of reaching for
the network. Formats are checked by checkers defined here, not by optional
jsonschema extras, so a missing extra can never quietly switch a check off.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match
from referencing import Registry, Resource

from labmesh_dagster.lineage.events import FACET_SCHEMAS

SCHEMA_DIR = Path(__file__).parents[1] / "data" / "openlineage"
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


@cache
def schema_documents() -> dict[str, Mapping[str, Any]]:
    """Every schema the tests know, vendored and labmesh's own, by `$id`."""
    documents: dict[str, Mapping[str, Any]] = {}
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        documents[contents["$id"]] = contents
    documents.update(FACET_SCHEMAS)
    return documents


@cache
def registry() -> Registry:
    return Registry().with_resources(
        (url, Resource.from_contents(contents)) for url, contents in schema_documents().items()
    )


def format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())

    @checker.checks("uri", raises=ValueError)
    def is_uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return bool(parts.scheme) and bool(parts.netloc or parts.path) and " " not in value

    @checker.checks("date-time", raises=ValueError)
    def is_date_time(value: object) -> bool:
        # RFC 3339 wants a time and an offset, not just something ISO-8601-ish.
        if not isinstance(value, str):
            return True
        return "T" in value.upper() and datetime.fromisoformat(value).tzinfo is not None

    @checker.checks("uuid", raises=ValueError)
    def is_uuid(value: object) -> bool:
        return not isinstance(value, str) or str(UUID(value)) == value.lower()

    return checker


def validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, registry=registry(), format_checker=format_checker())


def check(schema: Mapping[str, Any], instance: object) -> None:
    """Raise the most specific `ValidationError`, not the `anyOf` that wraps it, so failures name the field."""
    error = best_match(validator(schema).iter_errors(instance))
    if error is not None:
        raise error


def _facets(event: Mapping[str, Any]) -> Iterator[tuple[str, str, str, Mapping[str, Any]]]:
    """(where, the OpenLineage base type that place requires, facet key, facet) for every facet of an event."""
    yield from (("run", "RunFacet", key, facet) for key, facet in (event["run"].get("facets") or {}).items())
    yield from (("job", "JobFacet", key, facet) for key, facet in (event["job"].get("facets") or {}).items())
    for role, extra, extra_base in (
        ("inputs", "inputFacets", "InputDatasetFacet"),
        ("outputs", "outputFacets", "OutputDatasetFacet"),
    ):
        for dataset in event.get(role) or ():
            where = f"{role} {dataset['namespace']} {dataset['name']}"
            yield from ((where, "DatasetFacet", key, facet) for key, facet in (dataset.get("facets") or {}).items())
            yield from ((where, extra_base, key, facet) for key, facet in (dataset.get(extra) or {}).items())


def validate_event(event: Mapping[str, Any]) -> list[str]:
    """Validate a run event and each of its facets; returns the facet keys checked, in event order.

    Each facet is checked against the schema its own ``_schemaURL`` names,
    which must be one the tests hold; under the key that schema declares (an
    ``errorMessage`` facet filed as ``error`` fails); and in a place its base
    type allows (a run facet among dataset facets fails).
    """
    documents = schema_documents()
    check({"$ref": RUN_EVENT}, event)
    check(documents["https://openlineage.io/spec/2-0-2/OpenLineage.json"], event)
    checked = []
    for where, base, key, facet in _facets(event):
        document_url, _, pointer = str(facet.get("_schemaURL", "")).partition("#")
        assert document_url in documents, f"{where}: facet {key!r} names a schema the tests do not hold: {document_url}"
        document = documents[document_url]
        assert key in document["properties"], f"{where}: facet {key!r} must be filed as {list(document['properties'])}"
        definition = document["$defs"][pointer.rsplit("/", 1)[-1]]
        assert definition["allOf"][0]["$ref"].endswith(f"/{base}"), f"{where}: facet {key!r} is not a {base}"
        check(document, {key: facet})
        checked.append(key)
    return checked
