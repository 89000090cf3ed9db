"""`labmesh access` grants and revokes in the catalog and the content index at once, as a person runs it.

Pinned here: `grant` lets the user find the experiment's files in the
content index at once and says what changed and who may see it; the same
grant again says it was already there and changes nothing; `revoke` takes it
back; `show` lists the principals (an experiment listing nobody: admins
only); a principal that is neither user:NAME nor group:NAME is a clear error
(exit 2), as is an unknown experiment; `sync` sets the index's lists from the
catalog again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labmesh_dagster import cli
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.settings import Settings
from labmesh_dagster.steps.content import index_dataset
from labmesh_dagster_tests.conftest import make_settings


@pytest.fixture
def home(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path / "home")
    catalog = SqliteCatalog(settings.catalog_path)
    index = SqliteContentIndex(settings.catalog_path)
    for record in (
        ExperimentRecord(id="EXP-1", title="Liver", owner="ada", group="Hepatology"),
        ExperimentRecord(id="EXP-2", title="Nobody's"),
    ):
        catalog.upsert_experiment(record, {})
        entry = ManifestEntry(
            key=f"raw/{record.id}/notes.txt", size=1, sha256="0" * 64, format="text", created="", text="tissue notes"
        )
        manifest = Manifest.build(record.id, "raw", [entry])
        catalog.upsert_dataset(manifest, "file:///raw/")
        index_dataset(index, manifest, None, record, lambda key: key, catalog.principals(record.id))
    return settings


def found_by(settings: Settings, viewer: Viewer) -> list[str]:
    return [hit.id for hit in SqliteContentIndex(settings.catalog_path).search("tissue", viewer=viewer)]


def test_grant_and_revoke_reach_the_content_index(home: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    dan = Viewer("dan")

    assert cli.main(["access", "grant", "EXP-1", "user:Dan"], settings=home) == 0
    out = capsys.readouterr().out
    assert "EXP-1: user:Dan granted" in out
    assert "may see it: group:hepatology, user:ada, user:dan" in out
    assert "content index: 1 file(s) carry the list" in out
    assert found_by(home, dan) == ["raw/EXP-1/notes.txt"]

    assert cli.main(["access", "grant", "EXP-1", "user:dan"], settings=home) == 0
    assert "already granted" in capsys.readouterr().out

    assert cli.main(["access", "revoke", "EXP-1", "user:dan"], settings=home) == 0
    assert "user:dan revoked" in capsys.readouterr().out
    assert found_by(home, dan) == []
    assert cli.main(["access", "revoke", "EXP-1", "user:dan"], settings=home) == 0
    assert "was not granted" in capsys.readouterr().out


def test_show_lists_who_may_see_an_experiment(home: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["access", "show", "EXP-2"], settings=home) == 0
    assert capsys.readouterr().out.strip() == "admins only"
    assert cli.main(["access", "show", "EXP-1", "--json"], settings=home) == 0
    assert json.loads(capsys.readouterr().out)["principals"] == ["group:hepatology", "user:ada"]


def test_bad_principals_and_unknown_experiments_are_clear_errors(
    home: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["access", "grant", "EXP-1", "everyone"], settings=home) == 2
    assert "user:NAME or group:NAME" in capsys.readouterr().err
    assert cli.main(["access", "grant", "EXP-404", "user:dan"], settings=home) == 2
    assert "EXP-404 is not registered" in capsys.readouterr().err
    assert cli.main(["access", "show", "EXP-404"], settings=home) == 2


def test_sync_sets_every_experiments_list_from_the_catalog(home: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    SqliteCatalog(home.catalog_path).grant("EXP-2", "group:hepatology")  # the catalog alone
    member = Viewer("bob", frozenset({"hepatology"}))
    assert found_by(home, member) == ["raw/EXP-1/notes.txt"]

    assert cli.main(["access", "sync"], settings=home) == 0

    assert "EXP-2: content index: 1 file(s) carry the list" in capsys.readouterr().out
    assert sorted(found_by(home, member)) == ["raw/EXP-1/notes.txt", "raw/EXP-2/notes.txt"]
