"""Rank fusion weighs each ranking's places by how well their items matched, and is plain RRF when all match fully.

Pinned here: a paraphrased question whose keyword matches hold one common
word of it leaves the dense ranking's answer first (plain RRF let those
matches outvote it); a question naming an id ranks the passage holding it
first, though meaning puts its near twin ahead; strengths outside [0, 1] are
clipped, and all strengths 1 give RRF's own scores.
"""

from __future__ import annotations

import pytest

from labmesh_dagster.semantic.fusion import reciprocal_rank_fusion, weighted_rank_fusion
from labmesh_dagster.semantic.match_strength import bm25_idf, keyword_strength

TOTAL = 1000
"""Passages in the imagined index."""


def idfs(*matches: int) -> list[float]:
    return [bm25_idf(count, TOTAL) for count in matches]


def test_a_paraphrase_matching_one_common_word_does_not_push_the_dense_answer_out() -> None:
    # "how were the samples preserved over the long term": only "samples" (in 300 passages) is in any passage.
    question = idfs(300, 2, 40, 60)
    one_word = bm25_idf(300, TOTAL)  # what a passage holding "samples" once scores
    keyword = [(f"qc-{n}", keyword_strength(one_word, question)) for n in range(1, 6)]
    dense = [("storage", 0.45), ("qc-3", 0.29), ("plate", 0.24), ("qc-1", 0.23), ("qc-2", 0.22)]

    fused = [item for item, _ in weighted_rank_fusion([keyword, dense])]
    plain = [item for item, _ in reciprocal_rank_fusion([[p for p, _ in keyword], [p for p, _ in dense]])]

    assert all(strength < 0.1 for _, strength in keyword)
    assert fused[0] == "storage"
    assert plain.index("storage") > 2  # what plain RRF did: three stray matches first


def test_a_question_naming_an_id_ranks_the_passage_holding_it_first() -> None:
    # "LIV-07": one passage holds it; meaning cannot tell it from its twins LIV-08 and LIV-17.
    question = idfs(1)
    keyword = [("liv-07", keyword_strength(bm25_idf(1, TOTAL), question))]
    dense = [("liv-08", 0.181), ("liv-07", 0.180), ("liv-17", 0.14)]

    fused = weighted_rank_fusion([keyword, dense])

    assert keyword[0][1] == 1.0
    assert [item for item, _ in fused] == ["liv-07", "liv-08", "liv-17"]


def test_strengths_are_clipped_to_nothing_and_a_full_match() -> None:
    fused = dict(weighted_rank_fusion([[("far", -0.3), ("near", 1.7)]], k=60))

    assert fused == {"far": 0.0, "near": pytest.approx(1 / 62)}


def test_full_strength_everywhere_is_plain_rrf() -> None:
    rankings = [["a", "b", "c"], ["b", "d", "a"]]

    weighted = weighted_rank_fusion([[(item, 1.0) for item in ranking] for ranking in rankings])

    assert weighted == reciprocal_rank_fusion(rankings)
    assert weighted[0] == ("b", pytest.approx(1 / 62 + 1 / 61))
