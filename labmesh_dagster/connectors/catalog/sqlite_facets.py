"""Facet counts for the local catalog: how many hits of a query carry each value, under the viewer's access.

The counts are the search's own matches without its limit (`sqlite_search`),
so a count never tells of an experiment the viewer may not see, and they cost
what the matches cost, read as narrowly as the search reads them:

- Facets with few values (`sqlite_index.COUNTED`: group, owner, platform...).
  Each experiment's share of them, when it matches whole, was summed when it
  was indexed (``search_doc_facets``), and so was each home group's
  (``search_home_facets``). A query with neither words nor filters, the
  portal's first page, adds up the viewer's groups' sums plus the few
  experiments they see otherwise (as owner, on its people, by a grant): its
  cost follows the number of groups, not of experiments. A query whose
  experiments match whole adds up their shares in one SQL aggregate; only
  experiments that match in part (some files only) have their rows read.
- The same facets when only files are filtered (format, zone, dates): each
  dataset's share was summed per home, month and year at write time
  (`sqlite_units`), so counting adds up the viewer's groups' sums for the
  months the dates take whole, and reads only the datasets of a month a date
  bound cuts, those spanning months, and the experiments the viewer sees
  otherwise. Any other filter on files (a file name, a sample, words) reads
  the matching rows.
- Experiment and sample, with a value per hit or nearly: the values of the
  first hits, in result order, each with its count over every hit.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice

from labmesh_dagster.connectors.catalog import sqlite_term_sums, sqlite_value_sums
from labmesh_dagster.connectors.catalog.base import FACETS, FacetCounts, SearchQuery
from labmesh_dagster.connectors.catalog.sqlite_index import POSITION_BITS, SEPARATOR, normal, sample_key
from labmesh_dagster.connectors.catalog.sqlite_search import (
    SHARED_COLUMNS,
    Candidate,
    Plan,
    Row,
    candidates,
    checked,
    expand,
    matches,
    partial,
    phrase,
    units,
    unranked,
)
from labmesh_dagster.connectors.catalog.sqlite_units import SPREAD, format_key, periods
from labmesh_dagster.core.access import GROUP

Shares = Counter[tuple[str, str]]
EXPERIMENT_COLUMNS = (("group", "group_name"), ("owner", "owner"), ("platform", "platform"), ("protocol", "protocol"))


def facet_counts(db: sqlite3.Connection, query: SearchQuery, top: int) -> FacetCounts:
    plan = Plan.of(query)
    if plan.terms and not plan.filters_rows:
        counted = _word_counts(db, plan)
    elif plan.filters_rows:
        summed = counted_by_sums(db, plan)
        counted = counted_by_rows(db, plan) if summed is None else summed
    elif sqlite_value_sums.sums_answer(query):
        counted = _under_own_value(db, plan)
    elif plan.query.experiment or plan.facet_clauses:
        counted = _summed(db, *_docs_without_words(plan))
    else:
        counted = _everything(db, plan)
    result: FacetCounts = {facet: [] for facet in FACETS}
    for (facet, value), hits in counted.items():
        if hits > 0:
            result[facet].append((value, hits))
    for facet, values in result.items():
        values.sort(key=lambda item: item if facet == "month" else (-item[1], item[0]))
        if facet != "month":
            del values[top:]
    # The experiment facet lists the first hits in result order: only they are ranked.
    first = _first_of(db, plan, candidates(db, plan, want=top), top)
    named = _names(db, [doc for doc, _ in first])
    result["experiment"] = [(named[doc], len(units(rows))) for doc, rows in first]
    result["sample"] = _samples(db, plan, dict(first), top)
    return result


def _first_of(db: sqlite3.Connection, plan: Plan, found: Iterator[Candidate], top: int) -> list[tuple[int, list[Row]]]:
    """The first ``top`` matching experiments of ``found`` (in result order) with their matching rows."""
    first: list[tuple[int, list[Row]]] = []
    while len(first) < top and (chunk := list(islice(found, top - len(first)))):
        first += expand(db, plan, chunk)
    return first


def _names(db: sqlite3.Connection, docs: list[int]) -> dict[int, str]:
    sql = "SELECT s.doc, s.experiment_id FROM json_each(?) AS d JOIN search_docs AS s ON s.doc = d.value"
    return dict(db.execute(sql, (json.dumps(docs),)).fetchall())


def _everything(db: sqlite3.Connection, plan: Plan) -> Shares:
    """Counts over every experiment the viewer may see: their home groups' sums, plus the others they see."""
    counted = _home_sums(db, "search_home_facets", "1", [], plan.principals)
    if plan.principals is not None:
        counted.update(_summed(db, *_seen_otherwise(plan.principals)))
    return counted


def _home_sums(
    db: sqlite3.Connection, table: str, where: str, params: list[object], principals: Sequence[str] | None
) -> Shares:
    """The sums of ``table``'s rows that ``where`` picks, over the viewer's home groups (every home for an admin).

    ``table`` is one of the per-home sums of shares (home, value, hits, and what it is summed for).
    """
    if principals is not None:
        homes = [principal for principal in principals if principal.startswith(GROUP)]
        where, params = f"{where} AND home IN ({_marks(homes)})", [*params, *homes]
    sql = (
        f"SELECT v.facet, v.value, s.hits FROM (SELECT value AS id, sum(hits) AS hits FROM {table} "
        f"WHERE {where} GROUP BY value) AS s JOIN search_facet_values AS v ON v.id = s.id"
    )
    return _rows_of(db.execute(sql, params))


def _seen_otherwise(
    principals: Sequence[str], holding: str = "", params: Sequence[object] = ()
) -> tuple[str, list[object]]:
    """An SQL query (of ``doc``) for the experiments the viewer sees other than through their groups (as owner,
    on its people, by a grant), which the home groups' sums leave out; ``holding``: a further condition on ``a.doc``.
    """
    marks = _marks(principals)
    sql = (
        "SELECT DISTINCT a.doc AS doc FROM search_access AS a JOIN search_docs AS d ON d.doc = a.doc "
        f"WHERE a.principal IN ({marks}) AND a.home = 0 AND d.home NOT IN ({marks}){holding}"
    )
    return sql, [*principals, *principals, *params]


def _word_counts(db: sqlite3.Connection, plan: Plan) -> Shares:
    """The counts of a search with words and no file filter: the whole matches' shares, and the others' rows.

    One word that many experiments hold is summed per home (`sqlite_term_sums`): its whole matches are the
    viewer's groups' sums plus the experiments they see otherwise; other words add up each whole match's share.
    """
    one = len(plan.terms) == 1 and not (plan.facet_clauses or plan.query.experiment)
    term = sqlite_term_sums.summed_term(db, plan.terms[0]) if one else None
    if term is None:
        found = unranked(db, plan)
        whole = [candidate.doc for candidate in found if not candidate.own_terms]
        counted = _summed(db, "SELECT value FROM json_each(?)", [json.dumps(whole)])
        read = [candidate for candidate in found if candidate.own_terms]
    else:
        counted = _home_sums(db, "search_term_facets", "term = ?", [term], plan.principals)
        if plan.principals is not None:
            holding = " AND EXISTS (SELECT 1 FROM search_doc_terms AS t WHERE t.doc = a.doc AND t.term = ?)"
            counted.update(_summed(db, *_seen_otherwise(plan.principals, holding, [term])))
        read = partial(db, plan)
    for doc, rows in expand(db, plan, read):
        counted.update(_shares(db, doc, rows))
    return counted


def _under_own_value(db: sqlite3.Connection, plan: Plan) -> Shares:
    """Counts under one platform, protocol or owner: the viewer's groups' sums under it, plus the others they see.

    The others (seen as owner, on the people, by a grant) are tested for the value by their own shares' rows.
    """
    query = plan.query
    value = query.platform or query.protocol or query.owner or ""
    unders = sqlite_value_sums.matched_values(db, query, phrase(value), normal(value))
    if not unders:
        return Counter()
    counted = _home_sums(db, "search_home_value_facets", f"under IN ({_marks(unders)})", [*unders], plan.principals)
    if plan.principals is not None:
        holding = (
            f" AND EXISTS (SELECT 1 FROM search_doc_facets AS f WHERE f.doc = a.doc AND f.value IN ({_marks(unders)}))"
        )
        counted.update(_summed(db, *_seen_otherwise(plan.principals, holding, unders)))
    return counted


def _docs_without_words(plan: Plan) -> tuple[str, list[object]]:
    """An SQL query (of ``doc``) for the experiments a query without words lets through, before row filters."""
    if plan.query.experiment:
        access, params = plan.access_check("d.doc")
        sql = f"SELECT d.doc AS doc FROM search_docs AS d WHERE d.experiment_id = ?{access}"
        arguments: list[object] = [plan.query.experiment, *params]
        if plan.facet_clauses:
            sql += " AND d.doc IN (SELECT rowid FROM search_experiment_text WHERE search_experiment_text MATCH ?)"
            arguments.append(" AND ".join(plan.facet_clauses))
        return sql, arguments
    if plan.experiment_clauses:
        access, params = plan.access_join("rowid")
        sql = f"SELECT rowid AS doc FROM search_experiment_text WHERE search_experiment_text MATCH ?{access}"
        return sql, [" AND ".join(plan.experiment_clauses), *params]
    access, params = plan.access_check("d.doc")
    return f"SELECT d.doc AS doc FROM search_docs AS d WHERE 1{access}", list(params)


def _matching_rows_sql(plan: Plan) -> tuple[str, list[object]] | None:
    """An SQL query (of ``row``) for the rows a query without words matches, before dates; None to go row by row."""
    if plan.terms or plan.query.sample:
        return None
    if plan.row_clauses and not plan.query.experiment:
        access, checks = plan.access_join("rowid >> 32")
        expression = " AND ".join([*plan.row_clauses, *plan.experiment_clauses])
        return f"SELECT rowid AS row FROM search_row_text WHERE search_row_text MATCH ?{access}", [expression, *checks]
    docs, params = _docs_without_words(plan)
    sql = (
        f"SELECT r.row AS row FROM ({docs}) AS d JOIN search_rows AS r "
        f"ON r.row BETWEEN d.doc << {POSITION_BITS} AND (d.doc << {POSITION_BITS}) + {(1 << POSITION_BITS) - 1}"
    )
    if plan.row_clauses:
        sql += " WHERE r.row IN (SELECT rowid FROM search_row_text WHERE search_row_text MATCH ?)"
        params.append(" AND ".join(plan.row_clauses))
    return sql, params


def _counted_rows(db: sqlite3.Connection, plan: Plan, rows: str, params: list[object], *, few: bool = False) -> Shares:
    """The counted facets over the rows ``rows`` (an SQL query) lists that fall in the dates, grouped into hits.

    ``few``: ``rows`` lists few rows, so they drive the statement; the unary + and the CROSS JOIN keep SQLite
    from walking the dates' index (every row in the dates) instead.
    """
    dates, date_params = plan.date_where("+r.created" if few else "r.created")
    join = "CROSS JOIN" if few else "JOIN"
    per_experiment = " UNION ALL ".join(
        f"SELECT '{facet}', d.{column}, count(*) FROM hits AS h JOIN search_docs AS d ON d.doc = h.doc "
        f"WHERE d.{column} IS NOT NULL GROUP BY d.{column}"
        for facet, column in (
            ("group", "group_name"),
            ("owner", "owner"),
            ("platform", "platform"),
            ("protocol", "protocol"),
        )
    )
    sql = f"""
        WITH matched AS MATERIALIZED (
            SELECT r.row >> {POSITION_BITS} AS doc, r.dataset AS dataset, r.format AS format,
                   substr(r.created, 1, 7) AS month
            FROM ({rows}) AS x {join} search_rows AS r ON r.row = x.row WHERE 1{dates}
        ), kept AS MATERIALIZED (
            -- A dataset's rows make its hit; the experiment's own row only where none of its datasets matched.
            SELECT * FROM matched
            WHERE dataset IS NOT NULL OR doc NOT IN (SELECT doc FROM matched WHERE dataset IS NOT NULL)
        ), hits AS MATERIALIZED (
            SELECT DISTINCT doc, dataset FROM kept
        )
        SELECT 'zone', dataset, count(*) FROM hits WHERE dataset IS NOT NULL GROUP BY dataset
        UNION ALL
        SELECT 'format', format, count(*) FROM (SELECT DISTINCT doc, dataset, format FROM kept) WHERE format IS NOT NULL
        GROUP BY format
        UNION ALL
        SELECT 'month', month, count(*) FROM (SELECT DISTINCT doc, dataset, month FROM kept) WHERE month IS NOT NULL
        GROUP BY month
        UNION ALL {per_experiment}"""
    return _rows_of(db.execute(sql, [*params, *date_params]))


def counted_by_rows(db: sqlite3.Connection, plan: Plan) -> Shares:
    """The counted facets of a query that filters files, from every matching row."""
    rows_sql = _matching_rows_sql(plan)
    if rows_sql is not None:
        return _counted_rows(db, plan, *rows_sql)
    counted: Shares = Counter()
    for doc, rows in matches(db, plan, want=None):
        counted.update(_shares(db, doc, rows))
    return counted


def counted_by_sums(db: sqlite3.Connection, plan: Plan) -> Shares | None:
    """The counts of a query filtering files by format, zone or dates, from the sums (`sqlite_units`).

    Under dates alone, the experiments themselves that are hits come from their own dates (`_own_hits`).
    With words or experiment facets too (and a format or zone), from the matching experiments' datasets
    (`_counted_by_units`).
    None for any other query, and for a format matching several values, which the sums could count twice.
    """
    query = plan.query
    if query.sample or query.file_name:
        return None
    dates_alone = not (query.format or query.zone)
    if dates_alone and (plan.terms or plan.facet_clauses or query.experiment or not (query.since or query.until)):
        return None
    fmt: str | None = None
    if query.format:
        sql = (
            "SELECT v.value FROM search_format_text AS t JOIN search_row_values AS v ON v.id = t.rowid "
            "WHERE search_format_text MATCH ?"
        )
        formats = [row[0] for row in db.execute(sql, (f"file_format : {phrase(query.format)}",))]
        if len(formats) > 1:
            return None
        if not formats:
            return Counter()
        fmt = formats[0]
    zones: list[str] | None = None
    if query.zone:
        sql = "SELECT value FROM search_row_values WHERE kind = 'zone'"
        zones = [zone for (zone,) in db.execute(sql) if normal(zone) == normal(query.zone)]
        if not zones:
            return Counter()
    if plan.terms or plan.facet_clauses or query.experiment:
        return _counted_by_units(db, plan, fmt, zones)
    if plan.principals is None:
        homes = [row[0] for row in db.execute("SELECT DISTINCT home FROM search_home_spans")]
    else:
        homes = [principal for principal in plan.principals if principal.startswith(GROUP)]
    summed: list[tuple[str, str]] = []
    cut: list[tuple[str, str]] = []
    for home in homes:
        sums, read = _periods(db, plan, home)
        summed += [(home, period) for period in sums]
        cut += [(home, month) for month in read]
    counted = _sums(db, format_key(fmt), zones, summed)
    units = _cut_units(db, cut, zones)
    zone_match = f" AND r.dataset IN ({_marks(zones)})" if zones is not None else ""
    format_match = " AND r.format = ?" if fmt is not None else ""
    row_params: list[object] = [*(zones or []), *([fmt] if fmt is not None else [])]
    if units:
        rows = (
            f"SELECT r.row AS row FROM json_each(?) AS u CROSS JOIN search_rows AS r ON r.row BETWEEN "
            f"json_extract(u.value, '$[0]') << {POSITION_BITS} AND "
            f"(json_extract(u.value, '$[0]') << {POSITION_BITS}) + {(1 << POSITION_BITS) - 1} "
            f"WHERE r.dataset = json_extract(u.value, '$[1]'){format_match}"
        )
        counted.update(
            _counted_rows(db, plan, rows, [json.dumps(units), *([fmt] if fmt is not None else [])], few=True)
        )
    if plan.principals is not None:
        others, other_params = _seen_otherwise(plan.principals)
        rows = (
            f"SELECT r.row AS row FROM ({others}) AS d JOIN search_rows AS r ON r.row BETWEEN "
            f"d.doc << {POSITION_BITS} AND (d.doc << {POSITION_BITS}) + {(1 << POSITION_BITS) - 1} "
            # Under dates alone the experiment's own row may be its hit: all its rows are read.
            f"WHERE {'1' if dates_alone else 'r.dataset IS NOT NULL'}{zone_match}{format_match}"
        )
        counted.update(_counted_rows(db, plan, rows, [*other_params, *row_params], few=True))
    if dates_alone:
        counted.update(_own_hits(db, plan, None if plan.principals is None else homes))
    return counted


def _own_hits(db: sqlite3.Connection, plan: Plan, homes: list[str] | None) -> Shares:
    """Under dates alone, the experiments of ``homes`` (None: all) that are hits themselves, and their counts.

    An experiment is its own hit when its date is in the dates and none of its files' is. Its files' first
    and last dates decide, unless the dates fall between them: then its rows are asked (an indexed range).
    """
    since, (_, bounds) = plan.query.since, plan.date_where("created")
    params: dict[str, object] = {"since": since, "until": bounds[-1] if plan.query.until else None}
    params.update({f"home{number}": home for number, home in enumerate(homes or [])})
    where = f"o.home IN ({', '.join(f':home{n}' for n in range(len(homes)))})" if homes is not None else "1"
    inside = "((:since IS NULL OR {0} >= :since) AND (:until IS NULL OR {0} <= :until))"
    files = f"(o.doc << {POSITION_BITS}) + 1 AND (o.doc << {POSITION_BITS}) + {(1 << POSITION_BITS) - 1}"
    per_experiment = " ".join(
        f"UNION ALL SELECT '{facet}', d.{column}, count(*) FROM hits AS h JOIN search_docs AS d ON d.doc = h.doc "
        f"WHERE d.{column} IS NOT NULL GROUP BY d.{column}"
        for facet, column in EXPERIMENT_COLUMNS
    )
    sql = f"""
        WITH hits AS MATERIALIZED (
            SELECT o.doc, o.created FROM search_own AS o
            WHERE {where} AND {inside.format("o.created")} AND CASE
                WHEN o.lo IS NULL THEN 1
                WHEN {inside.format("o.lo")} OR {inside.format("o.hi")} THEN 0
                WHEN (:since IS NOT NULL AND o.hi < :since) OR (:until IS NOT NULL AND o.lo > :until) THEN 1
                ELSE NOT EXISTS (
                    SELECT 1 FROM search_rows AS r
                    WHERE r.row BETWEEN {files} AND r.dataset IS NOT NULL AND {inside.format("r.created")})
                END
        )
        SELECT 'month', substr(created, 1, 7), count(*) FROM hits GROUP BY 2 {per_experiment}"""
    return _rows_of(db.execute(sql, params))


def _counted_by_units(db: sqlite3.Connection, plan: Plan, fmt: str | None, zones: list[str] | None) -> Shares:
    """The counts of a query with words or experiment facets that filters files by format or zone, and dates.

    The experiments it matches whole (every word in their own text, or no words) count from their datasets'
    summaries, each taken or left out whole by the month's dates; the others, and those with a dataset that
    a date bound cuts or that spans months, have their matching rows read, as without the summaries.
    """
    if plan.terms:
        found = unranked(db, plan)
        whole = [candidate.doc for candidate in found if not candidate.own_terms]
        read = [candidate for candidate in found if candidate.own_terms]
    else:
        docs, params = _docs_without_words(plan)
        whole, read = [row[0] for row in db.execute(docs, params)], []
    counted, cut = _units_counted(db, plan, whole, fmt, zones)
    cut_docs = [doc for doc in whole if doc in cut]
    if plan.terms:
        for doc, rows in expand(db, plan, [*read, *(Candidate(doc) for doc in cut_docs)]):
            counted.update(_shares(db, doc, rows))
    elif cut_docs:
        zone_match = f" AND r.dataset IN ({_marks(zones)})" if zones is not None else ""
        format_match = " AND r.format = ?" if fmt is not None else ""
        rows_sql = (
            f"SELECT r.row AS row FROM json_each(?) AS d CROSS JOIN search_rows AS r ON r.row BETWEEN "
            f"d.value << {POSITION_BITS} AND (d.value << {POSITION_BITS}) + {(1 << POSITION_BITS) - 1} "
            f"WHERE r.dataset IS NOT NULL{zone_match}{format_match}"
        )
        row_params: list[object] = [json.dumps(cut_docs), *(zones or []), *([fmt] if fmt is not None else [])]
        counted.update(_counted_rows(db, plan, rows_sql, row_params, few=True))
    return counted


def _units_counted(
    db: sqlite3.Connection, plan: Plan, docs: list[int], fmt: str | None, zones: list[str] | None
) -> tuple[Shares, set[int]]:
    """The counted facets of the datasets of ``docs`` that pass the file filters whole, in one SQL aggregate;
    and the experiments left out, to be read, because the dates cut one of their datasets (or it spans months).
    """
    since, (_, bounds) = plan.query.since, plan.date_where("created")
    until = bounds[-1] if plan.query.until else None
    # Words count as `_shares` does (values that are not empty); without, as `_counted_rows` does (not NULL).
    kept = "{0} IS NOT NULL AND {0} != ''" if plan.terms else "{0} IS NOT NULL"
    params: dict[str, object] = {"since": since, "until": until, "docs": json.dumps(docs), "format": fmt}
    params.update({f"zone{number}": zone for number, zone in enumerate(zones or [])})
    where = f" AND u.zone IN ({', '.join(f':zone{n}' for n in range(len(zones)))})" if zones is not None else ""
    where += " AND EXISTS (SELECT 1 FROM json_each(u.formats) AS f WHERE f.value = :format)" if fmt is not None else ""
    formats = (
        f"SELECT 'format', :format, count(*) FROM hits WHERE {kept.format(':format')}"
        if fmt is not None
        else f"SELECT 'format', f.value, count(*) FROM hits, json_each(hits.formats) AS f "
        f"WHERE {kept.format('f.value')} GROUP BY f.value"
    )
    per_experiment = " ".join(
        f"UNION ALL SELECT '{facet}', d.{column}, count(*) FROM hits AS h JOIN search_docs AS d ON d.doc = h.doc "
        f"WHERE {kept.format('d.' + column)} GROUP BY d.{column}"
        for facet, column in EXPERIMENT_COLUMNS
    )
    sql = f"""
        WITH units AS MATERIALIZED (
            SELECT u.doc, u.zone, u.month, u.formats, CASE
                WHEN u.month = '{SPREAD}' OR s.lo IS NULL OR s.hi IS NULL THEN 2
                WHEN (:since IS NOT NULL AND s.hi < :since) OR (:until IS NOT NULL AND s.lo > :until) THEN 0
                WHEN (:since IS NOT NULL AND s.lo < :since) OR (:until IS NOT NULL AND s.hi > :until) THEN 2
                ELSE 1 END AS state
            FROM json_each(:docs) AS w JOIN search_units AS u ON u.doc = w.value
            LEFT JOIN search_home_spans AS s ON s.home = u.home AND s.month = u.month
            WHERE 1{where}
        ), cut AS MATERIALIZED (
            SELECT DISTINCT doc FROM units WHERE state = 2
        ), hits AS MATERIALIZED (
            SELECT * FROM units WHERE state = 1 AND doc NOT IN cut
        )
        SELECT 'cut', doc, 0 FROM cut
        UNION ALL SELECT 'zone', zone, count(*) FROM hits GROUP BY zone
        UNION ALL SELECT 'month', month, count(*) FROM hits WHERE {kept.format("month")} GROUP BY month
        UNION ALL {formats} {per_experiment}"""
    counted: Shares = Counter()
    cut: set[int] = set()
    for facet, value, hits in db.execute(sql, params):
        if facet == "cut":
            cut.add(value)
        else:
            counted[facet, value] += hits
    return counted, cut


def _periods(db: sqlite3.Connection, plan: Plan, home: str) -> tuple[list[str], list[str]]:
    """The home's periods whose sums answer the dates (whole years where they can), and the months to read."""
    since = plan.query.since
    _, bounds = plan.date_where("created")
    until = bounds[-1] if plan.query.until else None
    taken: dict[str, list[str]] = {}
    read: list[str] = []
    years: dict[str, bool] = {}
    sql = "SELECT month, lo, hi FROM search_home_spans WHERE home = ?"
    for month, lo, hi in db.execute(sql, (home,)):
        if month == SPREAD or lo is None or hi is None:
            read.append(month)
            continue
        inside = (since is None or lo >= since) and (until is None or hi <= until)
        outside = (since is not None and hi < since) or (until is not None and lo > until)
        if inside:
            taken.setdefault(month[:4], []).append(month)
        elif not outside:
            read.append(month)
        years[month[:4]] = years.get(month[:4], True) and inside
    sums = []
    for year, months in taken.items():
        if years.get(year):
            sums.append(f"y:{year}")
        else:
            sums += [periods(month)[0] for month in months]
    return sums, read


def _sums(db: sqlite3.Connection, fmt: str, zones: list[str] | None, summed: list[tuple[str, str]]) -> Shares:
    """The counted facets added up over the (home, period) sums, under one format ('' for any)."""
    counted: Shares = Counter()
    if not summed:
        return counted
    zone_match = f" AND u.zone IN ({_marks(zones)})" if zones is not None else ""
    sql = (
        "SELECT u.zone, u.facet, u.value, sum(u.hits) FROM json_each(?) AS p JOIN search_home_units AS u "
        "ON u.home = json_extract(p.value, '$[0]') AND u.format = ? AND u.period = json_extract(p.value, '$[1]')"
        f"{zone_match} GROUP BY u.zone, u.facet, u.value"
    )
    for zone, facet, value, hits in db.execute(sql, [json.dumps(summed), fmt, *(zones or [])]):
        counted[("zone", zone) if facet == "hits" else (facet, value)] += hits
    return counted


def _cut_units(db: sqlite3.Connection, cut: list[tuple[str, str]], zones: list[str] | None) -> list[tuple[int, str]]:
    """The datasets (doc, zone) of the (home, month)s a date filter cuts, or whose files span months."""
    sql = (
        "SELECT u.doc, u.zone FROM json_each(?) AS c JOIN search_units AS u "
        "ON u.home = json_extract(c.value, '$[0]') AND u.month = json_extract(c.value, '$[1]')"
    )
    found = db.execute(sql, (json.dumps(cut),)).fetchall() if cut else []
    return [(doc, zone) for doc, zone in found if zones is None or zone in zones]


def _in_shared_text(db: sqlite3.Connection, doc: int, term: str) -> bool:
    sql = "SELECT 1 FROM search_experiment_text WHERE search_experiment_text MATCH ? AND rowid = ?"
    return db.execute(sql, (f"{SHARED_COLUMNS} : {term}", doc)).fetchone() is not None


def _summed(db: sqlite3.Connection, source: str, params: list[object]) -> Shares:
    """The summed shares of the experiments ``source`` (an SQL query of doc numbers) lists."""
    sql = (
        "SELECT v.facet, v.value, s.hits FROM (SELECT f.value AS id, sum(f.hits) AS hits FROM search_doc_facets AS f "
        f"WHERE f.doc IN ({source}) GROUP BY f.value) AS s JOIN search_facet_values AS v ON v.id = s.id"
    )
    return _rows_of(db.execute(sql, params))


def _rows_of(found: Iterable[tuple[str, str, int]]) -> Shares:
    return Counter({(facet, value): hits for facet, value, hits in found})


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values)) or "NULL"


def _shares(db: sqlite3.Connection, doc: int, rows: list[Row]) -> Shares:
    """One experiment's share of the counted facets when only ``rows`` of it match."""
    sql = "SELECT group_name, owner, platform, protocol FROM search_docs WHERE doc = ?"
    group, owner, platform, protocol = db.execute(sql, (doc,)).fetchone()
    grouped = units(rows)
    share: Shares = Counter()
    for facet, value in (("group", group), ("owner", owner), ("platform", platform), ("protocol", protocol)):
        if value:
            share[facet, value] += len(grouped)
    for dataset, unit in grouped.items():
        share.update([("zone", dataset)] if dataset else [])
        share.update({("format", row.format) for row in unit if row.format})
        share.update({("month", row.created[:7]) for row in unit if row.created})
    return share


def _samples(db: sqlite3.Connection, plan: Plan, first: dict[int, list[Row]], top: int) -> list[tuple[str, int]]:
    """The samples of the first hits, in result order, each with the number of every matching hit holding it."""
    of_experiment = _experiment_samples(db, list(first))
    listed: dict[str, None] = {}
    for doc, rows in first.items():
        for unit in units(rows).values():
            listed.update(dict.fromkeys(name for row in unit for name in row.sample_ids or of_experiment[doc]))
    counted = []
    for sample in list(listed)[:top]:
        key, hits = sample_key(sample), 0
        sql = "SELECT DISTINCT row >> 32 FROM search_samples WHERE sample = ?"
        for (doc,) in db.execute(sql, (key,)).fetchall():
            rows = first[doc] if doc in first else _match_one(db, plan, doc)
            if doc not in of_experiment:
                of_experiment.update(_experiment_samples(db, [doc]))
            for unit in units(rows).values():
                names = {sample_key(name) for row in unit for name in row.sample_ids or of_experiment[doc]}
                hits += key in names
        counted.append((sample, hits))
    return counted


def _experiment_samples(db: sqlite3.Connection, docs: list[int]) -> dict[int, list[str]]:
    sql = "SELECT s.doc, s.samples FROM json_each(?) AS d JOIN search_docs AS s ON s.doc = d.value"
    found = db.execute(sql, (json.dumps(docs),)).fetchall()
    return {doc: samples.split(SEPARATOR) if samples else [] for doc, samples in found}


def _match_one(db: sqlite3.Connection, plan: Plan, doc: int) -> list[Row]:
    """The experiment's matching rows for the plan, checked on its own (access first)."""
    if not list(checked(db, plan, [doc])):
        return []
    query = plan.query
    if query.experiment:
        found = db.execute("SELECT experiment_id FROM search_docs WHERE doc = ?", (doc,)).fetchone()
        if found is None or found[0] != query.experiment:
            return []
    own: tuple[str, ...] = ()
    if plan.terms:
        sql = "SELECT 1 FROM search_experiment_text WHERE search_experiment_text MATCH ? AND rowid = ?"
        if db.execute(sql, (plan.text_expression(), doc)).fetchone() is None:
            return []
        own = tuple(term for term in plan.terms if not _in_shared_text(db, doc, term))
    found_rows = expand(db, plan, [Candidate(doc, own)])
    return found_rows[0][1] if found_rows else []
