"""The PostgreSQL content index answers as the SQLite one: the same hits, in the same order, with the same scores.

Pinned here, on one lab put into both (the contract suites' documents, the
passages' labelled lab, and documents made to be hard: twins that tie,
accented words, words FTS5 reads as operators, ids cut into words, a word
repeated): for questions of ids, rare words, common words, paraphrases,
punctuation and no word at all, every mode of `retrieve` (keyword, dense,
hybrid) returns the same passages in the same order with the same scores,
under each viewer and each facet filter; and `search` returns the same
documents, scores and excerpts, with words and without, under each facet and
viewer, at a limit that cuts the ranking and without one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.connectors.search.base import NO_FILTER, ContentDocument, ContentFilter
from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.connectors.search.postgres import PostgresContentIndex
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.passages import SearchMode
from labmesh_dagster_tests.connectors.test_content_index import ALL
from labmesh_dagster_tests.connectors.test_content_index_passages import GENOMICIST, LABELLED, document, lab_documents
from labmesh_dagster_tests.postgres_databases import fresh_database

HARD = [
    document("raw/EXP-1/twin-a.txt", "Buffer exchange on column A at 4 C.", "EXP-1", "genomics"),
    document("raw/EXP-1/twin-b.txt", "Buffer exchange on column A at 4 C.", "EXP-1", "genomics"),
    document("raw/EXP-1/café.txt", "Café-au-lait spots noted; naïve T cells counted by FACS.", "EXP-1", "genomics"),
    document(
        "raw/EXP-1/ops.txt",
        'NOT, AND, OR and NEAR are words here, as is "quoted" text and LIV-07-B.',
        "EXP-1",
        "genomics",
    ),
    document(
        "raw/EXP-1/liver.txt", "Liver liver liver: the liver tissue of mouse 3, liver again.", "EXP-1", "genomics"
    ),
    document(
        "final/EXP-2/summary.md",
        "Summary of the proteomics buffer run: BCA protein, RIPA lysis.",
        "EXP-2",
        "proteomics",
    ),
]
QUESTIONS = [
    *(question for question, _ in LABELLED),
    "tissue",
    "liver tissue",
    "buffer",
    "exchange buffer",
    "cafe naive",
    "Café-au-lait",
    "NOT AND OR NEAR",
    '"quoted"',
    "LIV-07-B",
    "liver-lab S1",
    "what",
    "_ ?!",
]
VIEWERS = [
    None,
    GENOMICIST,
    Viewer("bob", frozenset({"liver-lab"})),
    Viewer("pia", frozenset({"proteomics", *(f"team-{n}" for n in range(10))})),
]
FILTERS = [
    ContentFilter(experiment_id="EXP-1"),
    ContentFilter(group="genomics"),
    ContentFilter(format="fastq"),
    ContentFilter(since=date(2025, 1, 3)),
    ContentFilter(sample_id="S1", zone="raw"),
]


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqliteContentIndex, PostgresContentIndex]]:
    documents: list[ContentDocument] = [*ALL, *lab_documents(), *HARD]
    with fresh_database("labmesh_content_parity") as url:
        sqlite = SqliteContentIndex(Path(tmp_path_factory.mktemp("parity")) / "catalog.sqlite")
        postgres = PostgresContentIndex(url)
        for index in (sqlite, postgres):
            assert index.replace(documents).ok
            # A second put and a revised document: numbers kept, vectors reused, as a lab's index lives.
            assert index.replace([replace(HARD[-1], text=HARD[-1].text + " Revised.")]).ok
        yield sqlite, postgres


def passages(index: Any, question: str, **options: Any) -> list[tuple[str, float, float | None]]:
    return [(hit.passage.id, hit.score, hit.meaning) for hit in index.retrieve(question, **options)]


def documents(index: Any, text: str, **options: Any) -> list[tuple[str, float, str]]:
    return [(hit.id, hit.score, hit.excerpt) for hit in index.search(text, **options)]


@pytest.mark.parametrize("mode", list(SearchMode))
def test_every_retrieval_returns_the_same_passages_in_the_same_order(
    both: tuple[SqliteContentIndex, PostgresContentIndex], mode: SearchMode
) -> None:
    sqlite, postgres = both
    asked = [{"viewer": viewer} for viewer in VIEWERS] + [{"filters": filters} for filters in FILTERS]
    compared = 0
    for question in QUESTIONS:
        for options in asked:
            expected = passages(sqlite, question, mode=mode, limit=8, **options)
            assert passages(postgres, question, mode=mode, limit=8, **options) == expected, (question, options)
            compared += bool(expected)
    assert compared > len(QUESTIONS) * 4  # most of them found something to compare


def test_every_search_returns_the_same_documents_scores_and_excerpts(
    both: tuple[SqliteContentIndex, PostgresContentIndex],
) -> None:
    sqlite, postgres = both
    asked: list[dict[str, Any]] = [{"viewer": viewer} for viewer in VIEWERS]
    asked += [{"filters": filters} for filters in [NO_FILTER, *FILTERS]]
    for text in ["", "tissue", "liver tissue S1", "buffer", "orbitrap kidney", "LIV-07", "cafe", "zebrafish", "?!"]:
        for options in asked:
            for limit in (2, 100):
                expected = documents(sqlite, text, limit=limit, **options)
                assert documents(postgres, text, limit=limit, **options) == expected, (text, options, limit)
    assert documents(postgres, "liver tissue", limit=100)[0][2]  # excerpts are there to compare


def test_facet_searches_select_the_same_documents(both: tuple[SqliteContentIndex, PostgresContentIndex]) -> None:
    sqlite, postgres = both
    for filters in FILTERS:
        found = [hit.id for hit in postgres.search("", filters=filters, limit=100)]
        assert found == [hit.id for hit in sqlite.search("", filters=filters, limit=100)]
        assert found or filters.format == "fastq"
    assert postgres.document_ids() == sqlite.document_ids()
