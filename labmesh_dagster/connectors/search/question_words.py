"""The terms a search or a question is looked up by, read the same way by the SQLite and PostgreSQL indexes.

Both local indexes must match the same passages for the same words, so the
text a person typed is cut into terms here, once: each term is then a phrase
of its words (FTS5 quotes it, PostgreSQL makes a ``tsquery`` of its FTS5
tokens). Terms are kept in the order typed and each once, as both rank a
phrase given twice twice.
"""

from __future__ import annotations

import re

from labmesh_dagster.core.text import clean_text

QUESTION_WORDS = frozenset(
    """a about above after all also am an and any are as at be been before being below between both but by can
    could did do does doing done during each few for from had has have having he her here hers him his how i if
    in into is it its itself just me more most my no nor not of off on once only or other our out over own same
    she should so some such than that the their them then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you your""".split()  # noqa: SIM905 - a list literal of 120 words is harder to read
)
"""Words a question is made of that say nothing of its answer: left out of the passages' keyword ranking.

BM25 weighs them low, but fusion counts ranks, not scores: a passage matched
on "were" alone ranks in the keyword list and is lifted by it. Kept when a
question has no other word.
"""


def search_terms(text: str) -> list[str]:
    """Every term of ``text`` holding a letter or a digit, each once: a document search matches any of them."""
    return list(dict.fromkeys(term for term in clean_text(text).split() if re.search(r"\w", term)))


def question_terms(text: str) -> list[str]:
    """The content terms of a question (all its terms when it has no other), each once, in order."""
    words = clean_text(text).split()
    content = [word for word in words if word.lower().strip("?!.,;:'\"()") not in QUESTION_WORDS]
    return list(dict.fromkeys(term for term in content or words if re.search(r"\w", term)))
