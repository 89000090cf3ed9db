"""Searching the local catalog's index (`sqlite_index`), with the viewer's access inside the query.

What matches. A query's rows are the experiment's own row and its files' rows;
a row matches when each query word is in its experiment's text or in the row's
own text (the file's name, format, samples and contents), and every facet
holds for it. Matching rows are grouped into one hit per dataset; the
experiment itself is a hit only when none of its datasets match.

How it stays fast. A *driver* yields candidate experiments in result order and
the search stops reading once it has its limit of hits; each candidate's rows
are then read on its rowid range, a chunk of candidates per statement:

- with words: FTS5 ranks the experiments whose text and files hold every word,
  among those the viewer may see and the experiment facets allow (BM25, best
  first, ``LIMIT`` inside the full-text query);
- otherwise: newest registered experiment first, from the narrowest index that
  applies: the experiment id, a sample id, a short date range, the file facets'
  full-text rows, or the experiment facets' full-text rows.

Access. For a viewer with few principals (a person in a handful of groups)
their principals are one more clause of the full-text query, so FTS5 only ever
walks and ranks experiments they may see: the more is hidden, the less it
reads. A viewer with many principals would make that clause a long ``OR``, so
for them (and for every single-experiment check) the query joins the indexed
``search_access`` table instead. Either way it happens inside the statement
that picks the candidates, before anything is ranked, limited or counted.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import NamedTuple

from labmesh_dagster.connectors.catalog.base import FileHit, SearchHit, SearchQuery
from labmesh_dagster.connectors.catalog.rows import units
from labmesh_dagster.connectors.catalog.sqlite_index import (
    POSITION_BITS,
    SEPARATOR,
    access_token,
    doc_range,
    owner_token,
    protocol_token,
    sample_key,
    zone_token,
)

SHARED_COLUMNS = "{title experiment lab_group platform}"
"""The columns of an experiment's own text: every row of the experiment holds it."""
OWN_COLUMNS = "{samples file_name file_format content}"
"""The columns of a row's own text."""
TEXT_COLUMNS = "{title experiment lab_group platform files}"
"""The experiment's text and all its files' text: where every word of a matching row must be."""
SHARED_WEIGHTS = "4.0, 2.0, 1.0, 1.0, 0.0, 0.0"
"""BM25 weights that count only the shared columns: a word found there scores below zero."""
TOKEN_PRINCIPALS = 8
"""Up to this many principals, access is a full-text clause; beyond, a join on ``search_access``."""
VISIBILITY_PAGE = 256
"""Ranked experiments checked for access at a time, for a viewer with many principals."""
SHORT_DATE_RANGE = 256
"""Rows in a date range below which the range itself drives a query (its index is then the narrowest)."""
_FIRST_POSITION = "(d.value << 32)"
_LAST_POSITION = f"((d.value << 32) + {(1 << POSITION_BITS) - 1})"


def phrase(term: str) -> str:
    """An FTS5 phrase for one user term; quoting keeps '-', '.', ':' from being read as syntax."""
    return '"' + term.replace('"', '""') + '"'


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


@dataclass(frozen=True)
class Plan:
    """A `SearchQuery` as clauses of the index's tables."""

    query: SearchQuery
    terms: tuple[str, ...]
    facet_clauses: tuple[str, ...]
    """The experiment's facets: columns both full-text tables have."""
    access_clause: str | None
    """The viewer's principals as a full-text clause, when they are few."""
    principals: tuple[str, ...] | None
    """The viewer's principals; None when they see every experiment."""
    row_clauses: tuple[str, ...]
    """The file facets matched in a file's full-text row."""
    hints: tuple[str, ...]
    """Words some file of a matching experiment must hold: they narrow the experiments before files are read."""

    @classmethod
    def of(cls, query: SearchQuery) -> Plan:
        # A term without a letter or digit has no tokens; as an empty phrase it would match nothing.
        terms = tuple(phrase(term) for term in query.text.split() if re.search(r"\w", term))
        facets = [f"lab_group : {phrase(query.group)}"] if query.group else []
        facets += [f"platform : {phrase(query.platform)}"] if query.platform else []
        facets += [f"keys : {phrase(owner_token(query.owner))}"] if query.owner else []
        facets += [f"keys : {phrase(protocol_token(query.protocol))}"] if query.protocol else []
        viewer = query.viewer
        principals = None if viewer is None or viewer.admin else tuple(sorted(viewer.principals))
        access = None
        if principals is not None and len(principals) <= TOKEN_PRINCIPALS:
            access = "keys : (" + " OR ".join(phrase(access_token(name)) for name in principals) + ")"
        rows = [f"file_format : {phrase(query.format)}"] if query.format else []
        rows += [f"file_name : {phrase(query.file_name)}"] if query.file_name else []
        rows += [f"keys : {phrase(zone_token(query.zone))}"] if query.zone else []
        hints = [f"files : {phrase(value)}" for value in (query.format, query.file_name, query.sample) if value]
        return cls(query, terms, tuple(facets), access, principals, tuple(rows), tuple(hints))

    @property
    def experiment_clauses(self) -> tuple[str, ...]:
        return (*self.facet_clauses, self.access_clause) if self.access_clause else self.facet_clauses

    @property
    def filters_rows(self) -> bool:
        """Whether some row of a matching experiment may still not match (a file facet, a sample, a date)."""
        query = self.query
        return bool(self.row_clauses or query.sample or query.since or query.until)

    def access_join(self, doc: str) -> tuple[str, list[str]]:
        """``AND`` the experiment numbered ``doc`` (an SQL expression) is visible, unless the text query says so."""
        if self.principals is None or self.access_clause is not None:
            return "", []
        return self.access_check(doc)

    def access_check(self, doc: str) -> tuple[str, list[str]]:
        """``AND`` the experiment numbered ``doc`` (an SQL expression) is visible, through ``search_access``."""
        if self.principals is None:
            return "", []
        # The unary + keeps SQLite from seeking once per principal: it reads the experiment's few principals
        # (seeking on ``doc``) and looks each up in the viewer's list.
        sql = f" AND EXISTS (SELECT 1 FROM search_access AS a WHERE a.doc = {doc} AND +a.principal IN ({{}}))"
        return sql.format(_marks(self.principals)), list(self.principals)

    def text_expression(self) -> str:
        """The full-text query that picks experiments holding every word (and passing the facets and access)."""
        words = [f"{TEXT_COLUMNS} : {term}" for term in self.terms]
        return " AND ".join([*words, *self.experiment_clauses, *self.hints])

    def date_where(self, column: str) -> tuple[str, list[str]]:
        query, sql, params = self.query, "", []
        if query.since:
            sql += f" AND {column} >= ?"
            params.append(query.since)
        if query.until:
            # A bare date means the whole day.
            sql += f" AND {column} <= ?"
            params.append(query.until + "\uffff" if len(query.until) == 10 else query.until)
        return sql, params


def fts_expression(query: SearchQuery) -> str | None:
    """The full-text query that picks the experiments for ``query``'s words, facets and viewer."""
    plan = Plan.of(query)
    return plan.text_expression() if plan.terms else None


@dataclass(frozen=True)
class Candidate:
    """An experiment that may match: its doc number, the words its rows must hold themselves, rows known to match."""

    doc: int
    own_terms: tuple[str, ...] = ()
    rows: tuple[int, ...] | None = None


class Row(NamedTuple):
    """A matching row: the experiment's own (``dataset`` None) or a file's (a tuple: a search makes hundreds)."""

    row: int
    dataset: str | None
    key: str | None
    format: str | None
    size: int | None
    samples: str
    created: str | None

    @property
    def sample_ids(self) -> tuple[str, ...]:
        return tuple(self.samples.split(SEPARATOR)) if self.samples else ()


def _one(db: sqlite3.Connection, sql: str, params: Sequence[object]) -> bool:
    return db.execute(sql, params).fetchone() is not None


def _in_shared_text(db: sqlite3.Connection, doc: int, terms: Sequence[str]) -> bool:
    expression = " AND ".join(f"{SHARED_COLUMNS} : {term}" for term in terms)
    sql = "SELECT 1 FROM search_experiment_text WHERE search_experiment_text MATCH ? AND rowid = ?"
    return _one(db, sql, (expression, doc))


def ranked(db: sqlite3.Connection, plan: Plan, *, want: int | None) -> Iterator[Candidate]:
    """Experiments holding every word, best first; ``want``: how many are likely needed (None: every one).

    With many principals, access is not a clause of the full-text query: the
    experiments are ranked first, then kept or not a page at a time, in order,
    by one indexed check per page, so a search reads only the ranked prefix it
    needs rather than checking every match before sorting.
    """
    many = plan.principals is not None and plan.access_clause is None
    access, params = ("", []) if many else plan.access_join("rowid")
    if plan.query.experiment:
        found = db.execute("SELECT doc FROM search_docs WHERE experiment_id = ?", (plan.query.experiment,)).fetchone()
        if found is None:
            return
        access += " AND rowid = ?"
        params.append(found[0])
    # For one word, a score on the shared columns tells whether the experiment's own text holds it.
    sql = (
        f"SELECT rowid, bm25(search_experiment_text, {SHARED_WEIGHTS}) FROM search_experiment_text "
        f"WHERE search_experiment_text MATCH ?{access} ORDER BY rank, rowid DESC"
    )
    arguments: list[object] = [plan.text_expression(), *params]
    pages: Iterator[list[tuple[int, float]]]
    if many:
        # SQLite ranks every match once; the cursor hands them over a page at a time, as they are needed.
        cursor = db.execute(sql, arguments)
        pages = (_visible(db, plan, page) for page in iter(lambda: cursor.fetchmany(VISIBILITY_PAGE), []))
    elif want is None:
        pages = iter([db.execute(sql, arguments).fetchall()])
    else:
        pages = _pages(db, sql, arguments, want)
    # The score counts the group and platform facets' phrases too: with them, ask the shared text itself.
    scored = len(plan.terms) == 1 and not (plan.query.group or plan.query.platform)
    whole: set[int] | None = None
    if not scored and want is None:
        # Every candidate is wanted: one query finds those whose own text holds every word.
        shared = " AND ".join([*(f"{SHARED_COLUMNS} : {term}" for term in plan.terms), *plan.experiment_clauses])
        expression = "SELECT rowid FROM search_experiment_text WHERE search_experiment_text MATCH ?"
        whole = {row[0] for row in db.execute(expression + access, [shared, *params])}
    for page in pages:
        for doc, shared_score in page:
            if scored:
                yield Candidate(doc, () if shared_score < 0 else plan.terms)
            elif doc in whole if whole is not None else _in_shared_text(db, doc, plan.terms):
                yield Candidate(doc)
            else:
                yield Candidate(doc, tuple(term for term in plan.terms if not _in_shared_text(db, doc, [term])))


def unranked(db: sqlite3.Connection, plan: Plan) -> list[Candidate]:
    """Every experiment holding every word, in no order: what counting needs, without BM25.

    Ranking scores each match, and a count needs none of the scores: the
    experiments whose own text holds every word (a second full-text query on
    the shared columns, whose hits are in the first's) match whole; the
    others hold a word only in some files, and name the words their rows must
    hold themselves, as `ranked` does.
    """
    access, params = plan.access_join("rowid")
    if plan.query.experiment:
        found = db.execute("SELECT doc FROM search_docs WHERE experiment_id = ?", (plan.query.experiment,)).fetchone()
        if found is None:
            return []
        access += " AND rowid = ?"
        params.append(found[0])
    sql = f"SELECT rowid FROM search_experiment_text WHERE search_experiment_text MATCH ?{access}"
    every = [row[0] for row in db.execute(sql, [plan.text_expression(), *params])]
    if not every:
        return []
    shared = " AND ".join([*(f"{SHARED_COLUMNS} : {term}" for term in plan.terms), *plan.experiment_clauses])
    whole = {row[0] for row in db.execute(sql, [shared, *params])}
    return [
        Candidate(doc)
        if doc in whole
        else Candidate(doc, tuple(term for term in plan.terms if not _in_shared_text(db, doc, [term])))
        for doc in every
    ]


def partial(db: sqlite3.Connection, plan: Plan) -> list[Candidate]:
    """The experiments holding the words only in some files, not all in their own text (no order), to read.

    For counting a one-word search whose whole matches are summed (`sqlite_term_sums`).
    """
    access, params = plan.access_join("rowid")
    own = " AND ".join(f"{SHARED_COLUMNS} : {term}" for term in plan.terms)
    sql = f"SELECT rowid FROM search_experiment_text WHERE search_experiment_text MATCH ?{access}"
    found = db.execute(sql, [f"({plan.text_expression()}) NOT ({own})", *params])
    return [Candidate(row[0], plan.terms) for row in found]


def _visible(db: sqlite3.Connection, plan: Plan, page: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """The ranked experiments of ``page`` the viewer may see, in their order."""
    access, params = plan.access_check("d.value")
    sql = f"SELECT d.value FROM json_each(?) AS d WHERE 1{access}"
    kept = {row[0] for row in db.execute(sql, [json.dumps([doc for doc, _ in page]), *params])}
    return [(doc, score) for doc, score in page if doc in kept]


def _pages(db: sqlite3.Connection, sql: str, params: list[object], want: int) -> Iterator[list[tuple[int, float]]]:
    # A candidate may turn out to have no single row holding every word: then fetch further, 4x each time.
    seen = 0
    while True:
        page = db.execute(sql + " LIMIT ? OFFSET ?", [*params, want, seen]).fetchall()
        yield page
        if len(page) < want:
            return
        seen += len(page)
        want *= 4


def _newest_first(db: sqlite3.Connection, plan: Plan) -> Iterator[Candidate]:
    """Experiments for a query without words, newest registered first, from the narrowest index."""
    query = plan.query
    if query.experiment:
        sql = "SELECT doc FROM search_docs WHERE experiment_id = ?"
        yield from checked(db, plan, [row[0] for row in db.execute(sql, (query.experiment,))])
    elif query.sample:
        sql = "SELECT DISTINCT row >> 32 AS doc FROM search_samples WHERE sample = ? ORDER BY doc DESC"
        yield from checked(db, plan, [row[0] for row in db.execute(sql, (sample_key(query.sample),))])
    elif (query.since or query.until) and _date_range_is_short(db, plan):
        where, params = plan.date_where("created")
        sql = f"SELECT DISTINCT row >> 32 AS doc FROM search_rows WHERE 1{where} ORDER BY doc DESC"
        yield from checked(db, plan, [row[0] for row in db.execute(sql, params)])
    elif plan.row_clauses:
        yield from _by_row_text(db, plan)
    else:
        clauses = plan.experiment_clauses
        if clauses:
            access, params = plan.access_join("rowid")
            sql = (
                "SELECT rowid FROM search_experiment_text WHERE search_experiment_text MATCH ?"
                f"{access} ORDER BY rowid DESC"
            )
            found = db.execute(sql, [" AND ".join(clauses), *params])
        else:
            access, params = plan.access_check("d.doc")
            found = db.execute(f"SELECT d.doc FROM search_docs AS d WHERE 1{access} ORDER BY d.doc DESC", params)
        yield from (Candidate(row[0]) for row in found)


def checked(db: sqlite3.Connection, plan: Plan, docs: list[int]) -> Iterator[Candidate]:
    """The experiments among ``docs`` that pass the experiment facets and the viewer's access."""
    access, params = plan.access_check("?")
    facets = " AND ".join(plan.facet_clauses)
    for doc in docs:
        if access and not _one(db, "SELECT 1 WHERE 1" + access, [doc, *params]):
            continue
        sql = "SELECT 1 FROM search_experiment_text WHERE search_experiment_text MATCH ? AND rowid = ?"
        if facets and not _one(db, sql, (facets, doc)):
            continue
        yield Candidate(doc)


def _by_row_text(db: sqlite3.Connection, plan: Plan) -> Iterator[Candidate]:
    """Experiments with a file matching the file facets (and the experiment's, and access), newest first."""
    access, params = plan.access_join("rowid >> 32")
    expression = " AND ".join([*plan.row_clauses, *plan.experiment_clauses])
    sql = f"SELECT rowid FROM search_row_text WHERE search_row_text MATCH ?{access} ORDER BY rowid DESC"
    doc: int | None = None
    rows: list[int] = []
    for (row,) in db.execute(sql, [expression, *params]):
        if row >> POSITION_BITS != doc:
            if doc is not None:
                yield Candidate(doc, rows=tuple(reversed(rows)))
            doc, rows = row >> POSITION_BITS, []
        rows.append(row)
    if doc is not None:
        yield Candidate(doc, rows=tuple(reversed(rows)))


def _date_range_is_short(db: sqlite3.Connection, plan: Plan) -> bool:
    """Whether few rows fall in the date range: counted on the index, and never past `SHORT_DATE_RANGE`."""
    where, params = plan.date_where("created")
    sql = f"SELECT count(*) FROM (SELECT 1 FROM search_rows WHERE 1{where} LIMIT ?)"
    return bool(db.execute(sql, [*params, SHORT_DATE_RANGE]).fetchone()[0] < SHORT_DATE_RANGE)


def candidates(db: sqlite3.Connection, plan: Plan, *, want: int | None) -> Iterator[Candidate]:
    """The experiments that may match, in result order (``want``: the likely number needed, None for all)."""
    return ranked(db, plan, want=want) if plan.terms else _newest_first(db, plan)


_ROW = "r.row, r.dataset, r.key, r.format, r.size, r.samples, r.created"


def expand(db: sqlite3.Connection, plan: Plan, chunk: Sequence[Candidate]) -> list[tuple[int, list[Row]]]:
    """Each candidate's matching rows, in row order; candidates left with none are dropped."""
    query = plan.query
    dates, date_params = plan.date_where("r.created")
    sample = " AND r.row IN (SELECT row FROM search_samples WHERE sample = ?)" if query.sample else ""
    sample_params = [sample_key(query.sample)] if query.sample else []
    found: dict[int, list[Row]] = {}
    ranged = [c.doc for c in chunk if c.rows is None and not c.own_terms and not plan.row_clauses]
    if ranged:
        # Every row of these experiments may match: one statement reads their rowid ranges.
        sql = (
            f"SELECT {_ROW} FROM json_each(?) AS d JOIN search_rows AS r "
            f"ON r.row BETWEEN {_FIRST_POSITION} AND {_LAST_POSITION} WHERE 1{dates}{sample} ORDER BY r.row"
        )
        for row in _read_rows(db, sql, [json.dumps(ranged), *date_params, *sample_params]):
            found.setdefault(row.row >> POSITION_BITS, []).append(row)
    known = [row for c in chunk if c.rows is not None for row in c.rows]
    if known:
        sql = f"SELECT {_ROW} FROM json_each(?) AS d JOIN search_rows AS r ON r.row = d.value WHERE 1{dates}{sample}"
        for row in _read_rows(db, sql + " ORDER BY r.row", [json.dumps(known), *date_params, *sample_params]):
            found.setdefault(row.row >> POSITION_BITS, []).append(row)
    for candidate in chunk:
        if candidate.rows is None and (candidate.own_terms or plan.row_clauses):
            found[candidate.doc] = _matching_rows(db, plan, candidate, dates, date_params)
    return [(c.doc, found[c.doc]) for c in chunk if found.get(c.doc)]


def _matching_rows(
    db: sqlite3.Connection, plan: Plan, candidate: Candidate, dates: str, date_params: list[str]
) -> list[Row]:
    """One experiment's rows that hold its missing words and the file facets, as its full-text rows say."""
    low, high = doc_range(candidate.doc)
    text = " AND ".join([*plan.row_clauses, *(f"{OWN_COLUMNS} : {term}" for term in candidate.own_terms)])
    sql = (
        f"SELECT {_ROW} FROM search_rows AS r WHERE r.row BETWEEN ? AND ?{dates} AND r.row IN "
        "(SELECT rowid FROM search_row_text WHERE search_row_text MATCH ? AND rowid BETWEEN ? AND ?)"
    )
    params: list[object] = [low, high, *date_params, text, low, high]
    if plan.query.sample:
        sql += " AND r.row IN (SELECT row FROM search_samples WHERE sample = ? AND row BETWEEN ? AND ?)"
        params += [sample_key(plan.query.sample), low, high]
    return _read_rows(db, sql + " ORDER BY r.row", params)


def _read_rows(db: sqlite3.Connection, sql: str, params: Sequence[object]) -> list[Row]:
    """The rows ``sql`` selects (`_ROW`'s columns) as `Row`s, read as plain tuples: a search reads hundreds."""
    cursor = db.cursor()
    cursor.row_factory = None
    return list(map(Row._make, cursor.execute(sql, params)))


def matches(db: sqlite3.Connection, plan: Plan, *, want: int | None) -> Iterator[tuple[int, list[Row]]]:
    """Each matching experiment with its matching rows, in result order, read a chunk at a time."""
    found = candidates(db, plan, want=want)
    size = max(want or 256, 16)
    while chunk := list(islice(found, size)):
        yield from expand(db, plan, chunk)


def search(db: sqlite3.Connection, query: SearchQuery) -> list[SearchHit]:
    hits: list[SearchHit] = []
    if query.limit <= 0:
        return hits
    plan = Plan.of(query)
    found = candidates(db, plan, want=query.limit)
    while len(hits) < query.limit and (chunk := list(islice(found, max(query.limit - len(hits), 8)))):
        hits += _hits(db, expand(db, plan, chunk))
    return hits[: query.limit]


def _hits(db: sqlite3.Connection, matched: list[tuple[int, list[Row]]]) -> list[SearchHit]:
    if not matched:
        return []
    docs = json.dumps([doc for doc, _ in matched])
    sql = (
        "SELECT s.doc, s.experiment_id, s.title, s.group_name, s.owner, s.platform, s.protocol "
        "FROM json_each(?) AS d JOIN search_docs AS s ON s.doc = d.value"
    )
    titles = {row[0]: tuple(row[1:]) for row in db.execute(sql, (docs,))}
    sql = (
        "SELECT s.doc, t.dataset, t.location FROM json_each(?) AS d JOIN search_docs AS s ON s.doc = d.value "
        "JOIN datasets AS t ON t.experiment_id = s.experiment_id"
    )
    locations = {(doc, dataset): location for doc, dataset, location in db.execute(sql, (docs,))}
    hits = []
    # A hit may fold hundreds of files, most sharing their samples: each list of them is split once.
    samples: dict[str, tuple[str, ...]] = {}
    for doc, rows in matched:
        experiment_id, title, group, owner, platform, protocol = titles[doc]
        grouped = units(rows)
        for dataset in sorted(grouped, key=lambda name: name or ""):
            files = tuple(
                FileHit(
                    row.key,
                    row.key.rsplit("/", 1)[-1],
                    row.format or "",
                    row.size or 0,
                    samples[row.samples] if row.samples in samples else samples.setdefault(row.samples, row.sample_ids),
                )
                for row in grouped[dataset]
                if row.key is not None
            )
            hits.append(
                SearchHit(
                    experiment_id=experiment_id,
                    title=title,
                    dataset=dataset,
                    entry_id=f"dataset:{experiment_id}/{dataset}" if dataset else f"experiment:{experiment_id}",
                    location=locations.get((doc, dataset)) if dataset else None,
                    files=files,
                    group=group,
                    owner=owner,
                    platform=platform,
                    protocol=protocol,
                )
            )
    return hits
