"""A viewer's access is part of the passages' full-text query, and holds through grants, upgrades and many groups.

Pinned here: every passage's FTS row carries its document's principals as
opaque words, so keyword retrieval intersects them with the question's words
inside the query; a grant or a revoke changes what keyword retrieval returns
at once, with no document put again; a passage whose text names another
group's principal grants nothing; a viewer with more principals than fit the
MATCH clause still gets exactly their passages (tested against a list
instead), facets included. Each holds on SQLite and on PostgreSQL (whose
passages keep the same keys as words, though its access is a semi-join on the
principals); and a SQLite index written before the keys existed is upgraded in
place, once, its viewers finding the same passages as before.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from labmesh_dagster.connectors.search.base import ContentDocument, ContentFilter
from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.connectors.search.passage_access import KEY_PRINCIPALS, access_key
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.passages import SearchMode
from labmesh_dagster.semantic.chunking import chunk_file
from labmesh_dagster_tests.connectors.content_indexes import LOCAL_BACKENDS, LocalIndex, local_index

GENOMICIST = Viewer("ada", frozenset({"genomics"}))
PROTEOMICIST = Viewer("pia", frozenset({"proteomics"}))
KEYWORD = SearchMode.KEYWORD
GENOMICS_KEY = access_key("group:genomics")


def document(key: str, text: str, experiment: str, principals: tuple[str, ...]) -> ContentDocument:
    return ContentDocument(
        id=key,
        title=key.rsplit("/", 1)[-1],
        text=text,
        uri=f"file:///{key}",
        attributes={"experiment_id": experiment},
        principals=principals,
        passages=tuple(chunk_file(key, fmt="text", text=text)),
    )


LAB = [
    document(
        "raw/EXP-1/qc.txt", "Sample LIV-07 failed library QC: adapter dimers at 128 bp.", "EXP-1", ("group:genomics",)
    ),
    document(
        "raw/EXP-1/run.txt", "The NovaSeq run gave 92.4% of bases at Q30 or better.", "EXP-1", ("group:genomics",)
    ),
    document(
        "raw/EXP-2/lysis.txt", "Cells lysed in RIPA buffer; protein by BCA assay.", "EXP-2", ("group:proteomics",)
    ),
    document("raw/EXP-2/qc.txt", "Sample PRO-03 passed QC; the NovaSeq was not used.", "EXP-2", ("group:proteomics",)),
    # Bob's notes name the genomicist's principal, and even its key, in their words.
    document(
        "raw/EXP-3/note.txt", f"QC notes naming group:genomics, {GENOMICS_KEY} and user:ada.", "EXP-3", ("user:bob",)
    ),
]
QUESTIONS = ["QC", "NovaSeq Q30", "sample LIV-07", "RIPA buffer", "group genomics", "ada"]


def documents_found(index: LocalIndex, question: str, viewer: Viewer | None, **options: object) -> list[str]:
    hits = index.retrieve(question, viewer=viewer, limit=50, mode=KEYWORD, **options)  # type: ignore[arg-type]
    return [hit.passage.document_id for hit in hits]


@pytest.fixture(params=LOCAL_BACKENDS)
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalIndex]:
    with local_index(request.param, tmp_path, embedder=None) as index:
        assert index.replace(LAB).ok
        yield index


def test_a_viewer_finds_only_passages_of_documents_listing_one_of_their_principals(lab: LocalIndex) -> None:
    assert documents_found(lab, "QC", GENOMICIST) == ["raw/EXP-1/qc.txt"]
    assert documents_found(lab, "QC", PROTEOMICIST) == ["raw/EXP-2/qc.txt"]
    assert set(documents_found(lab, "QC", None)) == {"raw/EXP-1/qc.txt", "raw/EXP-2/qc.txt", "raw/EXP-3/note.txt"}


def test_a_passage_naming_a_principal_in_its_text_grants_nothing(lab: LocalIndex) -> None:
    for question in ["group genomics", "group:genomics", "ada", "QC", GENOMICS_KEY]:
        assert "raw/EXP-3/note.txt" not in documents_found(lab, question, GENOMICIST)
    assert documents_found(lab, "group genomics", Viewer("bob", frozenset())) == ["raw/EXP-3/note.txt"]


def test_a_grant_and_a_revoke_change_keyword_retrieval_at_once(lab: LocalIndex) -> None:
    assert documents_found(lab, "RIPA buffer", GENOMICIST) == []

    granted = lab.update_access("EXP-2", ["group:proteomics", "group:genomics"], lambda: [])
    assert set(granted.indexed) == {"raw/EXP-2/lysis.txt", "raw/EXP-2/qc.txt"}
    assert documents_found(lab, "RIPA buffer", GENOMICIST) == ["raw/EXP-2/lysis.txt"]
    assert set(documents_found(lab, "QC", GENOMICIST)) == {"raw/EXP-1/qc.txt", "raw/EXP-2/qc.txt"}

    lab.update_access("EXP-2", ["group:genomics"], lambda: [])
    assert documents_found(lab, "RIPA buffer", PROTEOMICIST) == []
    assert documents_found(lab, "RIPA buffer", GENOMICIST) == ["raw/EXP-2/lysis.txt"]
    (hit,) = lab.retrieve("RIPA buffer", viewer=GENOMICIST, mode=KEYWORD)
    assert hit.passage.text == "Cells lysed in RIPA buffer; protein by BCA assay."  # the words kept with the keys


def test_a_viewer_with_many_principals_gets_exactly_theirs_facets_included(lab: LocalIndex) -> None:
    others = {f"team-{n}" for n in range(KEY_PRINCIPALS + 1)}
    many_genomics = Viewer("ada", frozenset({"genomics", *others}))
    many_none = Viewer("eve", frozenset(others))
    assert len(many_none.principals) > KEY_PRINCIPALS

    assert documents_found(lab, "QC", many_genomics) == ["raw/EXP-1/qc.txt"]
    assert documents_found(lab, "QC", many_none) == []
    one_experiment = ContentFilter(experiment_id="EXP-2")
    assert documents_found(lab, "QC NovaSeq", many_genomics, filters=one_experiment) == []
    assert documents_found(lab, "QC NovaSeq", PROTEOMICIST, filters=one_experiment) == ["raw/EXP-2/qc.txt"]


def test_an_index_from_before_the_keys_is_upgraded_in_place_and_finds_the_same_passages(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    index = SqliteContentIndex(path, embedder=None)
    index.replace(LAB)
    viewers = [GENOMICIST, PROTEOMICIST, Viewer("bob", frozenset()), None]
    before = {
        (question, n): documents_found(index, question, viewer)
        for question in QUESTIONS
        for n, viewer in enumerate(viewers)
    }
    db = sqlite3.connect(path)  # the passages' FTS table as it was written before it had keys
    db.executescript(
        """DROP TABLE content_passages_fts;
           CREATE VIRTUAL TABLE content_passages_fts USING fts5(
               title, text, doc UNINDEXED, tokenize = 'porter unicode61'
           );
           INSERT INTO content_passages_fts (rowid, title, text, doc)
               SELECT p.passage, d.title, p.text, p.doc
               FROM content_passages AS p JOIN content_documents AS d USING (doc);"""
    )
    db.close()

    upgraded = SqliteContentIndex(path, embedder=None)
    after = {
        (question, n): documents_found(upgraded, question, viewer)
        for question in QUESTIONS
        for n, viewer in enumerate(viewers)
    }

    assert after == before
    assert any(after.values())
    db = sqlite3.connect(path)
    columns = [row[1] for row in db.execute("PRAGMA table_info(content_passages_fts)")]
    rows = db.execute("SELECT count(*) FROM content_passages_fts").fetchone()[0]
    db.close()
    assert columns == ["title", "text", "doc", "keys"]
    assert rows == len(LAB)
    again = SqliteContentIndex(path, embedder=None)
    assert documents_found(again, "QC", GENOMICIST) == ["raw/EXP-1/qc.txt"]
