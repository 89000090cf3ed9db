"""After promotion, the landing folders it emptied are removed; nothing else is, on the local store and on S3 alike.

Pinned here: nested run folders whose files were all promoted are removed,
deepest first, and the experiment's own landing folder is kept (on S3 the
folder markers DataSync makes go, the experiment's provisioned marker stays);
a folder a file arrived in after promotion is kept with its file; quarantine
and labmesh's own ``_labmesh`` entries are never touched, even when named; a
second run removes nothing and reports nothing; a folder the store refuses to
remove is reported, not raised.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from labmesh_dagster.connectors.aws import make_client
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.connectors.store.s3 import S3ObjectStore
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.steps.landing_folders import emptied_folders, remove_emptied_folders
from labmesh_dagster.steps.promotion import promote_experiment
from labmesh_dagster_tests.connectors.test_store_contract import folders, make_folder

LATER = datetime.now(UTC) + timedelta(days=1)
READS = b"@r\nACGT\n+\nIIII\n"


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        store: ObjectStore = LocalObjectStore(tmp_path / "store")
    else:
        buckets = request.getfixturevalue("s3_buckets")  # first: it sets the fake credentials
        client = make_client("s3", endpoint_url=request.getfixturevalue("moto_endpoint"), region_name="us-east-1")
        store = S3ObjectStore(client, buckets)
    store.provision("EXP-1")
    yield store


def deliver(store: ObjectStore, *paths: str) -> list[ObjectKey]:
    """Files put into landing as DataSync puts them: on S3 every folder of the path gets its zero-byte marker."""
    keys = []
    for path in paths:
        parts = path.split("/")
        for end in range(1, len(parts)):
            make_folder(store, Zone.LANDING, "/".join(parts[:end]))
        key = ObjectKey(Zone.LANDING, path)
        store.put(key, READS)
        keys.append(key)
    return keys


def promote(store: ObjectStore) -> list[ObjectKey]:
    return [promotion.source for promotion in promote_experiment(store, "EXP-1", settled_before=LATER).promoted]


def test_run_folders_promotion_emptied_are_removed_and_the_experiment_folder_is_kept(store: ObjectStore) -> None:
    deliver(store, "EXP-1/SampleSheet.csv", "EXP-1/run1/S1.fastq", "EXP-1/run1/lane1/S1_L001.fastq")
    deliver(store, "EXP-1/run2/deep/er/S2.fastq")

    cleanup = remove_emptied_folders(store, "EXP-1", promote(store))

    assert cleanup.removed == ["EXP-1/run2/deep/er", "EXP-1/run1/lane1", "EXP-1/run2/deep", "EXP-1/run1", "EXP-1/run2"]
    assert cleanup.problems == []
    assert folders(store, Zone.LANDING) == {"EXP-1"}
    assert list(store.list(Zone.LANDING)) == []


def test_a_folder_a_file_arrived_in_after_promotion_is_kept_with_the_file(store: ObjectStore) -> None:
    deliver(store, "EXP-1/run1/S1.fastq", "EXP-1/run2/S2.fastq")
    promoted = promote(store)
    [late] = deliver(store, "EXP-1/run1/S1_late.fastq")

    cleanup = remove_emptied_folders(store, "EXP-1", promoted)

    assert cleanup.removed == ["EXP-1/run2"]
    assert "EXP-1/run1" in folders(store, Zone.LANDING)
    assert store.read_bytes(late) == READS


def test_quarantine_and_labmeshs_own_entries_are_never_touched(store: ObjectStore) -> None:
    deliver(store, "EXP-1/run1/S1.fastq")
    [quarantined] = deliver(store, "_quarantine/EXP-1/run1/S1.fastq~2")
    [own] = deliver(store, "EXP-1/_labmesh/stray.json")
    make_folder(store, Zone.LANDING, "_quarantine/EXP-1/run9")
    make_folder(store, Zone.LANDING, "EXP-1/_labmesh/empty")
    promoted = promote(store)
    # Even named as if promoted, neither quarantine nor labmesh's own folder is the cleanup's to remove.
    named = [
        *promoted,
        ObjectKey(Zone.LANDING, "_quarantine/EXP-1/run9/x"),
        ObjectKey(Zone.LANDING, "EXP-1/_labmesh/empty/x"),
    ]

    cleanup = remove_emptied_folders(store, "EXP-1", named)

    assert cleanup.removed == ["EXP-1/run1"]
    assert store.read_bytes(quarantined) == READS and store.read_bytes(own) == READS
    assert {"_quarantine/EXP-1/run9", "EXP-1/_labmesh", "EXP-1/_labmesh/empty"} <= folders(store, Zone.LANDING)


def test_a_second_run_removes_nothing_and_reports_nothing(store: ObjectStore) -> None:
    deliver(store, "EXP-1/run1/lane1/S1.fastq")
    promoted = promote(store)
    remove_emptied_folders(store, "EXP-1", promoted)

    again = remove_emptied_folders(store, "EXP-1", promoted)

    assert again.removed == [] and again.problems == []
    assert folders(store, Zone.LANDING) == {"EXP-1"}


class RefusingStore(LocalObjectStore):
    """A landing folder owned by the instrument's account, which labmesh may not remove."""

    def remove_empty_folder(self, zone: Zone, folder: str) -> bool:
        raise PermissionError(13, "Permission denied", str(self.zone_root(zone) / folder))


def test_a_folder_the_store_refuses_to_remove_is_reported_not_raised(tmp_path: Path) -> None:
    store = RefusingStore(tmp_path / "store")
    deliver(store, "EXP-1/run1/S1.fastq")

    cleanup = remove_emptied_folders(store, "EXP-1", promote(store))

    assert cleanup.removed == []
    [problem] = cleanup.problems
    assert problem.startswith("landing/EXP-1/run1: ") and "Permission denied" in problem


def test_the_folders_named_are_those_below_the_experiment_folder_deepest_first() -> None:
    promoted = [
        ObjectKey(Zone.LANDING, "EXP-1/a/b/c.txt"),
        ObjectKey(Zone.LANDING, "EXP-1/a/d.txt"),
        ObjectKey(Zone.LANDING, "EXP-1/top.txt"),
        ObjectKey(Zone.LANDING, "EXP-10/x/y.txt"),  # another experiment whose id starts alike
        ObjectKey(Zone.RAW, "EXP-1/r/s.txt"),  # not landing
    ]

    assert emptied_folders("EXP-1", promoted) == ["EXP-1/a/b", "EXP-1/a"]
