"""Filling a pipeline's placeholders: one function for every engine.

The local and ECS runners fill a command with local paths, the HealthOmics engine fills
its parameters with ``s3://`` URIs; both go through `expand_command` so that ``{inputs}``,
literal braces and a missing value mean the same everywhere. The file was checked when it
was loaded (`labmesh_dagster.pipelines.spec`), so an error here means the caller forgot a
value, not that the operator wrote a bad placeholder.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence

from labmesh_dagster.core.errors import LabmeshError

Value = str | int | Sequence[str]


class PlaceholderError(LabmeshError, ValueError):
    """A placeholder the caller gave no value for, or a list of values inside a longer argument."""


def _is_many(value: Value) -> bool:
    return not isinstance(value, str | int)


def expand_value(element: str, values: Mapping[str, Value]) -> str:
    """One argument with its placeholders filled; a list of values is refused (it needs an argument of its own)."""
    parts: list[str] = []
    for literal, field, _spec, _conversion in string.Formatter().parse(element):
        parts.append(literal)
        if field is None:
            continue
        if field not in values:
            raise PlaceholderError(f"{element!r}: no value for {{{field}}}")
        value = values[field]
        if _is_many(value):
            raise PlaceholderError(f"{element!r}: {{{field}}} holds several values and must be an argument on its own")
        parts.append(str(value))
    return "".join(parts)


def expand_command(argv: Sequence[str], values: Mapping[str, Value]) -> list[str]:
    """``argv`` with its placeholders filled from ``values``.

    An argument that is exactly one placeholder whose value is a list (``{inputs}``) becomes
    one argument per item, in the order given, and none when the list is empty; everything
    else is formatted str.format style, ``{{`` and ``}}`` giving literal braces.
    """
    expanded: list[str] = []
    for element in argv:
        parsed = list(string.Formatter().parse(element))
        if len(parsed) == 1 and parsed[0][0] == "" and parsed[0][1] is not None:
            field = parsed[0][1]
            value = values.get(field)
            if value is not None and not isinstance(value, str | int):
                expanded.extend(str(item) for item in value)
                continue
        expanded.append(expand_value(element, values))
    return expanded
