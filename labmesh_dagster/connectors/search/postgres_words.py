"""The content index's words on PostgreSQL: FTS5's own tokens as tsvectors, its phrases and its BM25 in SQL.

Why. The SQLite and PostgreSQL content indexes must rank a search alike, so,
as the PostgreSQL catalog does (`catalog.postgres_text`), words are cut by
FTS5's own ``porter unicode61`` tokenizer in process and handed to Postgres as
``tsvector`` and ``tsquery`` literals: no parser, dictionary or locale between
the two indexes' words. A term typed is a phrase of its tokens, matched within
one column at a time, as FTS5 matches a quoted phrase.

BM25 is FTS5's (``bm25()``: k1 1.2, b 0.75, a phrase's IDF over the whole
table floored at 1e-6, a row's length its tokens in every column), computed in
SQL in the same order of operations on the same doubles, so equal inputs give
bit-equal scores and ties fall to the same rows. Limits of Postgres's
``tsvector`` the SQLite index does not have: a lexeme keeps at most 256
positions (a word's count in BM25 stops there), positions stop at 16,383 (a
phrase is matched within a text's first 16,383 words, single words anywhere),
a token longer than 2,047 bytes is held as its digest, and a text's distinct
words may take 1 MB at most (the rest, logged, are not held). Passages are far
below all of these, and so are the files the extraction's text limit gives.

Excerpts are FTS5's ``snippet()`` of the hit, made by FTS5 over the hit's own
title and text (a snippet depends on nothing else), so they read as SQLite's.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from labmesh_dagster.connectors.catalog.postgres_text import K1, MAX_POSITION, B, phrase, tokens_of
from labmesh_dagster.connectors.catalog.sqlite_term_sums import TOKENIZER

log = logging.getLogger(__name__)

MAX_LEXEME_BYTES = 2047
"""The longest lexeme a tsvector holds."""
MAX_POSITIONS = 256
"""Positions a tsvector keeps of one lexeme (the rest are dropped)."""
MAX_LEXEMES_BYTES = 1_000_000
"""What a text's distinct lexemes may take in all, under the tsvector's 1 MB."""
FTS5_MIN_IDF = 1e-6


SHORT_TOKEN = MAX_LEXEME_BYTES // 4
"""A token of at most this many characters is a lexeme as it is, whatever its letters (UTF-8 takes 4 bytes at most
per character): only a longer one is measured."""


def lexeme(token: str) -> str:
    """A token as a tsvector holds it: itself, or its digest when it is too long to be a lexeme.

    The digest starts with ``#``, which no FTS5 token holds, so it stands for that token alone; a question's
    tokens go through here too and so match it.
    """
    if len(token) <= SHORT_TOKEN or len(token.encode("utf-8")) <= MAX_LEXEME_BYTES:
        return token
    return "#" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def lexemes_of(texts: Sequence[str]) -> list[list[str]]:
    """Each text's lexemes, in order: its FTS5 tokens (one statement for all of them)."""
    return [[token if len(token) <= SHORT_TOKEN else lexeme(token) for token in tokens] for tokens in tokens_of(texts)]


def _literal(word: str) -> str:
    """A lexeme quoted for a tsvector literal. FTS5's tokens are letters and digits, so the quoting of a quote or
    a backslash (a one-word phrase's, `phrase`) is needed for none of them, but is kept for any other lexeme."""
    return f"'{word}'" if word.isalnum() else phrase([word])


def vector(lexemes: Sequence[str]) -> str:
    """A ``tsvector`` literal of the lexemes at their positions (1, 2...), each lexeme written once.

    Written once with all its positions, not once per position: Postgres counts every lexeme written against
    the 1 MB limit before it merges them. A lexeme keeps its first `MAX_POSITIONS` positions; every word past
    `MAX_POSITION` is at that position, as Postgres would put it.
    """
    places: dict[str, list[int]] = {}
    for position, word in enumerate(lexemes[:MAX_POSITION], 1):
        kept = places.get(word)
        if kept is None:
            places[word] = [position]
        elif len(kept) < MAX_POSITIONS:
            kept.append(position)
    for word in lexemes[MAX_POSITION:]:
        kept = places.setdefault(word, [])
        if len(kept) < MAX_POSITIONS and (not kept or kept[-1] != MAX_POSITION):
            kept.append(MAX_POSITION)
    parts: list[str] = []
    size = 0
    for word, positions in places.items():
        size += len(word) if word.isascii() else len(word.encode("utf-8"))
        if size > MAX_LEXEMES_BYTES:
            log.warning("a text has more distinct words than a tsvector holds: %d of %d kept", len(parts), len(places))
            break
        parts.append(f"{_literal(word)}:{','.join(map(str, positions))}")
    return " ".join(parts)


@dataclass(frozen=True)
class Phrase:
    """A term of a search as a phrase of lexemes; without any (``_``), it matches nothing."""

    term: str
    lexemes: tuple[str, ...]

    @property
    def query(self) -> str:
        """The phrase as a ``tsquery`` literal."""
        return phrase(self.lexemes)


def phrases_of(terms: Sequence[str]) -> list[Phrase]:
    """Each term as its phrase, in order: two terms of the same words stay two phrases, as in FTS5."""
    return [Phrase(term, tuple(found)) for term, found in zip(terms, lexemes_of(terms), strict=True)]


def fts5_idf(rows: int, hits: int) -> float:
    """FTS5's IDF of a phrase ``hits`` of ``rows`` rows hold, its floor included."""
    idf = math.log((rows - hits + 0.5) / (hits + 0.5))
    return idf if idf > 0.0 else FTS5_MIN_IDF


def matches(alias: str, columns: Sequence[str], name: str) -> str:
    """Whether the phrase held by parameter ``name`` is in any of the row's ``columns``."""
    return "(" + " OR ".join(f"{alias}.{column} @@ %({name})s::tsquery" for column in columns) + ")"


def frequency(alias: str, weighted: Sequence[tuple[str, float]], name: str, words: int) -> str:
    """The phrase's weighted count in the row, as FTS5 adds it up: each occurrence adds its column's weight.

    The count is asked of a column only where the phrase matches; the phrase's ``words`` lexemes are parameter
    ``<name>_lexemes``. A one-word phrase's count is its lexeme's positions, read in the statement (half the
    time of a call of the phrase count function, which a longer phrase needs).
    """
    lexemes = f"%({name}_lexemes)s::text[]"

    def count(column: str) -> str:
        if words == 1:
            return (
                "(SELECT coalesce(sum(cardinality(u.positions)), 0) "
                f"FROM unnest(ts_filter(setweight({alias}.{column}, 'A', {lexemes}), '{{a}}')) AS u)"
            )
        return f"labmesh_content_phrase_count({alias}.{column}, {lexemes})"

    return " + ".join(
        f"{weight!r}::float8 * CASE WHEN {alias}.{column} @@ %({name})s::tsquery THEN {count(column)} ELSE 0 END"
        for column, weight in weighted
    )


def bm25(frequencies: Sequence[str], length: str) -> str:
    """FTS5's BM25 of a row from each phrase's weighted count and the row's length (columns), higher is better.

    Written as FTS5 computes it, term by term in the phrases' order from 0.0:
    ``idf * ((f * (k1 + 1)) / (f + k1 * ((1 - b) + b * D / avgdl)))``; its
    parameters are `bm25_parameters`'.
    """
    terms = [
        f"%(idf{number})s * (({frequency} * %(k1_plus_1)s) / "
        f"({frequency} + %(k1)s * (%(one_minus_b)s + %(b)s * ({length})::float8 / %(avgdl)s)))"
        for number, frequency in enumerate(frequencies)
    ]
    return " + ".join(["0::float8", *terms])


def bm25_parameters(rows: int, words: int, idfs: Sequence[float]) -> dict[str, float]:
    """The constants `bm25` reads: FTS5's, the average length of a row, and each phrase's IDF."""
    return {
        "k1": K1,
        "k1_plus_1": K1 + 1.0,
        "b": B,
        "one_minus_b": 1 - B,
        "avgdl": words / rows if rows else 1.0,
        **{f"idf{number}": idf for number, idf in enumerate(idfs)},
    }


_local = threading.local()

SNIPPET = "snippet(hits, 1, '', '', '…', 24)"
"""The SQLite index's excerpt: the text column's best 24 tokens, unmarked (`search.local`)."""


def _snippet_table() -> sqlite3.Connection:
    """This thread's in-memory FTS5 table of hits, with the SQLite index's columns and tokenizer."""
    db: sqlite3.Connection | None = getattr(_local, "db", None)
    if db is None:
        db = sqlite3.connect(":memory:", isolation_level=None)
        db.execute(f"CREATE VIRTUAL TABLE hits USING fts5(title, text, tokenize = '{TOKENIZER}')")
        _local.db = db
    return db


def snippets(texts: Sequence[tuple[str, str]], expression: str) -> list[str | None]:
    """FTS5's snippet of each ``(title, text)`` for the MATCH ``expression``; None for one it does not match."""
    if not texts:
        return []
    db = _snippet_table()
    # Written and read in one transaction that is then rolled back: the table is always empty again.
    db.execute("BEGIN")
    try:
        db.executemany(
            "INSERT INTO hits (rowid, title, text) VALUES (?, ?, ?)",
            [(number, title, text) for number, (title, text) in enumerate(texts, 1)],
        )
        found = dict(db.execute(f"SELECT rowid, {SNIPPET} FROM hits WHERE hits MATCH ?", (expression,)).fetchall())
    finally:
        db.execute("ROLLBACK")
    return [found.get(number) for number in range(1, len(texts) + 1)]
