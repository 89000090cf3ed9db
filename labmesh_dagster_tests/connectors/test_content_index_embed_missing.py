"""Passages kept without a vector get one from `embed_missing`, a bounded number at a time, and only once.

Pinned here: passages whose vectors are gone (an embedding that failed when
they were put, an index from before vectors) are found by words but not by
meaning; `embed_missing` with a limit embeds at most that many, without one
embeds the rest, and a run with nothing missing embeds nothing; afterwards
search by meaning finds them, under the viewer's access as ever; an index
put while its embedder failed keeps the words, and `embed_missing` then
raises the embedder's error instead of claiming there was nothing to do; an
index without an embedder has nothing to embed. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from labmesh_dagster.connectors.search.base import ContentDocument
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.passages import SearchMode
from labmesh_dagster.semantic.chunking import chunk_file
from labmesh_dagster.semantic.embedding import EmbeddingModelError
from labmesh_dagster_tests.connectors.content_indexes import (
    LOCAL_BACKENDS,
    IndexOpener,
    LocalIndex,
    index_opener,
    lose_vectors,
    vector_count,
)
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


@pytest.fixture(params=LOCAL_BACKENDS)
def open_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexOpener]:
    with index_opener(request.param, tmp_path) as opener:
        yield opener


def by_meaning(index: LocalIndex, viewer: Viewer = GENOMICIST) -> list[str]:
    return [hit.passage.document_id for hit in index.retrieve(PRESERVED, viewer=viewer, mode=SearchMode.DENSE)]


def test_missing_vectors_are_embedded_a_bounded_number_at_a_time_and_only_once(open_index: IndexOpener) -> None:
    index = open_index()
    index.replace(documents())
    lose_vectors(index)
    assert by_meaning(index) == []
    assert [hit.passage.document_id for hit in index.retrieve("nitrogen", mode=SearchMode.KEYWORD)] == [
        "raw/EXP-1/storage.txt"
    ]

    assert index.embed_missing(limit=2) == 2 and vector_count(index) == 2
    assert index.embed_missing() == 1 and vector_count(index) == 3
    assert index.embed_missing() == 0

    assert by_meaning(index)[0] == "raw/EXP-1/storage.txt"
    assert by_meaning(index, OUTSIDER) == []


def test_an_index_put_while_its_embedder_failed_keeps_the_words_and_says_why_it_cannot_embed(
    open_index: IndexOpener,
) -> None:
    embedder = FlakyEmbedder()
    index = open_index(embedder=lambda: embedder)

    assert index.replace(documents()).ok  # logged and tolerated: the words are indexed
    assert index.vectors_wanted()
    assert vector_count(index) == 0 and index.retrieve("nitrogen", mode=SearchMode.KEYWORD)
    with pytest.raises(EmbeddingModelError, match="out of memory"):
        index.embed_missing()

    embedder.failing = False
    assert index.embed_missing() == 3
    assert by_meaning(index)[0] == "raw/EXP-1/storage.txt"


def test_an_index_without_an_embedder_has_nothing_to_embed(open_index: IndexOpener) -> None:
    index = open_index(embedder=None)
    index.replace(documents())

    assert index.embed_missing() == 0 and vector_count(index) == 0 and not index.vectors_wanted()
