"""An experiment with thousands of files is found by any of its files, however many words they hold.

Why. A PostgreSQL tsvector keeps word positions only up to 16,383 and must
stay under 1 MB, where an FTS5 row has no such limit. Pinned here on an
experiment whose files hold more than 16,383 words: an id of its last file,
a phrase of two words (``S1499_R1``), still finds that file alone, as does one
of its first; and when its files' distinct words are too many to hold at all,
its rows are searched instead and find the same. Both catalogs run it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from labmesh_dagster.connectors.catalog import postgres_text
from labmesh_dagster.connectors.catalog.base import SearchQuery
from labmesh_dagster.connectors.catalog.postgres import PostgresCatalog
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster_tests.connectors.catalog_contract.conftest import AnyCatalog

FILES = 1500


def publish_large_experiment(catalog: AnyCatalog) -> None:
    catalog.upsert_experiment(ExperimentRecord(id="BIG-1", title="Whole-slide tiles"), {})
    catalog.upsert_experiment(ExperimentRecord(id="SMALL-1", title="One run"), {})
    entries = [
        ManifestEntry(
            key=f"raw/BIG-1/S{number:04d}_R1.fastq.gz",
            size=1,
            sha256="0" * 64,
            format="fastq.gz",
            created="2024-03-01",
            text="tile of the slide",
        )
        for number in range(FILES)
    ]
    catalog.upsert_dataset(Manifest.build("BIG-1", "raw", entries), "file:///raw/BIG-1/")


def files_found(catalog: AnyCatalog, text: str) -> list[tuple[str, list[str]]]:
    return [(hit.experiment_id, [file.name for file in hit.files]) for hit in catalog.search(SearchQuery(text=text))]


def test_a_phrase_in_the_last_of_many_files_finds_that_file(open_catalog: Callable[[], AnyCatalog]) -> None:
    catalog = open_catalog()
    publish_large_experiment(catalog)

    assert files_found(catalog, "S1499_R1") == [("BIG-1", ["S1499_R1.fastq.gz"])]
    assert files_found(catalog, "S0000_R1 slide") == [("BIG-1", ["S0000_R1.fastq.gz"])]
    assert files_found(catalog, "R1_S1499") == []
    assert catalog.facet_counts(SearchQuery(text="S1499_R1"))["format"] == [("fastq.gz", 1)]


def test_files_too_many_to_hold_are_searched_row_by_row(
    postgres_catalog_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_text, "MAX_DISTINCT_BYTES", 0)
    catalog = PostgresCatalog(postgres_catalog_url)
    publish_large_experiment(catalog)

    assert files_found(catalog, "S1499_R1") == [("BIG-1", ["S1499_R1.fastq.gz"])]
    assert files_found(catalog, "tiles S0007_R1") == [("BIG-1", ["S0007_R1.fastq.gz"])]
    assert files_found(catalog, "run") == [("SMALL-1", [])]
