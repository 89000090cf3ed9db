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
