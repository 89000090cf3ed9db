"""Grants and revokes reach the content index, on SQLite and on Kendra (over the model-bound fake) alike.

Pinned here, on a lab of a Hepatology experiment, a Nephrology one and one
with no group: publishing gives each file its experiment's catalog list; a
grant to a user or a group lets them find the experiment's files, a revoke
takes that back, and repeating either changes nothing more (the catalog says
so, the index stays as it is, no document is added); another group's member
never finds a file of an experiment they may not see; the one with no group
is found by its owner alone; a grant on an unknown experiment is refused; a
new group in the ELN record reaches the index when the experiment is
registered again, and a registration that changes no access changes nothing.
On Kendra a grant puts the experiment's documents again, its other
experiments' never.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from labmesh_dagster.connectors.catalog.base import ExperimentNotRegistered
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.search.base import ContentIndex
from labmesh_dagster.connectors.search.kendra import KendraContentIndex
from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import ObjectKey
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.steps.content import index_dataset
from labmesh_dagster.steps.content_access import change_grant, follow_registration, refresh_access
from labmesh_dagster_tests.fake_kendra import FakeKendraClient


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


LIVER = ExperimentRecord(id="EXP-1", title="Liver", owner="Ada", group="Hepatology")
KIDNEY = ExperimentRecord(id="EXP-2", title="Kidney", owner="Alan", group="Nephrology")
ORPHAN = ExperimentRecord(id="EXP-3", title="Notes", owner="Grace")
LIVER_USER = Viewer("bob", frozenset({"hepatology"}))
KIDNEY_USER = Viewer("carol", frozenset({"Nephrology"}))


def note(experiment_id: str, name: str) -> ManifestEntry:
    return ManifestEntry(
        key=f"raw/{experiment_id}/{name}", size=10, sha256="0" * 64, format="text", created="", text="tissue notes"
    )


@pytest.fixture(params=["sqlite", "kendra"])
def lab(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[SqliteCatalog, ContentIndex, LocalObjectStore]]:
    catalog = SqliteCatalog(tmp_path / "catalog.sqlite")
    store = LocalObjectStore(tmp_path / "store")
    index: ContentIndex
    if request.param == "sqlite":
        index = SqliteContentIndex(tmp_path / "catalog.sqlite")
    else:
        clock = Clock()
        client = FakeKendraClient(clock=clock)
        index = KendraContentIndex(client, index_id=client.index_id, clock=clock, sleep=clock.sleep)
    for record in (LIVER, KIDNEY, ORPHAN):
        catalog.upsert_experiment(record, {})
        manifest = Manifest.build(record.id, "raw", [note(record.id, "a.txt"), note(record.id, "b.txt")])
        catalog.upsert_dataset(manifest, "file:///store/raw/")
        # As publishing does: the catalog's list.
        index_dataset(
            index, manifest, None, record, lambda key: store.uri(ObjectKey.parse(key)), catalog.principals(record.id)
        )
    yield catalog, index, store


def experiments_found(index: ContentIndex, viewer: Viewer) -> set[str]:
    return {str(hit.attributes["experiment_id"]) for hit in index.search("tissue", viewer=viewer, limit=100)}


def test_each_viewer_finds_the_files_of_the_experiments_they_may_see(
    lab: tuple[SqliteCatalog, ContentIndex, LocalObjectStore],
) -> None:
    _, index, _ = lab

    assert experiments_found(index, LIVER_USER) == {"EXP-1"}
    assert experiments_found(index, KIDNEY_USER) == {"EXP-2"}
    assert experiments_found(index, Viewer("grace")) == {"EXP-3"}
    assert experiments_found(index, Viewer("eve")) == set()
    assert experiments_found(index, Viewer("root", admin=True)) == {"EXP-1", "EXP-2", "EXP-3"}


def test_a_grant_and_a_revoke_reach_the_index_and_repeating_them_changes_nothing(
    lab: tuple[SqliteCatalog, ContentIndex, LocalObjectStore],
) -> None:
    catalog, index, store = lab

    first = change_grant(catalog, index, store, "EXP-1", "user:Dan", grant=True)
    again = change_grant(catalog, index, store, "EXP-1", "user:dan", grant=True)

    assert (first.changed, again.changed) == (True, False)
    assert first.principals == {"group:hepatology", "user:ada", "user:dan"}
    assert sorted(first.content.indexed) == sorted(again.content.indexed) == ["raw/EXP-1/a.txt", "raw/EXP-1/b.txt"]
    assert experiments_found(index, Viewer("dan")) == {"EXP-1"}
    assert len(index.search("tissue", limit=100)) == 6  # no document added

    change_grant(catalog, index, store, "EXP-1", "group:nephrology", grant=True)
    assert experiments_found(index, KIDNEY_USER) == {"EXP-1", "EXP-2"}

    revoked = change_grant(catalog, index, store, "EXP-1", "user:dan", grant=False)
    revoked_again = change_grant(catalog, index, store, "EXP-1", "user:dan", grant=False)
    change_grant(catalog, index, store, "EXP-1", "group:Nephrology", grant=False)

    assert (revoked.changed, revoked_again.changed) == (True, False)
    assert experiments_found(index, Viewer("dan")) == set()
    assert experiments_found(index, KIDNEY_USER) == {"EXP-2"}
    assert experiments_found(index, LIVER_USER) == {"EXP-1"}
    assert len(index.search("tissue", limit=100)) == 6


def test_an_experiment_without_a_group_is_granted_like_any_other(
    lab: tuple[SqliteCatalog, ContentIndex, LocalObjectStore],
) -> None:
    catalog, index, store = lab

    change_grant(catalog, index, store, "EXP-3", "group:hepatology", grant=True)

    assert experiments_found(index, LIVER_USER) == {"EXP-1", "EXP-3"}
    assert experiments_found(index, KIDNEY_USER) == {"EXP-2"}
    assert experiments_found(index, Viewer("grace")) == {"EXP-3"}


def test_refreshing_gives_the_index_the_catalogs_list_after_a_grant_made_elsewhere(
    lab: tuple[SqliteCatalog, ContentIndex, LocalObjectStore],
) -> None:
    catalog, index, store = lab
    catalog.grant("EXP-2", "user:bob")  # the catalog alone, as if the index update had failed
    assert experiments_found(index, LIVER_USER) == {"EXP-1"}

    report = refresh_access(catalog, index, store, "EXP-2")

    assert not report.failed
    assert experiments_found(index, LIVER_USER) == {"EXP-1", "EXP-2"}


def test_a_grant_on_an_unknown_experiment_is_refused(lab: tuple[SqliteCatalog, ContentIndex, LocalObjectStore]) -> None:
    catalog, index, store = lab

    for grant in (True, False):
        with pytest.raises(ExperimentNotRegistered):
            change_grant(catalog, index, store, "EXP-404", "user:bob", grant=grant)


def test_a_new_group_in_the_eln_reaches_the_index_when_the_experiment_is_registered_again(
    lab: tuple[SqliteCatalog, ContentIndex, LocalObjectStore],
) -> None:
    catalog, index, store = lab
    before = catalog.principals("EXP-1")
    catalog.upsert_experiment(replace(LIVER, title="Liver, retitled"), {})
    assert follow_registration(catalog, index, store, "EXP-1", before) is None

    catalog.upsert_experiment(replace(LIVER, group="Nephrology"), {})
    report = follow_registration(catalog, index, store, "EXP-1", before)

    assert report is not None and sorted(report.indexed) == ["raw/EXP-1/a.txt", "raw/EXP-1/b.txt"]
    assert experiments_found(index, KIDNEY_USER) == {"EXP-1", "EXP-2"}
    assert experiments_found(index, LIVER_USER) == set()
