"""The end-to-end scenario ends in the same state whether labmesh keeps its own state in SQLite or PostgreSQL.

Contract: the whole flow (an ELN record registered, instrument files
promoted, processed by a pipeline through Pipes, a person's file published
to final) run
once with the SQLite files and once with ``LABMESH_DATABASE_URL`` leaves the
same store, the same catalog as its port shows it (experiments, locations,
datasets and their files, revisions, search hits and facet counts), the same
content index (each document's title and text as stored, and as its port
shows it: every document with its facets, each search's ranked hits with
their scores and excerpts, each question's ranked passages in every mode,
facet filters applied), the same lineage and the same ELN write-back; and on
PostgreSQL the content index is there, not in a SQLite file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from labmesh_dagster.connectors.catalog.base import SearchQuery
from labmesh_dagster.connectors.catalog.postgres import PostgresCatalog
from labmesh_dagster.connectors.postgres import connect
from labmesh_dagster.connectors.search.base import CREATED, ContentFilter
from labmesh_dagster.connectors.search.postgres import PostgresContentIndex
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.passages import SearchMode
from labmesh_dagster_tests.conftest import Lab, make_settings
from labmesh_dagster_tests.scenarios.lab_state import content_state, file_entry, lineage_state, store_state
from labmesh_dagster_tests.scenarios.test_end_to_end import run_flow

EXPERIMENT = "EXP-42"
QUERIES = ["", "liver", "S-001", "fastq", "fibrosis summary"]
QUESTIONS = ["S-001", "which sample shows high COL1A1", "read quality", "variant calls"]
CONTENT_FILTERS = [
    ContentFilter(),
    ContentFilter(zone="final"),
    ContentFilter(format="fastq"),
    ContentFilter(sample_id="S-002"),
]


def catalog_by_port(lab: Lab) -> dict[str, Any]:
    """The catalog as every reader sees it, through the `Catalog` port (whichever database holds it)."""
    catalog = lab.catalog
    record = catalog.get_experiment(EXPERIMENT)
    datasets = {}
    for zone in Zone:
        dataset = catalog.get_dataset(EXPERIMENT, zone)
        if dataset is None:
            continue
        files = [file_entry(entry.to_dict()) for entry in dataset.files]
        revisions = [(r.revision, r.file_count) for r in catalog.dataset_revisions(EXPERIMENT, zone)]
        datasets[zone.value] = {"revision": dataset.revision, "files": files, "revisions": revisions}
    searches = {
        text: [(hit.experiment_id, sorted(file.key for file in hit.files)) for hit in catalog.search(SearchQuery(text))]
        for text in QUERIES
    }
    return {
        "experiment": record.to_dict() if record else None,
        "locations": catalog.experiment_locations(EXPERIMENT),
        "summaries": [(s.experiment_id, s.title) for s in catalog.summaries()],
        "datasets": datasets,
        "searches": searches,
        "facets": catalog.facet_counts(SearchQuery("")),
        "principals": sorted(catalog.principals(EXPERIMENT)),
    }


def _untimed(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A document's facets but its date: a file's time, which differs between two runs of the flow."""
    return {name: value for name, value in attributes.items() if name != CREATED}


def content_by_port(lab: Lab) -> dict[str, Any]:
    """The content index as its readers see it, through the `ContentIndex` port, and its documents as stored."""
    index = lab.ports.content_index()
    if isinstance(index, PostgresContentIndex):
        with connect(index.url) as db:
            sql = "SELECT document_id, title, text FROM content_documents ORDER BY document_id"
            stored = [(row["document_id"], row["title"], row["text"]) for row in db.execute(sql)]
    else:
        stored = content_state(lab)
    return {
        "stored": stored,
        "documents": [
            (hit.id, hit.title, hit.uri, hit.excerpt, _untimed(hit.attributes)) for hit in index.search("", limit=1000)
        ],
        "searches": {
            f"{text} {filters}": [(hit.id, hit.score, hit.excerpt) for hit in index.search(text, filters=filters)]
            for text in QUERIES
            for filters in CONTENT_FILTERS
        },
        "passages": {
            f"{question} {mode} {filters}": [
                (hit.passage.id, hit.score) for hit in index.retrieve(question, filters=filters, mode=mode)
            ]
            for question in QUESTIONS
            for mode in SearchMode
            for filters in CONTENT_FILTERS
        },
    }


def end_state(lab: Lab) -> dict[str, Any]:
    state = {
        "store": store_state(lab),
        "catalog": catalog_by_port(lab),
        "content index": content_by_port(lab),
        "lineage": lineage_state(lab, EXPERIMENT),
        "eln": lab.ports.eln().read_back(EXPERIMENT),
    }
    return _without(state, str(lab.settings.home))


def _without(value: Any, home: str) -> Any:
    import json

    return json.loads(json.dumps(value, default=str).replace(home, "<home>"))


@pytest.mark.slow  # the whole flow twice: make test and CI run it
def test_the_flow_ends_in_the_same_state_on_sqlite_and_postgres(tmp_path: Path, postgres_url: str) -> None:
    states = {}
    for name, overrides in (("sqlite", {}), ("postgres", {"LABMESH_DATABASE_URL": postgres_url})):
        with dg.instance_for_test() as instance:
            lab = Lab(make_settings(tmp_path / name, **overrides), instance)
            run_flow(lab)
            assert isinstance(lab.catalog, PostgresCatalog) == (name == "postgres")
            assert isinstance(lab.ports.content_index(), PostgresContentIndex) == (name == "postgres")
            states[name] = end_state(lab)
    sqlite, postgres = states["sqlite"], states["postgres"]
    assert sqlite["catalog"]["datasets"].keys() == {"raw", "processed", "final"}
    assert sqlite["content index"]["stored"] and any(sqlite["content index"]["passages"].values())
    for part in sqlite:
        assert postgres[part] == sqlite[part], part
