"""Writing documents to the PostgreSQL content index: rows made outside the transaction, written in batches inside.

A `replace` cuts every document's title, text, passages and access keys into
words first (`postgres_words`), with no lock held; then, in one transaction
under the index's write lock, it deletes what the documents' earlier versions
left (their passages, values, principals), updates the documents that exist in
place (each keeps its ``doc`` number, as in SQLite), inserts the new ones in
the order given, and copies every passage, value and principal row in with
``COPY``: a thousand-file publish is a handful of statements, not thousands.
The counts BM25 reads of the whole index (`postgres_schema`) move by what the
transaction added and removed, and the passages' version changes, so every
process loads its matrix again.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from labmesh_dagster.connectors.search.base import AttributeType, ContentDocument, access_principals, stored_attributes
from labmesh_dagster.connectors.search.passage_access import passage_keys
from labmesh_dagster.connectors.search.passage_vectors import Vectors
from labmesh_dagster.connectors.search.postgres_schema import (
    DOCUMENT_WORDS,
    DOCUMENTS,
    PASSAGE_WORDS,
    PASSAGES,
    PASSAGES_VERSION,
    VECTORS_WANTED,
)
from labmesh_dagster.connectors.search.postgres_words import lexemes_of, vector
from labmesh_dagster.connectors.search.stored_passages import (
    DOC_SHIFT,
    StoredPassage,
    attribute_rows,
    attributes_json,
)
from labmesh_dagster.core.text import clean_text

WRITE_LOCK = 0x1AB3C0
"""The advisory lock every write of the content index takes, as SQLite's ``BEGIN IMMEDIATE`` serialises writers:
two runs putting the same id take turns (the second finds the first's row and replaces it), and a vector one
write releases is never one another write counts on."""


def storable(document: ContentDocument) -> ContentDocument:
    """The document with NUL characters in its texts as U+FFFD: PostgreSQL's text cannot hold NUL (FTS5 reads
    both as a space between words, so its words are the same)."""
    if "\x00" not in document.title + document.text + document.uri and not any(
        "\x00" in passage.text for passage in document.passages
    ):
        return document
    return replace(
        document,
        title=document.title.replace("\x00", "\ufffd"),
        text=document.text.replace("\x00", "\ufffd"),
        uri=document.uri.replace("\x00", "\ufffd"),
        passages=tuple(replace(passage, text=passage.text.replace("\x00", "\ufffd")) for passage in document.passages),
    )


def storage_problem(document: ContentDocument) -> str | None:
    """Why PostgreSQL cannot keep a document the port allows, or None: a NUL in its id or a facet value."""
    if "\x00" in document.id:
        return "document id holds a NUL character, which PostgreSQL cannot store"
    for name, value in document.attributes.items():
        values = value if isinstance(value, list) else [value]
        if any(isinstance(item, str) and "\x00" in item for item in values):
            return f"attribute {name} holds a NUL character, which PostgreSQL cannot store"
    return None


@dataclass(frozen=True)
class PassageRow:
    """A passage's row but for its numbers: its words as tsvector literals, its length and its keys' count."""

    ordinal: int
    text: str
    location: str
    text_hash: str
    words: int
    keys: int
    title_words: str
    text_words: str
    keys_words: str


@dataclass(frozen=True)
class DocumentRow:
    """A document's row, its facet values, principals and passages, ready to write."""

    document_id: str
    title: str
    uri: str
    text: str
    attributes: str
    words: int
    title_words: str
    text_words: str
    values: list[tuple[str, str | None, float | None]]
    principals: tuple[str, ...]
    passages: list[PassageRow]


@dataclass(frozen=True)
class KeyWords:
    """A document's access keys as a passage's ``keys`` column holds them: tsvector literal and count."""

    vector: str
    count: int


def key_words(principals: Collection[str]) -> KeyWords:
    (found,) = lexemes_of([passage_keys(principals)])
    return KeyWords(vector(found), len(found))


def document_rows(
    documents: Sequence[ContentDocument],
    passages: Mapping[str, Sequence[StoredPassage]],
    schema: Mapping[str, AttributeType],
) -> list[DocumentRow]:
    """The rows of valid documents and their stored passages, every text cut into words in one go."""
    texts: list[str] = []
    for document in documents:
        principals = access_principals(document.principals)
        texts += [clean_text(document.title), clean_text(document.text), passage_keys(principals)]
        texts += [stored.passage.text for stored in passages[document.id] if stored.passage is not None]
    cut = iter(lexemes_of(texts))
    rows: list[DocumentRow] = []
    for document in documents:
        attributes = stored_attributes(document, schema)
        title, text, keys = next(cut), next(cut), next(cut)
        title_words, keys_words = vector(title), vector(keys)
        passage_rows: list[PassageRow] = []
        for stored in passages[document.id]:
            passage = stored.passage
            assert passage is not None
            words = next(cut)
            passage_rows.append(
                PassageRow(
                    ordinal=passage.ordinal,
                    text=passage.text,
                    location=json.dumps(passage.location.to_dict()),
                    text_hash=stored.text_hash,
                    words=len(title) + len(words),
                    keys=len(keys),
                    title_words=title_words,
                    text_words=vector(words),
                    keys_words=keys_words,
                )
            )
        rows.append(
            DocumentRow(
                document_id=document.id,
                title=clean_text(document.title),
                uri=clean_text(document.uri),
                text=clean_text(document.text),
                attributes=attributes_json(attributes),
                words=len(title) + len(text),
                title_words=title_words,
                text_words=vector(text),
                values=[(name, text, number) for _, name, text, number in attribute_rows(0, attributes)],
                principals=access_principals(document.principals),
                passages=passage_rows,
            )
        )
    return rows


def lock(db: Any) -> None:
    """Take the index's write lock until the transaction ends."""
    db.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))


def add_to_state(db: Any, changes: Mapping[str, int]) -> None:
    """Move the named numbers by ``changes`` (what the transaction added, less what it took away)."""
    moved = [(change, name) for name, change in changes.items() if change]
    if moved:
        with db.cursor() as cursor:
            cursor.executemany("UPDATE content_state SET value = value + %s WHERE name = %s", moved)


def set_state(db: Any, name: str, value: int) -> None:
    db.execute("UPDATE content_state SET value = %s WHERE name = %s", (value, name))


def bump(db: Any) -> None:
    """Mark the passages changed: random, not counted, so a process's kept matrix of any other state is stale."""
    set_state(db, PASSAGES_VERSION, secrets.randbits(62))


def write_documents(db: Any, rows: Sequence[DocumentRow], removed: Sequence[str]) -> set[str]:
    """Put ``rows`` in place of their earlier versions and delete the documents ``removed``, inside the caller's
    transaction (holding `lock`); returns the hashes of the passages taken away, whose vectors may be unused."""
    existing = {
        row["document_id"]: int(row["doc"])
        for row in db.execute(
            "SELECT doc, document_id FROM content_documents WHERE document_id = ANY(%s::text[])",
            ([row.document_id for row in rows] + list(removed),),
        )
    }
    touched = sorted(existing.values())
    old_documents = db.execute(
        "SELECT count(*) AS n, coalesce(sum(words), 0) AS words FROM content_documents WHERE doc = ANY(%s)",
        (touched,),
    ).fetchone()
    old_passages = db.execute(
        """SELECT count(*) AS n, coalesce(sum(words + keys), 0) AS words,
                  coalesce(array_agg(DISTINCT text_hash), '{}') AS hashes
           FROM content_passages WHERE doc = ANY(%s)""",
        (touched,),
    ).fetchone()
    for table in ("content_passages", "content_values", "content_principals"):
        db.execute(f"DELETE FROM {table} WHERE doc = ANY(%s)", (touched,))
    gone = [existing[document_id] for document_id in removed if document_id in existing]
    db.execute("DELETE FROM content_documents WHERE doc = ANY(%s)", (gone,))
    docs = _documents(db, rows, existing)
    _copy(
        db,
        "content_values (doc, name, text_value, number_value)",
        [(doc, *value) for doc, row in zip(docs, rows, strict=True) for value in row.values],
    )
    _copy(
        db,
        "content_principals (doc, principal)",
        [(doc, principal) for doc, row in zip(docs, rows, strict=True) for principal in row.principals],
    )
    _copy(
        db,
        "content_passages (passage, doc, ordinal, text, location, text_hash, words, keys, title_words, text_words,"
        " keys_words)",
        [
            (
                (doc << DOC_SHIFT) | passage.ordinal,
                doc,
                passage.ordinal,
                passage.text,
                passage.location,
                passage.text_hash,
                passage.words,
                passage.keys,
                passage.title_words,
                passage.text_words,
                passage.keys_words,
            )
            for doc, row in zip(docs, rows, strict=True)
            for passage in row.passages
        ],
    )
    add_to_state(
        db,
        {
            DOCUMENTS: len(rows) - int(old_documents["n"]),
            DOCUMENT_WORDS: sum(row.words for row in rows) - int(old_documents["words"]),
            PASSAGES: sum(len(row.passages) for row in rows) - int(old_passages["n"]),
            PASSAGE_WORDS: sum(passage.words + passage.keys for row in rows for passage in row.passages)
            - int(old_passages["words"]),
        },
    )
    return set(old_passages["hashes"])


def _documents(db: Any, rows: Sequence[DocumentRow], existing: Mapping[str, int]) -> list[int]:
    """Each row's ``doc``: an existing document's row is updated in place, a new one inserted (numbered in turn)."""
    columns = ("title", "uri", "text", "attributes", "words", "title_words", "text_words")

    def values(row: DocumentRow) -> dict[str, Any]:
        return {column: getattr(row, column) for column in (*columns, "document_id")}

    updated = [row for row in rows if row.document_id in existing]
    new = [row for row in rows if row.document_id not in existing]
    with db.cursor() as cursor:
        if updated:
            cursor.executemany(
                """UPDATE content_documents SET title = %(title)s, uri = %(uri)s, text = %(text)s,
                       attributes = %(attributes)s, words = %(words)s, title_words = %(title_words)s::tsvector,
                       text_words = %(text_words)s::tsvector
                   WHERE document_id = %(document_id)s""",
                [values(row) for row in updated],
            )
        numbers = dict(existing)
        if new:
            cursor.executemany(
                """INSERT INTO content_documents (document_id, title, uri, text, attributes, words, title_words,
                       text_words)
                   VALUES (%(document_id)s, %(title)s, %(uri)s, %(text)s, %(attributes)s, %(words)s,
                       %(title_words)s::tsvector, %(text_words)s::tsvector)
                   RETURNING doc""",
                [values(row) for row in new],
                returning=True,
            )
            for row in new:
                numbers[row.document_id] = int(cursor.fetchone()["doc"])
                cursor.nextset()
    return [numbers[row.document_id] for row in rows]


def _copy(db: Any, target: str, rows: Sequence[tuple[Any, ...]]) -> None:
    if not rows:
        return
    with db.cursor() as cursor, cursor.copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def put_vectors(db: Any, model: str, vectors: Vectors) -> None:
    if not vectors:
        return
    with db.cursor() as cursor:
        cursor.executemany(
            """INSERT INTO content_vectors (text_hash, model, scale, vector) VALUES (%s, %s, %s, %s)
               ON CONFLICT (text_hash) DO NOTHING""",
            [(key, model, scale, blob) for key, (scale, blob) in vectors.items()],
        )


def release_vectors(db: Any, hashes: Collection[str]) -> None:
    """Delete the vectors of ``hashes`` that no passage uses any more."""
    if hashes:
        db.execute(
            """DELETE FROM content_vectors AS v WHERE v.text_hash = ANY(%s::text[])
               AND NOT EXISTS (SELECT 1 FROM content_passages AS p WHERE p.text_hash = v.text_hash)""",
            (sorted(hashes),),
        )


def lacking_vectors(db: Any, hashes: Collection[str]) -> bool:
    """Whether a passage of ``hashes`` has no vector (read under the write lock: what the transaction leaves)."""
    if not hashes:
        return False
    row = db.execute(
        """SELECT EXISTS (SELECT 1 FROM unnest(%s::text[]) AS h(text_hash)
               WHERE NOT EXISTS (SELECT 1 FROM content_vectors AS v WHERE v.text_hash = h.text_hash)) AS lacking""",
        (sorted(hashes),),
    ).fetchone()
    return bool(row["lacking"])


def want_vectors(db: Any) -> None:
    set_state(db, VECTORS_WANTED, 1)


def rewrite_access(db: Any, docs: Sequence[int], principals: Sequence[str]) -> None:
    """Give documents ``docs`` the access list ``principals``: their principal rows and their passages' keys."""
    keys = key_words(principals)
    old = db.execute(
        "SELECT count(*) AS n, coalesce(sum(keys), 0) AS keys FROM content_passages WHERE doc = ANY(%s)", (docs,)
    ).fetchone()
    db.execute("DELETE FROM content_principals WHERE doc = ANY(%s)", (list(docs),))
    _copy(db, "content_principals (doc, principal)", [(doc, principal) for doc in docs for principal in principals])
    db.execute(
        "UPDATE content_passages SET keys_words = %s::tsvector, keys = %s WHERE doc = ANY(%s)",
        (keys.vector, keys.count, list(docs)),
    )
    add_to_state(db, {PASSAGE_WORDS: int(old["n"]) * keys.count - int(old["keys"])})
