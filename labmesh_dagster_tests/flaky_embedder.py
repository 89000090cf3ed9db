"""An embedder that fails as onnxruntime may, until told to work: for the tests of vectors that come later."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labmesh_dagster.semantic.embedding import EmbeddingModelError, default_embedder


class FlakyEmbedder:
    """The real (process-shared) embedder, raising `EmbeddingModelError` while ``failing`` is set."""

    def __init__(self) -> None:
        self.inner = default_embedder()
        self.model_id = self.inner.model_id
        self.dimension = self.inner.dimension
        self.failing = True
        self.calls = 0
        """Calls that reached the model (not those that failed)."""

    def embed(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        if self.failing:
            raise EmbeddingModelError("onnxruntime failed to run the embedding model: out of memory")
        self.calls += 1
        return self.inner.embed(texts, batch_size=batch_size)
