"""Counts under one platform, protocol or owner come from sums per home, and are exactly the shares' counts.

On the rollup tests' lab (two Hepatology experiments on different platforms,
an owner who sees a Nephrology experiment of her own, one with no group), each
filter is counted both ways: from the sums under the values it matches, and by
adding up every matching experiment's share as before. A platform filter
matches by phrase (``NovaSeq`` finds ``NovaSeq 6000``); owners and protocols
whole, case and spaces aside. After a revision moves an experiment to another
group, owner and platform, another to another protocol, and a grant comes
and goes, the sums are those of a catalog built in that final state.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.connectors.catalog import sqlite_facets, sqlite_value_sums
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

FILTERS: list[dict[str, Any]] = [
    {"platform": "MiSeq"},
    {"platform": "novaseq"},  # a word of "NovaSeq 6000"
    {"platform": "NovaSeq 6000"},
    {"platform": "6000 NovaSeq"},  # the words out of order: not the phrase
    {"platform": "HiSeq"},
    {"protocol": "rna-SEQ"},
    {"protocol": "ChIP-seq"},
    {"owner": "  ada   LOVELACE "},
    {"owner": "Alan Turing"},
    {"owner": "Grace Hopper"},
    {"owner": "Nobody"},
]


def both_ways(catalog: SqliteCatalog, query: SearchQuery) -> tuple[Counter[Any], Counter[Any]]:
    """The counts from the sums under own values, and from the matching experiments' shares."""
    plan = Plan.of(query)
    with connect(catalog.path) as db:
        summed = sqlite_facets._under_own_value(db, plan)
        shared = sqlite_facets._summed(db, *sqlite_facets._docs_without_words(plan))
    return positive(summed), positive(shared)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> SqliteCatalog:
    return build(tmp_path_factory.mktemp("lab") / "catalog.sqlite")


@pytest.mark.parametrize("shape", FILTERS, ids=[repr(shape) for shape in FILTERS])
@pytest.mark.parametrize("viewer", list(VIEWERS), ids=list(VIEWERS))
def test_the_sums_under_a_value_count_what_the_shares_count(
    catalog: SqliteCatalog, viewer: str, shape: dict[str, Any]
) -> None:
    query = SearchQuery(**shape, viewer=VIEWERS[viewer])

    summed, shared = both_ways(catalog, query)

    assert sqlite_value_sums.sums_answer(query)
    assert summed == shared


def test_the_lab_gives_the_sums_something_to_count(catalog: SqliteCatalog) -> None:
    ada = VIEWERS["ada, who owns a nephrology experiment"]

    by_platform, _ = both_ways(catalog, SearchQuery(platform="novaseq", viewer=ada))
    by_owner, _ = both_ways(catalog, SearchQuery(owner="ada lovelace", viewer=ada))

    assert by_platform["platform", "NovaSeq 6000"] == 3 and by_platform["owner", "Alan Turing"] == 3
    # Her Hepatology experiment from the group's sums, her Nephrology one as its owner.
    assert by_owner["group", "Hepatology"] == 3 and by_owner["group", "Nephrology"] == 1


def test_other_filters_are_not_answered_by_the_sums() -> None:
    assert not sqlite_value_sums.sums_answer(SearchQuery(platform="MiSeq", text="liver"))
    assert not sqlite_value_sums.sums_answer(SearchQuery(platform="MiSeq", owner="Ada Lovelace"))
    assert not sqlite_value_sums.sums_answer(SearchQuery(platform="MiSeq", format="csv"))
    assert not sqlite_value_sums.sums_answer(SearchQuery(group="Hepatology"))


def sums(path: Path) -> list[tuple[Any, ...]]:
    """The sums by value text (ids are numbered in the order values were first seen)."""
    with sqlite3.connect(path) as db:
        return db.execute(
            """SELECT s.home, u.facet, u.value, v.facet, v.value, s.hits FROM search_home_value_facets AS s
               JOIN search_facet_values AS u ON u.id = s.under JOIN search_facet_values AS v ON v.id = s.value
               ORDER BY 1, 2, 3, 4, 5"""
        ).fetchall()


def test_after_revisions_the_sums_are_those_of_a_catalog_built_in_that_state(tmp_path: Path) -> None:
    moved = replace(KIDNEY, group="Nephrology", owner="Grace Hopper", platform="MiSeq")
    changed, fresh = revised_and_fresh(tmp_path, moved, replace(LIVER, protocol="ChIP-seq"))

    assert sums(changed.path) == sums(fresh.path)
    for viewer in VIEWERS.values():
        for shape in FILTERS:
            summed, shared = both_ways(changed, SearchQuery(**shape, viewer=viewer))
            assert summed == shared, (shape, viewer)
    assert not both_ways(changed, SearchQuery(protocol="RNA-seq"))[0]
