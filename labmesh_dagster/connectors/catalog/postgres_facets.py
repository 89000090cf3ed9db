"""Facet counts for the PostgreSQL catalog: how many of a query's hits carry each value, under the viewer's access.

The counts are those of the search's own matches without its limit
(`postgres_search`), formed in one statement whose first step picks the
experiments the viewer may see, so a count never tells of a hidden one. The
SQLite catalog keeps sums to stay fast at 100,000 datasets; here a plain
``GROUP BY`` over the matching rows, on indexed columns, is the whole method:
the matching rows become hits (a dataset, or the experiment while none of its
datasets matched), and each facet counts the hits carrying each value.
Experiment and sample, with a value per hit or nearly, list those of the first
hits in result order, each with its count over every hit, as SQLite does.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from labmesh_dagster.connectors.catalog.base import FACETS, FacetCounts, SearchQuery
from labmesh_dagster.connectors.catalog.postgres_search import Plan, Row, experiments, matched, plan_of, units
from labmesh_dagster.connectors.catalog.sqlite_index import sample_key

EXPERIMENT_COLUMNS = (("group", "group_name"), ("owner", "owner"), ("platform", "platform"), ("protocol", "protocol"))


def _kept(plan: Plan) -> str:
    """CTEs ending in ``kept``: the matching rows that make hits, and ``hits``: one row per hit (doc, dataset)."""
    return f"""
        WITH candidates AS MATERIALIZED ({plan.candidates()}),
        matched AS MATERIALIZED (
            SELECT r.doc, r.position, r.dataset, r.format, r.created
            FROM candidates AS c JOIN catalog_search_rows AS r ON r.doc = c.doc
            WHERE {plan.row_match}
        ),
        kept AS MATERIALIZED (
            -- A dataset's rows make its hit; the experiment's own row only where none of its datasets matched.
            SELECT m.* FROM matched AS m
            WHERE m.dataset IS NOT NULL
               OR NOT EXISTS (SELECT 1 FROM matched AS o WHERE o.doc = m.doc AND o.dataset IS NOT NULL)
        ),
        hits AS MATERIALIZED (SELECT DISTINCT doc, dataset FROM kept)"""


def _filters_rows(plan: Plan) -> bool:
    query = plan.query
    return bool(query.format or query.file_name or query.zone or query.sample or query.since or query.until)


def _counted(db: Any, plan: Plan) -> Counter[tuple[str, str]]:
    # An empty value (an undated file's date, say) is counted as SQLite counts it: as a value when files are
    # filtered without words (it sums what it stores), left out otherwise (it adds up shares of values).
    held = "{0} IS NOT NULL" if _filters_rows(plan) and not plan.terms else "{0} <> ''"
    per_experiment = " ".join(
        f"UNION ALL SELECT '{facet}', d.{column} COLLATE \"C\", count(*) FROM hits AS h "
        f"JOIN catalog_search_docs AS d ON d.doc = h.doc WHERE {held.format('d.' + column)} GROUP BY d.{column}"
        for facet, column in EXPERIMENT_COLUMNS
    )
    sql = f"""{_kept(plan)}
        SELECT 'zone' AS facet, dataset COLLATE "C" AS value, count(*) AS hits
        FROM hits WHERE dataset IS NOT NULL GROUP BY dataset
        UNION ALL SELECT 'format', format COLLATE "C", count(*)
        FROM (SELECT DISTINCT doc, dataset, format FROM kept WHERE {held.format("format")}) AS f GROUP BY format
        UNION ALL SELECT 'month', month COLLATE "C", count(*)
        FROM (SELECT DISTINCT doc, dataset, left(created, 7) AS month FROM kept WHERE {held.format("created")}) AS m
        GROUP BY month
        {per_experiment}"""
    return Counter({(row["facet"], row["value"]): row["hits"] for row in db.execute(sql, plan.params)})


def facet_counts(db: Any, query: SearchQuery, top: int) -> FacetCounts:
    plan = plan_of(db, query)
    result: FacetCounts = {facet: [] for facet in FACETS}
    if plan.nothing:
        return result
    for (facet, value), hits in _counted(db, plan).items():
        if hits > 0:
            result[facet].append((value, hits))
    for facet, values in result.items():
        values.sort(key=lambda item: item if facet == "month" else (-item[1], item[0]))
        if facet != "month":
            del values[top:]
    # The experiment facet lists the first hits in result order: only they are ranked.
    first = matched(db, plan, docs=top)
    records = experiments(db, [doc for doc, _ in first])
    result["experiment"] = [(records[doc]["experiment_id"], len(units(rows))) for doc, rows in first]
    result["sample"] = _samples(db, plan, first, records, top)
    return result


def _samples(
    db: Any, plan: Plan, first: list[tuple[int, list[Row]]], records: dict[int, dict[str, Any]], top: int
) -> list[tuple[str, int]]:
    """The samples of the first hits, in result order, each with the number of every matching hit holding it.

    A file of no sample, and the experiment's own row, hold the experiment's samples.
    """
    listed: dict[str, None] = {}
    for doc, rows in first:
        for unit in units(rows).values():
            listed.update(dict.fromkeys(name for row in unit for name in row.samples or records[doc]["samples"]))
    names = list(listed)[:top]
    if not names:
        return []
    sql = f"""{_kept(plan)}
        SELECT s.sample, count(DISTINCT k.doc::text || '/' || coalesce(k.dataset, '')) AS hits
        FROM kept AS k JOIN catalog_search_samples AS s ON s.doc = k.doc AND s.position = k.position
        WHERE s.sample = ANY(%(sample_keys)s) GROUP BY s.sample"""
    keys = sorted({sample_key(name) for name in names})
    counts = {row["sample"]: row["hits"] for row in db.execute(sql, {**plan.params, "sample_keys": keys})}
    return [(name, counts.get(sample_key(name), 0)) for name in names]
