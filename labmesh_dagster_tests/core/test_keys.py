"""Object keys are ``<zone>/<experiment_id>/<relative path>`` and can never escape their zone.

Pinned here: `ObjectKey.for_experiment` builds keys inside an experiment's
folder and validates both the id and the relative path; `parse` and `str` are
inverses; absolute keys, ``..``/``.`` and empty segments, NUL bytes and unknown
zones are refused with `InvalidObjectKey`; `experiment_id` raises
`InvalidExperimentId` for keys at the zone root or under an invalid first
segment; `is_labmesh_internal` recognises labmesh's own folder and nothing
else; `manifest_key` and `in_zone` place keys where the rest of the flow looks.
"""

from __future__ import annotations

import pytest

from labmesh_dagster.core.errors import InvalidExperimentId, InvalidObjectKey
from labmesh_dagster.core.keys import (
    LABMESH_DIR,
    MANIFEST_PATH,
    QUARANTINE_PREFIX,
    ObjectKey,
    Zone,
    experiment_prefix,
    manifest_key,
)


def test_the_four_zones_in_the_order_data_passes_through_them() -> None:
    assert [zone.value for zone in Zone] == ["landing", "raw", "processed", "final"]


def test_for_experiment_places_the_path_inside_the_experiment_folder() -> None:
    key = ObjectKey.for_experiment("raw", "EXP-1", "run1/S1_R1.fastq.gz")

    assert key == ObjectKey(Zone.RAW, "EXP-1/run1/S1_R1.fastq.gz")
    assert key.zone is Zone.RAW
    assert key.experiment_id == "EXP-1"
    assert key.relative_path == "run1/S1_R1.fastq.gz"
    assert key.name == "S1_R1.fastq.gz"
    assert key.first_segment == "EXP-1"


def test_for_experiment_refuses_an_invalid_experiment_id() -> None:
    with pytest.raises(InvalidExperimentId):
        ObjectKey.for_experiment(Zone.RAW, "../other", "file.txt")


@pytest.mark.parametrize(
    "relative_path", ["", "/etc/passwd", "../EXP-2/file", "a/../../b", "a//b", "./a", "a/", "a\x00b"]
)
def test_for_experiment_refuses_a_relative_path_that_could_escape(relative_path: str) -> None:
    with pytest.raises(InvalidObjectKey):
        ObjectKey.for_experiment(Zone.RAW, "EXP-1", relative_path)


@pytest.mark.parametrize("key", ["", "/EXP-1/a", "EXP-1/../EXP-2/a", "..", ".", "EXP-1//a", "EXP-1/a/", "a\x00"])
def test_keys_that_are_absolute_or_have_empty_dot_or_dot_dot_segments_are_refused(key: str) -> None:
    with pytest.raises(InvalidObjectKey):
        ObjectKey(Zone.LANDING, key)


def test_a_key_must_be_a_string() -> None:
    with pytest.raises(InvalidObjectKey):
        ObjectKey(Zone.LANDING, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "key",
    [
        ObjectKey(Zone.LANDING, "EXP-1/reads.fastq"),
        ObjectKey(Zone.FINAL, "EXP-1/deep/er/report.pdf"),
        ObjectKey(Zone.RAW, "loose-file.txt"),
        ObjectKey(Zone.PROCESSED, "EXP-1/with space/ünïcode+100%.txt"),
    ],
)
def test_parse_is_the_inverse_of_str(key: ObjectKey) -> None:
    assert str(key) == f"{key.zone.value}/{key.path}"
    assert ObjectKey.parse(str(key)) == key


@pytest.mark.parametrize("text", ["bogus/EXP-1/a", "raw", "raw/", "/raw/EXP-1/a", "raw/EXP-1/../x", ""])
def test_parse_refuses_text_that_is_not_zone_slash_key(text: str) -> None:
    with pytest.raises(InvalidObjectKey):
        ObjectKey.parse(text)


def test_the_zone_may_be_given_as_its_name() -> None:
    assert ObjectKey("raw", "EXP-1/a").zone is Zone.RAW  # type: ignore[arg-type]


def test_a_key_at_the_zone_root_belongs_to_no_experiment() -> None:
    key = ObjectKey(Zone.LANDING, "loose-file.fastq")

    assert key.relative_path == ""
    with pytest.raises(InvalidExperimentId, match="not inside an experiment folder"):
        _ = key.experiment_id


@pytest.mark.parametrize("first_segment", ["bad id", "-dash", QUARANTINE_PREFIX, LABMESH_DIR, "x" * 129])
def test_a_key_under_an_invalid_first_segment_has_no_experiment(first_segment: str) -> None:
    key = ObjectKey(Zone.LANDING, f"{first_segment}/reads.fastq")

    with pytest.raises(InvalidExperimentId):
        _ = key.experiment_id


def test_labmesh_internal_files_are_those_in_the_experiments_labmesh_folder() -> None:
    assert ObjectKey(Zone.RAW, f"EXP-1/{MANIFEST_PATH}").is_labmesh_internal
    assert ObjectKey(Zone.RAW, f"EXP-1/{LABMESH_DIR}/other/file").is_labmesh_internal
    assert ObjectKey(Zone.RAW, f"EXP-1/{LABMESH_DIR}").is_labmesh_internal

    assert not ObjectKey(Zone.RAW, "EXP-1/_labmeshy/manifest.json").is_labmesh_internal
    assert not ObjectKey(Zone.RAW, f"EXP-1/run/{LABMESH_DIR}/manifest.json").is_labmesh_internal
    assert not ObjectKey(Zone.RAW, "EXP-1/reads.fastq").is_labmesh_internal
    assert not ObjectKey(Zone.RAW, "EXP-1").is_labmesh_internal


def test_manifest_key_is_the_labmesh_manifest_inside_the_experiment_folder_of_the_zone() -> None:
    key = manifest_key("processed", "EXP-1")

    assert key == ObjectKey(Zone.PROCESSED, "EXP-1/_labmesh/manifest.json")
    assert key.is_labmesh_internal
    with pytest.raises(InvalidExperimentId):
        manifest_key(Zone.RAW, "../EXP-1")


def test_in_zone_keeps_the_key_and_changes_the_zone() -> None:
    landing = ObjectKey(Zone.LANDING, "EXP-1/run/S1.fastq")

    assert landing.in_zone("raw") == ObjectKey(Zone.RAW, "EXP-1/run/S1.fastq")
    assert landing.zone is Zone.LANDING


def test_experiment_prefix_ends_with_a_slash_so_exp_1_does_not_match_exp_10() -> None:
    assert experiment_prefix("EXP-1") == "EXP-1/"
    assert not "EXP-10/a".startswith(experiment_prefix("EXP-1"))
    with pytest.raises(InvalidExperimentId):
        experiment_prefix("..")


def test_keys_are_hashable_ordered_values() -> None:
    a = ObjectKey(Zone.RAW, "EXP-1/a")
    b = ObjectKey(Zone.RAW, "EXP-1/b")

    assert {a, ObjectKey(Zone.RAW, "EXP-1/a")} == {a}
    assert sorted([b, a]) == [a, b]
