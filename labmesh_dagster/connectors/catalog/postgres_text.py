"""Words as the PostgreSQL catalog indexes and queries them: cut the way SQLite's FTS5 cuts them.

Why. The two catalogs must give the same answers, so a word must be the same
word in both. FTS5's ``unicode61`` tokenizer splits text at every character
that is not a letter, a digit or private use, folds case and drops diacritics;
Postgres's own parser would instead keep ``LIV-01`` or ``reads.fastq.gz``
whole, as hyphenated words and file names. So labmesh cuts text here, in
Python, and hands Postgres only runs of letters and digits separated by single
spaces, which its parser takes one word at a time, in the same positions.
Postgres then stems each word (``labmesh_catalog_text``: the Snowball English
stemmer, with no stop words, since FTS5 drops none) for the index and for the
query alike.

A user's term is a phrase of its words (``LIV-01`` is ``liv`` then ``01``),
as FTS5 reads a quoted phrase; nothing in a term is ever read as syntax.
"""

from __future__ import annotations

import re
import unicodedata
from enum import IntEnum

TEXT_CONFIG = "labmesh_catalog_text"
"""The text search configuration that stems the words `words` cuts (created by the catalog's migrations)."""

K1 = 1.2
B = 0.75
"""FTS5's BM25 constants, so a search ranks as SQLite's does."""


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFD", word)
    return "".join(char for char in decomposed if unicodedata.category(char) != "Mn").lower()


def words(text: str) -> list[str]:
    """``text`` cut into FTS5 ``unicode61`` tokens: letters, digits and private-use runs, case and accents folded."""
    found: list[str] = []
    current: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if category[0] in "LN" or category in ("Co", "Mn"):
            current.append(char)
        elif current:
            found.append(_fold("".join(current)))
            current = []
    if current:
        found.append(_fold("".join(current)))
    return [word for word in found if word]


def stream(text: str) -> str:
    """The text as Postgres is given it: its words, one space apart."""
    return " ".join(words(text))


def query_terms(text: str) -> list[str] | None:
    """The user's terms as word streams (one phrase each); None when a term can match nothing.

    As the SQLite search reads them: terms are split at spaces, a term with no letter or digit is
    left out, and a term with one but no word (``_``) is an empty phrase, which matches nothing.
    """
    terms = []
    for term in text.split():
        if not re.search(r"\w", term):
            continue
        phrase = stream(term)
        if not phrase:
            return None
        terms.append(phrase)
    return terms


MAX_POSITION = 16383
"""The last word position a tsvector keeps: past it every word has this one, and phrases stop matching."""
MAX_DISTINCT_BYTES = 800_000
"""About what a tsvector of distinct words may take, well under its 1 MB limit (each word: ~8 bytes besides)."""


class FilesWords(IntEnum):
    """How an experiment's ``files_text`` holds the words of its files."""

    PHRASES = 0
    """Every word in its position: a phrase matches there as in FTS5."""
    WORDS = 1
    """Each distinct word once (too many words for positions): a term's words there only let the experiment be
    considered; its rows decide, and its files do not weigh in its rank."""
    NONE = 2
    """Nothing (too many distinct words for one tsvector): only its rows are searched, one by one."""


def files_words(text: str) -> tuple[FilesWords, str]:
    """How to hold an experiment's file words (`FilesWords`), and the stream to hold."""
    found = words(text)
    if len(found) <= MAX_POSITION:
        return FilesWords.PHRASES, " ".join(found)
    distinct = list(dict.fromkeys(found))
    if sum(len(word.encode("utf-8")) + 8 for word in distinct) <= MAX_DISTINCT_BYTES:
        return FilesWords.WORDS, " ".join(distinct)
    return FilesWords.NONE, ""


def row_stream(text: str) -> str:
    """A row's text for Postgres: its first `MAX_POSITION` words, so positions stay exact and a tsvector fits.

    A row is one file's name, format, samples and short extracted text; a file whose metadata runs past
    16,383 words is found by its first ones only (FTS5 would find it by any).
    """
    return " ".join(words(text)[:MAX_POSITION])
