"""Ranking on the PostgreSQL content index: documents and passages by FTS5's BM25, passages by their vectors.

Each function runs in the caller's transaction, one snapshot for a whole
search or retrieval, and answers as its SQLite twin's method does
(`SqliteContentIndex.search`, ``_keyword_ranking``, ``_dense_ranking``): the
same rows in the same order, access and facets inside the query before any
limit. Where FTS5 keeps the table's row count and length, the index keeps
them in ``content_state``, so a ranking reads them in one statement; where
FTS5 counts a phrase's rows, a count query asks the words' GIN indexes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labmesh_dagster.connectors.search.postgres_filters import Conditions
from labmesh_dagster.connectors.search.postgres_schema import (
    DOCUMENT_WORDS,
    DOCUMENTS,
    PASSAGE_WORDS,
    PASSAGES,
    PASSAGES_VERSION,
)
from labmesh_dagster.connectors.search.postgres_words import (
    Phrase,
    bm25,
    bm25_parameters,
    frequency,
    fts5_idf,
    matches,
    snippets,
)

DOCUMENT_COLUMNS = (("title_words", 2.0), ("text_words", 1.0))
"""A document's columns and their weights: a title word counts twice, as the title is what the file is about."""
PASSAGE_COLUMNS = (("title_words", 2.0), ("text_words", 1.0), ("keys_words", 0.0))
"""A passage's columns and their weights, as the SQLite passages' ``bm25(..., 2.0, 1.0, 0.0, 0.0)``: its access
keys match and count in its length, but score nothing."""


def state(db: Any) -> dict[str, int]:
    """The index's named numbers (`postgres_schema`), read at once."""
    return {row["name"]: int(row["value"]) for row in db.execute("SELECT name, value FROM content_state")}


def passages_version(db: Any) -> int:
    row = db.execute("SELECT value FROM content_state WHERE name = %s", (PASSAGES_VERSION,)).fetchone()
    return int(row["value"])


def _phrase_params(phrases: Sequence[Phrase]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for number, phrase in enumerate(phrases):
        params[f"q{number}"] = phrase.query
        params[f"q{number}_lexemes"] = list(phrase.lexemes)
    return params


def _any_phrase(alias: str, columns: Sequence[tuple[str, float]], phrases: Sequence[Phrase]) -> str:
    names = [column for column, _ in columns]
    return "(" + " OR ".join(matches(alias, names, f"q{number}") for number in range(len(phrases))) + ")"


def _frequencies(alias: str, columns: Sequence[tuple[str, float]], phrases: Sequence[Phrase]) -> str:
    weighted = [(column, weight) for column, weight in columns if weight]
    return ", ".join(
        f"{frequency(alias, weighted, f'q{number}', len(phrase.lexemes))} AS f{number}"
        for number, phrase in enumerate(phrases)
    )


def rows_holding(db: Any, table: str, columns: Sequence[tuple[str, float]], phrase: Phrase, cap: int | None) -> int:
    """How many rows hold ``phrase`` in any of ``columns``, counted up to ``cap`` (None: all)."""
    if not phrase.lexemes:
        return 0  # a phrase with no word matches nothing, as in FTS5
    names = [column for column, _ in columns]
    held = f"SELECT 1 FROM {table} AS t WHERE {matches('t', names, 'q')}"
    limited = f"{held} LIMIT %(cap)s" if cap is not None else held
    row = db.execute(f"SELECT count(*) AS n FROM ({limited}) AS held", {"q": phrase.query, "cap": cap}).fetchone()
    return int(row["n"])


def passages_holding(db: Any, phrase: Phrase, cap: int | None) -> int:
    """How many passages hold ``phrase`` in any column (their access keys too, as in FTS5), up to ``cap``."""
    return rows_holding(db, "content_passages", PASSAGE_COLUMNS, phrase, cap)


def search_documents(
    db: Any, phrases: Sequence[Phrase], conditions: Conditions, limit: int, expression: str
) -> list[dict[str, Any]]:
    """Documents holding any of ``phrases`` under ``conditions``, best first by BM25 then by id, with excerpts.

    ``expression`` is the FTS5 MATCH expression of the same words, for the excerpts.
    """
    phrases = [phrase for phrase in phrases if phrase.lexemes]
    if not phrases:
        return []
    numbers = state(db)
    rows, words = numbers[DOCUMENTS], numbers[DOCUMENT_WORDS]
    idfs = [fts5_idf(rows, rows_holding(db, "content_documents", DOCUMENT_COLUMNS, phrase, None)) for phrase in phrases]
    scores = bm25([f"m.f{number}" for number in range(len(phrases))], "m.words")
    sql = f"""
        SELECT d.doc, d.document_id, d.title, d.uri, d.text, d.attributes, ranked.score FROM (
            SELECT m.doc, {scores} AS score FROM (
                SELECT d.doc, d.words, {_frequencies("d", DOCUMENT_COLUMNS, phrases)}
                FROM content_documents AS d
                WHERE {_any_phrase("d", DOCUMENT_COLUMNS, phrases)} AND {conditions.sql}
            ) AS m
            ORDER BY score DESC, m.doc LIMIT %(limit)s
        ) AS ranked JOIN content_documents AS d ON d.doc = ranked.doc
        ORDER BY ranked.score DESC, d.document_id"""
    params = {**_phrase_params(phrases), **conditions.params, **bm25_parameters(rows, words, idfs), "limit": limit}
    found = [dict(row) for row in db.execute(sql, params)]
    for row, excerpt in zip(found, snippets([(row["title"], row["text"]) for row in found], expression), strict=True):
        row["excerpt"] = excerpt
    return found


def list_documents(db: Any, conditions: Conditions, limit: int) -> list[dict[str, Any]]:
    """Every document under ``conditions``, by id (a search of no words)."""
    sql = f"""SELECT d.doc, d.document_id, d.title, d.uri, d.text, d.attributes, 0.0::float8 AS score,
                     NULL AS excerpt
              FROM content_documents AS d WHERE {conditions.sql} ORDER BY d.document_id LIMIT %(limit)s"""
    return [dict(row) for row in db.execute(sql, {**conditions.params, "limit": limit})]


def keyword_passages(
    db: Any,
    matched: Mapping[Phrase, int],
    conditions: Conditions,
    depth: int,
    common: int,
    window: int,
) -> list[tuple[int, float]]:
    """BM25 over the passages holding the question's rarer phrases that ``conditions`` keep, best first.

    ``matched`` holds the question's phrases with the passages holding each,
    counted up to one past ``common``. As in SQLite, phrases in more passages
    than ``common`` are left out when the question has rarer ones; when it has
    none, the newest ``window`` matches are ranked. The IDF of each ranked
    phrase is over every passage: the counts of rare phrases are exact, a
    common one's is counted whole.
    """
    rare = [phrase for phrase, count in matched.items() if count <= common]
    ranked = [phrase for phrase in rare or list(matched) if phrase.lexemes]
    if not ranked:
        return []
    numbers = state(db)
    rows, words = numbers[PASSAGES], numbers[PASSAGE_WORDS]
    hits = [matched[phrase] if rare else passages_holding(db, phrase, None) for phrase in ranked]
    idfs = [fts5_idf(rows, count) for count in hits]
    candidates = f"""SELECT p.passage, p.words + p.keys AS length, p.title_words, p.text_words
                     FROM content_passages AS p
                     WHERE {_any_phrase("p", PASSAGE_COLUMNS, ranked)} AND {conditions.sql}"""
    if not rare:  # one walk: the newest matches, scored as they are read, then ranked
        candidates += f" ORDER BY p.passage DESC LIMIT {int(window)}"
    scores = bm25([f"m.f{number}" for number in range(len(ranked))], "m.length")
    sql = f"""
        SELECT m.passage, {scores} AS score FROM (
            SELECT c.passage, c.length, {_frequencies("c", PASSAGE_COLUMNS, ranked)} FROM ({candidates}) AS c
        ) AS m
        ORDER BY score DESC, m.passage LIMIT %(depth)s"""
    params = {**_phrase_params(ranked), **conditions.params, **bm25_parameters(rows, words, idfs), "depth": depth}
    return [(int(row["passage"]), float(row["score"])) for row in db.execute(sql, params)]


def passage_count(db: Any) -> int:
    return state(db)[PASSAGES]


def allowed_documents(db: Any, conditions: Conditions) -> list[int] | None:
    """The documents ``conditions`` allow (None: all, when there are none): the dense ranking's mask."""
    if not conditions:
        return None
    sql = f"SELECT d.doc FROM content_documents AS d WHERE {conditions.sql}"
    return [int(row["doc"]) for row in db.execute(sql, conditions.params)]


def passage_rows(db: Any, passages: Sequence[int]) -> dict[int, Any]:
    """The ranked passages joined to their documents, by number."""
    sql = """SELECT p.passage, p.ordinal, p.text, p.location, d.document_id, d.title, d.uri, d.attributes
             FROM content_passages AS p JOIN content_documents AS d ON d.doc = p.doc
             WHERE p.passage = ANY(%s::bigint[])"""
    return {int(row["passage"]): row for row in db.execute(sql, (list(passages),))}


def vector_rows(db: Any, model: str) -> list[tuple[int, int, float, bytes]]:
    """Every embedded passage's ``(passage, doc, scale, vector)``, in passage order, read in binary."""
    from psycopg.rows import tuple_row

    sql = """SELECT p.passage, p.doc, v.scale, v.vector FROM content_passages AS p
             JOIN content_vectors AS v ON v.text_hash = p.text_hash
             WHERE v.model = %s ORDER BY p.passage"""
    with db.cursor(row_factory=tuple_row, binary=True) as cursor:
        return list(cursor.execute(sql, (model,)))
