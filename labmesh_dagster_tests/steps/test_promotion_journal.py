"""The promotion journal keeps landing checksums durably, a batch per object, until a manifest carries them.

Pinned here: a batch of promotions is one object, read back as each file's
checksum; an object written before batches (one promotion each) is read the
same way; an object is removed only once the manifest carries every checksum
it holds, as the run read them; and promoting more files than a batch holds
writes one object per batch and deletes every landing file.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.checksums import Checksum
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.steps import promotion
from labmesh_dagster.steps.promotion_journal import (
    JOURNAL_DIR,
    JournaledPromotion,
    forget_recorded,
    journaled_checksums,
    record_promotions,
)

A = JournaledPromotion(
    ObjectKey(Zone.LANDING, "EXP-1/a.fastq"), ObjectKey(Zone.RAW, "EXP-1/a.fastq"), Checksum("sha256", "aa" * 32)
)
B = JournaledPromotion(
    ObjectKey(Zone.LANDING, "EXP-1/b.fastq"), ObjectKey(Zone.RAW, "EXP-1/b.fastq"), Checksum("sha256", "bb" * 32)
)


def journal_objects(store: LocalObjectStore) -> list[str]:
    return [info.key.path for info in store.list(Zone.RAW, f"EXP-1/{JOURNAL_DIR}/")]


def carried(*promotions: JournaledPromotion) -> Manifest:
    return Manifest.build(
        "EXP-1",
        Zone.RAW,
        [
            ManifestEntry(str(p.destination), 1, "00" * 32, "fastq", "t", source_checksum=str(p.checksum))
            for p in promotions
        ],
    )


def test_a_batch_is_one_object_read_back_file_by_file(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    record_promotions(store, [A, B])
    assert len(journal_objects(store)) == 1
    assert journaled_checksums(store, "EXP-1") == {
        "raw/EXP-1/a.fastq": str(A.checksum),
        "raw/EXP-1/b.fastq": str(B.checksum),
    }


def test_an_object_from_before_batches_is_read_too(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    old = {"raw": "raw/EXP-1/a.fastq", "landing": "landing/EXP-1/a.fastq", "checksum": str(A.checksum)}
    store.put(ObjectKey(Zone.RAW, f"EXP-1/{JOURNAL_DIR}/{'0' * 64}.json"), json.dumps(old).encode())
    assert journaled_checksums(store, "EXP-1") == {"raw/EXP-1/a.fastq": str(A.checksum)}


def test_an_object_goes_only_when_the_manifest_carries_all_it_holds(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    record_promotions(store, [A, B])
    journaled = journaled_checksums(store, "EXP-1")

    assert forget_recorded(store, carried(A), journaled) == 0 and len(journal_objects(store)) == 1
    assert forget_recorded(store, carried(A, B), journaled) == 1 and journal_objects(store) == []


def test_an_object_a_run_did_not_read_is_kept(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    record_promotions(store, [A])
    assert forget_recorded(store, carried(A), {}) == 0  # another run's promotion, written after this one looked
    assert len(journal_objects(store)) == 1


def test_more_files_than_a_batch_are_journaled_batch_by_batch_and_all_leave_landing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalObjectStore(tmp_path)
    for number in range(5):
        store.put(ObjectKey(Zone.LANDING, f"EXP-1/f{number}.txt"), f"file {number}\n".encode())
    monkeypatch.setattr(promotion, "JOURNAL_BATCH", 2)
    report = promotion.promote_experiment(store, "EXP-1", settled_before=datetime.now(UTC) + timedelta(1))
    assert len(report.promoted) == 5 and not report.failed
    assert len(journal_objects(store)) == 3  # 2 + 2 + 1
    assert list(store.list(Zone.LANDING, "EXP-1/")) == []
    assert set(journaled_checksums(store, "EXP-1")) == {f"raw/EXP-1/f{number}.txt" for number in range(5)}
