"""Passage vectors: kept as int8 blobs beside the index, searched by brute force in memory.

SQLite on this machine cannot load a vector extension, and at the lab's scale
(to about 100,000 passages) none is needed: one matrix-vector product over a
float32 matrix takes a few milliseconds. Vectors are stored as int8 with one
scale per vector (a quarter of float32's space; cosines move by about 0.001),
and dequantised once when the matrix is loaded.

Access and facet filters reach the dense ranking as a mask of the documents a
query may see, computed by the same SQL the keyword ranking runs: rows outside
it are never scored, so a passage a viewer may not see cannot be ranked,
whatever its similarity.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

SUBSETS_KEPT = 8
"""Lists of allowed documents whose rows a matrix keeps copied out (see `VectorMatrix.nearest_among`)."""

PROGRESS_EVERY = 256
"""Embedding more passages than this logs its progress, every this many."""


class TextEmbedder(Protocol):
    """What embeds texts: `labmesh_dagster.semantic.embedding.Embedder`, or a test's stand-in."""

    model_id: str
    dimension: int

    def embed(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray: ...


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows as int8 (the largest component at ±127) and each row's scale back to float."""
    vectors = np.asarray(vectors, dtype=np.float32)
    peaks = np.abs(vectors).max(axis=1)
    scales = np.where(peaks > 0, peaks / 127.0, 1.0).astype(np.float32)
    codes = np.clip(np.rint(vectors / scales[:, None]), -127, 127).astype(np.int8)
    return codes, scales


def dequantize(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    return codes.astype(np.float32) * scales[:, None].astype(np.float32)


def embed_in_batches(
    embedder: TextEmbedder,
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    logger: logging.Logger | None = None,
    what: str = "passages",
) -> np.ndarray:
    """``embedder.embed(texts)`` in runs of batches, logging progress (count and rate) on long work."""
    if len(texts) <= PROGRESS_EVERY or logger is None:
        return embedder.embed(texts, batch_size=batch_size)
    parts: list[np.ndarray] = []
    started = time.perf_counter()
    for start in range(0, len(texts), PROGRESS_EVERY):
        parts.append(embedder.embed(texts[start : start + PROGRESS_EVERY], batch_size=batch_size))
        done = min(start + PROGRESS_EVERY, len(texts))
        rate = done / max(time.perf_counter() - started, 1e-9)
        logger.info("embedded %d of %d %s (%.0f a second)", done, len(texts), what, rate)
    return np.vstack(parts)


@dataclass(frozen=True)
class VectorMatrix:
    """Every embedded passage of an index: its row id, its document's number, its unit vector."""

    passages: np.ndarray  # int64, one per row
    docs: np.ndarray  # int64, the document each row's passage belongs to
    matrix: np.ndarray  # float32, (rows, dimension)
    _subsets: OrderedDict[bytes, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=OrderedDict, compare=False, repr=False
    )

    @classmethod
    def empty(cls, dimension: int) -> VectorMatrix:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, dimension), np.float32))

    def __len__(self) -> int:
        return len(self.passages)

    def mask_of(self, allowed_docs: Sequence[int] | np.ndarray) -> np.ndarray:
        """The rows whose document is among ``allowed_docs``."""
        allowed = np.asarray(allowed_docs, dtype=np.int64)
        if not len(self) or not len(allowed):
            return np.zeros(len(self), dtype=bool)
        top = int(max(self.docs.max(), allowed.max())) + 1
        flags = np.zeros(top, dtype=bool)
        flags[allowed] = True
        return flags[self.docs]

    def nearest_among(self, query: np.ndarray, limit: int, allowed_docs: Sequence[int]) -> list[tuple[int, float]]:
        """`nearest` among the rows of ``allowed_docs``, the few allowed rows' vectors copied once and kept.

        Copying a viewer's rows out of the matrix costs more than scoring
        them, and a viewer asks again and again: the copies of the last
        `SUBSETS_KEPT` lists of documents are kept, keyed by the whole list, so
        another list (another viewer, a grant) never finds a copy that is not
        its own.
        """
        allowed = np.unique(np.asarray(allowed_docs, dtype=np.int64))
        key = hashlib.sha256(allowed.tobytes()).digest()
        kept = self._subsets.get(key)
        if kept is None:
            rows = np.flatnonzero(self.mask_of(allowed))
            if len(rows) * 2 >= len(self):
                return self.nearest(query, limit, self.mask_of(allowed))
            kept = (rows, np.ascontiguousarray(self.matrix[rows]))
            self._subsets[key] = kept
            while len(self._subsets) > SUBSETS_KEPT:
                self._subsets.popitem(last=False)
        else:
            self._subsets.move_to_end(key)
        rows, vectors = kept
        if limit < 1 or not len(rows):
            return []
        return self._best(vectors @ query, rows, limit)

    def nearest(self, query: np.ndarray, limit: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """``(passage, cosine)`` of the ``limit`` rows nearest ``query``, best first, among the rows ``mask`` keeps."""
        if limit < 1 or not len(self):
            return []
        if mask is None:
            rows = None
            scores = self.matrix @ query
        else:
            rows = np.flatnonzero(mask)
            if not len(rows):
                return []
            # Few rows allowed: score those alone; many: score all (one pass) and keep the allowed.
            scores = self.matrix[rows] @ query if len(rows) * 2 < len(self) else (self.matrix @ query)[rows]
        return self._best(scores, rows, limit)

    def _best(self, scores: np.ndarray, rows: np.ndarray | None, limit: int) -> list[tuple[int, float]]:
        """The ``limit`` best ``scores`` (of ``rows``, or of every row) as ``(passage, score)``, best first."""
        count = min(limit, len(scores))
        best = np.argpartition(-scores, count - 1)[:count] if count < len(scores) else np.arange(len(scores))
        best = best[np.lexsort((best, -scores[best]))]
        chosen = best if rows is None else rows[best]
        return [(int(self.passages[row]), float(scores[index])) for row, index in zip(chosen, best, strict=True)]
