"""How well a passage matched a question by its words, on a scale that means the same for every question.

A BM25 score grows with the number and rarity of the question's words, so it
says how one passage compares with another for this question, not whether the
best of them is any good. Rank fusion needs the second: a paraphrased question
shares no key word with its answer, and the keyword ranking's first place then
holds one stray word of it. Dividing the score by the question's IDF mass (the
sum of its words' IDF) answers it: a passage holding each word once, at
average length, scores about that mass, so the share is about 1 when the
passage holds every word, near 1 when it holds the rare ones (an id, a
reagent, an instrument: most of the mass) and small when it holds one common
word of five. It reads the same scores and the same IDF as FTS5's ``bm25()``
(Robertson and Spärck Jones), so the words that weigh in the keyword ranking
are the words that weigh here, and it costs one count per word of the question
(tested against the exact share of IDF mass held, on the evaluation set: the
same passages come first).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

FTS5_MIN_IDF = 1e-6
"""FTS5's ``bm25()`` floor for a word most rows hold (its IDF formula goes negative there)."""


def bm25_idf(matches: int, total: int) -> float:
    """The IDF FTS5's ``bm25()`` gives a word ``matches`` of ``total`` rows hold."""
    matches = min(max(matches, 0), total)
    return max(math.log((total - matches + 0.5) / (matches + 0.5)), FTS5_MIN_IDF)


def keyword_strength(score: float, idfs: Iterable[float]) -> float:
    """A passage's BM25 ``score`` (higher is better) as a share of its question's IDF mass, in [0, 1].

    Repeated words, title matches (weighed double) and short passages can
    push a score past the mass: those count as a full match. Zero when the
    question has no weighed word.
    """
    mass = sum(idfs)
    if mass <= 0.0:
        return 0.0
    return min(max(score / mass, 0.0), 1.0)
