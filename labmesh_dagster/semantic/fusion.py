"""Rank fusion: one ranking from several, by their ranks, each place weighted by how well its item matched.

BM25 scores and cosines live on scales that cannot be added, and either
ranking alone misses what the other finds (an id the model splits into
meaningless pieces, a paraphrase that shares no word). RRF (Cormack, Clarke
and Büttcher, 2009) adds ``1 / (k + rank)`` over the rankings an item is in;
``k = 60`` keeps the first places from dominating and is the paper's value.

Plain RRF trusts every ranking's first place alike, and that is wrong when a
ranking found nothing good: a paraphrased question shares no key word with its
answer, so the keyword ranking's first places are passages holding one stray
word of it, and each such place weighs as much as the dense ranking's answer;
a passage both rankings hold fairly low then outscores the answer.
`weighted_rank_fusion` multiplies each place by a strength in ``[0, 1]`` that
says, on an absolute scale, how well that item matched (for words, the share
of the question's IDF mass the passage holds, `match_strength.term_coverage`;
for meaning, the cosine): a ranking whose best is weak then barely moves the
other's, and one whose best is strong (the passage naming the id asked for)
still leads. It stays a fusion of ranks, so neither ranking's raw score scale
matters, and the ranks still decide between items of equal strength.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

RRF_K = 60

Item = TypeVar("Item", bound=Hashable)


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Item]], *, k: int = RRF_K) -> list[tuple[Item, float]]:
    """Items of all ``rankings`` (each best first) with their fused scores, best first.

    Ties keep the order in which the items were first met, rankings taken in
    the order given, so the result is the same on every run.
    """
    return weighted_rank_fusion([[(item, 1.0) for item in ranking] for ranking in rankings], k=k)


def weighted_rank_fusion(
    rankings: Sequence[Sequence[tuple[Item, float]]], *, k: int = RRF_K
) -> list[tuple[Item, float]]:
    """Items of all ``rankings`` (each best first, ``(item, strength)``) with their fused scores, best first.

    An item at ``rank`` of a ranking adds ``strength / (k + rank)``; a
    strength is clipped to ``[0, 1]`` (a negative cosine says "unrelated", not
    "less than nothing"). All strengths 1 is plain RRF. Ties keep the order in
    which the items were first met, rankings taken in the order given.
    """
    scores: dict[Item, float] = {}
    for ranking in rankings:
        for rank, (item, strength) in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + min(max(strength, 0.0), 1.0) / (k + rank)
    order = {item: position for position, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda pair: (-pair[1], order[pair[0]]))
