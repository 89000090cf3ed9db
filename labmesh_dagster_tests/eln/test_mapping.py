"""The field mapping: which ELN fields feed which labmesh fields, and that nothing else is lost.

Pinned here: the first non-empty source wins, and a field read but empty is
still used up; paths reach into nested objects (keys with dots included),
projections take one key of every list element, templates fill in other
fields; free-text sample and tag lists are split; every field the mapping does
not use becomes a custom field (flattened objects by their inner names, unless
that name is taken), except those ignored or excluded on purpose; the result is
what `record_from_mapping` reads; a mapping loads from a dict or a YAML file,
overriding only the fields named, and refuses unknown labmesh fields; and the
same machinery serves another ELN's shapes (a Benchling-like entry).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.connectors.eln.mapping import (
    ELABFTW_DEFAULTS,
    LABMESH_FIELDS,
    FieldMapping,
    match_template,
    resolve_path,
)
from labmesh_dagster.core.errors import RecordError
from labmesh_dagster.core.experiment import record_from_mapping


def elabftw_entry(**extra_fields: Any) -> dict[str, Any]:
    """An entry as the eLabFTW connector hands it to the mapping (extra fields already plain values)."""
    return {
        "id": 7,
        "title": "Run 7",
        "body": "Sequencing of the pilot cohort",
        "fullname": "Ada Lovelace",
        "team_name": "Genomics",
        "tags": "wgs|pilot",
        "created_at": "2024-05-28 09:00:00",
        "modified_at": "2024-05-29 10:00:00",
        "changelog": [{"target": "metadata"}],
        "access_key": "secret",
        "category_title": "Sequencing run",
        "extra_fields": {"Samples": "S1, S2\nS3", "Instrument": "MiSeq", "pH": 7.4, **extra_fields},
        "metadata": {"elabftw": {"extra_fields_groups": []}, "lab_note": "kept"},
    }


def test_eln_defaults_fill_the_record_and_keep_every_other_field() -> None:
    mapped = ELABFTW_DEFAULTS.apply(elabftw_entry(**{"Experiment ID": "EXP-7"}))

    assert mapped["id"] == "EXP-7"
    assert mapped["samples"] == ["S1", "S2", "S3"]
    assert mapped["tags"] == ["wgs", "pilot"]
    assert (mapped["platform"], mapped["group"], mapped["owner"]) == ("MiSeq", "Genomics", "Ada Lovelace")
    assert mapped["modified"] is None and mapped["project"] is None
    assert mapped["custom"] == {
        "id": 7,
        "category_title": "Sequencing run",
        "pH": 7.4,
        "metadata": {"lab_note": "kept"},
    }
    record = record_from_mapping(mapped, source="test")
    assert record.id == "EXP-7" and record.sample_ids == ["S1", "S2", "S3"] and record.custom["pH"] == 7.4


def test_the_first_non_empty_source_wins_and_a_template_fills_in() -> None:
    assert ELABFTW_DEFAULTS.apply(elabftw_entry())["id"] == "ELAB-7"
    # Empty, but still the experiment id field: it does not reappear as a custom field.
    mapped = ELABFTW_DEFAULTS.apply(elabftw_entry(**{"Experiment ID": "  "}))
    assert mapped["id"] == "ELAB-7" and "Experiment ID" not in mapped["custom"]


def test_a_template_with_an_empty_field_gives_nothing() -> None:
    mapping = FieldMapping(fields={"experiment_id": "RUN-{extra_fields.Run}-{id}", "title": "title"})
    assert mapping.apply({"id": 3, "title": "t", "extra_fields": {"Run": "A"}})["id"] == "RUN-A-3"
    assert mapping.apply({"id": 3, "title": "t", "extra_fields": {"Run": ""}})["id"] is None
    assert match_template("RUN-{run}-{id}", "RUN-A-3") == {"run": "A", "id": "3"}
    assert match_template("ELAB-{id}", "EXP-3") is None


def test_paths_find_keys_that_contain_dots_and_use_up_only_what_they_read() -> None:
    source = {"extra_fields": {"Conc. (mg/ml)": 2.5, "Buffer": "PBS"}, "a.b": 1, "a": {"b": 2, "c": 3}}
    assert resolve_path(source, "extra_fields.Conc. (mg/ml)") == (2.5, ("extra_fields", "Conc. (mg/ml)"))
    assert resolve_path(source, "a.b") == (1, ("a.b",))
    assert resolve_path(source, "a.c") == (3, ("a", "c"))

    mapping = FieldMapping(fields={"protocol": "a.c", "platform": "extra_fields.Buffer"})
    custom = mapping.apply(source)["custom"]
    assert custom == {"extra_fields": {"Conc. (mg/ml)": 2.5}, "a.b": 1, "a": {"b": 2}}


def test_projections_read_lists_without_using_them_up() -> None:
    mapping = FieldMapping(fields={"samples": "items_links[].title"})
    links = [{"entityid": 101, "title": "S-001"}, {"entityid": 102, "title": "S-002"}, {"entityid": 103}]

    mapped = mapping.apply({"items_links": links})

    assert mapped["samples"] == ["S-001", "S-002"]
    assert mapped["custom"]["items_links"] == links


def test_flattened_names_give_way_to_fields_of_the_same_name() -> None:
    mapping = FieldMapping(fields={}, flatten=("extra_fields",))
    custom = mapping.apply({"status": "Running", "extra_fields": {"status": "ok", "pH": 7}})["custom"]
    assert custom == {"status": "Running", "extra_fields.status": "ok", "pH": 7}


def test_ignored_and_excluded_fields_are_left_out_and_nothing_else() -> None:
    entry = elabftw_entry(**{"labmesh raw location": "s3://raw/x/"})

    custom = ELABFTW_DEFAULTS.apply(entry, exclude=["extra_fields.labmesh raw location"])["custom"]

    for gone in ("modified_at", "changelog", "access_key", "labmesh raw location"):
        assert gone not in custom
    assert custom["metadata"] == {"lab_note": "kept"}


def test_multi_value_text_fields_read_as_one_line_and_numbers_as_text() -> None:
    mapping = FieldMapping(fields={"experiment_id": "n", "title": "t", "platform": "p", "samples": "s"})
    mapped = mapping.apply({"n": 12, "t": "x", "p": ["NovaSeq", "MiSeq"], "s": 5})
    assert (mapped["id"], mapped["platform"], mapped["samples"]) == ("12", "NovaSeq, MiSeq", ["5"])


def test_a_bad_id_is_left_for_the_record_to_refuse() -> None:
    mapped = ELABFTW_DEFAULTS.apply(elabftw_entry(**{"Experiment ID": "a/b"}))
    with pytest.raises(RecordError, match="invalid experiment id"):
        record_from_mapping(mapped, source="entry 7")


def test_a_mapping_loads_from_a_dict_or_yaml_overriding_only_what_it_names(tmp_path: Path) -> None:
    lab = FieldMapping.from_dict({"experiment_id": ["extra_fields.Run ID"], "samples": None}, defaults=ELABFTW_DEFAULTS)
    assert lab.sources("experiment_id") == ("extra_fields.Run ID",)
    assert lab.sources("samples") == ()
    assert lab.sources("title") == ("title",) and lab.ignore == ELABFTW_DEFAULTS.ignore

    path = tmp_path / "mapping.yaml"
    path.write_text("fields:\n  platform: extra_fields.Sequencer\nignore: [changelog]\n", encoding="utf-8")
    loaded = FieldMapping.from_yaml(path, defaults=ELABFTW_DEFAULTS)
    assert loaded.sources("platform") == ("extra_fields.Sequencer",) and loaded.ignore == ("changelog",)
    assert FieldMapping.from_dict(loaded.to_dict()) == loaded
    assert set(loaded.to_dict()["fields"]) == set(LABMESH_FIELDS)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"instrument": "x"}, "unknown labmesh field"),
        ({"fields": {}, "extras": 1}, "unknown field mapping key"),
        ({"title": {"nested": "no"}}, "must be a field name"),
    ],
)
def test_a_mapping_with_mistakes_is_refused_clearly(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FieldMapping.from_dict(data)


def test_the_same_mapping_serves_another_eln() -> None:
    benchling_like = FieldMapping(
        fields={
            "experiment_id": "displayId",
            "title": "name",
            "owner": "creator.name",
            "samples": "fields.Samples.value",
            "created": "createdAt",
        },
        ignore=("modifiedAt",),
    )
    entry = {
        "displayId": "EXP24000123",
        "name": "Plasmid prep",
        "creator": {"handle": "ada", "name": "Ada Lovelace"},
        "fields": {"Samples": {"value": "P1; P2"}, "Yield": {"value": 12}},
        "createdAt": "2024-05-28T09:00:00Z",
        "modifiedAt": "2024-05-29T09:00:00Z",
    }

    record = record_from_mapping(benchling_like.apply(entry), source="benchling")

    assert (record.id, record.owner, record.sample_ids) == ("EXP24000123", "Ada Lovelace", ["P1", "P2"])
    assert record.custom == {"creator": {"handle": "ada"}, "fields": {"Yield": {"value": 12}}}
