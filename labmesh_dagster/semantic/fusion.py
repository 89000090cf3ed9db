"""Reciprocal rank fusion: one ranking from several, by the ranks alone.

BM25 scores and cosines live on scales that cannot be added, and either
ranking alone misses what the other finds (an id the model splits into
meaningless pieces, a paraphrase that shares no word). RRF (Cormack, Clarke
and Büttcher, 2009) adds ``1 / (k + rank)`` over the rankings an item is in;
``k = 60`` keeps the first places from dominating and is the paper's value.
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
    scores: dict[Item, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: position for position, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda pair: (-pair[1], order[pair[0]]))
