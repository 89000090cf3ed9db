"""An experiment archived in the ELN is marked so in the catalog, its data kept; either catalog.

Pinned here: marking a registered experiment archived says True once and
False when it already was; an experiment never registered has nothing to
archive; the mark shows in `archived_experiments` and in its summary, and
taking it back makes the experiment active again, also once. Its datasets
and search hits stay as they were.
"""

from __future__ import annotations

from labmesh_dagster.connectors.catalog.base import SearchQuery
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster_tests.connectors.catalog_contract.conftest import AnyCatalog


def lab(catalog: AnyCatalog) -> AnyCatalog:
    for experiment_id in ("EXP-1", "EXP-2"):
        catalog.upsert_experiment(ExperimentRecord(id=experiment_id, title="Liver"), {})
    entry = ManifestEntry(key="raw/EXP-1/a.fastq", size=1, sha256="ab" * 32, format="fastq", created="2024-03-01")
    catalog.upsert_dataset(Manifest.build("EXP-1", "raw", [entry]), "file:///raw/EXP-1/")
    return catalog


def test_archiving_marks_the_experiment_once_and_keeps_its_data(catalog: AnyCatalog) -> None:
    lab(catalog)

    assert catalog.set_archived("EXP-1", True) is True
    assert catalog.set_archived("EXP-1", True) is False
    assert catalog.set_archived("EXP-404", True) is False

    assert catalog.archived_experiments() == {"EXP-1"}
    assert {s.experiment_id: (s.archived, s.datasets) for s in catalog.summaries()} == {
        "EXP-1": (True, {"raw": 1}),
        "EXP-2": (False, {}),
    }
    assert [hit.dataset for hit in catalog.search(SearchQuery(experiment="EXP-1"))] == ["raw"]


def test_an_archived_experiment_can_be_active_again(catalog: AnyCatalog) -> None:
    lab(catalog)
    catalog.set_archived("EXP-2", True)

    assert catalog.set_archived("EXP-2", False) is True
    assert catalog.set_archived("EXP-2", False) is False
    assert catalog.archived_experiments() == set()
    assert [s.archived for s in catalog.summaries()] == [False, False]
