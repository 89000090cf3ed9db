"""A local content index file from before access lists held principals is migrated in place, failing closed.

Such a file kept bare group names (``Liver Lab``) in ``content_groups`` and a
``public`` flag for documents without a group, which everyone saw. Opened
now, each group becomes its principal (``group:liver lab``), so the group's
members still find their files; a formerly public document is left to admins
(its owner was never recorded in the index) until `update_access` or a
publish gives it the catalog's list; nothing is lost, the old table and flag
are gone, and opening the file again changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.core.access import Viewer

# The layout labmesh wrote before principals (commit b1b467b), as it was.
OLD_SCHEMA = """
CREATE TABLE content_documents (
    doc INTEGER PRIMARY KEY, document_id TEXT NOT NULL UNIQUE, title TEXT NOT NULL, uri TEXT NOT NULL,
    text TEXT NOT NULL, attributes TEXT NOT NULL, public INTEGER NOT NULL
);
CREATE TABLE content_values (doc INTEGER NOT NULL, name TEXT NOT NULL, text_value TEXT, number_value REAL);
CREATE INDEX content_values_by_text ON content_values (name, text_value, doc);
CREATE INDEX content_values_by_number ON content_values (name, number_value, doc);
CREATE INDEX content_values_by_doc ON content_values (doc);
CREATE TABLE content_groups (doc INTEGER NOT NULL, group_name TEXT NOT NULL, PRIMARY KEY (doc, group_name));
CREATE INDEX content_groups_by_name ON content_groups (group_name, doc);
CREATE VIRTUAL TABLE content_fts USING fts5(title, text, tokenize = 'porter unicode61');
"""

GROUPED = "raw/EXP-1/notes.txt"
PUBLIC = "raw/EXP-2/readme.txt"


def old_index(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    for doc, (document_id, experiment, group) in enumerate(
        [(GROUPED, "EXP-1", "Liver  Lab"), (PUBLIC, "EXP-2", None)], start=1
    ):
        attributes = {"experiment_id": experiment}
        db.execute(
            "INSERT INTO content_documents VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                doc,
                document_id,
                document_id,
                f"file:///{document_id}",
                "tissue notes",
                json.dumps(attributes),
                0 if group else 1,
            ),
        )
        db.execute("INSERT INTO content_fts (rowid, title, text) VALUES (?, ?, ?)", (doc, document_id, "tissue notes"))
        db.execute("INSERT INTO content_values VALUES (?, 'experiment_id', ?, NULL)", (doc, experiment))
        if group:
            db.execute("INSERT INTO content_groups VALUES (?, ?)", (doc, group))
    db.commit()
    db.close()


def found(index: SqliteContentIndex, viewer: Viewer | None) -> set[str]:
    return {hit.id for hit in index.search("tissue", viewer=viewer)}


def test_an_old_index_is_migrated_in_place_and_formerly_public_documents_go_to_admins(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    old_index(path)

    index = SqliteContentIndex(path)

    assert index.document_ids() == [GROUPED, PUBLIC]  # nothing lost
    assert found(index, Viewer("bob", frozenset({"liver lab"}))) == {GROUPED}
    assert found(index, Viewer("eve")) == set()  # "public" no longer means everyone
    assert found(index, Viewer("root", admin=True)) == found(index, None) == {GROUPED, PUBLIC}
    db = sqlite3.connect(path)
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    columns = {row[1] for row in db.execute("PRAGMA table_info(content_documents)")}
    principals = db.execute("SELECT doc, principal FROM content_principals ORDER BY doc").fetchall()
    db.close()
    assert "content_groups" not in tables and "public" not in columns
    assert principals == [(1, "group:liver lab")]


def test_the_catalogs_list_reaches_a_migrated_document_and_opening_again_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    old_index(path)
    SqliteContentIndex(path).prepare()

    again = SqliteContentIndex(path)
    report = again.update_access("EXP-2", {"user:ada"}, lambda: [])

    assert report.indexed == (PUBLIC,)
    assert found(again, Viewer("ada")) == {PUBLIC}
    assert found(again, Viewer("bob", frozenset({"Liver Lab"}))) == {GROUPED}
    assert again.document_ids() == [GROUPED, PUBLIC]
