"""Promotion copies a landing file to raw, verifies it, and only then deletes it from landing.

Pinned here: a promoted file is in raw byte for byte, gone from landing, and
reported with the landing sha256 it was verified against; a copy whose
checksum differs keeps the landing file, removes the unverified raw copy and
fails that file alone while the others go on; a file that vanishes mid-way
(another run took it) is skipped, not failed; a landing file rewritten during
its promotion is kept so the new version is promoted later; raw is never
overwritten (the same content delivered again is cleared from landing, a
different file under the same name is a conflict and raw stays as it was);
files younger than the settle time are left in landing.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from labmesh_dagster.connectors.store.base import ObjectInfo
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.checksums import Checksum
from labmesh_dagster.core.errors import ChecksumMismatch
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.steps.promotion import Promotion, promote_experiment, promote_file

LATER = datetime.now(UTC) + timedelta(days=1)


def sha(content: bytes) -> Checksum:
    return Checksum("sha256", hashlib.sha256(content).hexdigest())


def landing(key: str) -> ObjectKey:
    return ObjectKey(Zone.LANDING, key)


def raw(key: str) -> ObjectKey:
    return ObjectKey(Zone.RAW, key)


def keys(store: LocalObjectStore, zone: Zone) -> list[str]:
    """The data in a zone; labmesh's own files (the promotion journal) are not data."""
    return [info.key.path for info in store.list(zone) if not info.key.is_labmesh_internal]


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    store = LocalObjectStore(tmp_path / "store")
    store.provision("EXP-1")
    return store


def test_a_promoted_file_is_in_raw_byte_for_byte_and_gone_from_landing(store: LocalObjectStore) -> None:
    store.put(landing("EXP-1/run/S1_R1.fastq"), b"@r\nACGT\n+\nIIII\n")

    promotion = promote_file(store, landing("EXP-1/run/S1_R1.fastq"))

    assert promotion == Promotion(
        landing("EXP-1/run/S1_R1.fastq"), raw("EXP-1/run/S1_R1.fastq"), sha(b"@r\nACGT\n+\nIIII\n")
    )
    assert store.read_bytes(raw("EXP-1/run/S1_R1.fastq")) == b"@r\nACGT\n+\nIIII\n"
    assert keys(store, Zone.LANDING) == []
    assert (store.root / "landing" / "EXP-1").is_dir()


def test_promoting_an_experiment_moves_all_its_files_and_no_one_elses(store: LocalObjectStore) -> None:
    files = {"EXP-1/a.fastq": b"a", "EXP-1/run/b.csv": b"bb", "EXP-1/run/deep/c.txt": b"ccc"}
    for key, content in files.items():
        store.put(landing(key), content)
    store.put(landing("EXP-10/other.fastq"), b"not mine")

    report = promote_experiment(store, "EXP-1", settled_before=LATER)

    assert report.failed == []
    assert [item.source.path for item in report.promoted] == sorted(files)
    assert report.source_checksums() == {f"raw/{key}": str(sha(content)) for key, content in files.items()}
    assert {key: store.read_bytes(raw(key)) for key in keys(store, Zone.RAW)} == files
    assert keys(store, Zone.LANDING) == ["EXP-10/other.fastq"]


def test_an_experiment_with_nothing_in_landing_promotes_nothing(store: LocalObjectStore) -> None:
    report = promote_experiment(store, "EXP-1", settled_before=LATER)

    assert report.promoted == [] and report.failed == []


class CorruptingCopyStore(LocalObjectStore):
    """Copies of files named ``*.bad`` arrive damaged, as over a flaky mount."""

    def copy(self, source: ObjectKey, destination: ObjectKey, *, if_absent: bool = False) -> ObjectInfo:
        info = super().copy(source, destination, if_absent=if_absent)
        if source.name.endswith(".bad"):
            self.put(destination, b"garbled in transit")
        return info


def test_a_copy_that_does_not_verify_keeps_landing_and_removes_the_raw_copy(tmp_path: Path) -> None:
    store = CorruptingCopyStore(tmp_path / "store")
    store.put(landing("EXP-1/reads.bad"), b"the real reads")

    with pytest.raises(ChecksumMismatch) as caught:
        promote_file(store, landing("EXP-1/reads.bad"))

    assert caught.value.key == "landing/EXP-1/reads.bad"
    assert caught.value.expected == str(sha(b"the real reads"))
    assert caught.value.actual == str(sha(b"garbled in transit"))
    assert store.read_bytes(landing("EXP-1/reads.bad")) == b"the real reads"
    assert keys(store, Zone.RAW) == []


def test_a_failed_file_is_reported_alone_and_the_others_are_promoted(tmp_path: Path) -> None:
    store = CorruptingCopyStore(tmp_path / "store")
    store.put(landing("EXP-1/a.fastq"), b"a")
    store.put(landing("EXP-1/reads.bad"), b"the real reads")
    store.put(landing("EXP-1/z.fastq"), b"z")

    report = promote_experiment(store, "EXP-1", settled_before=LATER)

    assert [item.source.path for item in report.promoted] == ["EXP-1/a.fastq", "EXP-1/z.fastq"]
    [failure] = report.failed
    assert failure.source == landing("EXP-1/reads.bad")
    assert "checksum mismatch for landing/EXP-1/reads.bad" in failure.reason
    assert keys(store, Zone.LANDING) == ["EXP-1/reads.bad"]
    assert keys(store, Zone.RAW) == ["EXP-1/a.fastq", "EXP-1/z.fastq"]
    assert set(report.source_checksums()) == {"raw/EXP-1/a.fastq", "raw/EXP-1/z.fastq"}


class ConcurrentRunStore(LocalObjectStore):
    """Another run promotes ``taken.fastq`` between our listing and our copy."""

    def list(self, zone: Zone, prefix: str = "", *, start_after: str = "") -> Iterator[ObjectInfo]:
        listed = [*super().list(zone, prefix, start_after=start_after)]
        self.delete(landing("EXP-1/taken.fastq"))
        yield from listed


def test_a_file_that_vanishes_mid_way_is_skipped_not_failed(tmp_path: Path) -> None:
    store = ConcurrentRunStore(tmp_path / "store")
    store.put(landing("EXP-1/a.fastq"), b"a")
    store.put(landing("EXP-1/taken.fastq"), b"t")

    report = promote_experiment(store, "EXP-1", settled_before=LATER)

    assert [item.source.path for item in report.promoted] == ["EXP-1/a.fastq"]
    assert report.failed == []
    assert keys(store, Zone.RAW) == ["EXP-1/a.fastq"]


def test_promoting_a_file_that_is_already_gone_returns_none(store: LocalObjectStore) -> None:
    assert promote_file(store, landing("EXP-1/never-there.fastq")) is None
    assert keys(store, Zone.RAW) == []


class RewrittenDuringCopyStore(LocalObjectStore):
    """The instrument rewrites the landing file while it is being copied."""

    def copy(self, source: ObjectKey, destination: ObjectKey, *, if_absent: bool = False) -> ObjectInfo:
        info = super().copy(source, destination, if_absent=if_absent)
        self.put(source, b"second version, longer")
        return info


def test_a_landing_file_rewritten_during_promotion_is_kept_for_the_next_run(tmp_path: Path) -> None:
    store = RewrittenDuringCopyStore(tmp_path / "store")
    store.put(landing("EXP-1/reads.fastq"), b"first version")

    with pytest.raises(ChecksumMismatch, match="landing object changed during promotion"):
        promote_file(store, landing("EXP-1/reads.fastq"))

    assert store.read_bytes(landing("EXP-1/reads.fastq")) == b"second version, longer"


class FinishedByAnotherRunStore(LocalObjectStore):
    """Another run finishes the same promotion (deleting the landing file) while we verify."""

    def checksum(self, key: ObjectKey, algorithm: str | None = None) -> Checksum:
        digest = super().checksum(key, algorithm)
        if key.zone is Zone.RAW:
            self.delete(key.in_zone(Zone.LANDING))
        return digest


def test_a_promotion_finished_by_another_run_still_counts(tmp_path: Path) -> None:
    store = FinishedByAnotherRunStore(tmp_path / "store")
    store.put(landing("EXP-1/reads.fastq"), b"reads")

    promotion = promote_file(store, landing("EXP-1/reads.fastq"))

    assert promotion is not None and promotion.checksum == sha(b"reads")
    assert store.read_bytes(raw("EXP-1/reads.fastq")) == b"reads"


def test_files_still_being_written_are_left_in_landing(store: LocalObjectStore) -> None:
    store.put(landing("EXP-1/old.fastq"), b"old")
    store.put(landing("EXP-1/new.fastq"), b"new")
    old_time = (datetime.now(UTC) - timedelta(minutes=5)).timestamp()
    os.utime(store.path(landing("EXP-1/old.fastq")), (old_time, old_time))

    report = promote_experiment(store, "EXP-1", settled_before=datetime.now(UTC) - timedelta(minutes=1))

    assert [p.source.path for p in report.promoted] == ["EXP-1/old.fastq"]
    assert report.not_settled == [landing("EXP-1/new.fastq")]
    assert keys(store, Zone.LANDING) == ["EXP-1/new.fastq"]


def test_the_same_file_delivered_again_is_verified_and_cleared_from_landing(store: LocalObjectStore) -> None:
    store.put(landing("EXP-1/S1.fastq"), b"reads")
    promote_experiment(store, "EXP-1", settled_before=LATER)
    store.put(landing("EXP-1/S1.fastq"), b"reads")

    report = promote_experiment(store, "EXP-1", settled_before=LATER)

    assert [(p.source.path, p.already_in_raw) for p in report.promoted] == [("EXP-1/S1.fastq", True)]
    assert keys(store, Zone.LANDING) == [] and store.read_bytes(raw("EXP-1/S1.fastq")) == b"reads"


def test_a_different_file_under_a_name_raw_already_holds_never_overwrites_raw(store: LocalObjectStore) -> None:
    store.put(landing("EXP-1/S1.fastq"), b"first delivery")
    promote_experiment(store, "EXP-1", settled_before=LATER)
    store.put(landing("EXP-1/S1.fastq"), b"second, different delivery")

    report = promote_experiment(store, "EXP-1", settled_before=LATER)

    assert report.promoted == [] and report.failed == []
    [(info, reason)] = report.conflicts
    assert info.key == landing("EXP-1/S1.fastq") and "raw is never overwritten" in reason
    assert store.read_bytes(raw("EXP-1/S1.fastq")) == b"first delivery"
    assert store.read_bytes(landing("EXP-1/S1.fastq")) == b"second, different delivery"


class RacedIntoRawStore(LocalObjectStore):
    """Another writer puts a file into raw between our check and our copy."""

    def __init__(self, root: Path, raced: bytes) -> None:
        super().__init__(root)
        self.raced = raced

    def copy(self, source: ObjectKey, destination: ObjectKey, *, if_absent: bool = False) -> ObjectInfo:
        self.put(destination, self.raced)
        return super().copy(source, destination, if_absent=if_absent)


@pytest.mark.parametrize(("raced", "outcome"), [(b"other bytes", "conflict"), (b"reads", "already in raw")])
def test_a_writer_racing_into_raw_never_has_its_file_overwritten(tmp_path: Path, raced: bytes, outcome: str) -> None:
    store = RacedIntoRawStore(tmp_path / "store", raced)
    store.put(landing("EXP-1/S1.fastq"), b"reads")

    report = promote_experiment(store, "EXP-1", settled_before=LATER)

    assert store.read_bytes(raw("EXP-1/S1.fastq")) == raced
    if outcome == "conflict":
        assert [info.key for info, _ in report.conflicts] == [landing("EXP-1/S1.fastq")]
        assert store.read_bytes(landing("EXP-1/S1.fastq")) == b"reads"
    else:
        assert [(p.source.path, p.already_in_raw) for p in report.promoted] == [("EXP-1/S1.fastq", True)]
        assert keys(store, Zone.LANDING) == []


def test_labmesh_internal_landing_paths_are_never_promoted(store: LocalObjectStore) -> None:
    store.put(landing("EXP-1/_labmesh/manifest.json"), b"{}")

    report = promote_experiment(store, "EXP-1", settled_before=LATER)

    assert report.promoted == [] and [info.key.path for info in store.list(Zone.LANDING)] == [
        "EXP-1/_labmesh/manifest.json"
    ]


class MeetingCopiesStore(LocalObjectStore):
    """Each copy waits for a second one to be under way, and the later file's copy finishes first.

    Every object gains from company here, as on S3, however small."""

    inline_below_bytes = 0

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.both_copying = threading.Barrier(2, timeout=30)
        self.later_copied = threading.Event()

    def copy(self, source: ObjectKey, destination: ObjectKey, *, if_absent: bool = False) -> ObjectInfo:
        self.both_copying.wait()  # breaks (and fails the test) unless two copies are in flight at once
        if source.name == "a.fastq":
            assert self.later_copied.wait(timeout=30)
        info = super().copy(source, destination, if_absent=if_absent)
        if source.name == "b.fastq":
            self.later_copied.set()
        return info


def test_two_files_are_copied_at_once_and_reported_in_landing_order(tmp_path: Path) -> None:
    store = MeetingCopiesStore(tmp_path / "store")
    store.put(landing("EXP-1/a.fastq"), b"a")
    store.put(landing("EXP-1/b.fastq"), b"b")

    report = promote_experiment(store, "EXP-1", settled_before=LATER)

    assert [item.source.path for item in report.promoted] == ["EXP-1/a.fastq", "EXP-1/b.fastq"]
    assert keys(store, Zone.RAW) == ["EXP-1/a.fastq", "EXP-1/b.fastq"]
    assert keys(store, Zone.LANDING) == []


class CopyThreadsStore(LocalObjectStore):
    """Notes which thread copied each file."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.copied_on: dict[str, str] = {}

    def copy(self, source: ObjectKey, destination: ObjectKey, *, if_absent: bool = False) -> ObjectInfo:
        self.copied_on[source.name] = threading.current_thread().name
        return super().copy(source, destination, if_absent=if_absent)


def test_small_files_are_copied_on_the_calling_thread_and_large_ones_by_workers(tmp_path: Path) -> None:
    store = CopyThreadsStore(tmp_path / "store")
    store.put(landing("EXP-1/sheet.csv"), b"sample\nS1\n")
    store.put(landing("EXP-1/reads.fastq"), b"N" * store.inline_below_bytes)

    report = promote_experiment(store, "EXP-1", settled_before=LATER)

    assert [item.source.name for item in report.promoted] == ["reads.fastq", "sheet.csv"]
    assert store.copied_on["sheet.csv"] == threading.current_thread().name
    assert store.copied_on["reads.fastq"].startswith("labmesh-promote")
