"""Passages kept without a vector get one from `embed_missing`, a bounded number at a time, and only once.

Pinned here: passages whose vectors are gone (an embedding that failed when
they were put, an index from before vectors) are found by words but not by
meaning; `embed_missing` with a limit embeds at most that many, without one
embeds the rest, and a run with nothing missing embeds nothing; afterwards
search by meaning finds them, under the viewer's access as ever; an index
put while its embedder failed keeps the words, and `embed_missing` then
raises the embedder's error instead of claiming there was nothing to do; an
index without an embedder has nothing to embed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from labmesh_dagster.connectors.search.base import ContentDocument
from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.passages import SearchMode
from labmesh_dagster.semantic.chunking import chunk_file
from labmesh_dagster.semantic.embedding import EmbeddingModelError
from labmesh_dagster_tests.connectors.test_content_index_passages import vector_count
from labmesh_dagster_tests.flaky_embedder import FlakyEmbedder

FILES = {
    "raw/EXP-1/storage.txt": "Liver biopsies were snap-frozen in liquid nitrogen and kept at -80 C until needed.",
    "raw/EXP-1/mice.txt": "Twelve C57BL/6 mice were fed a high-fat diet for 16 weeks before sacrifice.",
    "raw/EXP-1/protein.txt": "Cells were lysed in RIPA buffer and total protein measured by BCA assay at 562 nm.",
}
PRESERVED = "how were tissue specimens preserved"
GENOMICIST = Viewer("ada", frozenset({"genomics"}))
OUTSIDER = Viewer("bob", frozenset({"proteomics"}))


def documents() -> list[ContentDocument]:
    return [
        ContentDocument(
            id=key,
            title=key.rsplit("/", 1)[-1],
            text=text,
            uri=f"file:///{key}",
            attributes={"experiment_id": "EXP-1", "group": "genomics"},
            principals=("group:genomics",),
            passages=tuple(chunk_file(key, fmt="text", text=text)),
        )
        for key, text in FILES.items()
    ]


def lose_vectors(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("DELETE FROM content_vectors")
    db.commit()
    db.close()


def by_meaning(index: SqliteContentIndex, viewer: Viewer = GENOMICIST) -> list[str]:
    return [hit.passage.document_id for hit in index.retrieve(PRESERVED, viewer=viewer, mode=SearchMode.DENSE)]


def test_missing_vectors_are_embedded_a_bounded_number_at_a_time_and_only_once(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    index = SqliteContentIndex(path)
    index.replace(documents())
    lose_vectors(path)
    assert by_meaning(index) == []
    assert [hit.passage.document_id for hit in index.retrieve("nitrogen", mode=SearchMode.KEYWORD)] == [
        "raw/EXP-1/storage.txt"
    ]

    assert index.embed_missing(limit=2) == 2 and vector_count(path) == 2
    assert index.embed_missing() == 1 and vector_count(path) == 3
    assert index.embed_missing() == 0

    assert by_meaning(index)[0] == "raw/EXP-1/storage.txt"
    assert by_meaning(index, OUTSIDER) == []


def test_an_index_put_while_its_embedder_failed_keeps_the_words_and_says_why_it_cannot_embed(tmp_path: Path) -> None:
    embedder = FlakyEmbedder()
    index = SqliteContentIndex(tmp_path / "catalog.sqlite", embedder=lambda: embedder)

    assert index.replace(documents()).ok  # logged and tolerated: the words are indexed
    assert vector_count(index.path) == 0 and index.retrieve("nitrogen", mode=SearchMode.KEYWORD)
    with pytest.raises(EmbeddingModelError, match="out of memory"):
        index.embed_missing()

    embedder.failing = False
    assert index.embed_missing() == 3
    assert by_meaning(index)[0] == "raw/EXP-1/storage.txt"


def test_an_index_without_an_embedder_has_nothing_to_embed(tmp_path: Path) -> None:
    index = SqliteContentIndex(tmp_path / "catalog.sqlite", embedder=None)
    index.replace(documents())

    assert index.embed_missing() == 0 and vector_count(index.path) == 0
