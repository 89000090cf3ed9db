"""Check the eLabFTW operations labmesh relies on against a copy of the official OpenAPI description.

The spec is AGPL-licensed, so it is not vendored and the test suite never reads
it: ``labmesh_dagster_tests/eln/elabftw_operations.py`` keeps, by hand, the
operations and fields the connector sends and reads, citing the spec version.
Run this when eLabFTW publishes a new version, or after changing that list:

    .venv/bin/python scripts/check_elabftw_spec.py path/to/elabftw-openapi-v2.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from labmesh_dagster_tests.eln import elabftw_operations as ops  # noqa: E402


def _resolve(spec: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _properties(spec: dict[str, Any], schema: Any) -> dict[str, Any]:
    """Properties of a schema, through $ref, allOf and anyOf."""
    schema = _resolve(spec, schema)
    found = dict(schema.get("properties") or {})
    for key in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(key) or ():
            found.update(_properties(spec, part))
    return found


def check(spec: dict[str, Any]) -> None:
    """Raise AssertionError where a listed operation or field is not what the spec says."""
    assert spec["info"]["version"] == ops.SPEC_VERSION
    assert any(server["url"].endswith(ops.API_ROOT) for server in spec["servers"])
    for operation in ops.OPERATIONS:
        path_item = spec["paths"][operation.path]
        described = path_item[operation.method.lower()]
        assert described["operationId"] == operation.operation_id
        parameters = {}
        for parameter in [*path_item.get("parameters", []), *described.get("parameters", [])]:
            parameter = _resolve(spec, parameter)
            parameters[parameter["name"]] = parameter
        assert operation.query <= set(parameters), operation.operation_id
        for name, values in operation.query_values.items():
            schema = parameters[name]["schema"]
            allowed = {str(value) for value in schema.get("enum", [])}
            if name == "state":  # a comma-separated list, documented in words: 1, 2, 3
                allowed = {value for value in "123" if value in parameters[name]["description"]}
            assert values <= allowed, (operation.operation_id, name)
        if operation.body:
            body = _resolve(spec, described["requestBody"])
            schema = body["content"]["application/json"]["schema"]
            assert operation.body <= set(_properties(spec, schema)), operation.operation_id
    metadata = _properties(spec, {"$ref": "#/components/schemas/metadata"})
    assert set(metadata) >= ops.METADATA_KEYS_WRITTEN
    extra_field = metadata["extra_fields"]["additionalProperties"]["properties"]
    assert set(extra_field) >= ops.EXTRA_FIELD_KEYS_WRITTEN
    assert ops.EXTRA_FIELD_TYPES_WRITTEN <= ops.EXTRA_FIELD_TYPES_READ == set(extra_field["type"]["enum"])
    entity = _properties(spec, {"$ref": "#/components/schemas/experiment"})
    assert set(entity) >= ops.ENTITY_FIELDS_READ
    assert set(_properties(spec, {"$ref": "#/components/schemas/link"})) >= ops.LINK_FIELDS_READ
    assert not ops.UNDOCUMENTED_FIELDS_READ & (set(entity) | set(extra_field)), "now documented: move it"


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    check(yaml.safe_load(Path(sys.argv[1]).read_text(encoding="utf-8")))
    print(f"every listed operation and field is in the spec ({ops.SPEC_VERSION})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
