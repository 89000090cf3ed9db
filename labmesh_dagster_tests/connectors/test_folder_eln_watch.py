"""A watched folder poll compares only the paths the kernel's change feed names, and lists the folder whenever
the feed cannot vouch for everything since its cursor.

Pinned here, by how each poll found its changes (`FolderEln.last_scan`) and by
counting the files it reads (never by timing): once a process has polled a
folder, a new record, a record edited in place or replaced by an atomic
rename, a removed record, and a new subfolder (nested, then edited inside) are
found without listing the folder, and a folder moved out or in is compared
whole; a poll whose cursor was never stored is given its paths again. The
folder is listed instead by the first poll of a process (a real second
process here), after the kernel's event queue overflowed (a real overflow), at
the periodic reconciliation (a moved-on clock: it finds a change no event told
of, a record file linked to one outside the folder), with watching off, and
for folders on a network filesystem (as read from mountinfo). inotify queues
an event before the writing call returns, so nothing here waits.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from labmesh_dagster.connectors.eln import folder_watch
from labmesh_dagster.connectors.eln.base import ElnPoll
from labmesh_dagster.connectors.eln.folder import FolderEln
from labmesh_dagster.connectors.eln.folder_watch import IN_CREATE, IN_ISDIR, IN_Q_OVERFLOW, network_filesystem
from labmesh_dagster.core.errors import ExperimentNotFound
from labmesh_dagster_tests.connectors.folder_eln_reading import CountingReader

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


class Clock:
    """A monotonic clock the test moves on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def eln(records_dir: Path, tmp_path: Path, reader: CountingReader, clock: Clock) -> FolderEln:
    return FolderEln(records_dir, tmp_path / "outbox", reader=reader, clock=clock, reconcile_seconds=600)


def write(folder: Path, name: str, record: object) -> Path:
    """Write a record file, and move its modification time on, as a later save on a coarse clock would."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists()
    before = path.stat().st_mtime_ns if existed else 0
    path.write_text(json.dumps(record), encoding="utf-8")
    if existed:
        os.utime(path, ns=(before, before + 1_000_000_000))
    return path


def record(number: int, title: str | None = None) -> dict[str, str]:
    return {"id": f"EXP-{number}", "title": title or f"Experiment {number}"}


def titles(poll: ElnPoll) -> dict[str, str]:
    return {found.id: found.title for found in poll.records}


def watched_lab(records_dir: Path, eln: FolderEln, reader: CountingReader, count: int = 10) -> ElnPoll:
    """A lab of ``count`` records, polled twice: the first poll lists it, the second is the watch's."""
    for number in range(count):
        write(records_dir, f"EXP-{number}.json", record(number))
    first = eln.poll(None)
    assert eln.last_scan.kind == "listing" and len(first.records) >= count
    second = eln.poll(first.cursor)
    assert eln.last_scan.kind == "watch" and second.unchanged and second.cursor == first.cursor
    reader.names()
    return second


def test_a_new_record_is_found_without_listing(records_dir: Path, eln: FolderEln, reader: CountingReader) -> None:
    before = watched_lab(records_dir, eln, reader)

    write(records_dir, "new.json", {"experiments": [record(100, "A"), record(101, "B")]})
    after = eln.poll(before.cursor)

    assert eln.last_scan.kind == "watch"
    assert reader.names() == ["new.json"]
    assert titles(after) == {"EXP-100": "A", "EXP-101": "B"}
    assert eln.poll(after.cursor).unchanged and eln.last_scan.kind == "watch"


def test_a_record_edited_in_place_is_the_only_file_read(
    records_dir: Path, eln: FolderEln, reader: CountingReader
) -> None:
    before = watched_lab(records_dir, eln, reader)

    write(records_dir, "EXP-7.json", record(7, "Edited in place"))
    after = eln.poll(before.cursor)

    assert eln.last_scan.kind == "watch" and reader.names() == ["EXP-7.json"]
    assert titles(after) == {"EXP-7": "Edited in place"}


def test_a_record_replaced_by_an_atomic_rename_is_the_only_file_read(
    records_dir: Path, eln: FolderEln, reader: CountingReader
) -> None:
    before = watched_lab(records_dir, eln, reader)

    # An editor's or a LIMS's safe save: a hidden temporary file, renamed over the record.
    temporary = write(records_dir, ".EXP-3.json.tmp", record(3, "Saved by rename"))
    os.replace(temporary, records_dir / "EXP-3.json")
    after = eln.poll(before.cursor)

    assert eln.last_scan.kind == "watch" and reader.names() == ["EXP-3.json"]
    assert titles(after) == {"EXP-3": "Saved by rename"}


def test_a_removed_record_reads_nothing_and_leaves_the_index(
    records_dir: Path, eln: FolderEln, reader: CountingReader
) -> None:
    before = watched_lab(records_dir, eln, reader)

    (records_dir / "EXP-3.json").unlink()
    after = eln.poll(before.cursor)

    assert eln.last_scan.kind == "watch" and not after.unchanged
    assert after.records == () and after.errors == () and reader.names() == []
    assert eln.index.states(["EXP-3.json", "EXP-4.json"]).keys() == {"EXP-4.json"}
    with pytest.raises(ExperimentNotFound):
        eln.fetch("EXP-3")


def test_a_new_subfolder_with_records_is_read_and_watched_in_turn(
    records_dir: Path, eln: FolderEln, reader: CountingReader
) -> None:
    before = watched_lab(records_dir, eln, reader)

    write(records_dir / "batch-1", "EXP-50.json", record(50))
    write(records_dir / "batch-1" / "plate-2", "EXP-51.json", record(51))
    added = eln.poll(before.cursor)
    assert eln.last_scan.kind == "watch" and reader.names() == ["EXP-50.json", "EXP-51.json"]
    assert titles(added) == {"EXP-50": "Experiment 50", "EXP-51": "Experiment 51"}

    write(records_dir / "batch-1" / "plate-2", "EXP-51.json", record(51, "Edited in the new folder"))
    write(records_dir / "batch-1" / "plate-2", "EXP-52.json", record(52))
    edited = eln.poll(added.cursor)

    assert eln.last_scan.kind == "watch" and reader.names() == ["EXP-51.json", "EXP-52.json"]
    assert titles(edited) == {"EXP-51": "Edited in the new folder", "EXP-52": "Experiment 52"}


def test_a_folder_moved_out_and_back_in_is_compared_whole(
    records_dir: Path, eln: FolderEln, reader: CountingReader, tmp_path: Path
) -> None:
    write(records_dir / "batch", "EXP-60.json", record(60))
    write(records_dir / "batch" / "deeper", "EXP-61.json", record(61))
    before = watched_lab(records_dir, eln, reader)

    (records_dir / "batch").rename(tmp_path / "elsewhere")
    gone = eln.poll(before.cursor)
    assert eln.last_scan.kind == "watch" and gone.records == () and reader.names() == []
    assert eln.index.states_under("batch") == {}

    (tmp_path / "elsewhere").rename(records_dir / "returned")
    back = eln.poll(gone.cursor)
    assert eln.last_scan.kind == "watch" and reader.names() == ["EXP-60.json", "EXP-61.json"]
    write(records_dir / "returned" / "deeper", "EXP-61.json", record(61, "Edited after the move"))
    edited = eln.poll(back.cursor)
    assert eln.last_scan.kind == "watch" and titles(edited) == {"EXP-61": "Edited after the move"}


def test_hidden_files_and_other_suffixes_change_nothing(
    records_dir: Path, eln: FolderEln, reader: CountingReader
) -> None:
    before = watched_lab(records_dir, eln, reader)

    write(records_dir, ".hidden.json", record(90))
    write(records_dir / ".cache", "EXP-91.json", record(91))
    (records_dir / "notes.txt").write_text("not a record", encoding="utf-8")
    after = eln.poll(before.cursor)

    assert eln.last_scan.kind == "watch" and after.unchanged and reader.names() == []


def test_a_watched_poll_whose_cursor_was_never_stored_is_given_its_paths_again(
    records_dir: Path, eln: FolderEln, reader: CountingReader
) -> None:
    before = watched_lab(records_dir, eln, reader)
    write(records_dir, "EXP-2.json", record(2, "Edited"))

    lost = eln.poll(before.cursor)  # the tick crashed: Dagster kept `before.cursor`
    write(records_dir, "EXP-5.json", record(5, "Edited after the crash"))
    replayed = eln.poll(before.cursor)

    assert eln.last_scan.kind == "watch"
    assert titles(lost) == {"EXP-2": "Edited"}
    assert titles(replayed) == {"EXP-2": "Edited", "EXP-5": "Edited after the crash"}
    assert reader.names() == ["EXP-2.json", "EXP-2.json", "EXP-5.json"]
    assert eln.poll(replayed.cursor).unchanged and eln.last_scan.kind == "watch"


def test_many_changes_are_read_over_several_watched_polls(
    records_dir: Path, tmp_path: Path, reader: CountingReader, clock: Clock
) -> None:
    eln = FolderEln(records_dir, tmp_path / "outbox", reader=reader, clock=clock, files_per_poll=4)
    before = watched_lab(records_dir, eln, reader, count=2)
    for number in range(10, 20):
        write(records_dir, f"EXP-{number}.json", record(number))

    polls = [eln.poll(before.cursor)]
    while not polls[-1].unchanged:
        polls.append(eln.poll(polls[-1].cursor))
        assert eln.last_scan.kind == "watch"

    assert [len(poll.records) for poll in polls] == [4, 4, 2, 0]
    assert len(reader.names()) == 10


def test_a_fresh_process_lists_the_folder_once(
    records_dir: Path, eln: FolderEln, reader: CountingReader, tmp_path: Path
) -> None:
    before = watched_lab(records_dir, eln, reader)
    write(records_dir, "EXP-4.json", record(4, "Edited while no process watched"))
    script = (
        "import json, sys\n"
        "from labmesh_dagster.connectors.eln.folder import FolderEln\n"
        "eln = FolderEln(sys.argv[1], sys.argv[2])\n"
        "first = eln.poll(sys.argv[3])\n"
        "scans = [eln.last_scan.kind]\n"
        "second = eln.poll(first.cursor)\n"
        "scans.append(eln.last_scan.kind)\n"
        "print(json.dumps({'scans': scans, 'ids': [r.id for r in first.records], 'unchanged': second.unchanged}))\n"
    )
    assert before.cursor is not None

    done = subprocess.run(
        [sys.executable, "-c", script, str(records_dir), str(tmp_path / "outbox"), before.cursor],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    assert json.loads(done.stdout) == {"scans": ["listing", "watch"], "ids": ["EXP-4"], "unchanged": True}


def test_forgetting_the_watches_lists_the_folder_as_a_new_process_would(
    records_dir: Path, eln: FolderEln, reader: CountingReader
) -> None:
    before = watched_lab(records_dir, eln, reader)
    write(records_dir, "EXP-1.json", record(1, "Edited"))

    folder_watch.forget_all()
    after = eln.poll(before.cursor)

    assert eln.last_scan == type(eln.last_scan)("listing", "the first poll in this process")
    assert titles(after) == {"EXP-1": "Edited"} and reader.names() == ["EXP-1.json"]
    assert eln.poll(after.cursor).unchanged and eln.last_scan.kind == "watch"


@pytest.mark.slow
def test_an_overflowed_event_queue_lists_the_folder_once(
    records_dir: Path, eln: FolderEln, reader: CountingReader
) -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text(encoding="utf-8"))
    if limit > 100_000:
        pytest.skip(f"max_queued_events is {limit}: too many files to overflow it here")
    before = watched_lab(records_dir, eln, reader)
    flood = records_dir / "flood"
    flood.mkdir()
    assert eln.poll(before.cursor).unchanged and eln.last_scan.kind == "watch"  # the new folder is watched now
    write(records_dir, "EXP-6.json", record(6, "Edited before the flood"))
    # Each file makes at least two events (created, closed after writing): the queue overflows.
    for number in range(limit // 2 + 100):
        (flood / f"{number}.txt").touch()
    write(records_dir / "flood", "EXP-70.json", record(70, "Among the flood"))

    after = eln.poll(before.cursor)

    assert eln.last_scan.kind == "listing" and "overflowed" in eln.last_scan.reason
    assert titles(after) == {"EXP-6": "Edited before the flood", "EXP-70": "Among the flood"}
    write(records_dir / "flood", "EXP-70.json", record(70, "Watched again"))
    again = eln.poll(after.cursor)
    assert eln.last_scan.kind == "watch" and titles(again) == {"EXP-70": "Watched again"}


def test_the_reconciliation_listing_finds_a_change_no_event_told_of(
    records_dir: Path, eln: FolderEln, reader: CountingReader, clock: Clock, tmp_path: Path
) -> None:
    outside = write(tmp_path / "share", "linked.json", record(80))
    (records_dir / "EXP-80.json").symlink_to(outside)
    before = watched_lab(records_dir, eln, reader)

    write(tmp_path / "share", "linked.json", record(80, "Edited where no watch sees"))
    unseen = eln.poll(before.cursor)
    assert eln.last_scan.kind == "watch" and unseen.unchanged

    clock.now += 599
    assert eln.poll(unseen.cursor).unchanged and eln.last_scan.kind == "watch"
    clock.now += 1
    reconciled = eln.poll(unseen.cursor)

    assert eln.last_scan.kind == "listing" and "reconciliation" in eln.last_scan.reason
    assert titles(reconciled) == {"EXP-80": "Edited where no watch sees"}
    assert reader.names() == ["EXP-80.json"]
    assert eln.poll(reconciled.cursor).unchanged and eln.last_scan.kind == "watch"


def test_with_watching_off_every_poll_lists(records_dir: Path, tmp_path: Path, reader: CountingReader) -> None:
    eln = FolderEln(records_dir, tmp_path / "outbox", reader=reader, watch="off")
    write(records_dir, "EXP-1.json", record(1))
    first = eln.poll(None)
    write(records_dir, "EXP-1.json", record(1, "Edited"))

    after = eln.poll(first.cursor)

    assert eln.last_scan.kind == "listing" and eln.last_scan.reason == "watching is off"
    assert titles(after) == {"EXP-1": "Edited"}


def test_a_missing_records_folder_is_listed_until_it_appears(tmp_path: Path, reader: CountingReader) -> None:
    records_dir = tmp_path / "later"
    eln = FolderEln(records_dir, tmp_path / "outbox", reader=reader)
    empty = eln.poll(None)
    assert eln.last_scan.kind == "listing" and "does not exist" in eln.last_scan.reason

    write(records_dir, "EXP-1.json", record(1))
    found = eln.poll(empty.cursor)
    assert eln.last_scan.kind == "listing" and titles(found) == {"EXP-1": "Experiment 1"}
    write(records_dir, "EXP-2.json", record(2))
    assert titles(eln.poll(found.cursor)) == {"EXP-2": "Experiment 2"} and eln.last_scan.kind == "watch"


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 27 0:50 / /mnt/lab\\040share rw,relatime - nfs4 server:/export rw,vers=4.2
41 27 0:51 / /data rw,relatime - xfs /dev/vdb rw
42 41 0:52 / /data/eln/imports rw,relatime - fuse.sshfs lims:/exports rw
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/mnt/lab share/eln", "nfs4"),
        ("/mnt/lab share", "nfs4"),
        ("/mnt/lab", None),
        ("/data/eln", "fuse.sshfs"),
        ("/data/other", None),
        ("/home/lab/eln", None),
    ],
)
def test_network_filesystems_are_told_from_mountinfo(path: str, expected: str | None) -> None:
    assert network_filesystem(path, MOUNTINFO) == expected


def test_the_records_folder_here_is_on_a_local_filesystem(records_dir: Path) -> None:
    assert network_filesystem(str(records_dir)) is None


def test_events_are_parsed_from_what_the_kernel_writes() -> None:
    name = b"EXP-1.json".ljust(16, b"\0")
    buffer = struct.pack("iIII", 3, IN_CREATE, 0, len(name)) + name
    buffer += struct.pack("iIII", 4, IN_CREATE | IN_ISDIR, 0, 0) + struct.pack("iIII", -1, IN_Q_OVERFLOW, 0, 0)

    assert folder_watch.parse_events(buffer) == [
        (3, IN_CREATE, "EXP-1.json"),
        (4, IN_CREATE | IN_ISDIR, ""),
        (-1, IN_Q_OVERFLOW, ""),
    ]


def test_the_settings_reach_the_folder_eln_resource(tmp_path: Path) -> None:
    from labmesh_dagster.definitions import _eln
    from labmesh_dagster.settings import Settings, SettingsError

    home = {"LABMESH_HOME": str(tmp_path / "home")}
    default = _eln(Settings.from_env(home))
    chosen = _eln(Settings.from_env({**home, "LABMESH_ELN_WATCH": "off", "LABMESH_ELN_RECONCILE_SECONDS": "60"}))

    assert (default.watch, default.reconcile_seconds) == ("auto", 600)
    assert (chosen.watch, chosen.reconcile_seconds) == ("off", 60)
    assert isinstance(chosen.get_eln(), FolderEln) and chosen.get_eln().watch == "off"
    with pytest.raises(SettingsError, match="LABMESH_ELN_WATCH"):
        Settings.from_env({**home, "LABMESH_ELN_WATCH": "sometimes"})
