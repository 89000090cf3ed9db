"""A folder of JSON and YAML files is an ELN: one experiment per file, a list, or an ``experiments:`` export.

Pinned here: every record shape is read and hidden files and other suffixes are
ignored; each bad record is one error naming its file (and ``[index]`` within a
list) while the good ones still arrive; an id defined in two files is reported
and the first file wins; `poll` returns ``unchanged=True`` with the same cursor
while nothing changed, and after an edit or a touch returns the records of the
changed files (how few files it reads is pinned in test_folder_eln_changes.py);
`fetch` finds one record or raises `ExperimentNotFound`; write-backs round-trip
through an outbox folder and never change what `poll` sees; pushed events
naming an invalid experiment id are reported, never archived or looked up.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from labmesh_dagster.connectors.eln.base import ElnEvent
from labmesh_dagster.connectors.eln.folder import FolderEln, read_record_file
from labmesh_dagster.core.errors import ExperimentNotFound, InvalidExperimentId


@pytest.fixture
def records_dir(tmp_path: Path) -> Path:
    path = tmp_path / "eln"
    path.mkdir()
    return path


@pytest.fixture
def eln(records_dir: Path, tmp_path: Path) -> FolderEln:
    return FolderEln(records_dir, tmp_path / "outbox")


def write(folder: Path, name: str, content: Any) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        text = content
    elif path.suffix == ".json":
        text = json.dumps(content)
    else:
        text = yaml.safe_dump(content)
    path.write_text(text, encoding="utf-8")
    return path


def ids(eln: FolderEln) -> list[str]:
    return sorted(record.id for record in eln.poll(None).records)


def test_every_record_shape_is_read(records_dir: Path, eln: FolderEln) -> None:
    write(records_dir, "one.json", {"id": "EXP-1", "title": "JSON"})
    write(records_dir, "two.yaml", {"experiment_id": "EXP-2", "name": "YAML"})
    write(records_dir, "three.yml", "id: EXP-3\ntitle: YML\ndate: 2024-03-01\n")
    write(records_dir, "export.json", {"experiments": [{"id": "EXP-4", "title": "A"}, {"id": "EXP-5", "title": "B"}]})
    write(records_dir, "list.yaml", [{"id": "EXP-6", "title": "C"}, {"id": "EXP-7", "title": "D"}])
    write(records_dir, "nested/deeper/eight.json", {"id": "EXP-8", "title": "Nested"})

    poll = eln.poll(None)

    assert sorted(record.id for record in poll.records) == [f"EXP-{n}" for n in range(1, 9)]
    assert poll.errors == ()
    assert not poll.unchanged
    assert {record.id: record.created for record in poll.records}["EXP-3"] == "2024-03-01"


def test_each_record_remembers_the_file_it_came_from(records_dir: Path, eln: FolderEln) -> None:
    single = write(records_dir, "one.json", {"id": "EXP-1", "title": "T"})
    export = write(
        records_dir, "export.yaml", {"experiments": [{"id": "EXP-2", "title": "A"}, {"id": "EXP-3", "title": "B"}]}
    )

    sources = {record.id: record.source for record in eln.poll(None).records}

    assert sources == {"EXP-1": str(single), "EXP-2": f"{export}[0]", "EXP-3": f"{export}[1]"}


def test_hidden_files_hidden_folders_and_other_suffixes_are_ignored(records_dir: Path, eln: FolderEln) -> None:
    write(records_dir, "good.json", {"id": "EXP-1", "title": "T"})
    write(records_dir, ".draft.json", {"id": "EXP-2", "title": "T"})
    write(records_dir, ".git/config.yaml", {"id": "EXP-3", "title": "T"})
    write(records_dir, "notes.txt", "id: EXP-4\ntitle: T\n")
    write(records_dir, "good.json.tmp", '{"id": "EXP-5", "title": "T"}')
    write(records_dir, "backup.json~", '{"id": "EXP-6", "title": "T"}')
    (records_dir / "folder.json").mkdir()

    poll = eln.poll(None)

    assert [record.id for record in poll.records] == ["EXP-1"]
    assert poll.errors == ()


def test_each_bad_record_is_an_error_naming_its_file_and_the_good_ones_still_arrive(
    records_dir: Path, eln: FolderEln
) -> None:
    write(records_dir, "good.yaml", {"id": "EXP-1", "title": "Good"})
    write(records_dir, "broken.yaml", "id: [unclosed\n")
    write(records_dir, "broken.json", "{not json")
    write(records_dir, "no-title.json", {"id": "EXP-2"})
    write(records_dir, "bad-id.json", {"id": "../etc", "title": "T"})
    write(records_dir, "scalar.yaml", "just a sentence\n")
    write(records_dir, "export.json", {"experiments": [{"id": "EXP-3", "title": "A"}, {"title": "no id"}, "oops"]})
    (records_dir / "latin1.json").write_bytes(b'{"id": "EXP-9", "title": "caf\xe9"}')

    poll = eln.poll(None)

    assert sorted(record.id for record in poll.records) == ["EXP-1", "EXP-3"]
    errors = {error.source: error.reason for error in poll.errors}
    assert set(errors) == {
        str(records_dir / "broken.yaml"),
        str(records_dir / "broken.json"),
        str(records_dir / "no-title.json"),
        str(records_dir / "bad-id.json"),
        str(records_dir / "scalar.yaml"),
        str(records_dir / "export.json") + "[1]",
        str(records_dir / "export.json") + "[2]",
        str(records_dir / "latin1.json"),
    }
    assert errors[str(records_dir / "broken.yaml")].startswith("cannot be read")
    assert errors[str(records_dir / "latin1.json")].startswith("cannot be read")
    assert "has no title" in errors[str(records_dir / "no-title.json")]
    assert "invalid experiment id '../etc'" in errors[str(records_dir / "bad-id.json")]
    assert "no experiment id" in errors[str(records_dir / "export.json") + "[1]"]


def test_an_empty_file_is_an_error_and_an_empty_export_is_nothing(records_dir: Path) -> None:
    empty = write(records_dir, "empty.yaml", "")
    export = write(records_dir, "export.json", {"experiments": []})

    assert read_record_file(export) == ([], [])
    records, errors = read_record_file(empty)
    assert records == [] and len(errors) == 1 and errors[0].source == str(empty)


def test_an_id_defined_in_two_files_is_reported_and_the_first_file_wins(records_dir: Path, eln: FolderEln) -> None:
    first = write(records_dir, "a.json", {"id": "EXP-1", "title": "First"})
    second = write(records_dir, "b.yaml", {"id": "EXP-1", "title": "Second"})

    poll = eln.poll(None)

    assert [(record.id, record.title) for record in poll.records] == [("EXP-1", "First")]
    [error] = poll.errors
    assert error.source == str(second)
    assert f"experiment EXP-1 is also defined in {first}" in error.reason


def test_poll_is_unchanged_with_the_same_cursor_while_nothing_changed(records_dir: Path, eln: FolderEln) -> None:
    write(records_dir, "one.json", {"id": "EXP-1", "title": "T"})
    first = eln.poll(None)

    again = eln.poll(first.cursor)

    assert first.cursor
    assert again.unchanged
    assert again.cursor == first.cursor
    assert again.records == () and again.errors == ()
    assert again.records == ()


def test_poll_returns_the_edited_record_after_an_edit(records_dir: Path, eln: FolderEln) -> None:
    path = write(records_dir, "one.json", {"id": "EXP-1", "title": "Before"})
    write(records_dir, "two.json", {"id": "EXP-2", "title": "Other"})
    first = eln.poll(None)

    write(records_dir, "one.json", {"id": "EXP-1", "title": "After, with a longer title"})
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    after = eln.poll(first.cursor)

    assert not after.unchanged
    assert after.cursor != first.cursor
    assert {record.id: record.title for record in after.records} == {"EXP-1": "After, with a longer title"}


def test_touching_a_file_counts_as_a_change(records_dir: Path, eln: FolderEln) -> None:
    path = write(records_dir, "one.json", {"id": "EXP-1", "title": "T"})
    first = eln.poll(None)

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))

    assert not eln.poll(first.cursor).unchanged


def test_adding_or_removing_a_file_counts_as_a_change(records_dir: Path, eln: FolderEln) -> None:
    write(records_dir, "one.json", {"id": "EXP-1", "title": "T"})
    first = eln.poll(None)

    added = write(records_dir, "two.json", {"id": "EXP-2", "title": "T"})
    second = eln.poll(first.cursor)
    added.unlink()
    third = eln.poll(second.cursor)

    assert not second.unchanged and not third.unchanged
    assert [record.id for record in second.records] == ["EXP-2"]
    assert third.records == () and third.errors == ()
    assert eln.poll(third.cursor).unchanged


def test_ignored_files_do_not_change_the_cursor(records_dir: Path, eln: FolderEln) -> None:
    write(records_dir, "one.json", {"id": "EXP-1", "title": "T"})
    first = eln.poll(None)

    write(records_dir, "notes.txt", "scribbles")
    write(records_dir, ".swap.json", "{")

    assert eln.poll(first.cursor).unchanged


def test_a_missing_records_folder_is_an_empty_eln(tmp_path: Path) -> None:
    poll = FolderEln(tmp_path / "nowhere", tmp_path / "outbox").poll(None)

    assert poll.records == () and poll.errors == ()


def test_fetch_returns_the_current_record(records_dir: Path, eln: FolderEln) -> None:
    write(records_dir, "export.yaml", {"experiments": [{"id": "EXP-1", "title": "A"}, {"id": "EXP-2", "title": "B"}]})

    assert eln.fetch("EXP-2").title == "B"


def test_fetching_an_unknown_experiment_is_not_found(records_dir: Path, eln: FolderEln) -> None:
    write(records_dir, "one.json", {"id": "EXP-1", "title": "T"})

    with pytest.raises(ExperimentNotFound, match="EXP-404"):
        eln.fetch("EXP-404")
    with pytest.raises(InvalidExperimentId):
        eln.fetch("../EXP-1")


def test_write_back_and_read_back_round_trip(eln: FolderEln) -> None:
    locations = {"landing": "file:///store/landing/EXP-1/", "raw": "file:///store/raw/EXP-1/"}

    assert eln.read_back("EXP-1") == {}
    eln.write_back("EXP-1", locations)
    eln.write_back("EXP-1", locations)

    assert eln.read_back("EXP-1") == locations
    eln.write_back("EXP-1", {"raw": "s3://raw/EXP-1/"})
    assert eln.read_back("EXP-1") == {"raw": "s3://raw/EXP-1/"}


def test_write_back_goes_to_the_outbox_and_does_not_look_like_a_changed_record(
    records_dir: Path, eln: FolderEln, tmp_path: Path
) -> None:
    write(records_dir, "one.json", {"id": "EXP-1", "title": "T"})
    before = records_dir / "one.json"
    content = before.read_bytes()
    first = eln.poll(None)

    eln.write_back("EXP-1", {"raw": "file:///store/raw/EXP-1/"})

    # Hidden entries are labmesh's own bookkeeping (the poll's index of the records folder).
    assert sorted(path.name for path in (tmp_path / "outbox").iterdir() if not path.name.startswith(".")) == [
        "EXP-1.json"
    ]
    assert json.loads((tmp_path / "outbox" / "EXP-1.json").read_text(encoding="utf-8")) == {
        "experiment_id": "EXP-1",
        "locations": {"raw": "file:///store/raw/EXP-1/"},
    }
    assert before.read_bytes() == content
    assert sorted(path.name for path in records_dir.iterdir()) == ["one.json"]
    assert eln.poll(first.cursor).unchanged


def test_write_back_refuses_an_invalid_experiment_id(eln: FolderEln, tmp_path: Path) -> None:
    with pytest.raises(InvalidExperimentId):
        eln.write_back("../escape", {"raw": "x"})
    assert not (tmp_path / "escape.json").exists()


def test_a_lims_sample_sheet_becomes_one_experiment_per_id_with_its_samples(records_dir: Path, eln: FolderEln) -> None:
    (records_dir / "export.csv").write_text(
        "\ufeffExperiment ID;Title;Platform;Sample ID;Tissue\n"
        "EXP-81;Liver panel;MiSeq;LIV-1;liver\n"
        "EXP-81;Liver panel;MiSeq;LIV-2;spleen\n"
        "EXP-82;Kidney panel;NextSeq;KID-1;kidney\n"
        ";orphan row without an id;;;\n",
        encoding="utf-8",
    )

    poll = eln.poll(None)

    by_id = {record.id: record for record in poll.records}
    assert sorted(by_id) == ["EXP-81", "EXP-82"] and poll.errors == ()
    liver = by_id["EXP-81"]
    assert (liver.title, liver.platform, liver.sample_ids) == ("Liver panel", "MiSeq", ["LIV-1", "LIV-2"])
    assert [dict(sample.attributes) for sample in liver.samples] == [{"tissue": "liver"}, {"tissue": "spleen"}]
    assert by_id["EXP-82"].sample_ids == ["KID-1"]


def test_a_sheet_without_an_experiment_id_column_is_reported_not_guessed(records_dir: Path, eln: FolderEln) -> None:
    (records_dir / "export.tsv").write_text("Title\tSample\nLiver\tLIV-1\n", encoding="utf-8")

    poll = eln.poll(None)

    assert poll.records == () and "no experiment id column" in poll.errors[0].reason


def test_pushed_events_naming_an_invalid_experiment_id_are_reported_not_archived(
    records_dir: Path, eln: FolderEln
) -> None:
    # Seen: the API kept events for "../../etc"; the folder ELN then reported it as an archived experiment.
    write(records_dir, "exp7.yaml", {"id": "EXP-7", "title": "Pushed", "samples": ["S1"]})
    events = [
        ElnEvent("folder", "lims:1", "../../etc", "archived", "2026-11-29T10:00:00Z"),
        ElnEvent("folder", "lims:2", "EXP 1", "changed", "2026-11-29T10:00:00Z"),
        ElnEvent("folder", "lims:3", "EXP-7", "changed", "2026-11-29T10:00:00Z"),
    ]

    poll = eln.resolve(events)

    assert [record.id for record in poll.records] == ["EXP-7"] and poll.archived == ()
    assert [error.source for error in poll.errors] == ["folder event lims:1", "folder event lims:2"]
