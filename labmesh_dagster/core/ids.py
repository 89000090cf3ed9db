"""Experiment id rules.

An experiment id becomes an object key prefix, a directory name and a Dagster
partition key, so it is validated before it touches any of them. The pattern
rules out path separators, leading dots and dashes, whitespace and anything that
would need quoting; `.` and `..` are refused explicitly because they would walk
out of a zone on a file system.
"""

from __future__ import annotations

import re

from labmesh_dagster.core.errors import InvalidExperimentId

EXPERIMENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def validate_experiment_id(value: object) -> str:
    """Return ``value`` unchanged if it is a valid experiment id, else raise `InvalidExperimentId`."""
    if not isinstance(value, str):
        raise InvalidExperimentId(value, "must be a string")
    if value in {".", ".."}:
        raise InvalidExperimentId(value, "'.' and '..' are reserved")
    if not value:
        raise InvalidExperimentId(value, "must not be empty")
    if len(value) > 128:
        raise InvalidExperimentId(value, "must be at most 128 characters")
    if not EXPERIMENT_ID_PATTERN.fullmatch(value):
        raise InvalidExperimentId(
            value,
            "must start with a letter or digit and contain only letters, digits, '.', '_' and '-'",
        )
    return value


def is_valid_experiment_id(value: object) -> bool:
    """Whether ``value`` passes `validate_experiment_id`."""
    try:
        validate_experiment_id(value)
    except InvalidExperimentId:
        return False
    return True
