"""Words as the PostgreSQL catalog indexes and queries them: cut and stemmed by FTS5 itself.

Why. The two catalogs must give the same answers, so a word must be the same
word in both. Postgres's own parser and stemmers cut text differently (it keeps
``LIV-01`` or ``reads.fastq.gz`` whole) and stem differently (Snowball's
English joins ``clearly`` to ``clear``, FTS5's Porter does not), and its parser
depends on the database's locale. So the words are made where the SQLite
catalog makes them: Python's own SQLite cuts each text with the same
``porter unicode61`` tokenizer, in an in-memory FTS5 table of each thread, and
hands back every token in order. Postgres then receives them as they are, as
``tsvector`` and ``tsquery`` literals with their positions: no parser, no
dictionary, no locale between the two catalogs' words.

A user's term is a phrase of its words (``LIV-01`` is ``liv`` then ``01``),
as FTS5 reads a quoted phrase; nothing in a term is ever read as syntax.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Sequence
from enum import IntEnum

from labmesh_dagster.connectors.catalog.sqlite_term_sums import TOKENIZER

K1 = 1.2
B = 0.75
"""FTS5's BM25 constants, so a search ranks as SQLite's does."""
MAX_POSITION = 16383
"""The last word position a tsvector keeps: past it every word has this one, and phrases stop matching."""
MAX_DISTINCT_BYTES = 800_000
"""About what a tsvector of distinct words may take, well under its 1 MB limit (each word: ~8 bytes besides)."""

_local = threading.local()


def _tokenizer() -> sqlite3.Connection:
    """This thread's in-memory FTS5 table and its vocabulary of token instances (made once per thread)."""
    db: sqlite3.Connection | None = getattr(_local, "db", None)
    if db is None:
        db = sqlite3.connect(":memory:", isolation_level=None)
        db.execute(f"CREATE VIRTUAL TABLE texts USING fts5(text, tokenize = '{TOKENIZER}')")
        db.execute("CREATE VIRTUAL TABLE tokens USING fts5vocab(texts, instance)")
        _local.db = db
    return db


def tokens_of(texts: Sequence[str]) -> list[list[str]]:
    """Each text's FTS5 tokens, in order (one statement for all of them: an experiment has thousands)."""
    found: list[list[str]] = [[] for _ in texts]
    if not any(texts):
        return found
    db = _tokenizer()
    # Written and read in one transaction that is then rolled back: the table is always empty again.
    db.execute("BEGIN")
    try:
        db.executemany(
            "INSERT INTO texts (rowid, text) VALUES (?, ?)",
            [(number, text) for number, text in enumerate(texts, 1) if text],
        )
        for number, term in db.execute("SELECT doc, term FROM tokens ORDER BY doc, offset"):
            found[number - 1].append(term)
    finally:
        db.execute("ROLLBACK")
    return found


def tokens(text: str) -> list[str]:
    return tokens_of([text])[0]


def _quoted(word: str) -> str:
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def vector(tokens: Sequence[str]) -> str:
    """A ``tsvector`` literal of the tokens at their positions (1, 2...), as FTS5 numbers them."""
    return " ".join(f"{_quoted(token)}:{min(position, MAX_POSITION)}" for position, token in enumerate(tokens, 1))


def phrase(tokens: Sequence[str]) -> str:
    """A ``tsquery`` literal matching the tokens one after the other: an FTS5 phrase."""
    return " <-> ".join(_quoted(token) for token in tokens)


def all_of(tokens: Sequence[str]) -> str:
    """A ``tsquery`` literal matching a text holding every one of the tokens, anywhere."""
    return " & ".join(_quoted(token) for token in tokens)


def query_terms(text: str) -> list[list[str]] | None:
    """The user's terms, each as its words (one phrase each); None when a term can match nothing.

    As the SQLite search reads them: terms are split at spaces, a term with no letter or digit is
    left out, and a term with one but no word (``_``) is an empty phrase, which matches nothing.
    """
    terms = [term for term in text.split() if re.search(r"\w", term)]
    found = tokens_of(terms)
    return None if any(not tokens for tokens in found) else found


class FilesWords(IntEnum):
    """How an experiment's ``files_text`` holds the words of its files."""

    PHRASES = 0
    """Every word in its position: a phrase matches there as in FTS5."""
    WORDS = 1
    """Each distinct word once (too many words for positions): a term's words there only let the experiment be
    considered; its rows decide, and its files do not weigh in its rank."""
    NONE = 2
    """Nothing (too many distinct words for one tsvector): only its rows are searched, one by one."""


def files_words(tokens: list[str]) -> tuple[FilesWords, list[str]]:
    """How to hold an experiment's file words (`FilesWords`), and the tokens to hold."""
    if len(tokens) <= MAX_POSITION:
        return FilesWords.PHRASES, tokens
    distinct = list(dict.fromkeys(tokens))
    if sum(len(token.encode("utf-8")) + 8 for token in distinct) <= MAX_DISTINCT_BYTES:
        return FilesWords.WORDS, distinct
    return FilesWords.NONE, []


def row_words(tokens: list[str]) -> list[str]:
    """A row's words for Postgres: its first `MAX_POSITION`, so positions stay exact and a tsvector fits.

    A row is one file's name, format, samples and short extracted text; a file whose metadata runs past
    16,383 words is found by its first ones only (FTS5 would find it by any).
    """
    return tokens[:MAX_POSITION]
