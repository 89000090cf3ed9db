"""The embedder: all-MiniLM-L6-v2 int8 vectors of unit length, paraphrases near, unrelated texts far.

Pinned here: one 384-float row per text in the caller's order whatever the
batching, rows of unit length (a dot product is a cosine), a paraphrase closer
than an unrelated text, long texts cut rather than refused, a model file
that is not the one labmesh knows (by sha256) refused before it runs, and
onnxruntime's threads told not to spin on cores Dagster's runs share.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labmesh_dagster.semantic.embedding import DIMENSION, Embedder, EmbeddingModelError, default_embedder

TEXTS = [
    "The sequencing run on the NovaSeq produced 92% of bases above Q30.",
    "More than nine tenths of the bases from the NovaSeq run had a quality of at least 30.",
    "Cells were lysed in RIPA buffer and proteins quantified by BCA assay.",
    "Protein concentration was measured with a bicinchoninic acid assay after lysis.",
    "The weather in Lisbon was sunny all week.",
]


def test_each_text_gets_one_unit_row_of_384_floats_in_order() -> None:
    vectors = default_embedder().embed(TEXTS)

    assert vectors.shape == (len(TEXTS), DIMENSION)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    uncached = Embedder(cache_entries=0)  # runs the model for every text, so batching is what is compared
    one_by_one = np.vstack([uncached.embed([text]) for text in TEXTS])
    assert np.allclose(vectors, one_by_one, atol=1e-4)
    assert np.allclose(uncached.embed(TEXTS, batch_size=2), vectors, atol=1e-4)


def test_a_paraphrase_is_nearer_than_an_unrelated_text() -> None:
    vectors = default_embedder().embed(TEXTS)
    similarity = vectors @ vectors.T

    assert similarity[0, 1] > 0.5  # the same Q30 figure said in other words
    assert similarity[2, 3] > 0.35  # BCA assay, spelled out
    assert similarity[0, 1] > similarity[0, 2] + 0.3
    assert abs(similarity[0, 4]) < 0.15  # the weather has nothing to do with sequencing


def test_a_text_longer_than_the_model_reads_is_cut_not_refused() -> None:
    long_text = " ".join(["reads aligned to the reference genome with few mismatches"] * 200)

    vectors = default_embedder().embed([long_text, "reads aligned"])

    assert vectors.shape == (2, DIMENSION)
    assert np.isfinite(vectors).all()


def test_no_texts_give_no_rows_and_one_text_is_not_taken_for_a_list() -> None:
    assert default_embedder().embed([]).shape == (0, DIMENSION)
    with pytest.raises(TypeError):
        default_embedder().embed("one text")  # type: ignore[arg-type]


def test_a_model_file_that_is_not_minilm_is_refused_before_it_runs(tmp_path: Path) -> None:
    impostor = tmp_path / "model.onnx"
    impostor.write_bytes(b"not an onnx model, whatever the package says")

    with pytest.raises(EmbeddingModelError, match="sha256"):
        Embedder(impostor).embed(["anything"])


def test_the_models_threads_wait_without_spinning_on_cores_the_runs_share() -> None:
    session = Embedder()._open_session()

    options = session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
