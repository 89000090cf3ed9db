"""The landing sensor sorts the current listing; quarantine moves a file aside and never loses it.

Pinned here (with a fixed ``now``): a settled file of a registered experiment
is ready, grouped by experiment; a file younger than the settle time waits; a
file of an unknown experiment waits out the grace time and is then
quarantined; a file outside any valid experiment folder is quarantined at once;
what is already in quarantine is left alone. `batch_fingerprint` ignores order
and notices rewrites. `quarantine_object` writes a reason note, then moves
the file (a rename locally, a verified copy-then-delete elsewhere), so a failed
copy, a vanished file or a second file of the same name loses nothing;
`list_quarantine` reports each quarantined file with its reason. Of the
folders a tick leaves files in, listing again is due once the experiment is
registered or its grace is over; a folder left with files still being written
or past the quarantine budget is looked at again on the next tick.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest.mock import ANY

import pytest

from labmesh_dagster.connectors.store.base import ObjectInfo, ObjectStore
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.errors import ChecksumMismatch
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.steps.landing import (
    LandingPlan,
    QuarantinedObject,
    batch_fingerprint,
    due_folders,
    folders_to_look_at_again,
    landing_run_key,
    list_folder,
    list_quarantine,
    note_key,
    plan_landing,
    quarantine_key,
    quarantine_object,
    retry_sweep,
    retry_sweep_due,
    stale_batches,
)

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SETTLE = 10.0
GRACE = 900.0


def landed(key: str, age_seconds: float, etag: str = "e1", size: int = 4) -> ObjectInfo:
    return ObjectInfo(ObjectKey(Zone.LANDING, key), size, NOW - timedelta(seconds=age_seconds), etag)


def plan(objects: list[ObjectInfo], registered: frozenset[str] = frozenset({"EXP-1", "EXP-2"})) -> LandingPlan:
    return plan_landing(objects, registered.__contains__, now=NOW, settle_seconds=SETTLE, unknown_grace_seconds=GRACE)


def names(pairs: list[tuple[ObjectInfo, str]]) -> list[str]:
    return [info.key.path for info, _ in pairs]


def test_settled_files_of_registered_experiments_are_ready_grouped_by_experiment() -> None:
    a = landed("EXP-1/S1.fastq", 60)
    b = landed("EXP-1/run/S2.fastq", 10)
    c = landed("EXP-2/report.pdf", 3600)

    result = plan([a, c, b])

    assert result.ready == {"EXP-1": [a, b], "EXP-2": [c]}
    assert result.waiting == [] and result.quarantine == []


def test_a_file_younger_than_the_settle_time_is_still_being_written() -> None:
    young = landed("EXP-1/S1.fastq", 9.9)
    from_the_future = landed("EXP-1/clock-skew.fastq", -30)

    result = plan([young, from_the_future])

    assert result.ready == {}
    assert result.waiting == [(young, "still being written"), (from_the_future, "still being written")]


def test_files_of_an_unknown_experiment_wait_out_the_grace_time_from_first_sight_then_are_quarantined() -> None:
    # Times kept by the copy (cp -p, rsync -a, DataSync) say nothing of when labmesh first saw the folder.
    old_copy = landed("EXP-9/a.fastq", 10 * GRACE)

    first = plan([old_copy])
    assert first.waiting == [(old_copy, "experiment EXP-9 is not registered yet")]
    assert first.quarantine == [] and first.unknown_first_seen == {"EXP-9": NOW}

    seen = {"EXP-9": NOW - timedelta(seconds=GRACE)}
    later = plan_landing(
        [old_copy],
        frozenset().__contains__,
        now=NOW,
        settle_seconds=SETTLE,
        unknown_grace_seconds=GRACE,
        unknown_first_seen=seen,
    )
    assert later.quarantine == [(old_copy, "experiment EXP-9 is not registered (no ELN record after 900 s)")]
    assert later.ready == {} and later.waiting == []


def test_labmesh_s_own_folder_and_names_that_are_not_utf8_are_quarantined() -> None:
    internal = landed("EXP-1/_labmesh/manifest.json", 60)
    undecodable = landed("EXP-1/r\udcff.fastq", 60)

    result = plan([internal, undecodable])

    assert [reason for _, reason in result.quarantine] == [
        "'_labmesh/manifest.json' is reserved for labmesh's own files",
        "the file name is not valid UTF-8",
    ]


def test_a_file_outside_any_valid_experiment_folder_is_quarantined_at_once() -> None:
    loose = landed("loose-file.fastq", 0)
    bad_id = landed("bad id/reads.fastq", 0)
    hidden = landed(".DS_Store/x", 3600)

    result = plan([loose, bad_id, hidden])

    assert names(result.quarantine) == ["loose-file.fastq", "bad id/reads.fastq", ".DS_Store/x"]
    reasons = {info.key.path: reason for info, reason in result.quarantine}
    assert "not inside an experiment folder" in reasons["loose-file.fastq"]
    assert "invalid experiment id 'bad id'" in reasons["bad id/reads.fastq"]
    assert result.ready == {} and result.waiting == []


def test_files_already_in_quarantine_are_left_alone() -> None:
    result = plan([landed("_quarantine/bad id/reads.fastq", 3600), landed("_quarantine-notes/x.json", 3600)])

    assert result.ready == {} and result.waiting == [] and result.quarantine == []


def test_registration_is_asked_only_of_settled_files_with_a_valid_experiment() -> None:
    asked: list[str] = []

    def is_registered(experiment_id: str) -> bool:
        asked.append(experiment_id)
        return True

    plan_landing(
        [landed("EXP-1/young", 1), landed("bad id/x", 60), landed("EXP-2/old", 60)],
        is_registered,
        now=NOW,
        settle_seconds=SETTLE,
        unknown_grace_seconds=GRACE,
    )

    assert asked == ["EXP-2"]


def test_the_batch_fingerprint_ignores_order_and_notices_rewrites() -> None:
    a = landed("EXP-1/a", 60, etag="1")
    b = landed("EXP-1/b", 60, etag="2")

    assert batch_fingerprint([a, b]) == batch_fingerprint([b, a])
    assert batch_fingerprint([a, b]) != batch_fingerprint([a, landed("EXP-1/b", 60, etag="3")])
    assert batch_fingerprint([a, b]) != batch_fingerprint([a])
    assert len(batch_fingerprint([a])) == 16


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "store")


def land(store: LocalObjectStore, key: str, content: bytes) -> ObjectInfo:
    return store.put(ObjectKey(Zone.LANDING, key), content)


def landing_contents(store: LocalObjectStore) -> dict[str, bytes]:
    return {info.key.path: store.read_bytes(info.key) for info in store.list(Zone.LANDING)}


def test_quarantine_moves_the_file_aside_with_a_note_saying_why(store: LocalObjectStore) -> None:
    info = land(store, "bad id/reads.fastq", b"@r\nACGT\n+\nIIII\n")

    target = quarantine_object(store, info, "invalid experiment id 'bad id'", now=NOW)

    assert target == ObjectKey(Zone.LANDING, "_quarantine/bad id/reads.fastq")
    assert target == quarantine_key(info.key)
    assert not store.exists(info.key)
    assert store.read_bytes(target) == b"@r\nACGT\n+\nIIII\n"
    note = json.loads(store.read_bytes(note_key(target)))
    assert note_key(target).path == "_quarantine-notes/bad id/reads.fastq.json"
    assert note == {
        "original_key": "landing/bad id/reads.fastq",
        "reason": "invalid experiment id 'bad id'",
        "size": 15,
        "quarantined_at": "2024-03-01T12:00:00+00:00",
    }


def test_list_quarantine_reports_each_file_with_its_reason(store: LocalObjectStore) -> None:
    quarantine_object(store, land(store, "loose.txt", b"loose"), "not inside an experiment folder", now=NOW)
    quarantine_object(store, land(store, "EXP-9/a.fastq", b"abc"), "experiment EXP-9 is not registered", now=NOW)
    store.put(ObjectKey(Zone.LANDING, "_quarantine/by-hand.bin"), b"??")
    land(store, "EXP-1/not-quarantined.fastq", b"x")

    assert list_quarantine(store) == [
        QuarantinedObject(
            key=ObjectKey(Zone.LANDING, "_quarantine/EXP-9/a.fastq"),
            original_key="landing/EXP-9/a.fastq",
            reason="experiment EXP-9 is not registered",
            quarantined_at="2024-03-01T12:00:00+00:00",
            size=3,
        ),
        QuarantinedObject(
            key=ObjectKey(Zone.LANDING, "_quarantine/by-hand.bin"),
            original_key="?",
            reason="no reason recorded",
            quarantined_at="",
            size=2,
        ),
        QuarantinedObject(
            key=ObjectKey(Zone.LANDING, "_quarantine/loose.txt"),
            original_key="landing/loose.txt",
            reason="not inside an experiment folder",
            quarantined_at="2024-03-01T12:00:00+00:00",
            size=5,
        ),
    ]


def test_an_empty_quarantine_lists_nothing(store: LocalObjectStore) -> None:
    assert list_quarantine(store) == []


def test_quarantined_files_do_not_come_back_into_the_plan(store: LocalObjectStore) -> None:
    quarantine_object(store, land(store, "bad id/reads.fastq", b"x"), "bad id", now=NOW)

    result = plan_landing(
        store.list(Zone.LANDING),
        lambda _: True,
        now=datetime.now(UTC) + timedelta(days=1),
        settle_seconds=0,
        unknown_grace_seconds=0,
    )

    assert result.ready == {} and result.waiting == [] and result.quarantine == []


class GenericMoveStore(LocalObjectStore):
    """A local store that moves the way any backend without a rename does: copy, verify, delete."""

    move = ObjectStore.move


class CorruptingCopyStore(GenericMoveStore):
    """Copies arrive damaged, as over a flaky network mount."""

    def copy(self, source: ObjectKey, destination: ObjectKey) -> ObjectInfo:
        return self.put(destination, self.read_bytes(source)[:-1] + b"!")


@pytest.mark.parametrize("store_class", [LocalObjectStore, GenericMoveStore])
def test_quarantine_works_by_rename_and_by_verified_copy(tmp_path: Path, store_class: type[LocalObjectStore]) -> None:
    store = store_class(tmp_path / "store")
    info = land(store, "bad id/run/reads.fastq", b"data")

    target = quarantine_object(store, info, "bad id", now=NOW)

    assert landing_contents(store) == {
        "_quarantine/bad id/run/reads.fastq": b"data",
        "_quarantine-notes/bad id/run/reads.fastq.json": ANY,
    }
    assert target.path == "_quarantine/bad id/run/reads.fastq"
    assert not store.exists(info.key)


def test_a_copy_that_does_not_verify_keeps_the_original_and_leaves_no_damaged_copy(tmp_path: Path) -> None:
    store = CorruptingCopyStore(tmp_path / "store")
    info = land(store, "bad id/reads.fastq", b"precious")

    with contextlib.suppress(ChecksumMismatch):
        quarantine_object(store, info, "bad id", now=NOW)

    assert store.read_bytes(info.key) == b"precious"
    assert [item.key.path for item in list_quarantine(store)] == []


def test_a_file_that_vanished_before_quarantine_is_no_error(store: LocalObjectStore) -> None:
    info = land(store, "bad id/reads.fastq", b"x")
    store.delete(info.key)

    target = quarantine_object(store, info, "bad id", now=NOW)

    assert not store.exists(target)
    assert list_quarantine(store) == []


def test_quarantining_the_same_name_twice_keeps_both_versions(store: LocalObjectStore) -> None:
    first = quarantine_object(store, land(store, "bad id/reads.fastq", b"monday's run"), "first", now=NOW)
    second = quarantine_object(store, land(store, "bad id/reads.fastq", b"tuesday's run"), "second", now=NOW)

    assert first != second
    assert store.read_bytes(first) == b"monday's run"
    assert store.read_bytes(second) == b"tuesday's run"
    assert {(item.reason, item.size) for item in list_quarantine(store)} == {("first", 12), ("second", 13)}


class RewrittenDuringCopyStore(GenericMoveStore):
    """The instrument re-uploads the landing file right after it was copied."""

    def copy(self, source: ObjectKey, destination: ObjectKey) -> ObjectInfo:
        copied = super().copy(source, destination)
        self.put(source, b"second version")
        return copied


def test_a_file_rewritten_while_being_quarantined_is_not_lost(tmp_path: Path) -> None:
    store = RewrittenDuringCopyStore(tmp_path / "store")
    info = land(store, "bad id/reads.fastq", b"first version")

    quarantine_object(store, info, "bad id", now=NOW)

    assert b"second version" in landing_contents(store).values()


def test_a_batch_keeps_its_run_key_until_it_has_waited_a_whole_retry_period() -> None:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    fresh = ObjectInfo(ObjectKey(Zone.LANDING, "EXP-1/a.fastq"), 1, now - timedelta(seconds=30), "e1")
    stale = ObjectInfo(ObjectKey(Zone.LANDING, "EXP-1/b.fastq"), 1, now - timedelta(hours=2), "e2")

    def key(files: list[ObjectInfo], at: datetime, retry: float = 3600) -> str:
        return landing_run_key("EXP-1", files, now=at, retry_seconds=retry)

    assert key([fresh], now) == key([fresh], now + timedelta(seconds=20))
    assert key([fresh, stale], now) == key([fresh, stale], now + timedelta(seconds=20))
    assert key([stale], now) != key([stale], now + timedelta(hours=1))
    assert key([stale], now).startswith(key([stale], now, retry=0) + ":retry-")


def test_the_retry_sweep_is_due_once_per_retry_period() -> None:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

    assert retry_sweep_due(None, now=now, retry_seconds=3600)
    assert not retry_sweep_due((now - timedelta(minutes=59)).isoformat(), now=now, retry_seconds=3600)
    assert retry_sweep_due((now - timedelta(minutes=60)).isoformat(), now=now, retry_seconds=3600)
    assert retry_sweep_due("garbled", now=now, retry_seconds=3600)
    assert not retry_sweep_due(None, now=now, retry_seconds=0)


def test_the_retry_sweep_lists_landing_in_slices_and_restarts_each_period(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    for number in range(7):
        store.put(ObjectKey(Zone.LANDING, f"EXP-1/{number}.fastq"), b"x")
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

    def sweep(last: str | None, after: str | None, at: datetime = now) -> tuple[list[str], str | None, str | None]:
        listed, last, after = retry_sweep(
            store, last_sweep=last, sweep_after=after, now=at, retry_seconds=3600, limit=3
        )
        return [info.key.path for info in listed], last, after

    assert sweep(None, None) == (["EXP-1/0.fastq", "EXP-1/1.fastq", "EXP-1/2.fastq"], None, "EXP-1/2.fastq")
    assert sweep(None, "EXP-1/2.fastq") == (["EXP-1/3.fastq", "EXP-1/4.fastq", "EXP-1/5.fastq"], None, "EXP-1/5.fastq")
    assert sweep(None, "EXP-1/5.fastq") == (["EXP-1/6.fastq"], now.isoformat(), None)
    assert sweep(now.isoformat(), None, now + timedelta(minutes=30)) == ([], now.isoformat(), None)
    assert sweep(now.isoformat(), None, now + timedelta(hours=1))[0] == [
        "EXP-1/0.fastq",
        "EXP-1/1.fastq",
        "EXP-1/2.fastq",
    ]


def test_only_files_of_registered_experiments_waiting_a_whole_period_are_retried() -> None:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    old, fresh = now - timedelta(hours=2), now - timedelta(minutes=5)
    listed = [
        ObjectInfo(ObjectKey(Zone.LANDING, "EXP-1/a.fastq"), 1, old, "e"),
        ObjectInfo(ObjectKey(Zone.LANDING, "EXP-1/b.fastq"), 1, fresh, "e"),
        ObjectInfo(ObjectKey(Zone.LANDING, "EXP-2/c.fastq"), 1, old, "e"),
        ObjectInfo(ObjectKey(Zone.LANDING, "EXP-1/_labmesh/x.json"), 1, old, "e"),
        ObjectInfo(ObjectKey(Zone.LANDING, "_quarantine/EXP-1/d.fastq"), 1, old, "e"),
    ]

    batches = stale_batches(listed, {"EXP-1"}.__contains__, now=now, retry_seconds=3600)

    assert {exp: [i.key.path for i in files] for exp, files in batches.items()} == {"EXP-1": ["EXP-1/a.fastq"]}


def test_folders_of_unregistered_experiments_are_due_once_registered_or_past_their_grace() -> None:
    pending = {
        "EXP-1": NOW - timedelta(seconds=5),  # registered now
        "EXP-9": NOW - timedelta(seconds=60),  # unknown, still in its grace
        "EXP-8": NOW - timedelta(seconds=GRACE),  # unknown, grace over
    }

    assert due_folders(pending, {"EXP-1"}.__contains__, now=NOW, grace_seconds=GRACE) == ["EXP-1", "EXP-8"]


def test_folders_left_with_files_not_waiting_for_a_registration_are_looked_at_again() -> None:
    sorted_ = plan([landed("EXP-1/new.fastq", 1), landed("EXP-7/a.fastq", 60), landed("EXP-1/old.fastq", 60)])

    again = folders_to_look_at_again(sorted_, [landed("bad id/x.fastq", 60), landed("stray.fastq", 60)])

    assert again == {"EXP-1", "bad id", "stray.fastq"}  # EXP-7 waits for its record, not for a tick


def test_a_folder_is_listed_with_the_file_of_its_name_but_not_its_longer_namesakes(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    for key in ("EXP-1/a.fastq", "EXP-1/run/b.fastq", "EXP-10/c.fastq", "stray.fastq"):
        store.put(ObjectKey(Zone.LANDING, key), b"x")

    assert [info.key.path for info in list_folder(store, Zone.LANDING, "EXP-1")] == [
        "EXP-1/a.fastq",
        "EXP-1/run/b.fastq",
    ]
    assert [info.key.path for info in list_folder(store, Zone.LANDING, "stray.fastq")] == ["stray.fastq"]
