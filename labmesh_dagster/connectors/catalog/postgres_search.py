"""Searching the PostgreSQL catalog: the SQLite search's answers, from Postgres full-text search.

What matches is what the SQLite search matches (`sqlite_search`): an
experiment's rows are its own row and its files' rows; a row matches when each
query word is in its experiment's own text (title, ELN fields, group,
platform) or in the row's own text (its samples, file name, format, contents),
and every facet holds for it. Matching rows make one hit per dataset; the
experiment itself is a hit only when none of its datasets match. Each word is
a phrase of its `postgres_text` words, matched in one text column at a time.

Order. With words, experiments are ranked by FTS5's own BM25 (k1 1.2, b 0.75,
column weights title 4, ELN fields 2, group, platform and files 1, over the
same phrases, lengths and document counts), best first and then newest first,
so the two catalogs list hits in the same order; without words, newest
registered first. The score is computed in the query, from each phrase's count
in each column, for the experiments that match only. One difference remains:
an experiment whose files hold more than 16,383 words (`FilesWords`) is found
as in SQLite, but its files' words do not weigh in its rank.

Access. The viewer's principals are a semi-join on ``catalog_search_access``
in the statement that picks the experiments, before anything is ranked,
limited or counted: a hidden experiment never takes a place under the limit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from labmesh_dagster.connectors.catalog.base import FileHit, SearchHit, SearchQuery
from labmesh_dagster.connectors.catalog.postgres_text import K1, B, FilesWords, all_of, phrase, query_terms, tokens
from labmesh_dagster.connectors.catalog.rows import units
from labmesh_dagster.connectors.catalog.sqlite_index import normal, sample_key

SHARED = (("title_text", 4.0), ("experiment_text", 2.0), ("group_text", 1.0), ("platform_text", 1.0))
"""The experiment's own text columns and their BM25 weights (FTS5's ``bm25(4, 2, 1, 1, 1, 0)``)."""
TEXT = (*SHARED, ("files_text", 1.0))
"""Where every word of a matching experiment must be: its own text or its files'."""
OWN = ("samples_text", "name_text", "format_text", "content_text")
"""A row's own text columns."""


def tsquery(name: str) -> str:
    """The phrase held by parameter ``name``, as a tsquery (its words in a row)."""
    return f"%({name})s::tsquery"


def every_word(name: str) -> str:
    """The words of the phrase held by parameter ``name``, in any order, as a tsquery."""
    return f"%({name}_all)s::tsquery"


def _any(alias: str, columns: Sequence[str], name: str) -> str:
    return "(" + " OR ".join(f"{alias}.{column} @@ {tsquery(name)}" for column in columns) + ")"


def _held(name: str, unheld: bool) -> str:
    """Whether an experiment (``d``) holds the phrase ``name`` in its own text or its files' words.

    An experiment too large for its files' word positions (`FilesWords`) holds the phrase's words there
    (then its rows decide); one too large for its files' words has its rows asked, when the catalog has any.
    """
    shared = " OR ".join(f"d.{column} @@ {tsquery(name)}" for column, _ in TEXT)
    words = f"d.files_words = {FilesWords.WORDS:d} AND d.files_text @@ {every_word(name)}"
    if not unheld:
        # The index of every word narrows the experiments; the phrase is then checked in each column.
        return f"(d.words_text @@ {every_word(name)} AND ({shared} OR ({words})))"
    rows = (
        f"d.files_words = {FilesWords.NONE:d} AND EXISTS (SELECT 1 FROM catalog_search_rows AS r "
        f"WHERE r.doc = d.doc AND {_any('r', OWN, name)})"
    )
    unheld_docs = f"d.files_words = {FilesWords.NONE:d}"
    return f"((d.words_text @@ {every_word(name)} OR {unheld_docs}) AND ({shared} OR ({words}) OR ({rows})))"


@dataclass
class Plan:
    """A `SearchQuery` as SQL conditions on experiments (``d``) and their rows (``r``, its experiment ``c``)."""

    query: SearchQuery
    nothing: bool = False
    """Some part can match nothing (a phrase with no word), so neither can the query."""
    words: dict[str, list[str]] = field(default_factory=dict)
    """Each phrase parameter's words."""
    params: dict[str, Any] = field(default_factory=dict)
    experiment_where: list[str] = field(default_factory=list)
    row_where: list[str] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)
    """For each word, whether the experiment's own text holds it (then any of its rows may match)."""
    scored: list[tuple[str, tuple[tuple[str, float], ...]]] = field(default_factory=list)
    """The phrases BM25 weighs, in the order FTS5 reads them: parameter name and (column, weight)s."""

    @classmethod
    def of(cls, query: SearchQuery, *, unheld: bool = False) -> Plan:
        """The plan of ``query``; ``unheld``: the catalog has experiments whose files' words are not held whole."""
        plan = cls(query)
        terms = query_terms(query.text)
        if terms is None:
            return cls(query, nothing=True)
        for number, term in enumerate(terms):
            name = f"term{number}"
            plan.keep(name, term)
            plan.experiment_where.append(_held(name, unheld))
            plan.shared.append(f"{_any('d', [column for column, _ in SHARED], name)} AS shared{number}")
            plan.row_where.append(f"(c.shared{number} OR {_any('r', OWN, name)})")
            plan.scored.append((name, TEXT))
        for name, column in (("group", "group_text"), ("platform", "platform_text")):
            value = getattr(query, name)
            if value:
                plan.phrase(name, value)
                plan.experiment_where.append(f"d.{column} @@ {tsquery(name)}")
                plan.scored.append((name, ((column, 1.0),)))
        for name in ("owner", "protocol"):
            value = getattr(query, name)
            if value:
                plan.params[name] = normal(value)
                plan.experiment_where.append(f"d.{name}_key = %({name})s")
        if query.experiment:
            plan.params["experiment"] = query.experiment
            plan.experiment_where.append("d.experiment_id = %(experiment)s")
        viewer = query.viewer
        if viewer is not None and not viewer.admin:
            plan.params["principals"] = sorted(viewer.principals)
            plan.experiment_where.append(
                "EXISTS (SELECT 1 FROM catalog_search_access AS a WHERE a.doc = d.doc "
                "AND a.principal = ANY(%(principals)s))"
            )
        for name, column in (("format", "format_text"), ("file_name", "name_text")):
            value = getattr(query, name)
            if value:
                plan.phrase(name, value)
                plan.row_where.append(f"r.{column} @@ {tsquery(name)}")
        if query.zone:
            plan.params["zone"] = normal(query.zone)
            plan.row_where.append("r.zone_key = %(zone)s")
        if query.sample:
            plan.params["sample"] = sample_key(query.sample)
            plan.row_where.append(
                "EXISTS (SELECT 1 FROM catalog_search_samples AS s "
                "WHERE s.sample = %(sample)s AND s.doc = r.doc AND s.position = r.position)"
            )
        if query.since:
            plan.params["since"] = query.since
            plan.row_where.append("r.created >= %(since)s")
        if query.until:
            # A bare date means the whole day.
            plan.params["until"] = query.until + "\uffff" if len(query.until) == 10 else query.until
            plan.row_where.append("r.created <= %(until)s")
        if plan.terms:
            # As in SQLite, with words the file facets also weigh in the ranking as words of the files.
            for number, value in enumerate(value for value in (query.format, query.file_name, query.sample) if value):
                name = f"hint{number}"
                plan.phrase(name, value)
                plan.scored.append((name, (("files_text", 1.0),)))
        return plan

    def phrase(self, name: str, value: str) -> None:
        """Keep ``value`` as the phrase parameter ``name``; a value with no word matches nothing."""
        words = tokens(value)
        self.nothing = self.nothing or not words
        self.keep(name, words)

    def keep(self, name: str, words: list[str]) -> None:
        """The phrase ``name``: its words, and as tsqueries (``name``: in a row; ``name_all``: anywhere)."""
        self.words[name] = words
        self.params[name] = phrase(words)
        self.params[f"{name}_all"] = all_of(words)

    @property
    def terms(self) -> bool:
        """Whether the query has words (then it is ranked)."""
        return any(name.startswith("term") for name in self.words)

    @property
    def row_match(self) -> str:
        return " AND ".join(self.row_where) or "TRUE"

    def candidates(self, score: Score | None = None) -> str:
        """The experiments that pass the words, experiment facets and access (``doc``, ``shared<n>``, ``score``)."""
        where = " AND ".join(self.experiment_where) or "TRUE"
        if score is None:
            columns = ", ".join(["d.doc", *self.shared, "0::float8 AS score"])
            return f"SELECT {columns} FROM catalog_search_docs AS d WHERE {where}"
        counts = [f"{frequency} AS f{number}" for number, frequency in enumerate(score.frequencies)]
        inner = ", ".join(["d.doc", "d.words", *self.shared, *counts])
        outer = ", ".join(["f.doc", *(f"f.shared{number}" for number in range(len(self.shared))), score.score])
        return f"SELECT {outer} AS score FROM (SELECT {inner} FROM catalog_search_docs AS d WHERE {where}) AS f"


class Row(NamedTuple):
    """A matching row: the experiment's own (``dataset`` None) or a file's."""

    position: int
    dataset: str | None
    key: str | None
    format: str | None
    size: int | None
    samples: list[str]
    """The row's own samples (none for a file of no sample)."""
    created: str | None


def plan_of(db: Any, query: SearchQuery) -> Plan:
    """The plan of ``query`` for this catalog (whether it holds experiments too large for their files' words)."""
    sql = f"SELECT EXISTS (SELECT 1 FROM catalog_search_docs WHERE files_words = {FilesWords.NONE:d}) AS unheld"
    return Plan.of(query, unheld=bool(query.text.strip()) and db.execute(sql).fetchone()["unheld"])


class Score(NamedTuple):
    """BM25 in SQL: each phrase's weighted frequency in an experiment ``d``, and the score over them (``f``)."""

    frequencies: tuple[str, ...]
    score: str


def _score(db: Any, plan: Plan) -> tuple[Score | None, dict[str, Any]]:
    """FTS5's BM25 of the plan's phrases (None without words), and its parameters.

    The corpus figures (experiments, average length, experiments holding each phrase) are read first,
    over every experiment as FTS5 keeps them; a phrase's frequency is its count in each column times the
    column's weight; a word's IDF is floored at 1e-6, as FTS5 floors it.
    """
    if not plan.scored:
        return None, {}
    stats = db.execute("SELECT count(*) AS n, coalesce(sum(words), 0) AS words FROM catalog_search_docs").fetchone()
    documents, total = int(stats["n"]), int(stats["words"])
    params: dict[str, Any] = {
        "k1": K1,
        "k1_plus_1": K1 + 1.0,
        "b": B,
        "one_minus_b": 1 - B,
        "avgdl": total / documents if documents else 1.0,
    }
    parts: list[str] = []
    frequencies: list[str] = []
    for number, (name, columns) in enumerate(plan.scored):
        held = f"d.words_text @@ {every_word(name)} AND {_any('d', [column for column, _ in columns], name)}"
        hits = int(
            db.execute(f"SELECT count(*) AS n FROM catalog_search_docs AS d WHERE {held}", plan.params).fetchone()["n"]
        )
        idf = math.log((documents - hits + 0.5) / (hits + 0.5))
        params[f"idf{number}"] = idf if idf > 0 else 1e-6
        params[f"lexemes{number}"] = plan.words[name]
        # One word's count is its positions' (the usual term); a phrase's needs its words' positions compared.
        count = (
            "(SELECT coalesce(sum(cardinality(u.positions)), 0) FROM unnest(d.{column}) AS u "
            f"WHERE u.lexeme = (%(lexemes{number})s::text[])[1])"
            if len(params[f"lexemes{number}"]) == 1
            else f"labmesh_catalog_phrase_count(d.{{column}}, %(lexemes{number})s)"
        )
        frequencies.append(
            " + ".join(
                f"{weight!r}::float8 * CASE WHEN d.{column} @@ {tsquery(name)} THEN {count.format(column=column)} "
                "ELSE 0 END"
                for column, weight in columns
            )
        )
        parts.append(
            f"%(idf{number})s * ((f.f{number} * %(k1_plus_1)s) / "
            f"(f.f{number} + %(k1)s * (%(one_minus_b)s + %(b)s * f.words / %(avgdl)s)))"
        )
    return Score(tuple(frequencies), "0::float8 + " + " + ".join(parts)), params


def matched(db: Any, plan: Plan, *, docs: int) -> list[tuple[int, list[Row]]]:
    """The first ``docs`` matching experiments in result order, each with its matching rows."""
    if plan.nothing or docs <= 0:
        return []
    score, params = _score(db, plan)
    sql = f"""
        WITH candidates AS ({plan.candidates(score)}),
        chosen AS MATERIALIZED (
            SELECT c.* FROM candidates AS c
            WHERE EXISTS (SELECT 1 FROM catalog_search_rows AS r WHERE r.doc = c.doc AND {plan.row_match})
            ORDER BY c.score DESC, c.doc DESC LIMIT %(docs)s
        )
        SELECT c.doc, r.position, r.dataset, r.key, r.format, r.size, r.samples, r.created
        FROM chosen AS c JOIN catalog_search_rows AS r ON r.doc = c.doc
        WHERE {plan.row_match}
        ORDER BY c.score DESC, c.doc DESC, r.position"""
    found: dict[int, list[Row]] = {}
    with db.cursor() as cursor:
        for row in cursor.execute(sql, {**plan.params, **params, "docs": docs}):
            found.setdefault(row["doc"], []).append(
                Row(
                    row["position"],
                    row["dataset"],
                    row["key"],
                    row["format"],
                    row["size"],
                    row["samples"],
                    row["created"],
                )
            )
    return list(found.items())


def search(db: Any, query: SearchQuery) -> list[SearchHit]:
    if query.limit <= 0:
        return []
    # Every matching experiment makes at least one hit: the first ``limit`` experiments hold the first hits.
    hits = _hits(db, matched(db, plan_of(db, query), docs=query.limit))
    return hits[: query.limit]


def experiments(db: Any, docs: list[int]) -> dict[int, dict[str, Any]]:
    """The search's record of each experiment numbered in ``docs``."""
    sql = (
        "SELECT doc, experiment_id, title, group_name, owner, platform, protocol, samples "
        "FROM catalog_search_docs WHERE doc = ANY(%s)"
    )
    return {row["doc"]: row for row in db.execute(sql, (docs,))}


def _hits(db: Any, found: list[tuple[int, list[Row]]]) -> list[SearchHit]:
    if not found:
        return []
    docs = [doc for doc, _ in found]
    records = experiments(db, docs)
    sql = (
        "SELECT d.doc, t.dataset, t.location FROM catalog_search_docs AS d "
        "JOIN catalog_datasets AS t ON t.experiment_id = d.experiment_id WHERE d.doc = ANY(%s)"
    )
    locations = {(row["doc"], row["dataset"]): row["location"] for row in db.execute(sql, (docs,))}
    hits = []
    for doc, rows in found:
        record = records[doc]
        grouped = units(rows)
        for dataset in sorted(grouped, key=lambda name: name or ""):
            files = tuple(
                FileHit(row.key, row.key.rsplit("/", 1)[-1], row.format or "", row.size or 0, tuple(row.samples))
                for row in grouped[dataset]
                if row.key is not None
            )
            experiment_id = record["experiment_id"]
            hits.append(
                SearchHit(
                    experiment_id=experiment_id,
                    title=record["title"],
                    dataset=dataset,
                    entry_id=f"dataset:{experiment_id}/{dataset}" if dataset else f"experiment:{experiment_id}",
                    location=locations.get((doc, dataset)) if dataset else None,
                    files=files,
                    group=record["group_name"],
                    owner=record["owner"],
                    platform=record["platform"],
                    protocol=record["protocol"],
                )
            )
    return hits
