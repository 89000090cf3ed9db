"""Counts of a one-word search come from sums per word and home, and are exactly the matches' counts.

On the rollup tests' lab, with the threshold lowered to two experiments so
that its few experiments reach it: words of the experiments' own text
(a group, a platform, an owner's name, a title word), a word some experiments
hold only in their files (a sample id, a file format), a word of one
experiment only (not summed), and a word of two tokens (a phrase, not summed)
are counted both ways, under each viewer: from the sums, and by adding up
every match's share as before. After revisions that move an experiment to
another group and rename another, and a grant that comes and goes, the counts
still agree, and the sums are those of a catalog built in that state.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.connectors.catalog import sqlite_facets, sqlite_term_sums
from labmesh_dagster.connectors.catalog.base import SearchQuery
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.catalog.sqlite_search import Plan
from labmesh_dagster.connectors.sqlite_files import connect
from labmesh_dagster_tests.connectors.test_catalog_rollup_counts import (
    KIDNEY,
    LIVER,
    VIEWERS,
    build,
    positive,
    revised_and_fresh,
)

WORDS = ["hepatology", "NovaSeq", "Lovelace", "turing", "L1", "csv", "Kidney", "nephrons", "RNA-seq", "nothing"]


@pytest.fixture(scope="module", autouse=True)
def low_threshold() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite_term_sums, "SUMMED_FROM", 2)
        yield


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> SqliteCatalog:
    return build(tmp_path_factory.mktemp("lab") / "catalog.sqlite")


def both_ways(catalog: SqliteCatalog, query: SearchQuery) -> tuple[str | None, Counter[Any], Counter[Any]]:
    """The summed token (None: not summed), the counts as the catalog forms them, and from every match's share."""
    plan = Plan.of(query)
    with connect(catalog.path) as db:
        term = sqlite_term_sums.summed_term(db, plan.terms[0])
        counted = sqlite_facets._word_counts(db, plan)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sqlite_term_sums, "summed_term", lambda db, word: None)
            shared = sqlite_facets._word_counts(db, plan)
    return term, positive(counted), positive(shared)


@pytest.mark.parametrize("word", WORDS)
@pytest.mark.parametrize("viewer", list(VIEWERS), ids=list(VIEWERS))
def test_the_sums_for_a_word_count_what_its_matches_count(catalog: SqliteCatalog, viewer: str, word: str) -> None:
    _, counted, shared = both_ways(catalog, SearchQuery(text=word, viewer=VIEWERS[viewer]))

    assert counted == shared


def test_words_many_experiments_hold_are_summed_and_the_others_are_not(catalog: SqliteCatalog) -> None:
    summed = {word: both_ways(catalog, SearchQuery(text=word))[0] for word in WORDS}

    assert summed["hepatology"] == "hepatolog" and summed["Lovelace"] == "lovelac"  # porter stems
    assert summed["turing"] == "ture"  # Alan Turing owns two experiments
    assert summed["Kidney"] is None and summed["NovaSeq"] is None  # one experiment's title, and platform
    assert summed["RNA-seq"] is None  # two tokens: a phrase, counted from its matches
    assert summed["L1"] is None and summed["csv"] is None  # in files only, never in an experiment's own text


def test_a_word_in_files_only_is_counted_from_its_rows(catalog: SqliteCatalog) -> None:
    hepatology = VIEWERS["hepatology"]

    _, counted, _ = both_ways(catalog, SearchQuery(text="hepatology csv", viewer=hepatology))
    _, by_group, _ = both_ways(catalog, SearchQuery(text="hepatology", viewer=hepatology))

    assert by_group["zone", "raw"] == 2 and counted["format", "csv"] == 4


def sums(path: Path) -> list[tuple[Any, ...]]:
    """The sums of the words both catalogs sum, by value text (ids are numbered as values were first seen)."""
    with sqlite3.connect(path) as db:
        return db.execute(
            """SELECT s.term, s.home, v.facet, v.value, s.hits FROM search_term_facets AS s
               JOIN search_facet_values AS v ON v.id = s.value ORDER BY 1, 2, 3, 4"""
        ).fetchall()


def test_after_revisions_the_counts_agree_and_the_sums_are_those_of_a_fresh_catalog(tmp_path: Path) -> None:
    moved = replace(KIDNEY, group="Nephrology", owner="Grace Hopper")
    changed, fresh = revised_and_fresh(tmp_path, moved, replace(LIVER, title="Hepatocytes"))

    kept = {row[0] for row in sums(fresh.path)}
    assert [row for row in sums(changed.path) if row[0] in kept] == sums(fresh.path)
    for viewer in VIEWERS.values():
        for word in [*WORDS, "nephrology", "hopper", "hepatocytes"]:
            _, counted, shared = both_ways(changed, SearchQuery(text=word, viewer=viewer))
            assert counted == shared, (word, viewer)
