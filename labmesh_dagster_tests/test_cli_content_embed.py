"""`labmesh content embed` gives every passage kept without a vector its vector, saying how far it got.

Pinned here: on a lab whose content index lost its vectors (an embedding
that failed at publish, an index from before vectors), the command embeds
them all, printing its progress chunk by chunk, after which search by
meaning finds them; run again, it embeds nothing and says so; an embedder
that fails is a clear error (exit 2), not a claim that nothing was missing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from labmesh_dagster import cli
from labmesh_dagster.connectors.search.base import ContentDocument
from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.core.passages import SearchMode
from labmesh_dagster.semantic.chunking import chunk_file
from labmesh_dagster.semantic.embedding import Embedder, EmbeddingModelError
from labmesh_dagster.settings import Settings

FILES = {
    "raw/EXP-1/storage.txt": "Liver biopsies were snap-frozen in liquid nitrogen and kept at -80 C until needed.",
    "raw/EXP-1/mice.txt": "Twelve C57BL/6 mice were fed a high-fat diet for 16 weeks before sacrifice.",
    "raw/EXP-1/protein.txt": "Cells were lysed in RIPA buffer and total protein measured by BCA assay at 562 nm.",
}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A lab whose content index holds three files' passages and none of their vectors."""
    home = tmp_path / "home"
    path = home / "catalog.sqlite"
    SqliteContentIndex(path).replace(
        [
            ContentDocument(
                id=key, title=key, text=text, uri="", passages=tuple(chunk_file(key, fmt="text", text=text))
            )
            for key, text in FILES.items()
        ]
    )
    db = sqlite3.connect(path)
    db.execute("DELETE FROM content_vectors")
    db.commit()
    db.close()
    return home


def embed(home: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = cli.main(["content", "embed"], settings=Settings.from_env({"LABMESH_HOME": str(home)}))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_every_missing_vector_is_embedded_with_progress_then_none_again(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "EMBED_CHUNK", 2)
    index = SqliteContentIndex(home / "catalog.sqlite")
    assert index.retrieve("how were tissue specimens preserved", mode=SearchMode.DENSE) == []

    assert embed(home, capsys) == (
        0,
        [
            "embedded 2 passages so far",
            "embedded 3 passages so far",
            "embedded 3 passages: every passage has its vector now",
        ],
        "",
    )
    (hit, *_) = index.retrieve("how were tissue specimens preserved", mode=SearchMode.DENSE)
    assert hit.passage.document_id == "raw/EXP-1/storage.txt"

    assert embed(home, capsys) == (0, ["every passage already has its vector: embedded 0"], "")


def test_an_embedder_that_fails_is_a_clear_error(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def out_of_memory(self: Embedder, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        raise EmbeddingModelError("onnxruntime failed to run the embedding model: out of memory")

    monkeypatch.setattr(Embedder, "embed", out_of_memory)

    code, out, err = embed(home, capsys)

    assert code == 2 and out == []
    assert err == "labmesh: onnxruntime failed to run the embedding model: out of memory\n"
