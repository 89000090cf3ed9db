"""Facet counts of a one-word search, from sums per word and home, for the words many experiments hold.

Why. A word found in 1 of 12 experiments matches a twelfth of every group's
experiments, so counting its hits by adding up each match's share
(``search_doc_facets``) reads ten times more at 100,000 datasets than at
10,000. A word's hits, where the experiment's own text holds it, are the whole
experiments holding it: so, as for the portal's first page, their shares are
also summed per home (``search_term_facets``: term, home, value, hits), and a
count adds up the viewer's groups' sums for the word, then reads only what
the sums cannot tell: the experiments the viewer sees otherwise (as owner, on
its people, by a grant), and those that hold the word in some files only,
whose matching rows decide their hits.

Which words. Summing every word would cost a row per word, home and value:
ids and rare words would make the table larger than the catalog. A word in
fewer than `SUMMED_FROM` experiments costs little to count from its matches, so
sums are kept only for words that reach it (``search_summed_terms``); once a
word is summed it stays summed. ``search_doc_terms`` lists the summed words of
each experiment, so a new revision takes its old share out of exactly the sums
it was added to.

Words are FTS5 tokens of the experiment's own text (title, ELN fields, group,
platform), cut by the same tokenizer as ``search_experiment_text``: a query word
is tokenized the same way, so the sums answer exactly what the full-text match
would. A query word that is several tokens (``RNA-seq``) is a phrase, and is
counted from its matches.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

SCHEMA = {
    "search_term_facets": """CREATE TABLE search_term_facets (
        term TEXT NOT NULL,
        home TEXT NOT NULL,
        value INTEGER NOT NULL,
        hits INTEGER NOT NULL,
        PRIMARY KEY (term, home, value)
    ) WITHOUT ROWID;""",
    "search_doc_terms": """CREATE TABLE search_doc_terms (
        doc INTEGER NOT NULL,
        term TEXT NOT NULL,
        PRIMARY KEY (doc, term)
    ) WITHOUT ROWID;""",
    "search_summed_terms": """CREATE TABLE search_summed_terms (
        term TEXT PRIMARY KEY
    ) WITHOUT ROWID;""",
}
"""Derived tables, rebuilt with the rest of the index (`sqlite_index.DERIVED`): name -> statements."""

SUMMED_FROM = 64
"""Experiments holding a word from which its sums are kept; below, counting its matches costs as little."""

OWN_COLUMNS = ("title", "experiment", "lab_group", "platform")
"""The columns of ``search_experiment_text`` that hold the experiment's own text."""

TOKENIZER = "porter unicode61"
"""``search_experiment_text``'s tokenizer: words are cut here exactly as there."""


def _tokenizer(db: sqlite3.Connection) -> None:
    """A scratch full-text table and its vocabulary, for cutting text into tokens (temp: one per connection)."""
    db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.labmesh_tokens USING fts5(text, tokenize = '{TOKENIZER}')")
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.labmesh_token_vocab USING fts5vocab(temp, labmesh_tokens, row)")


def tokens(db: sqlite3.Connection, text: str) -> list[str]:
    """The distinct FTS5 tokens of ``text``, as ``search_experiment_text`` would index them."""
    if not text.strip():
        return []
    _tokenizer(db)
    db.execute("INSERT INTO temp.labmesh_tokens (rowid, text) VALUES (1, ?)", (text,))
    try:
        return [row[0] for row in db.execute("SELECT term FROM temp.labmesh_token_vocab")]
    finally:
        db.execute("DELETE FROM temp.labmesh_tokens")


def _vocabulary(db: sqlite3.Connection, kind: str) -> str:
    """The name of a temp fts5vocab table (``col`` or ``instance``) over ``search_experiment_text``."""
    name = f"labmesh_experiment_{kind}"
    db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{name} USING fts5vocab(main, search_experiment_text, {kind})")
    return f"temp.{name}"


def _own_columns() -> str:
    return ", ".join(f"'{column}'" for column in OWN_COLUMNS)


def add_share(db: sqlite3.Connection, doc: int, home: str, own_text: str, share: Mapping[int, int]) -> None:
    """Add a newly indexed experiment's share (value id -> hits) to its home's sums of each summed word it holds,
    and start summing any word it brings to `SUMMED_FROM` experiments (``search_experiment_text`` holds it already).
    """
    summed: list[str] = []
    for term in tokens(db, own_text):
        if db.execute("SELECT 1 FROM search_summed_terms WHERE term = ?", (term,)).fetchone() is not None:
            summed.append(term)
        elif _holders(db, term) >= SUMMED_FROM:
            start_summing(db, term)  # counts this experiment too: it is in the full-text index already
    db.executemany("INSERT INTO search_doc_terms (doc, term) VALUES (?, ?)", [(doc, term) for term in summed])
    db.executemany(
        "INSERT INTO search_term_facets (term, home, value, hits) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (term, home, value) DO UPDATE SET hits = hits + excluded.hits",
        [(term, home, value, hits) for term in summed for value, hits in share.items()],
    )


def _holders(db: sqlite3.Connection, term: str) -> int:
    """About how many experiments hold ``term`` in their own text (one in two own columns counts twice)."""
    sql = f"SELECT coalesce(sum(doc), 0) FROM {_vocabulary(db, 'col')} WHERE term = ? AND col IN ({_own_columns()})"
    return int(db.execute(sql, (term,)).fetchone()[0])


def start_summing(db: sqlite3.Connection, term: str) -> None:
    """Sum the shares of every experiment whose own text holds ``term``, per home, and keep them from now on."""
    db.execute("INSERT INTO search_summed_terms (term) VALUES (?)", (term,))
    holders = f"SELECT DISTINCT doc FROM {_vocabulary(db, 'instance')} WHERE term = ? AND col IN ({_own_columns()})"
    db.execute(f"INSERT INTO search_doc_terms (doc, term) SELECT doc, ? FROM ({holders})", (term, term))
    db.execute(
        """INSERT INTO search_term_facets (term, home, value, hits)
           SELECT t.term, d.home, f.value, sum(f.hits) FROM search_doc_terms AS t
           JOIN search_docs AS d ON d.doc = t.doc JOIN search_doc_facets AS f ON f.doc = t.doc
           WHERE t.term = ? GROUP BY d.home, f.value""",
        (term,),
    )


def take_share(db: sqlite3.Connection, doc: int, home: str) -> None:
    """Take the experiment's share (its ``search_doc_facets`` rows, still there) out of its words' sums."""
    db.execute(
        """UPDATE search_term_facets AS s SET hits = s.hits - f.hits
           FROM search_doc_terms AS t JOIN search_doc_facets AS f ON f.doc = t.doc
           WHERE t.doc = ? AND s.term = t.term AND s.home = ? AND s.value = f.value""",
        (doc, home),
    )
    db.execute(
        "DELETE FROM search_term_facets WHERE home = ? AND hits <= 0 AND term IN "
        "(SELECT term FROM search_doc_terms WHERE doc = ?)",
        (home, doc),
    )
    db.execute("DELETE FROM search_doc_terms WHERE doc = ?", (doc,))


def summed_term(db: sqlite3.Connection, word: str) -> str | None:
    """The token a query word stands for, if it is one token whose sums are kept; None to count its matches."""
    found = tokens(db, word)
    if len(found) != 1:
        return None
    known = db.execute("SELECT 1 FROM search_summed_terms WHERE term = ?", (found[0],)).fetchone()
    return found[0] if known is not None else None


def rebuild(db: sqlite3.Connection) -> None:
    """Sum every word `SUMMED_FROM` experiments hold, from the index as it stands (an upgrade, in place)."""
    sql = (
        f"SELECT term FROM {_vocabulary(db, 'col')} WHERE col IN ({_own_columns()}) "
        "GROUP BY term HAVING sum(doc) >= ? ORDER BY term"
    )
    for (term,) in db.execute(sql, (SUMMED_FROM,)).fetchall():
        start_summing(db, term)
