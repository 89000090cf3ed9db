"""The store of rejected ELN records: kept until read fine, by the file or entry they came from.

Pinned here: a rejection is kept with its reason and when it was first and
last seen; noting the same poll again changes only ``last_seen``; a record
read fine clears what was said of its file before (``file[2]`` and ``file``
alike) and the poll's own rejections of that file are kept; reading an
absent store creates nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from labmesh_dagster.connectors.rejections import RejectionStore, container
from labmesh_dagster.core.errors import RecordError

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_a_rejection_is_kept_and_noting_it_again_moves_only_last_seen(tmp_path: Path) -> None:
    clock = Clock()
    store = RejectionStore(tmp_path / "catalog.sqlite", clock=clock)
    bad = RecordError("/eln/broken.yaml", "cannot be read: mapping values are not allowed here")

    store.record([bad])
    clock.now += timedelta(minutes=5)
    store.record([bad])

    [rejection] = store.rejections()
    assert (rejection.source, rejection.reason) == (bad.source, bad.reason)
    assert (rejection.first_seen, rejection.last_seen) == (T0, T0 + timedelta(minutes=5))


def test_a_record_read_fine_clears_its_files_rejections_and_keeps_the_polls_own(tmp_path: Path) -> None:
    store = RejectionStore(tmp_path / "catalog.sqlite", clock=Clock())
    store.record([RecordError("/eln/export.json", "cannot be read"), RecordError("/eln/other.yaml", "no title")])

    store.record([RecordError("/eln/export.json[1]", "no id")], read_fine=["/eln/export.json[0]"])

    assert [(rejection.source, rejection.reason) for rejection in store.rejections()] == [
        ("/eln/export.json[1]", "no id"),
        ("/eln/other.yaml", "no title"),
    ]
    store.record([], read_fine=["/eln/export.json[0]", "/eln/export.json[1]", "/eln/other.yaml"])
    assert store.rejections() == []


def test_sources_name_their_container() -> None:
    assert container("/eln/export.json[12]") == "/eln/export.json"
    assert container("https://elab.example.org/api/v2/experiments/7") == "https://elab.example.org/api/v2/experiments/7"


def test_reading_an_absent_store_creates_nothing(tmp_path: Path) -> None:
    store = RejectionStore(tmp_path / "catalog.sqlite")

    assert store.rejections() == []
    assert not (tmp_path / "catalog.sqlite").exists()
