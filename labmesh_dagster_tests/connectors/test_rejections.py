"""The store of rejected ELN records, on SQLite and on PostgreSQL: kept until read fine, by file or entry.

Pinned on both by the same tests: a rejection is kept with its reason and
when it was first and last seen (to the second, in UTC); noting the same poll
again changes only ``last_seen``; a record read fine clears what was said of
its file before (``file[2]`` and ``file`` alike) and the poll's own rejections
of that file are kept; rejections are listed by source in byte order;
`standing` leaves out those whose record file is gone. On SQLite, reading an
absent store creates nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from labmesh_dagster.connectors.postgres_rejections import PostgresRejectionStore
from labmesh_dagster.connectors.rejections import RejectionStore, SqliteRejectionStore, container
from labmesh_dagster.core.errors import RecordError

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> RejectionStore:
    if request.param == "sqlite":
        return SqliteRejectionStore(tmp_path / "catalog.sqlite", clock=clock)
    return PostgresRejectionStore(request.getfixturevalue("postgres_url"), clock=clock)


def test_a_rejection_is_kept_and_noting_it_again_moves_only_last_seen(store: RejectionStore, clock: Clock) -> None:
    bad = RecordError("/eln/broken.yaml", "cannot be read: mapping values are not allowed here")

    store.record([bad])
    clock.now += timedelta(minutes=5)
    store.record([bad])

    [rejection] = store.rejections()
    assert (rejection.source, rejection.reason) == (bad.source, bad.reason)
    assert (rejection.first_seen, rejection.last_seen) == (T0, T0 + timedelta(minutes=5))


def test_times_are_kept_to_the_second_in_utc(store: RejectionStore, clock: Clock) -> None:
    clock.now = datetime(2026, 12, 1, 10, 30, 15, 999_999, tzinfo=UTC)

    store.record([RecordError("/eln/broken.yaml", "no id")])

    [rejection] = store.rejections()
    assert rejection.first_seen == datetime(2026, 12, 1, 10, 30, 15, tzinfo=UTC)
    assert rejection.first_seen.utcoffset() == timedelta(0)


def test_a_record_read_fine_clears_its_files_rejections_and_keeps_the_polls_own(store: RejectionStore) -> None:
    store.record([RecordError("/eln/export.json", "cannot be read"), RecordError("/eln/other.yaml", "no title")])

    store.record([RecordError("/eln/export.json[1]", "no id")], read_fine=["/eln/export.json[0]"])

    assert [(rejection.source, rejection.reason) for rejection in store.rejections()] == [
        ("/eln/export.json[1]", "no id"),
        ("/eln/other.yaml", "no title"),
    ]
    store.record([], read_fine=["/eln/export.json[0]", "/eln/export.json[1]", "/eln/other.yaml"])
    assert store.rejections() == []


def test_rejections_are_listed_by_source_in_byte_order(store: RejectionStore) -> None:
    sources = ["https://elab.example.org/api/v2/experiments/7", "/eln/b.yaml", "/eln/B.yaml", "/eln/a.yaml[10]"]

    store.record([RecordError(source, "no id") for source in sources])

    assert [rejection.source for rejection in store.rejections()] == sorted(sources)
    assert [rejection.source for rejection in store.rejections()][:2] == ["/eln/B.yaml", "/eln/a.yaml[10]"]


def test_standing_leaves_out_rejections_whose_record_file_is_gone(store: RejectionStore, tmp_path: Path) -> None:
    kept = tmp_path / "eln" / "broken.yaml"
    kept.parent.mkdir()
    kept.write_text("id: [", encoding="utf-8")
    gone = tmp_path / "eln" / "deleted.yaml"

    store.record([RecordError(str(kept), "cannot be read"), RecordError(f"{gone}[0]", "no id")])

    assert [rejection.source for rejection in store.standing()] == [str(kept)]
    assert len(store.rejections()) == 2


def test_sources_name_their_container() -> None:
    assert container("/eln/export.json[12]") == "/eln/export.json"
    assert container("https://elab.example.org/api/v2/experiments/7") == "https://elab.example.org/api/v2/experiments/7"


def test_reading_an_absent_sqlite_store_creates_nothing(tmp_path: Path) -> None:
    store = SqliteRejectionStore(tmp_path / "catalog.sqlite")

    assert store.rejections() == []
    assert not (tmp_path / "catalog.sqlite").exists()


def test_on_a_database_sorting_as_english_does_sources_still_come_in_byte_order() -> None:
    from labmesh_dagster_tests.connectors.postgres_locales import english_sorted_database

    with english_sorted_database() as url:
        store = PostgresRejectionStore(url)
        store.record([RecordError(source, "no id") for source in ["/eln/b.yaml", "/eln/B.yaml", "/eln/a.yaml"]])

        assert [rejection.source for rejection in store.rejections()] == ["/eln/B.yaml", "/eln/a.yaml", "/eln/b.yaml"]
