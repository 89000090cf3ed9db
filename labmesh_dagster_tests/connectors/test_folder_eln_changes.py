"""A folder poll reads what changed since its cursor, and a fetch reads the one file that holds the record.

Pinned here, by counting the files the connector reads (never by timing): a
poll with an unchanged folder reads nothing; after one file is edited, added,
renamed or removed among many, only that file is read (plus, when an
experiment defined twice changes hands, the file that now holds it); the first
file in path order still wins a duplicated id; a poll whose cursor Dagster
never stored (a crashed tick) is found again from the previous cursor; a cursor
the index cannot serve reads the whole folder once, a bounded number of files a
poll, in path order, until it is all read; `fetch` and `resolve` read
the file that defines the experiment, and `fetch` falls back to the whole
folder only for an experiment no known file defines.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from labmesh_dagster.connectors.eln.base import ElnEvent, ElnPoll
from labmesh_dagster.connectors.eln.folder import FolderEln
from labmesh_dagster_tests.connectors.folder_eln_reading import CountingReader


@pytest.fixture
def eln(records_dir: Path, tmp_path: Path, reader: CountingReader) -> FolderEln:
    return FolderEln(records_dir, tmp_path / "outbox", reader=reader)


def write(folder: Path, name: str, record: object) -> Path:
    """Write a record file, and move its modification time on, as a later save on a coarse clock would."""
    path = folder / name
    existed = path.exists()
    before = path.stat().st_mtime_ns if existed else 0
    path.write_text(json.dumps(record), encoding="utf-8")
    if existed:
        os.utime(path, ns=(before, before + 1_000_000_000))
    return path


def titles(poll: ElnPoll) -> dict[str, str]:
    return {record.id: record.title for record in poll.records}


def lab_of(records_dir: Path, count: int) -> None:
    for number in range(count):
        write(records_dir, f"EXP-{number}.json", {"id": f"EXP-{number}", "title": f"Experiment {number}"})


def test_an_unchanged_folder_is_not_read_again(records_dir: Path, eln: FolderEln, reader: CountingReader) -> None:
    lab_of(records_dir, 20)
    first = eln.poll(None)
    assert len(reader.names()) == 20 and len(first.records) == 20

    again = eln.poll(first.cursor)

    assert again.unchanged and again.cursor == first.cursor
    assert reader.names() == []


def test_an_edited_record_is_the_only_file_read_and_the_only_record_returned(
    records_dir: Path, eln: FolderEln, reader: CountingReader
) -> None:
    lab_of(records_dir, 20)
    first = eln.poll(None)
    reader.names()

    write(records_dir, "EXP-7.json", {"id": "EXP-7", "title": "Edited after the cursor"})
    after = eln.poll(first.cursor)

    assert reader.names() == ["EXP-7.json"]
    assert titles(after) == {"EXP-7": "Edited after the cursor"}
    assert eln.poll(after.cursor).unchanged and reader.names() == []


def test_a_new_record_file_is_the_only_file_read(records_dir: Path, eln: FolderEln, reader: CountingReader) -> None:
    lab_of(records_dir, 10)
    first = eln.poll(None)
    reader.names()

    write(records_dir, "new.json", {"experiments": [{"id": "EXP-A", "title": "A"}, {"id": "EXP-B", "title": "B"}]})
    after = eln.poll(first.cursor)

    assert reader.names() == ["new.json"]
    assert titles(after) == {"EXP-A": "A", "EXP-B": "B"}


def test_a_deleted_record_file_reads_nothing_and_reports_nothing(
    records_dir: Path, eln: FolderEln, reader: CountingReader
) -> None:
    lab_of(records_dir, 10)
    first = eln.poll(None)
    reader.names()

    (records_dir / "EXP-3.json").unlink()
    after = eln.poll(first.cursor)

    assert not after.unchanged and after.records == () and after.errors == ()
    assert reader.names() == []
    assert eln.poll(after.cursor).unchanged


def test_a_renamed_record_file_is_read_under_its_new_name_with_the_same_fingerprint(
    records_dir: Path, eln: FolderEln, reader: CountingReader
) -> None:
    lab_of(records_dir, 10)
    first = eln.poll(None)
    before = {record.id: record for record in first.records}["EXP-4"]
    reader.names()

    (records_dir / "EXP-4.json").rename(records_dir / "renamed.json")
    after = eln.poll(first.cursor)

    assert reader.names() == ["renamed.json"]
    [record] = after.records
    assert record.source == str(records_dir / "renamed.json")
    assert record.fingerprint == before.fingerprint
    assert eln.fetch("EXP-4").source == str(records_dir / "renamed.json")


def test_the_first_file_still_wins_a_duplicated_id_when_only_one_of_them_changes(
    records_dir: Path, eln: FolderEln, reader: CountingReader
) -> None:
    write(records_dir, "m.json", {"id": "EXP-1", "title": "Middle"})
    write(records_dir, "other.json", {"id": "EXP-2", "title": "Other"})
    first = eln.poll(None)
    reader.names()

    write(records_dir, "z.json", {"id": "EXP-1", "title": "Later file"})
    later = eln.poll(first.cursor)
    write(records_dir, "a.json", {"id": "EXP-1", "title": "Earlier file"})
    earlier = eln.poll(later.cursor)

    assert later.records == ()
    assert [(e.source, e.reason) for e in later.errors] == [
        (str(records_dir / "z.json"), f"experiment EXP-1 is also defined in {records_dir / 'm.json'}")
    ]
    assert titles(earlier) == {"EXP-1": "Earlier file"}
    # The files that lost EXP-1 are not read, but are reported as reading the whole folder would have.
    assert [error.source for error in earlier.errors] == [str(records_dir / "m.json"), str(records_dir / "z.json")]
    assert eln.fetch("EXP-1").title == "Earlier file"
    assert reader.names() == ["a.json", "a.json", "z.json"]


def test_when_the_file_holding_an_experiment_goes_the_next_one_is_read_and_holds_it(
    records_dir: Path, eln: FolderEln, reader: CountingReader
) -> None:
    write(records_dir, "a.json", {"id": "EXP-D", "title": "First"})
    write(records_dir, "b.json", {"experiments": [{"id": "EXP-D", "title": "Second"}, {"title": "no id"}]})
    lab_of(records_dir, 5)
    first = eln.poll(None)
    assert [error.source for error in first.errors] == [f"{records_dir / 'b.json'}[1]", f"{records_dir / 'b.json'}[0]"]
    reader.names()

    (records_dir / "a.json").unlink()
    after = eln.poll(first.cursor)

    assert reader.names() == ["b.json"]
    assert titles(after) == {"EXP-D": "Second"}
    # b.json was read whole, so its own bad record is reported again (a poll that reads a file clears what was
    # said of it before).
    assert [error.source for error in after.errors] == [f"{records_dir / 'b.json'}[1]"]


def test_a_poll_whose_cursor_was_never_stored_is_found_again_from_the_previous_cursor(
    records_dir: Path, eln: FolderEln, reader: CountingReader
) -> None:
    lab_of(records_dir, 10)
    first = eln.poll(None)
    write(records_dir, "EXP-2.json", {"id": "EXP-2", "title": "Edited"})
    reader.names()

    lost = eln.poll(first.cursor)  # the tick crashed: Dagster kept `first.cursor`
    replayed = eln.poll(first.cursor)

    assert titles(lost) == titles(replayed) == {"EXP-2": "Edited"}
    assert reader.names() == ["EXP-2.json", "EXP-2.json"]
    assert eln.poll(replayed.cursor).unchanged


def test_a_cursor_the_index_cannot_serve_reads_the_whole_folder_once(
    records_dir: Path, eln: FolderEln, reader: CountingReader, tmp_path: Path
) -> None:
    lab_of(records_dir, 10)
    first = eln.poll(None)
    for path in (tmp_path / "outbox" / ".labmesh").iterdir():
        path.unlink()
    write(records_dir, "EXP-2.json", {"id": "EXP-2", "title": "Edited"})
    reader.names()

    after = eln.poll(first.cursor)

    assert len(reader.names()) == 10 and len(after.records) == 10
    assert titles(after)["EXP-2"] == "Edited"
    assert eln.poll(after.cursor).unchanged


def test_a_cursor_of_the_old_format_reads_the_whole_folder_once(
    records_dir: Path, eln: FolderEln, reader: CountingReader
) -> None:
    lab_of(records_dir, 5)

    upgraded = eln.poll("0123456789abcdef0123456789abcdef")

    assert len(upgraded.records) == 5 and len(reader.names()) == 5
    assert eln.poll(upgraded.cursor).unchanged


def test_fetch_reads_only_the_file_that_holds_the_record(
    records_dir: Path, eln: FolderEln, reader: CountingReader
) -> None:
    lab_of(records_dir, 10)
    write(records_dir, "export.json", {"experiments": [{"id": "EXP-X", "title": "X"}, {"id": "EXP-Y", "title": "Y"}]})
    eln.poll(None)
    reader.names()

    assert eln.fetch("EXP-Y").title == "Y"
    assert eln.fetch("EXP-5").title == "Experiment 5"
    assert reader.names() == ["EXP-5.json", "export.json"]


def test_fetch_before_any_poll_finds_the_record_in_a_file_not_named_after_it(
    records_dir: Path, eln: FolderEln, reader: CountingReader
) -> None:
    lab_of(records_dir, 5)
    write(records_dir, "export.json", {"experiments": [{"id": "EXP-X", "title": "X"}]})

    assert eln.fetch("EXP-3").title == "Experiment 3"
    assert reader.names() == ["EXP-3.json"]
    assert eln.fetch("EXP-X").title == "X"
    assert len(reader.names()) == 6


def test_resolve_reads_only_the_files_the_events_name(
    records_dir: Path, eln: FolderEln, reader: CountingReader
) -> None:
    lab_of(records_dir, 10)
    eln.poll(None)
    reader.names()
    events = [
        ElnEvent("folder", "lims:1", "EXP-1", "changed", "2026-12-06T03:00:00Z"),
        ElnEvent("folder", "lims:2", "EXP-404", "changed", "2026-12-06T03:00:00Z"),
    ]

    poll = eln.resolve(events)

    assert titles(poll) == {"EXP-1": "Experiment 1"}
    assert reader.names() == ["EXP-1.json"]


def test_a_large_first_poll_is_read_over_several_polls_in_path_order(
    records_dir: Path, tmp_path: Path, reader: CountingReader
) -> None:
    lab_of(records_dir, 9)
    write(records_dir, "a-copy.json", {"id": "EXP-8", "title": "A copy, later in path order"})
    eln = FolderEln(records_dir, tmp_path / "outbox", reader=reader, files_per_poll=4)

    polls = [eln.poll(None)]
    while not polls[-1].unchanged:
        polls.append(eln.poll(polls[-1].cursor))

    assert [len(poll.records) for poll in polls] == [4, 4, 1, 0]
    assert len(polls) == 4 and len(reader.names()) == 10
    assert sorted(record.id for poll in polls for record in poll.records) == [f"EXP-{n}" for n in range(9)]
    [error] = [error for poll in polls for error in poll.errors]
    assert error.source == str(records_dir / "a-copy.json") and "EXP-8 is also defined in" in error.reason
