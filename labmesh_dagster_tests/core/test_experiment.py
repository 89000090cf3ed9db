"""`record_from_mapping` folds whatever an ELN or LIMS export calls things into one normalised record.

Pinned here: common aliases fold into the record's fields (first spelling wins,
the others are kept); samples come as ids, objects or a comma/semicolon-separated
string, and duplicate sample ids are refused; every field not folded in is kept
in ``custom``, merged with a ``custom_fields`` object; dates stay dates and
date-times become UTC (naive ones taken as UTC, ``Z`` understood); anything
that cannot become a valid record raises `RecordError` naming the source; the
fingerprint ignores key order and changes with content; `to_dict` and
`from_dict` round-trip.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from labmesh_dagster.core.errors import InvalidExperimentId, RecordError
from labmesh_dagster.core.experiment import (
    ExperimentRecord,
    Sample,
    normalise_timestamp,
    record_from_mapping,
)


def test_a_minimal_record_needs_only_an_id_and_a_title() -> None:
    record = record_from_mapping({"id": "EXP-1", "title": "Skin biopsies"}, source="eln/exp1.yaml")

    assert record == ExperimentRecord(id="EXP-1", title="Skin biopsies", source="eln/exp1.yaml")
    assert record.samples == () and record.tags == () and record.custom == {}


def test_aliases_from_eln_and_lims_exports_fold_into_the_record() -> None:
    record = record_from_mapping(
        {
            "experiment_id": "EXP-7",
            "name": "RNA-seq of organoids",
            "summary": "Day 3 vs day 7",
            "scientist": "Ada Lovelace",
            "team": "Stem cells",
            "study": "Organoids 2024",
            "sample_ids": ["S1", "S2"],
            "instrument": "NovaSeq 6000",
            "assay": "RNA-seq",
            "date": "2024-03-01",
            "updated_at": "2024-03-02T10:00:00Z",
            "keywords": "rna; organoid | day7",
        },
        source="export.json",
    )

    assert record.id == "EXP-7"
    assert record.title == "RNA-seq of organoids"
    assert record.description == "Day 3 vs day 7"
    assert record.owner == "Ada Lovelace"
    assert record.group == "Stem cells"
    assert record.project == "Organoids 2024"
    assert record.sample_ids == ["S1", "S2"]
    assert record.platform == "NovaSeq 6000"
    assert record.protocol == "RNA-seq"
    assert record.created == "2024-03-01"
    assert record.modified == "2024-03-02T10:00:00+00:00"
    assert record.tags == ("day7", "organoid", "rna")
    assert record.custom == {}


@pytest.mark.parametrize(
    ("field", "alias", "value"),
    [
        ("id", "experimentId", "EXP-2"),
        ("id", "display_id", "EXP-2"),
        ("title", "experiment_name", "A title"),
        ("owner", "author", "Grace"),
        ("owner", "created_by", "Grace"),
        ("group", "lab", "Genomics"),
        ("group", "department", "Genomics"),
        ("platform", "sequencer", "MiSeq"),
        ("protocol", "method", "ATAC"),
        ("description", "aim", "Find things"),
    ],
)
def test_each_alias_fills_its_field(field: str, alias: str, value: str) -> None:
    data = {"id": "EXP-1", "title": "T", alias: value}
    if field in {"id", "title"}:
        del data[field]
    record = record_from_mapping(data, source="s")

    assert getattr(record, field) == value
    assert alias not in record.custom


def test_the_first_spelling_wins_and_the_others_are_kept_as_custom_fields() -> None:
    record = record_from_mapping({"id": "EXP-1", "title": "T", "owner": "Ada", "author": "Grace"}, source="s")

    assert record.owner == "Ada"
    assert record.custom == {"author": "Grace"}


def test_an_empty_alias_gives_way_to_the_next_spelling() -> None:
    record = record_from_mapping({"id": "EXP-1", "title": "", "name": "From name"}, source="s")

    assert record.title == "From name"


def test_people_and_groups_given_as_objects_are_read_by_name() -> None:
    record = record_from_mapping(
        {"id": "EXP-1", "title": "T", "owner": {"fullname": "Ada Lovelace", "email": "ada@lab"}, "group": {"id": 42}},
        source="s",
    )

    assert record.owner == "Ada Lovelace"
    assert record.group == "42"


def test_an_object_without_a_name_or_a_list_where_text_belongs_is_a_record_error() -> None:
    with pytest.raises(RecordError, match="'owner' is an object without a name"):
        record_from_mapping({"id": "EXP-1", "title": "T", "owner": {"email": "ada@lab"}}, source="s")
    with pytest.raises(RecordError, match="'platform' must be text"):
        record_from_mapping({"id": "EXP-1", "title": "T", "platform": ["MiSeq", "NovaSeq"]}, source="s")


def test_text_is_stripped_and_numeric_ids_become_strings() -> None:
    record = record_from_mapping({"id": 2024, "title": "  Padded  "}, source="s")

    assert record.id == "2024"
    assert record.title == "Padded"


def test_samples_given_as_plain_ids() -> None:
    record = record_from_mapping({"id": "EXP-1", "title": "T", "samples": ["S1", " S2 ", 3]}, source="s")

    assert record.samples == (Sample("S1"), Sample("S2"), Sample("3"))


def test_samples_given_as_objects_keep_their_names_and_attributes() -> None:
    record = record_from_mapping(
        {
            "id": "EXP-1",
            "title": "T",
            "samples": [
                {"sample_id": "S1", "name": "Left biopsy", "tissue": "skin"},
                {"id": "S2", "condition": "control"},
                {"name": "S3"},
            ],
        },
        source="s",
    )

    assert record.samples == (
        Sample("S1", "Left biopsy", {"tissue": "skin"}),
        Sample("S2", None, {"condition": "control"}),
        Sample("S3", None, {}),
    )


def test_samples_given_as_a_comma_or_semicolon_separated_string() -> None:
    record = record_from_mapping({"id": "EXP-1", "title": "T", "specimens": "S1, S2;S3,, "}, source="s")

    assert record.sample_ids == ["S1", "S2", "S3"]


def test_duplicate_sample_ids_are_refused() -> None:
    with pytest.raises(RecordError, match="sample ids are not unique") as caught:
        record_from_mapping({"id": "EXP-1", "title": "T", "samples": ["S1", {"id": "S1"}]}, source="dup.yaml")

    assert caught.value.source == "dup.yaml"


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        ({"S1": {}}, "must be a list"),
        ([["S1"]], "sample #1 must be an id or an object"),
        (["S1", {"tissue": "skin"}], "sample #2 has no id"),
    ],
)
def test_malformed_samples_are_record_errors(samples: object, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        record_from_mapping({"id": "EXP-1", "title": "T", "samples": samples}, source="s")


def test_unknown_fields_are_kept_as_custom_fields_merged_with_a_custom_fields_object() -> None:
    record = record_from_mapping(
        {
            "id": "EXP-1",
            "title": "T",
            "zeta": 1,
            "funding": {"grant": "ERC-123"},
            "custom_fields": {"alpha": "a", "zeta": "overridden by the top level"},
        },
        source="s",
    )

    assert record.custom == {"alpha": "a", "funding": {"grant": "ERC-123"}, "zeta": 1}
    assert list(record.custom) == ["alpha", "funding", "zeta"]


def test_a_custom_object_is_merged_like_custom_fields() -> None:
    record = record_from_mapping({"id": "EXP-1", "title": "T", "custom": {"ph": 7.4}}, source="s")

    assert record.custom == {"ph": 7.4}


def test_custom_fields_that_are_not_an_object_are_a_record_error() -> None:
    with pytest.raises(RecordError, match="'custom_fields' must be an object"):
        record_from_mapping({"id": "EXP-1", "title": "T", "custom_fields": ["a"]}, source="s")


def test_a_record_with_both_custom_and_custom_fields_keeps_both() -> None:
    record = record_from_mapping(
        {"id": "EXP-1", "title": "T", "custom": {"ph": 7.4}, "custom_fields": {"operator": "Ada"}}, source="s"
    )

    assert record.custom == {"operator": "Ada", "ph": 7.4}


def test_known_fields_left_empty_do_not_become_custom_fields() -> None:
    record = record_from_mapping({"id": "EXP-1", "title": "T", "description": "", "owner": None}, source="s")

    assert record.custom == {}


def test_tags_are_deduplicated_and_sorted() -> None:
    record = record_from_mapping({"id": "EXP-1", "title": "T", "labels": ["b", "a", " b ", ""]}, source="s")

    assert record.tags == ("a", "b")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-01", "2024-03-01"),
        (date(2024, 3, 1), "2024-03-01"),
        ("2024-03-01T10:15:00", "2024-03-01T10:15:00+00:00"),
        (datetime(2024, 3, 1, 10, 15), "2024-03-01T10:15:00+00:00"),
        ("2024-03-01T10:15:00Z", "2024-03-01T10:15:00+00:00"),
        ("2024-03-01T12:15:00+02:00", "2024-03-01T10:15:00+00:00"),
        (datetime(2024, 3, 1, 5, 15, tzinfo=timezone(timedelta(hours=-5))), "2024-03-01T10:15:00+00:00"),
        (" 2024-03-01 ", "2024-03-01"),
        (None, None),
        ("", None),
    ],
)
def test_dates_stay_dates_and_date_times_become_utc(value: object, expected: str | None) -> None:
    assert normalise_timestamp(value) == expected


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", "01/03/2024", "2024-03-01T25:00"])
def test_a_date_that_is_not_iso_8601_is_a_record_error_naming_source_and_field(value: str) -> None:
    with pytest.raises(RecordError) as caught:
        record_from_mapping({"id": "EXP-1", "title": "T", "created_at": value}, source="eln/bad-date.yaml")

    assert caught.value.source == "eln/bad-date.yaml"
    assert "'created'" in caught.value.reason and repr(value) in caught.value.reason
    assert str(caught.value).startswith("eln/bad-date.yaml: ")


def test_a_record_without_an_id_is_a_record_error() -> None:
    with pytest.raises(RecordError, match="no experiment id") as caught:
        record_from_mapping({"title": "T"}, source="export.json[1]")

    assert caught.value.source == "export.json[1]"


@pytest.mark.parametrize("title", [None, "", "   "])
def test_a_record_without_a_title_is_a_record_error(title: str | None) -> None:
    with pytest.raises(RecordError, match="experiment EXP-2 has no title"):
        record_from_mapping({"id": "EXP-2", "title": title}, source="s")


@pytest.mark.parametrize("raw_id", ["../etc", "bad id", "_hidden", ["EXP-1"]])
def test_an_invalid_id_is_a_record_error_that_names_the_id(raw_id: object) -> None:
    with pytest.raises(RecordError, match="invalid experiment id") as caught:
        record_from_mapping({"id": raw_id, "title": "T"}, source="bad.json")

    assert isinstance(caught.value.__cause__, InvalidExperimentId)
    assert repr(raw_id) in str(caught.value)


@pytest.mark.parametrize("data", [None, ["EXP-1"], "EXP-1", 7])
def test_something_other_than_an_object_is_a_record_error(data: object) -> None:
    with pytest.raises(RecordError, match="must be an object"):
        record_from_mapping(data, source="s")


def test_records_built_directly_validate_their_id() -> None:
    with pytest.raises(InvalidExperimentId):
        ExperimentRecord(id="../x", title="T")


def test_the_fingerprint_ignores_key_order_and_changes_with_content() -> None:
    data = {"id": "EXP-1", "title": "T", "samples": ["S1"], "funding": "ERC", "zone": 3}
    reordered = dict(reversed(list(data.items())))

    fingerprint = record_from_mapping(data, source="s").fingerprint

    assert record_from_mapping(reordered, source="s").fingerprint == fingerprint
    assert len(fingerprint) == 16
    assert record_from_mapping({**data, "title": "T2"}, source="s").fingerprint != fingerprint
    assert record_from_mapping({**data, "funding": "NIH"}, source="s").fingerprint != fingerprint
    assert record_from_mapping({**data, "samples": ["S1", "S2"]}, source="s").fingerprint != fingerprint


def test_to_dict_and_from_dict_round_trip() -> None:
    record = record_from_mapping(
        {
            "id": "EXP-1",
            "title": "T",
            "description": "D",
            "owner": "Ada",
            "group": "G",
            "project": "P",
            "samples": [{"id": "S1", "name": "Left", "tissue": "skin"}, "S2"],
            "platform": "MiSeq",
            "protocol": "RNA-seq",
            "created": "2024-03-01",
            "modified": "2024-03-02T10:00:00Z",
            "tags": ["a", "b"],
            "extra": {"nested": [1, 2]},
        },
        source="eln/exp1.yaml",
    )

    data = record.to_dict()
    again = ExperimentRecord.from_dict(data)

    assert again == record
    assert again.fingerprint == record.fingerprint
    assert data["samples"][0] == {"id": "S1", "name": "Left", "attributes": {"tissue": "skin"}}
    assert data["tags"] == ["a", "b"]
