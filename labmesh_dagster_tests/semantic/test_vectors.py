"""Vectors kept as int8 and scanned in memory; rankings fused by reciprocal rank.

Pinned here: int8 vectors keep cosines within 0.01 of float32's; the scan
returns the nearest rows best first and never a row the mask leaves out, even
the nearest; a mask names documents, not rows, and a viewer's rows copied out
for their next question are never another list's; embedding many texts logs its
progress; RRF rewards an item both rankings hold over one only a single
ranking puts first, with ties in a stable order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pytest

from labmesh_dagster.semantic.fusion import reciprocal_rank_fusion
from labmesh_dagster.semantic.vectors import PROGRESS_EVERY, VectorMatrix, dequantize, embed_in_batches, quantize


def unit_rows(count: int, seed: int = 3) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, 384)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_int8_vectors_keep_their_cosines() -> None:
    rows = unit_rows(50)
    restored = dequantize(*quantize(rows))

    exact, approximate = rows @ rows.T, restored @ rows.T
    assert np.abs(exact - approximate).max() < 0.01


def test_the_scan_ranks_the_nearest_first_and_never_a_masked_row() -> None:
    rows = unit_rows(20)
    matrix = VectorMatrix(np.arange(100, 120), np.repeat(np.arange(10), 2), rows)

    assert [passage for passage, _ in matrix.nearest(rows[7], 3)][0] == 107
    mask = matrix.mask_of([0, 1, 2])  # documents 0-2 hold rows 0-5
    hits = matrix.nearest(rows[7], 10, mask)
    assert sorted(passage for passage, _ in hits) == [100, 101, 102, 103, 104, 105]
    assert [score for _, score in hits] == sorted((score for _, score in hits), reverse=True)
    assert matrix.nearest(rows[7], 10, matrix.mask_of([])) == []


def test_a_viewers_rows_copied_out_are_theirs_alone() -> None:
    rows = unit_rows(40)
    matrix = VectorMatrix(np.arange(40), np.repeat(np.arange(20), 2), rows)

    for allowed in ([0, 1], [5, 6, 7], [0, 1], [19]):  # the first list again, after another
        expected = matrix.nearest(rows[3], 10, matrix.mask_of(allowed))
        assert matrix.nearest_among(rows[3], 10, allowed) == expected
        assert {passage // 2 for passage, _ in expected} <= set(allowed)


class Counting:
    model_id = "test"
    dimension = 384

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        self.calls += 1
        return unit_rows(len(texts))


def test_embedding_many_texts_logs_its_progress(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("labmesh.test.embedding")
    texts = [f"passage {n}" for n in range(PROGRESS_EVERY * 2 + 5)]

    with caplog.at_level(logging.INFO, logger=log.name):
        vectors = embed_in_batches(Counting(), texts, logger=log)

    assert vectors.shape == (len(texts), 384)
    # Only this logger's records: a server thread of another test may log meanwhile.
    messages = [record.getMessage() for record in caplog.records if record.name == log.name]
    assert len(messages) == 3 and messages[-1].startswith(f"embedded {len(texts)} of {len(texts)} passages")


def test_fusion_rewards_what_both_rankings_hold() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "d", "a"]])

    assert [item for item, _ in fused] == ["b", "a", "d", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert [item for item, _ in reciprocal_rank_fusion([["x"], ["y"]])] == ["x", "y"]
