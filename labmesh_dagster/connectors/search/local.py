"""The local content index: SQLite FTS5 ranked by BM25, with facet values and access principals in plain tables.

Its tables all start with ``content_`` so it can live in the catalog's SQLite
file without touching the catalog's own. As in the catalog, several Dagster
run processes write at once: every operation opens its own connection, the
database runs in WAL mode, writers take the lock up front (``BEGIN
IMMEDIATE``) and wait on a busy timeout instead of failing.

A document is one row of ``content_documents`` (its integer ``doc`` is the
FTS rowid), one FTS row (title and text), one row per attribute value in
``content_values`` (so a sample id is matched exactly, as a member of the
document's list, not as a word) and one row per principal of its access list
in ``content_principals`` (``group:genomics``, ``user:ada``). Replacing a
document rewrites all of them in one transaction, so a search never sees half
a document and an id is never listed twice. A viewer's search joins their
principals against ``content_principals`` inside the query, before its
``LIMIT``; a grant or a revoke rewrites an experiment's principal rows alone.

Index files written before access lists carried principals held bare group
names in ``content_groups`` and a ``public`` flag for documents without a
group, which everyone saw. `prepare` migrates such a file in place, once, in
one transaction: each group becomes its principal (``Liver Lab`` ->
``group:liver lab``), and a formerly public document gets an empty list, so
only admins see it until its experiment is published again or
``labmesh access sync`` gives it the catalog's list (its owner and people were
never recorded in the index, and "everyone" is no longer a rule).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

from labmesh_dagster.connectors.search.base import (
    CONTENT_ATTRIBUTES,
    CREATED,
    EXPERIMENT_ID,
    FORMAT,
    NO_FILTER,
    SAMPLE_IDS,
    AttributeType,
    AttributeValue,
    ContentDocument,
    ContentFilter,
    ContentHit,
    ContentIndex,
    IndexReport,
    access_principals,
    check_unique_ids,
    document_problem,
    principals_problem,
    stored_attributes,
    viewer_principals,
)
from labmesh_dagster.connectors.sqlite_files import connect, transaction
from labmesh_dagster.core.access import Viewer, group_principal
from labmesh_dagster.core.text import clean_text

SCHEMA = """
CREATE TABLE IF NOT EXISTS content_documents (
    doc INTEGER PRIMARY KEY,
    document_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    uri TEXT NOT NULL,
    text TEXT NOT NULL,
    attributes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS content_values (
    doc INTEGER NOT NULL,
    name TEXT NOT NULL,
    text_value TEXT,
    number_value REAL
);
CREATE INDEX IF NOT EXISTS content_values_by_text ON content_values (name, text_value, doc);
CREATE INDEX IF NOT EXISTS content_values_by_number ON content_values (name, number_value, doc);
CREATE INDEX IF NOT EXISTS content_values_by_doc ON content_values (doc);
CREATE TABLE IF NOT EXISTS content_principals (
    doc INTEGER NOT NULL,
    principal TEXT NOT NULL,
    PRIMARY KEY (doc, principal)
);
CREATE INDEX IF NOT EXISTS content_principals_by_name ON content_principals (principal, doc);
CREATE VIRTUAL TABLE IF NOT EXISTS content_fts USING fts5(
    title,
    text,
    tokenize = 'porter unicode61'
);
"""

# Title words count twice as much as body words, as a title is what the file is about.
_RANK = "bm25(content_fts, 2.0, 1.0)"
_SNIPPET = "snippet(content_fts, 1, '', '', '…', 24)"
_PLAIN_EXCERPT = 300


def _phrase(term: str) -> str:
    """An FTS5 phrase for one user term; quoting keeps '-', '.', ':' from being read as syntax."""
    return '"' + term.replace('"', '""') + '"'


def match_expression(text: str) -> str | None:
    """Any of the words, as FTS5 MATCH syntax; None when ``text`` has no word to look for.

    Any word matches, as in Kendra, and BM25 ranks documents holding more (and
    rarer) words first.
    """
    terms = [_phrase(term) for term in clean_text(text).split() if re.search(r"\w", term)]
    return " OR ".join(dict.fromkeys(terms)) or None


def _json_value(value: AttributeValue) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _attribute_rows(
    doc: int, attributes: Mapping[str, AttributeValue]
) -> list[tuple[int, str, str | None, float | None]]:
    rows: list[tuple[int, str, str | None, float | None]] = []
    for name, value in attributes.items():
        if isinstance(value, list):
            rows.extend((doc, name, item, None) for item in value)
        elif isinstance(value, datetime):
            rows.append((doc, name, None, value.timestamp()))
        elif isinstance(value, int):
            rows.append((doc, name, None, float(value)))
        else:
            rows.append((doc, name, value, None))
    return rows


class SqliteContentIndex(ContentIndex):
    """The content index in one SQLite file (the catalog's, or its own)."""

    def __init__(
        self, path: str | os.PathLike[str], *, schema: Mapping[str, AttributeType] = CONTENT_ATTRIBUTES
    ) -> None:
        self.path = Path(path)
        self.schema = dict(schema)
        self._prepared = False

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.path)

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.path)

    def prepare(self) -> None:
        """Create the tables (if they are not there yet), migrating an older file; attributes need no declaring."""
        if self._prepared:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            older = _has_table(db, "content_groups")
        if older:  # looked at first, so that preparing an up-to-date file never waits for the write lock
            with self._transaction() as db:
                _migrate_group_lists(db)
        with self._connect() as db:
            db.executescript(SCHEMA)
        self._prepared = True

    def replace(self, documents: Sequence[ContentDocument], *, removed_ids: Sequence[str] = ()) -> IndexReport:
        check_unique_ids(documents)
        self.prepare()
        failed: dict[str, str] = {}
        valid: list[ContentDocument] = []
        for document in documents:
            problem = document_problem(document, self.schema)
            if problem:
                failed[document.id] = problem
            else:
                valid.append(document)
        put = {document.id for document in documents}
        removed = tuple(dict.fromkeys(document_id for document_id in removed_ids if document_id not in put))
        with self._transaction() as db:
            for document in valid:
                self._put(db, document)
            for document_id in removed:
                self._delete(db, document_id)
        return IndexReport(indexed=tuple(document.id for document in valid), failed=failed, deleted=removed)

    def _delete(self, db: sqlite3.Connection, document_id: str) -> int | None:
        row = db.execute("SELECT doc FROM content_documents WHERE document_id = ?", (document_id,)).fetchone()
        if row is None:
            return None
        doc = int(row["doc"])
        db.execute("DELETE FROM content_fts WHERE rowid = ?", (doc,))
        db.execute("DELETE FROM content_values WHERE doc = ?", (doc,))
        db.execute("DELETE FROM content_principals WHERE doc = ?", (doc,))
        db.execute("DELETE FROM content_documents WHERE doc = ?", (doc,))
        return doc

    def _put(self, db: sqlite3.Connection, document: ContentDocument) -> None:
        """Write one document in place of any earlier version, keeping its ``doc`` number."""
        doc = self._delete(db, document.id)
        attributes = stored_attributes(document, self.schema)
        principals = access_principals(document.principals)
        title, text = clean_text(document.title), clean_text(document.text)
        cursor = db.execute(
            """INSERT INTO content_documents (doc, document_id, title, uri, text, attributes)
               VALUES (?, ?, ?, ?, ?, ?)""",
            (
                doc,
                document.id,
                title,
                clean_text(document.uri),
                text,
                json.dumps({name: _json_value(value) for name, value in attributes.items()}, sort_keys=True),
            ),
        )
        doc = int(cursor.lastrowid) if doc is None else doc  # type: ignore[arg-type]
        db.execute("INSERT INTO content_fts (rowid, title, text) VALUES (?, ?, ?)", (doc, title, text))
        db.executemany("INSERT INTO content_values VALUES (?, ?, ?, ?)", _attribute_rows(doc, attributes))
        db.executemany("INSERT INTO content_principals VALUES (?, ?)", [(doc, name) for name in principals])

    def update_access(
        self,
        experiment_id: str,
        principals: Collection[str],
        documents: Callable[[], Sequence[ContentDocument]],
    ) -> IndexReport:
        """Rewrite the principal rows of the experiment's documents, in place: no document is read or put again."""
        self.prepare()
        wanted = access_principals(principals)
        with self._transaction() as db:
            docs = [
                (int(row["doc"]), row["document_id"])
                for row in db.execute(
                    """SELECT d.doc, d.document_id FROM content_values AS v JOIN content_documents AS d ON d.doc = v.doc
                       WHERE v.name = ? AND v.text_value = ? ORDER BY d.document_id""",
                    (EXPERIMENT_ID, experiment_id),
                )
            ]
            problem = principals_problem(principals)
            if problem:
                return IndexReport(failed=dict.fromkeys((document_id for _, document_id in docs), problem))
            for doc, _ in docs:
                db.execute("DELETE FROM content_principals WHERE doc = ?", (doc,))
                db.executemany("INSERT INTO content_principals VALUES (?, ?)", [(doc, name) for name in wanted])
        return IndexReport(indexed=tuple(document_id for _, document_id in docs))

    def search(
        self,
        text: str,
        *,
        filters: ContentFilter = NO_FILTER,
        viewer: Viewer | None = None,
        limit: int = 10,
    ) -> list[ContentHit]:
        if limit < 1:
            return []
        self.prepare()
        expression = match_expression(text)
        if expression is None and text.strip():
            return []  # Only punctuation: there is no word to match, so nothing matches.
        principals = viewer_principals(viewer)
        if expression:
            # Ranked on the FTS table alone, facets and access tested by rowid, and only the hits under the
            # limit joined to their documents: joining first read every match's whole text before the sort.
            clauses, params = self._filter_clauses(filters, principals, "content_fts.rowid")
            sql = f"""SELECT d.*, ranked.rank_value, ranked.excerpt FROM (
                          SELECT content_fts.rowid AS doc, {_RANK} AS rank_value, {_SNIPPET} AS excerpt
                          FROM content_fts WHERE {" AND ".join(["content_fts MATCH ?", *clauses])}
                          ORDER BY rank_value, content_fts.rowid LIMIT ?
                      ) AS ranked JOIN content_documents AS d ON d.doc = ranked.doc
                      ORDER BY ranked.rank_value, d.document_id"""
            params.insert(0, expression)
        else:
            clauses, params = self._filter_clauses(filters, principals, "d.doc")
            sql = f"""SELECT d.*, 0.0 AS rank_value, NULL AS excerpt FROM content_documents AS d
                      WHERE {" AND ".join(clauses) or "1"} ORDER BY d.document_id LIMIT ?"""
        with self._connect() as db:
            rows = db.execute(sql, [*params, limit]).fetchall()
        return [self._hit(row) for row in rows]

    def _filter_clauses(
        self, filters: ContentFilter, principals: Collection[str] | None, doc: str
    ) -> tuple[list[str], list[Any]]:
        """SQL conditions on the document numbered ``doc`` (a column) for the facets and the viewer's principals."""
        clauses: list[str] = []
        params: list[Any] = []
        has_value = f"EXISTS (SELECT 1 FROM content_values AS v WHERE v.doc = {doc} AND v.name = ? AND {{}})"
        for name, value in filters.equalities().items():
            clauses.append(has_value.format("v.text_value = ?"))
            params += [name, value]
        if filters.sample_id is not None:
            clauses.append(has_value.format("v.text_value = ?"))
            params += [SAMPLE_IDS, filters.sample_id]
        if formats := filters.format_values():
            clauses.append(has_value.format("v.text_value IN (SELECT value FROM json_each(?))"))
            params += [FORMAT, json.dumps(list(formats))]
        since, until = filters.created_bounds()
        if since is not None:
            clauses.append(has_value.format("v.number_value >= ?"))
            params += [CREATED, since.timestamp()]
        if until is not None:
            clauses.append(has_value.format("v.number_value <= ?"))
            params += [CREATED, until.timestamp()]
        if principals is not None:
            clauses.append(
                "EXISTS (SELECT 1 FROM content_principals AS p"
                f" WHERE p.doc = {doc} AND p.principal IN (SELECT value FROM json_each(?)))"
            )
            params.append(json.dumps(sorted(principals)))
        return clauses, params

    def _attributes(self, stored: str) -> dict[str, AttributeValue]:
        attributes: dict[str, AttributeValue] = json.loads(stored)
        for name, value in attributes.items():
            if self.schema.get(name) is AttributeType.DATE and isinstance(value, str):
                attributes[name] = datetime.fromisoformat(value)
        return attributes

    def _hit(self, row: sqlite3.Row) -> ContentHit:
        excerpt = row["excerpt"] if row["excerpt"] is not None else row["text"][:_PLAIN_EXCERPT]
        return ContentHit(
            id=row["document_id"],
            title=row["title"],
            uri=row["uri"],
            excerpt=excerpt.strip(),
            # bm25() is lower for better matches; the port's score is higher for better ones.
            score=-float(row["rank_value"]),
            attributes=self._attributes(row["attributes"]),
        )

    def document_ids(self) -> list[str]:
        """Every indexed id, in order: for tests and for checking the index against the manifests."""
        self.prepare()
        with self._connect() as db:
            return [row[0] for row in db.execute("SELECT document_id FROM content_documents ORDER BY document_id")]


def _migrate_group_lists(db: sqlite3.Connection) -> None:
    """Turn an older file's bare group lists into principals and drop its ``public`` flag; nothing if already done.

    Runs inside the caller's write transaction, so of several processes
    preparing at once one migrates and the others find nothing left to do.
    """
    if not _has_table(db, "content_groups"):
        return
    db.execute(
        "CREATE TABLE IF NOT EXISTS content_principals (doc INTEGER NOT NULL, principal TEXT NOT NULL,"
        " PRIMARY KEY (doc, principal))"
    )
    rows = db.execute("SELECT doc, group_name FROM content_groups").fetchall()
    db.executemany(
        "INSERT OR IGNORE INTO content_principals VALUES (?, ?)",
        [(row[0], group_principal(row[1])) for row in rows if row[1].strip()],
    )
    db.execute("DROP TABLE content_groups")
    columns = {row[1] for row in db.execute("PRAGMA table_info(content_documents)")}
    if "public" in columns:
        db.execute("ALTER TABLE content_documents DROP COLUMN public")


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None
