"""Passage vectors as the local content indexes make and hold them: embedded on put, cached as one matrix.

Shared by the SQLite and PostgreSQL indexes, so both embed the same passages
at the same moments and rank by the same matrix. A publish embeds its new
passages itself when they are few (`INLINE_VECTORS`) and leaves a larger
delivery's to `embed_missing`. The matrix of an index's vectors is loaded once
per change of its passages and kept per process (`MatrixCache`): every
retrieval reads the index's version first, one row, and a version another
process wrote makes the kept matrix stale, so it is loaded again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from labmesh_dagster.connectors.search.stored_passages import EMBED_BATCH
from labmesh_dagster.core.errors import LabmeshError
from labmesh_dagster.semantic.vectors import TextEmbedder, VectorMatrix, dequantize, embed_in_batches, quantize

log = logging.getLogger(__name__)

Vectors = dict[str, tuple[float, bytes]]
"""Vectors by the hash of what was embedded: the scale and the int8 components as bytes."""

MATRICES_KEPT = 4
"""Indexes whose matrices a process keeps (one in production; tests open many)."""


def embedded_vectors(embedder: TextEmbedder, texts: Mapping[str, str]) -> Vectors:
    """``texts`` (by hash) embedded and quantised; raises the embedder's `LabmeshError`."""
    keys = list(texts)
    codes, scales = quantize(
        embed_in_batches(embedder, [texts[key] for key in keys], batch_size=EMBED_BATCH, logger=log)
    )
    return {key: (float(scales[row]), codes[row].tobytes()) for row, key in enumerate(keys)}


def new_passage_vectors(
    embedder: Callable[[], TextEmbedder], texts: Mapping[str, str], most: int
) -> tuple[Vectors, bool]:
    """A publish's new passages embedded (``texts``: what to embed, by hash), and whether some were left without.

    More than ``most`` of them are all left to `embed_missing`, and so are all of
    them when the embedder fails, to load or to run (logged, not raised: their
    words are indexed all the same, and the vectors can come later).
    """
    if not texts:
        return {}, False
    if len(texts) > most:
        log.info("%d new passages are indexed by their words; the content_vectors job embeds them", len(texts))
        return {}, True
    try:
        return embedded_vectors(embedder(), texts), False
    except LabmeshError as error:
        log.error("passages kept without vectors (dense search will not find them): %s", error)
        return {}, True


def matrix_of(rows: Sequence[Sequence[Any]], dimension: int) -> VectorMatrix:
    """The matrix of rows ``(passage, doc, scale, vector)`` (the vector's int8 components as bytes), in order."""
    if not rows:
        return VectorMatrix.empty(dimension)
    codes = np.frombuffer(b"".join(bytes(row[3]) for row in rows), dtype=np.int8).reshape(len(rows), -1)
    return VectorMatrix(
        np.fromiter((row[0] for row in rows), np.int64, len(rows)),
        np.fromiter((row[1] for row in rows), np.int64, len(rows)),
        dequantize(codes, np.fromiter((row[2] for row in rows), np.float32, len(rows))),
    )


class MatrixCache:
    """Each index's matrix with the version it was loaded at, for the last `MATRICES_KEPT` indexes."""

    def __init__(self, kept: int = MATRICES_KEPT) -> None:
        self.kept = kept
        self._matrices: dict[str, tuple[int, VectorMatrix]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, version: int) -> VectorMatrix | None:
        """The matrix kept for ``key`` if it was loaded at ``version``, else None."""
        with self._lock:
            cached = self._matrices.get(key)
        return cached[1] if cached is not None and cached[0] == version else None

    def put(self, key: str, version: int, matrix: VectorMatrix) -> None:
        with self._lock:
            self._matrices.pop(key, None)
            self._matrices[key] = (version, matrix)
            while len(self._matrices) > self.kept:  # the least recently loaded index's goes first
                self._matrices.pop(next(iter(self._matrices)))
