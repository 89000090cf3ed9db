"""Facet counts for the local catalog: how many hits of a query carry each value, under the viewer's access.

The counts are the search's own matches without its limit (`sqlite_search`),
so a count never tells of an experiment the viewer may not see. Most of a
query's experiments match whole (no file facet, sample or date narrows their
rows, and their own text holds the words): for those, each experiment's share
of every count was summed when it was indexed (``search_doc_facets``), and one
SQL aggregate adds the shares up. Only experiments that match in part (some
files only) have their rows read and counted here.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

from labmesh_dagster.connectors.catalog.base import FACETS, FacetCounts, SearchQuery
from labmesh_dagster.connectors.catalog.sqlite_search import (
    SHARED_COLUMNS,
    Candidate,
    Plan,
    Row,
    expand,
    matches,
    units,
)


def facet_counts(db: sqlite3.Connection, query: SearchQuery, top: int) -> FacetCounts:
    plan = Plan.of(query)
    counts: Counter[tuple[str, str]] = Counter()
    if plan.filters_rows:
        for doc, rows in matches(db, plan, want=None):
            counts.update(_shares(db, doc, rows))
    elif plan.terms:
        whole, partial = _text_docs(db, plan)
        counts.update(_summed(db, "SELECT value FROM json_each(?)", [json.dumps(whole)]))
        for doc, rows in expand(db, plan, partial):
            counts.update(_shares(db, doc, rows))
    else:
        source, params = _docs_without_words(plan)
        counts.update(_summed(db, source, params))
    return _ordered(counts, top)


def _docs_without_words(plan: Plan) -> tuple[str, list[object]]:
    """An SQL query for the experiments that match whole a query without words or row filters."""
    if plan.query.experiment:
        access, params = plan.access_check("d.doc")
        facets = plan.facet_clauses
        sql = f"SELECT d.doc FROM search_docs AS d WHERE d.experiment_id = ?{access}"
        arguments: list[object] = [plan.query.experiment, *params]
        if facets:
            sql += (
                " AND d.doc IN (SELECT rowid FROM search_experiment_text WHERE search_experiment_text MATCH ?"
                " AND rowid = d.doc)"
            )
            arguments.append(" AND ".join(facets))
        return sql, arguments
    if plan.facet_clauses:
        access, params = plan.access_check("rowid") if plan.access_clause is None else ("", [])
        clauses = " AND ".join(plan.experiment_clauses)
        sql = f"SELECT rowid FROM search_experiment_text WHERE search_experiment_text MATCH ?{access}"
        return sql, [clauses, *params]
    if plan.principals is not None:
        # Only the viewer's principals: their index rows list exactly the experiments they may see.
        marks = ", ".join("?" * len(plan.principals))
        return f"SELECT doc FROM search_access WHERE principal IN ({marks})", list(plan.principals)
    return "SELECT doc FROM search_docs", []


def _text_docs(db: sqlite3.Connection, plan: Plan) -> tuple[list[int], list[Candidate]]:
    """Experiments holding every word: those whose own text holds them all, and the others with their missing words."""
    access, params = plan.access_join("rowid")
    sql = f"SELECT rowid FROM search_experiment_text WHERE search_experiment_text MATCH ?{access}"
    every = [row[0] for row in db.execute(sql, [plan.text_expression(), *params])]
    shared = " AND ".join([*(f"{SHARED_COLUMNS} : {term}" for term in plan.terms), *plan.experiment_clauses])
    whole = {row[0] for row in db.execute(sql, [shared, *params])}
    partial = []
    for doc in every:
        if doc not in whole:
            own = tuple(term for term in plan.terms if not _shared(db, doc, term))
            partial.append(Candidate(doc, own))
    return [doc for doc in every if doc in whole], partial


def _shared(db: sqlite3.Connection, doc: int, term: str) -> bool:
    sql = "SELECT 1 FROM search_experiment_text WHERE search_experiment_text MATCH ? AND rowid = ?"
    return db.execute(sql, (f"{SHARED_COLUMNS} : {term}", doc)).fetchone() is not None


def _summed(db: sqlite3.Connection, source: str, params: list[object]) -> dict[tuple[str, str], int]:
    """The summed shares of the experiments ``source`` (an SQL query of doc numbers) lists."""
    sql = (
        "SELECT f.facet, f.value, sum(f.hits) FROM search_doc_facets AS f "
        f"WHERE f.doc IN ({source}) GROUP BY f.facet, f.value"
    )
    return {(facet, value): hits for facet, value, hits in db.execute(sql, params)}


def _shares(db: sqlite3.Connection, doc: int, rows: list[Row]) -> Counter[tuple[str, str]]:
    """One experiment's share of the counts when only ``rows`` of it match."""
    sql = "SELECT experiment_id, group_name, owner, platform, protocol, samples FROM search_docs WHERE doc = ?"
    experiment_id, group, owner, platform, protocol, samples = db.execute(sql, (doc,)).fetchone()
    grouped = units(rows)
    share: Counter[tuple[str, str]] = Counter()
    experiment = {"experiment": experiment_id, "group": group, "owner": owner}
    for facet, value in {**experiment, "platform": platform, "protocol": protocol}.items():
        if value:
            share[facet, value] += len(grouped)
    experiment_samples = samples.split("\x1f") if samples else []
    for dataset, unit in grouped.items():
        share.update([("zone", dataset)] if dataset else [])
        share.update({("format", row.format) for row in unit if row.format})
        share.update({("sample", sample) for row in unit for sample in (row.sample_ids or experiment_samples)})
        share.update({("month", row.created[:7]) for row in unit if row.created})
    return share


def _ordered(counts: Counter[tuple[str, str]], top: int) -> FacetCounts:
    result: FacetCounts = {facet: [] for facet in FACETS}
    for (facet, value), hits in counts.items():
        if hits > 0:
            result[facet].append((value, hits))
    for facet, values in result.items():
        values.sort() if facet == "month" else values.sort(key=lambda item: (-item[1], item[0]))
        if facet != "month":
            del values[top:]
    return result
