"""What only the PostgreSQL content index does: it is shared by processes that write and read it at once.

The behaviour it shares with SQLite is pinned by the content index contract
suites and `test_postgres_content_index_parity`. Pinned here: a second index
object on the same database (another process's view) sees what the first
wrote at its next call: new documents by words and by meaning (its kept matrix
is loaded again), removed ones gone, a grant, vectors `embed_missing` made
elsewhere; a document another Python process puts is found by meaning here;
several writers putting the same ids at once leave one document per id and the
counts BM25 reads equal to the tables'; text PostgreSQL cannot hold (NUL) is
kept as a space between words, or refused by name where it is an id; a long
document is found by its last word and by a token longer than a lexeme may be,
as in SQLite; a URL that is not PostgreSQL's is refused, and a database that
cannot be reached is the port's `ContentIndexUnavailable`.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from labmesh_dagster.connectors import postgres as postgres_connections
from labmesh_dagster.connectors.postgres import DatabaseUrlError, connect
from labmesh_dagster.connectors.search.base import ContentDocument, ContentIndexUnavailable
from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.connectors.search.postgres import PostgresContentIndex
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.passages import SearchMode
from labmesh_dagster_tests.connectors.content_indexes import lose_vectors
from labmesh_dagster_tests.connectors.test_content_index_passages import GENOMICIST, document, lab_documents
from labmesh_dagster_tests.postgres_databases import fresh_database

REPOSITORY = Path(__file__).resolve().parents[2]
PRESERVED = "how were tissue specimens preserved"
STORAGE = "raw/EXP-1/storage.txt"


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_database("labmesh_content_test") as made:
        yield made


def by_meaning(index: PostgresContentIndex, question: str = PRESERVED, viewer: Viewer | None = None) -> list[str]:
    hits = index.retrieve(question, viewer=viewer, limit=3, mode=SearchMode.DENSE)
    return [hit.passage.document_id for hit in hits]


def test_a_second_index_object_sees_what_the_first_wrote_its_matrix_included(url: str) -> None:
    first, second = PostgresContentIndex(url), PostgresContentIndex(url)
    others = [doc for doc in lab_documents() if doc.id != STORAGE]
    first.replace(others)
    assert STORAGE not in by_meaning(second)  # the second's matrix is loaded, without the storage notes
    before = len(second.vector_matrix())

    (storage,) = [doc for doc in lab_documents() if doc.id == STORAGE]
    first.replace([storage])

    assert by_meaning(second)[0] == STORAGE
    assert len(second.vector_matrix()) == before + 1
    assert [hit.id for hit in second.search("nitrogen")] == [STORAGE]

    first.update_access("EXP-1", ["group:imaging"], lambda: [])
    assert by_meaning(second, viewer=GENOMICIST) == []
    assert by_meaning(second, viewer=Viewer("ian", frozenset({"imaging"})))[0] == STORAGE

    first.replace([], removed_ids=[STORAGE])
    assert STORAGE not in by_meaning(second)
    assert second.search("nitrogen") == []


def test_vectors_made_by_another_index_object_are_ranked_at_once(url: str) -> None:
    first, second = PostgresContentIndex(url), PostgresContentIndex(url)
    first.replace(lab_documents())
    lose_vectors(first)
    assert by_meaning(second) == []  # its matrix is loaded, empty

    assert first.embed_missing() == len(lab_documents())

    assert by_meaning(second)[0] == STORAGE


def test_a_document_another_process_puts_is_found_here_by_meaning(url: str) -> None:
    here = PostgresContentIndex(url)
    here.replace([doc for doc in lab_documents() if doc.id != STORAGE])
    assert STORAGE not in by_meaning(here)
    writer = textwrap.dedent(
        f"""
        from labmesh_dagster.connectors.search.postgres import PostgresContentIndex
        from labmesh_dagster_tests.connectors.test_content_index_passages import lab_documents

        (storage,) = [doc for doc in lab_documents() if doc.id == {STORAGE!r}]
        assert PostgresContentIndex({url!r}).replace([storage]).ok
        """
    )

    subprocess.run([sys.executable, "-c", writer], cwd=REPOSITORY, check=True, timeout=120)

    assert by_meaning(here)[0] == STORAGE


def state_and_tables(url: str) -> tuple[dict[str, int], dict[str, int]]:
    """The counts the index keeps for BM25, and the same counted from its tables."""
    with connect(url) as db:
        kept = {row["name"]: int(row["value"]) for row in db.execute("SELECT name, value FROM content_state")}
        documents = db.execute("SELECT count(*) AS n, coalesce(sum(words), 0) AS w FROM content_documents").fetchone()
        passages = db.execute(
            "SELECT count(*) AS n, coalesce(sum(words + keys), 0) AS w FROM content_passages"
        ).fetchone()
    names = ("documents", "document_words", "passages", "passage_words")
    return {name: kept[name] for name in names}, dict(
        zip(names, (documents["n"], documents["w"], passages["n"], passages["w"]), strict=True)
    )


def test_writers_putting_the_same_ids_at_once_leave_one_document_each(url: str) -> None:
    PostgresContentIndex(url, embedder=None).prepare()
    shared = ["raw/EXP-1/shared-1.txt", "raw/EXP-1/shared-2.txt"]
    failures: list[BaseException] = []

    def writer(number: int) -> None:
        index = PostgresContentIndex(url, embedder=None)
        try:
            for round_ in range(6):
                text = f"Writer {number} round {round_} wrote this buffer note."
                own = document(f"raw/EXP-1/writer-{number}.txt", text, "EXP-1", "genomics")
                index.replace([own, *(document(key, text, "EXP-1", "genomics") for key in shared)])
                if round_ % 2:
                    index.replace([], removed_ids=[own.id])
                index.update_access("EXP-1", ["group:genomics", f"user:writer{number}"], lambda: [])
        except BaseException as error:  # noqa: BLE001 - reported by the test's thread, not lost
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    index = PostgresContentIndex(url, embedder=None)
    ids = index.document_ids()
    assert ids == sorted(set(ids)) and set(shared) <= set(ids)
    assert len(index.retrieve("buffer note", limit=50, mode=SearchMode.KEYWORD)) == len(ids)
    kept, counted = state_and_tables(url)
    assert kept == counted


def test_text_postgres_cannot_hold_is_kept_as_a_space_or_refused_by_name(url: str) -> None:
    index = PostgresContentIndex(url, embedder=None)
    with_nul = ContentDocument(id="raw/EXP-1/binary.txt", title="binary.txt", text="header\x00payload", uri="file:///b")
    nul_id = ContentDocument(id="raw/EXP-1/bad\x00name.txt", title="bad.txt", text="payload", uri="file:///c")
    nul_value = ContentDocument(
        id="raw/EXP-1/odd.txt", title="odd.txt", text="payload", uri="file:///d", attributes={"platform": "Nova\x00"}
    )

    report = index.replace([with_nul, nul_id, nul_value])

    assert report.indexed == (with_nul.id,)
    assert "NUL" in report.failed[nul_id.id] and "platform" in report.failed[nul_value.id]
    assert [hit.id for hit in index.search("payload")] == [with_nul.id]
    (hit,) = index.retrieve("header", mode=SearchMode.KEYWORD)
    assert hit.passage.text == "header\ufffdpayload"


def test_a_long_document_is_found_by_its_last_word_and_by_a_very_long_token(url: str, tmp_path: Path) -> None:
    token = "ACGT" * 800  # 3,200 letters: longer than a PostgreSQL lexeme may be
    text = " ".join(f"reading{n % 700}" for n in range(20_000)) + f" {token} zebrafish"
    long = ContentDocument(id="raw/EXP-1/long.txt", title="long.txt", text=text, uri="file:///long")
    short = ContentDocument(id="raw/EXP-1/short.txt", title="short.txt", text="reading1 reading2", uri="file:///s")
    postgres = PostgresContentIndex(url, embedder=None)
    sqlite = SqliteContentIndex(tmp_path / "catalog.sqlite", embedder=None)

    for index in (postgres, sqlite):
        assert index.replace([long, short]).ok
    for question in ("zebrafish", token, token.lower()):
        assert [hit.id for hit in postgres.search(question)] == [long.id]
        assert [hit.id for hit in sqlite.search(question)] == [long.id]


def test_a_url_that_is_not_postgresql_is_refused() -> None:
    with pytest.raises(DatabaseUrlError, match="expected a postgresql:// URL"):
        PostgresContentIndex("sqlite:///catalog.sqlite")


def test_a_database_that_cannot_be_reached_is_the_ports_unavailable_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_connections, "FIRST_PAUSE_SECONDS", 0.0)
    index = PostgresContentIndex("postgresql://labmesh:secret@127.0.0.1:1/labmesh", embedder=None)

    with pytest.raises(ContentIndexUnavailable, match="could not be reached|cannot be reached") as raised:
        index.search("tissue")

    assert "secret" not in str(raised.value)
