"""An experiment id becomes a key prefix, a directory name and a partition key, so only safe ids pass.

Pinned here: the pattern ``^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`` (a letter or
digit first, then letters, digits, ``.``, ``_`` and ``-``, 128 characters at
most); ``.`` and ``..`` are refused; separators, whitespace, non-ASCII, empty
strings and non-strings are refused; `validate_experiment_id` returns the value
unchanged and its error names the value and the reason; `is_valid_experiment_id`
is the same rule as a boolean.
"""

from __future__ import annotations

import pytest

from labmesh_dagster.core.errors import InvalidExperimentId, LabmeshError
from labmesh_dagster.core.ids import EXPERIMENT_ID_PATTERN, is_valid_experiment_id, validate_experiment_id


@pytest.mark.parametrize(
    "value",
    ["EXP-1", "exp_2024.01", "A", "7", "2024-01-05_run3", "a.b-c_d", "X" * 128, "0" + "-" * 127],
)
def test_ids_made_of_letters_digits_dots_underscores_and_dashes_are_returned_unchanged(value: str) -> None:
    assert validate_experiment_id(value) == value
    assert is_valid_experiment_id(value)


def test_the_published_pattern_is_the_rule() -> None:
    assert EXPERIMENT_ID_PATTERN.pattern == r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


def test_128_characters_is_the_longest_id() -> None:
    assert validate_experiment_id("E" * 128) == "E" * 128

    with pytest.raises(InvalidExperimentId, match="at most 128"):
        validate_experiment_id("E" * 129)


@pytest.mark.parametrize("value", [".", ".."])
def test_dot_and_dot_dot_are_reserved(value: str) -> None:
    with pytest.raises(InvalidExperimentId, match="reserved"):
        validate_experiment_id(value)


@pytest.mark.parametrize("value", ["-EXP", "_EXP", ".EXP", ".hidden", "_labmesh", "_quarantine"])
def test_an_id_must_start_with_a_letter_or_digit(value: str) -> None:
    with pytest.raises(InvalidExperimentId, match="must start with a letter or digit"):
        validate_experiment_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "EXP/1",
        "../etc",
        "EXP\\1",
        "EXP 1",
        " EXP1",
        "EXP1\n",
        "EXP\t1",
        "EXPé",
        "実験1",
        "EXP:1",
        "EXP*",
        "EXP%20",
        "EXP+1",
        "EXP\x00",
    ],
)
def test_separators_whitespace_unicode_and_punctuation_are_refused(value: str) -> None:
    assert not is_valid_experiment_id(value)
    with pytest.raises(InvalidExperimentId):
        validate_experiment_id(value)


def test_an_empty_id_is_refused() -> None:
    with pytest.raises(InvalidExperimentId, match="must not be empty"):
        validate_experiment_id("")


@pytest.mark.parametrize("value", [None, 1, 1.5, b"EXP-1", ["EXP-1"], {"id": "EXP-1"}])
def test_only_strings_can_be_ids(value: object) -> None:
    assert not is_valid_experiment_id(value)
    with pytest.raises(InvalidExperimentId, match="must be a string"):
        validate_experiment_id(value)


def test_the_error_names_the_value_and_the_reason_and_is_a_value_error() -> None:
    with pytest.raises(InvalidExperimentId) as caught:
        validate_experiment_id("bad id")

    error = caught.value
    assert error.value == "bad id"
    assert "must start with a letter or digit" in error.reason
    assert str(error).startswith("invalid experiment id 'bad id': ")
    assert isinstance(error, ValueError) and isinstance(error, LabmeshError)
