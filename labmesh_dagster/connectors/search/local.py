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

Passages (`retrieve`) live beside the documents: one row each in
``content_passages`` (its document's ``doc``, ordinal, text, place in the file
and the hash of what was embedded), one row in ``content_passages_fts`` for
BM25 (its ``doc`` unindexed, and its document's principals as opaque words
in ``keys``: `passage_access`), and a vector in ``content_vectors``,
int8, keyed by that hash: putting a document whose passages did not change
embeds nothing, and a vector no passage uses any more is deleted. Dense
ranking scores an in-memory matrix of the vectors (loaded once per change of
the passages, shared by every index object of the file in the process),
masked by the documents the same conditions allow, before ranking; `HYBRID`
fuses both rankings by reciprocal rank, each place weighted by how well its
passage matched (its cosine; its BM25 score as a share of the question's IDF
mass), as plain RRF let a keyword ranking of stray words outvote the dense
one on a paraphrased question (`semantic.fusion`).

A viewer with few principals has their access in the keyword ranking's MATCH
(``keys : (k1 OR k2)``), so FTS5 intersects doclists and never reads a
passage they may not see; a grant or a revoke (`update_access`) writes the
document's passages' FTS rows again with their new keys, in the transaction
that rewrites its principal rows. Facets, and a viewer with many principals,
are tested on the FTS rowid: a passage's number is its document's shifted
left with its ordinal below (``doc << 20 | ordinal``), tested against the
list of documents they allow, read once per retrieval from the principals'
index (the dense ranking's mask is that list too). The keys count in BM25's
length of a passage (a word or two against tens) but score nothing. A word
most passages hold gives way to the question's rarer words (or, alone, ranks
the newest matches the viewer may see, read and scored in one walk), as BM25
cannot order passages by it yet would score them all. Embedding happens in `replace`, before
its write transaction (a publish's passages are embedded without holding the
write lock). A file written before passages existed gets them in `prepare`,
once, cut from each document's text by lines; their vectors come when the
document is put again, or from `embed_missing`. A file written before the
keys gets its passages' FTS table made again with them in `prepare`, once.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
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
    ContentDocument,
    ContentFilter,
    ContentHit,
    IndexReport,
    access_principals,
    principals_problem,
    stored_attributes,
    viewer_principals,
)
from labmesh_dagster.connectors.search.passage_access import access_clause, passage_keys
from labmesh_dagster.connectors.search.passage_index import PassageIndex
from labmesh_dagster.connectors.search.passage_vectors import (
    MatrixCache,
    Vectors,
    embedded_vectors,
    matrix_of,
    new_passage_vectors,
)
from labmesh_dagster.connectors.search.question_words import QUESTION_WORDS, question_terms, search_terms
from labmesh_dagster.connectors.search.stored_passages import (
    CANDIDATES,
    COMMON_MATCHES,
    COMMON_WINDOW,
    DOC_SHIFT,
    INLINE_VECTORS,
    PLAIN_EXCERPT,
    EmbedderFactory,
    StoredPassage,
    attribute_rows,
    attributes_json,
    decoded_attributes,
    embedded_text,
    passage_hit,
    stored_passages,
)
from labmesh_dagster.connectors.sqlite_files import connect, transaction
from labmesh_dagster.core.access import Viewer, group_principal
from labmesh_dagster.core.passages import PassageHit, SearchMode
from labmesh_dagster.core.text import clean_text
from labmesh_dagster.semantic.embedding import DIMENSION, default_embedder
from labmesh_dagster.semantic.fusion import weighted_rank_fusion
from labmesh_dagster.semantic.match_strength import bm25_idf, keyword_strength
from labmesh_dagster.semantic.vectors import VectorMatrix

PASSAGES_FTS = """CREATE VIRTUAL TABLE IF NOT EXISTS content_passages_fts USING fts5(
    title,
    text,
    doc UNINDEXED,
    keys,
    tokenize = 'porter unicode61'
)"""
"""A passage's words, its document's number, and its document's principals as words (`passage_access`)."""

SCHEMA = f"""
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
CREATE TABLE IF NOT EXISTS content_passages (
    passage INTEGER PRIMARY KEY,
    doc INTEGER NOT NULL,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    location TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    UNIQUE (doc, ordinal)
);
CREATE INDEX IF NOT EXISTS content_passages_by_hash ON content_passages (text_hash);
{PASSAGES_FTS};
CREATE TABLE IF NOT EXISTS content_vectors (
    text_hash TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    scale REAL NOT NULL,
    vector BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS content_state (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

_PASSAGES_VERSION = "passages_version"
"""A random number written whenever passages or vectors change: an in-memory matrix of another is stale."""
_PASSAGES_CUT = "passages_cut"
"""`PASSAGE_LAYOUT` once every document of the file has its passages (an older file's are cut in `prepare`)."""

PASSAGE_LAYOUT = 2
"""Passages numbered ``doc << DOC_SHIFT | ordinal`` (layout 1, for an hour of development, counted them from 1)."""

_VECTORS_WANTED = "vectors_wanted"
"""1 while passages may lack a vector (set by `replace` leaving some, cleared by `embed_missing` finding none):
what the ``content_vectors`` sensor reads on each tick, instead of looking for such passages."""

_MATRICES = MatrixCache()
"""Each index file's matrix, shared by every index object of the file in the process."""

__all__ = ["INLINE_VECTORS", "QUESTION_WORDS", "EmbedderFactory", "SqliteContentIndex", "match_expression"]
"""What others import from here; the passages' limits and hashing live in `stored_passages`, shared with the
PostgreSQL index."""

# Title words count twice as much as body words, as a title is what the file is about.
_RANK = "bm25(content_fts, 2.0, 1.0)"
_PASSAGE_RANK = "bm25(content_passages_fts, 2.0, 1.0, 0.0, 0.0)"
_SNIPPET = "snippet(content_fts, 1, '', '', '…', 24)"


def _phrase(term: str) -> str:
    """An FTS5 phrase for one user term; quoting keeps '-', '.', ':' from being read as syntax."""
    return '"' + term.replace('"', '""') + '"'


def question_phrases(text: str) -> list[str]:
    """The FTS5 phrases of a question's content words (all its words when it has no other), each once."""
    return [_phrase(term) for term in question_terms(text)]


def match_expression(text: str) -> str | None:
    """Any of the words, as FTS5 MATCH syntax; None when ``text`` has no word to look for.

    Any word matches, as in Kendra, and BM25 ranks documents holding more (and
    rarer) words first.
    """
    return " OR ".join(_phrase(term) for term in search_terms(text)) or None


class SqliteContentIndex(PassageIndex):
    """The content index in one SQLite file (the catalog's, or its own)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        schema: Mapping[str, AttributeType] = CONTENT_ATTRIBUTES,
        embedder: EmbedderFactory | None = default_embedder,
        inline_vectors: int = INLINE_VECTORS,
    ) -> None:
        super().__init__(schema=schema, embedder=embedder, inline_vectors=inline_vectors)
        self.path = Path(path)
        self._prepared = False
        self._matrix_key: str | None = None

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
            keyed = _has_passage_keys(db)
            cut = _state(db, _PASSAGES_CUT) == PASSAGE_LAYOUT
            flagged = _state(db, _VECTORS_WANTED) is not None
        if not keyed:
            with self._transaction() as db:
                _add_passage_keys(db)
        if not cut:
            with self._transaction() as db:
                _cut_older_documents(db, self.model_id)
        if not flagged:  # a new file, or one from before the flag: looked at once
            with self._transaction() as db:
                if _state(db, _VECTORS_WANTED) is None:
                    _set_state(db, _VECTORS_WANTED, int(_lacks_vectors(db)))
        self._prepared = True

    def replace(self, documents: Sequence[ContentDocument], *, removed_ids: Sequence[str] = ()) -> IndexReport:
        plan = self._plan_replace(documents, removed_ids)
        self.prepare()
        valid, failed, removed, passages, model = plan.valid, plan.failed, plan.removed, plan.passages, self.model_id
        # Embedded before the write transaction: a publish's passages may take a while, and other runs write too.
        vectors, left = self._new_vectors(stored for stored_list in passages.values() for stored in stored_list)
        with self._transaction() as db:
            if left:
                _set_state(db, _VECTORS_WANTED, 1)
            released: set[str] = set()
            for document in valid:
                self._put(db, document, passages[document.id], released)
            for document_id in removed:
                self._delete(db, document_id, released)
            _put_vectors(db, model, vectors)
            _release_vectors(db, released - set(vectors))
            if valid or removed:
                _bump(db)
        return IndexReport(indexed=tuple(document.id for document in valid), failed=failed, deleted=removed)

    def _new_vectors(self, stored: Iterable[StoredPassage]) -> tuple[Vectors, bool]:
        """Vectors (scale, int8 bytes) by hash for the passages whose hash has none yet, and whether some were
        left without one: more than `inline_vectors` of them (for `embed_missing`), or the embedder failing."""
        wanted = {item.text_hash: item.embedded for item in stored}
        if not wanted or self._embedder_factory is None:
            return {}, False
        with self._connect() as db:
            known = {
                row[0]
                for row in db.execute(
                    "SELECT text_hash FROM content_vectors WHERE text_hash IN (SELECT value FROM json_each(?))",
                    (json.dumps(sorted(wanted)),),
                )
            }
        missing = {key: wanted[key] for key in sorted(set(wanted) - known)}
        return new_passage_vectors(self._required_embedder, missing, self.inline_vectors)

    def embed_missing(self, *, limit: int | None = None) -> int:
        """Embed up to ``limit`` (None: all) passages that have no vector yet; how many were.

        Unlike `replace`, an embedder that fails raises (its `LabmeshError`):
        the vectors are all that was asked. A passage deleted meanwhile gets
        none (no vector is kept that no passage uses).
        """
        self.prepare()
        if self._embedder_factory is None or (limit is not None and limit < 1):
            return 0
        with self._connect() as db:
            rows = db.execute(
                """SELECT p.text_hash, d.title, p.text FROM content_passages AS p
                   JOIN content_documents AS d ON d.doc = p.doc
                   WHERE NOT EXISTS (SELECT 1 FROM content_vectors AS v WHERE v.text_hash = p.text_hash)
                   GROUP BY p.text_hash LIMIT ?""",
                (-1 if limit is None else limit,),
            ).fetchall()
        if not rows:
            with self._transaction() as db:
                _set_state(db, _VECTORS_WANTED, 0)
            return 0
        texts = {row["text_hash"]: embedded_text(row["title"], row["text"]) for row in rows}
        vectors = embedded_vectors(self._required_embedder(), texts)
        with self._transaction() as db:
            used = {
                row[0]
                for row in db.execute(
                    """SELECT DISTINCT text_hash FROM content_passages
                       WHERE text_hash IN (SELECT value FROM json_each(?))""",
                    (json.dumps(sorted(vectors)),),
                )
            }
            kept = {key: value for key, value in vectors.items() if key in used}
            _put_vectors(db, self.model_id, kept)
            if kept:
                _bump(db)
            if limit is None or len(rows) < limit:
                _set_state(db, _VECTORS_WANTED, 0)  # none is left: this found fewer than it was allowed
        return len(kept)

    def vectors_wanted(self) -> bool:
        """Whether passages may lack their vector: one row read, what a sensor tick can afford at any size."""
        if self._embedder_factory is None:
            return False
        self.prepare()
        with self._connect() as db:
            return _state(db, _VECTORS_WANTED) != 0

    def _delete(self, db: sqlite3.Connection, document_id: str, released: set[str]) -> int | None:
        row = db.execute("SELECT doc FROM content_documents WHERE document_id = ?", (document_id,)).fetchone()
        if row is None:
            return None
        doc = int(row["doc"])
        released.update(row[0] for row in db.execute("SELECT text_hash FROM content_passages WHERE doc = ?", (doc,)))
        db.execute(
            "DELETE FROM content_passages_fts WHERE rowid IN (SELECT passage FROM content_passages WHERE doc = ?)",
            (doc,),
        )
        db.execute("DELETE FROM content_passages WHERE doc = ?", (doc,))
        db.execute("DELETE FROM content_fts WHERE rowid = ?", (doc,))
        db.execute("DELETE FROM content_values WHERE doc = ?", (doc,))
        db.execute("DELETE FROM content_principals WHERE doc = ?", (doc,))
        db.execute("DELETE FROM content_documents WHERE doc = ?", (doc,))
        return doc

    def _put(
        self, db: sqlite3.Connection, document: ContentDocument, passages: Sequence[StoredPassage], released: set[str]
    ) -> None:
        """Write one document and its passages in place of any earlier version, keeping its ``doc`` number."""
        doc = self._delete(db, document.id, released)
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
                attributes_json(attributes),
            ),
        )
        doc = int(cursor.lastrowid) if doc is None else doc  # type: ignore[arg-type]
        db.execute("INSERT INTO content_fts (rowid, title, text) VALUES (?, ?, ?)", (doc, title, text))
        db.executemany("INSERT INTO content_values VALUES (?, ?, ?, ?)", attribute_rows(doc, attributes))
        db.executemany("INSERT INTO content_principals VALUES (?, ?)", [(doc, name) for name in principals])
        _insert_passages(db, doc, title, passages, passage_keys(principals))

    def update_access(
        self,
        experiment_id: str,
        principals: Collection[str],
        documents: Callable[[], Sequence[ContentDocument]],
    ) -> IndexReport:
        """Rewrite the experiment's documents' principal rows and their passages' keys, in place, in one transaction.

        No document is put again nor any passage embedded: the passages' FTS
        rows are written again from their stored text with the new keys.
        """
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
            keys = passage_keys(wanted)
            for doc, _ in docs:
                db.execute("DELETE FROM content_principals WHERE doc = ?", (doc,))
                db.executemany("INSERT INTO content_principals VALUES (?, ?)", [(doc, name) for name in wanted])
                _rewrite_passage_keys(db, doc, keys)
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

    def retrieve(
        self,
        text: str,
        *,
        filters: ContentFilter = NO_FILTER,
        viewer: Viewer | None = None,
        limit: int = 10,
        mode: SearchMode = SearchMode.HYBRID,
    ) -> list[PassageHit]:
        """The passages that best answer ``text``: by BM25, by cosine to its vector, or both fused.

        `HYBRID` fuses the two rankings by reciprocal rank (k=60), each place
        weighted by how well its passage matched (`weighted_rank_fusion`): by
        meaning, its cosine; by words, its BM25 score as a share of the
        question's IDF mass (`keyword_strength`). A paraphrased question whose
        keyword matches hold one stray word of it then leaves the dense
        ranking's answer first, and a question naming an id still ranks the
        passage holding it first.

        Both rankings hold only passages of documents the filters and the
        viewer's principals allow, chosen inside their queries (the SQL's
        conditions, the matrix's mask), before any ranking or limit.
        """
        if limit < 1 or not text.strip():
            return []
        self.prepare()
        mode = SearchMode(mode)
        principals = viewer_principals(viewer)
        if principals is not None and not principals:
            return []
        depth = limit if mode is SearchMode.KEYWORD else max(limit, CANDIDATES)
        access = access_clause(principals)
        facets = bool(self._filter_clauses(filters, None, "doc")[0])
        # The keyword ranking tests matches against a list of documents only for what its MATCH cannot say.
        listed = facets or (principals is not None and access is None)
        with self._connect() as db:
            db.execute("BEGIN")  # one snapshot for both rankings, the matrix's version and the hits' rows
            try:
                allowed = (
                    self._allowed_docs(db, filters, principals) if listed or mode is not SearchMode.KEYWORD else None
                )
                if allowed is not None and not allowed:
                    return []
                phrases = [] if mode is SearchMode.DENSE else question_phrases(text)
                matches = {phrase: _match_count(db, phrase, COMMON_MATCHES + 1) for phrase in phrases}
                keyword = (
                    self._keyword_ranking(db, matches, access, allowed if listed else None, depth) if matches else []
                )
                dense = [] if mode is SearchMode.KEYWORD else self._dense_ranking(db, text, allowed, depth)
                if mode is SearchMode.HYBRID:
                    ranked = weighted_rank_fusion([self._keyword_strengths(db, keyword, matches), dense])[:limit]
                else:
                    ranked = (keyword or dense)[:limit]
                return self._passage_hits(db, ranked, dict(dense))
            finally:
                db.execute("COMMIT")

    def _keyword_ranking(
        self,
        db: sqlite3.Connection,
        matches: Mapping[str, int],
        access: str | None,
        allowed: Sequence[int] | None,
        depth: int,
    ) -> list[tuple[int, float]]:
        """BM25 over the passages holding the question's rarer words that ``access`` and ``allowed`` keep.

        ``access`` is the viewer's MATCH clause on the passages' keys
        (`passage_access`; None: none), ``allowed`` the documents the facets
        and a viewer with many principals allow (None: all); both hold inside
        the query, before the ranking and its limit.

        ``matches`` holds the question's phrases with the passages holding
        each, counted up to one past `COMMON_MATCHES`. BM25 cannot order
        passages by a word a fortieth of them hold (its weight is next to
        nothing) yet must score every one of them, so words in more than
        `COMMON_MATCHES` passages are left out when the question has rarer
        ones; when it has none, the newest `COMMON_WINDOW` matches the viewer
        may see are ranked.
        """
        phrases = list(matches)
        rare = [phrase for phrase, count in matches.items() if count <= COMMON_MATCHES]
        words = " OR ".join(rare or phrases)
        conditions = ["content_passages_fts MATCH ?"]
        params: list[Any] = [words if access is None else f"({words}) AND {access}"]
        if allowed is not None:
            conditions.append(f"(content_passages_fts.rowid >> {DOC_SHIFT}) IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(list(allowed)))
        where = " AND ".join(conditions)
        if rare:
            sql = f"""SELECT content_passages_fts.rowid AS passage, {_PASSAGE_RANK} AS rank_value
                      FROM content_passages_fts WHERE {where}
                      ORDER BY rank_value, content_passages_fts.rowid LIMIT ?"""
        else:  # one walk: the newest matches, scored as they are read, then ranked
            sql = f"""SELECT passage, rank_value FROM (
                          SELECT content_passages_fts.rowid AS passage, {_PASSAGE_RANK} AS rank_value
                          FROM content_passages_fts WHERE {where}
                          ORDER BY content_passages_fts.rowid DESC LIMIT {COMMON_WINDOW}
                      ) ORDER BY rank_value, passage LIMIT ?"""
        rows = db.execute(sql, [*params, depth]).fetchall()
        # bm25() is lower for better matches; the port's score is higher for better ones.
        return [(int(row["passage"]), -float(row["rank_value"])) for row in rows]

    def _keyword_strengths(
        self, db: sqlite3.Connection, keyword: Sequence[tuple[int, float]], matches: Mapping[str, int]
    ) -> list[tuple[int, float]]:
        """The keyword ranking with each passage's BM25 score as a share of the question's IDF mass, in [0, 1].

        The mass counts every phrase of the question, the common ones left
        out of the ranking too (their count is a lower bound, so their IDF an
        upper one): a passage is not credited for words it was not tested for.
        """
        if not keyword:
            return []
        total = db.execute("SELECT count(*) FROM content_passages").fetchone()[0]
        idfs = [bm25_idf(count, total) for count in matches.values()]
        return [(passage, keyword_strength(score, idfs)) for passage, score in keyword]

    def _dense_ranking(
        self, db: sqlite3.Connection, text: str, allowed: Sequence[int] | None, depth: int
    ) -> list[tuple[int, float]]:
        embedder = self._get_embedder()
        if embedder is None:
            return []
        matrix = self._vector_matrix(db)
        if not len(matrix):
            return []
        query = embedder.embed([text])[0]
        return matrix.nearest(query, depth) if allowed is None else matrix.nearest_among(query, depth, allowed)

    def _allowed_docs(
        self, db: sqlite3.Connection, filters: ContentFilter, principals: Collection[str] | None
    ) -> list[int] | None:
        """The documents the filters and the viewer's principals allow (None: all), by `search`'s conditions.

        A viewer's are read from their principals' rows (an index range), the
        facets tested on those documents alone; the same conditions as the
        keyword ranking's, reached from the smaller side.
        """
        if principals is not None:
            clauses, params = self._filter_clauses(filters, None, "p.doc")
            sql = f"""SELECT DISTINCT p.doc FROM content_principals AS p
                      WHERE {" AND ".join(["p.principal IN (SELECT value FROM json_each(?))", *clauses])}"""
            params.insert(0, json.dumps(sorted(principals)))
        else:
            clauses, params = self._filter_clauses(filters, None, "d.doc")
            if not clauses:
                return None
            sql = f"SELECT d.doc FROM content_documents AS d WHERE {' AND '.join(clauses)}"
        return [row[0] for row in db.execute(sql, params)]

    def vector_matrix(self) -> VectorMatrix:
        """Every passage's vector, loaded once per change of the passages and shared by this file's index objects."""
        self.prepare()
        with self._connect() as db:
            db.execute("BEGIN")  # one snapshot: the version read is the version of the rows read
            try:
                return self._vector_matrix(db)
            finally:
                db.execute("COMMIT")

    def _vector_matrix(self, db: sqlite3.Connection) -> VectorMatrix:
        key = self._matrix_key or str(self.path.resolve())
        self._matrix_key = key
        version = _state(db, _PASSAGES_VERSION) or 0
        cached = _MATRICES.get(key, version)
        if cached is not None:
            return cached
        rows = db.execute(
            """SELECT p.passage, p.doc, v.scale, v.vector FROM content_passages AS p
               JOIN content_vectors AS v ON v.text_hash = p.text_hash
               WHERE v.model = ? ORDER BY p.passage""",
            (self.model_id,),
        ).fetchall()
        embedder = self._get_embedder()
        matrix = matrix_of(rows, embedder.dimension if embedder is not None else DIMENSION)
        _MATRICES.put(key, version, matrix)
        return matrix

    def _passage_hits(
        self, db: sqlite3.Connection, ranked: Sequence[tuple[int, float]], meaning: Mapping[int, float]
    ) -> list[PassageHit]:
        """The ranked passages as hits, each with its cosine where the dense ranking reached it (``meaning``)."""
        if not ranked:
            return []
        rows = {
            int(row["passage"]): row
            for row in db.execute(
                """SELECT p.passage, p.ordinal, p.text, p.location, d.document_id, d.title, d.uri, d.attributes
                   FROM content_passages AS p JOIN content_documents AS d ON d.doc = p.doc
                   WHERE p.passage IN (SELECT value FROM json_each(?))""",
                (json.dumps([passage for passage, _ in ranked]),),
            )
        }
        hits: list[PassageHit] = []
        for passage, score in ranked:
            row = rows.get(passage)
            if row is None:  # cannot be within one snapshot; skipped rather than raised all the same
                continue
            hits.append(passage_hit(row, score, meaning.get(passage), self.schema))
        return hits

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

    def _hit(self, row: sqlite3.Row) -> ContentHit:
        excerpt = row["excerpt"] if row["excerpt"] is not None else row["text"][:PLAIN_EXCERPT]
        return ContentHit(
            id=row["document_id"],
            title=row["title"],
            uri=row["uri"],
            excerpt=excerpt.strip(),
            # bm25() is lower for better matches; the port's score is higher for better ones.
            score=-float(row["rank_value"]),
            attributes=decoded_attributes(row["attributes"], self.schema),
        )

    def document_ids(self) -> list[str]:
        """Every indexed id, in order: for tests and for checking the index against the manifests."""
        self.prepare()
        with self._connect() as db:
            return [row[0] for row in db.execute("SELECT document_id FROM content_documents ORDER BY document_id")]


def _insert_passages(
    db: sqlite3.Connection, doc: int, title: str, passages: Sequence[StoredPassage], keys: str
) -> None:
    """Write the passages of document ``doc`` and their FTS rows, with ``keys`` (`passage_keys`) for access."""
    for stored in passages:
        passage = stored.passage
        assert passage is not None
        number = (doc << DOC_SHIFT) | passage.ordinal
        db.execute(
            "INSERT INTO content_passages (passage, doc, ordinal, text, location, text_hash) VALUES (?, ?, ?, ?, ?, ?)",
            (number, doc, passage.ordinal, passage.text, json.dumps(passage.location.to_dict()), stored.text_hash),
        )
        db.execute(
            "INSERT INTO content_passages_fts (rowid, title, text, doc, keys) VALUES (?, ?, ?, ?, ?)",
            (number, title, passage.text, doc, keys),
        )


def _put_vectors(db: sqlite3.Connection, model: str, vectors: Mapping[str, tuple[float, bytes]]) -> None:
    db.executemany(
        "INSERT OR IGNORE INTO content_vectors (text_hash, model, scale, vector) VALUES (?, ?, ?, ?)",
        [(key, model, scale, blob) for key, (scale, blob) in vectors.items()],
    )


def _release_vectors(db: sqlite3.Connection, hashes: Collection[str]) -> None:
    """Delete the vectors of ``hashes`` that no passage uses any more."""
    if hashes:
        db.execute(
            """DELETE FROM content_vectors WHERE text_hash IN (SELECT value FROM json_each(?))
               AND NOT EXISTS (SELECT 1 FROM content_passages AS p WHERE p.text_hash = content_vectors.text_hash)""",
            (json.dumps(sorted(hashes)),),
        )


def _match_count(db: sqlite3.Connection, phrase: str, cap: int) -> int:
    """How many passages hold ``phrase``, counted up to ``cap``: reads at most that many rowids, scores none."""
    return int(
        db.execute(
            """SELECT count(*) FROM (SELECT content_passages_fts.rowid FROM content_passages_fts
               WHERE content_passages_fts MATCH ? ORDER BY content_passages_fts.rowid DESC LIMIT ?)""",
            (phrase, cap),
        ).fetchone()[0]
    )


def _state(db: sqlite3.Connection, name: str) -> int | None:
    row = db.execute("SELECT value FROM content_state WHERE name = ?", (name,)).fetchone()
    return None if row is None else int(row[0])


def _set_state(db: sqlite3.Connection, name: str, value: int) -> None:
    db.execute(
        "INSERT INTO content_state (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, value),
    )


def _lacks_vectors(db: sqlite3.Connection) -> bool:
    return (
        db.execute(
            """SELECT 1 FROM content_passages AS p
               WHERE NOT EXISTS (SELECT 1 FROM content_vectors AS v WHERE v.text_hash = p.text_hash) LIMIT 1"""
        ).fetchone()
        is not None
    )


def _bump(db: sqlite3.Connection) -> None:
    """Mark the passages changed: random, not counted, so a new file at an old path never looks unchanged."""
    _set_state(db, _PASSAGES_VERSION, secrets.randbits(62))


def _cut_older_documents(db: sqlite3.Connection, model: str) -> None:
    """Give every document of a file written before passages its passages, cut from its text by lines; once.

    Runs in the caller's write transaction, so of several processes preparing
    at once one cuts and the others find it done. Their vectors are not made
    here (preparing stays quick): the next put of each document, or
    `SqliteContentIndex.embed_missing`, makes them.
    """
    layout = _state(db, _PASSAGES_CUT)
    if layout == PASSAGE_LAYOUT:
        return
    if layout is not None:  # numbered otherwise: cut again, the vectors stay (keyed by text)
        db.execute("DELETE FROM content_passages_fts")
        db.execute("DELETE FROM content_passages")
    rows = db.execute(
        """SELECT d.doc, d.document_id, d.title, d.text FROM content_documents AS d
           WHERE NOT EXISTS (SELECT 1 FROM content_passages AS p WHERE p.doc = d.doc)"""
    ).fetchall()
    principals = _principals_by_doc(db)
    for row in rows:
        document = ContentDocument(id=row["document_id"], title=row["title"], text=row["text"], uri="")
        doc = int(row["doc"])
        _insert_passages(db, doc, row["title"], stored_passages(document, model), passage_keys(principals.get(doc, ())))
    _set_state(db, _PASSAGES_CUT, PASSAGE_LAYOUT)
    db.execute(
        """DELETE FROM content_vectors
           WHERE NOT EXISTS (SELECT 1 FROM content_passages AS p WHERE p.text_hash = content_vectors.text_hash)"""
    )
    if rows:
        _bump(db)


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


def _has_passage_keys(db: sqlite3.Connection) -> bool:
    return "keys" in {row[1] for row in db.execute("PRAGMA table_info(content_passages_fts)")}


def _principals_by_doc(db: sqlite3.Connection) -> dict[int, list[str]]:
    principals: dict[int, list[str]] = {}
    for doc, principal in db.execute("SELECT doc, principal FROM content_principals"):
        principals.setdefault(int(doc), []).append(principal)
    return principals


def _add_passage_keys(db: sqlite3.Connection) -> None:
    """Give an older file's passages' FTS table its ``keys`` column, written from the principal rows; once.

    FTS5 tables take no new column, so the table is made again from the
    stored passages (100,000 take seconds), inside the caller's write
    transaction: of several processes preparing at once one rebuilds, and a
    search never sees passages without their keys.
    """
    if _has_passage_keys(db):
        return
    db.execute("DROP TABLE content_passages_fts")
    db.execute(PASSAGES_FTS)
    principals = {doc: passage_keys(names) for doc, names in _principals_by_doc(db).items()}
    db.executemany(
        "INSERT INTO content_passages_fts (rowid, title, text, doc, keys) VALUES (?, ?, ?, ?, ?)",
        (
            (row[0], row[1], row[2], row[3], principals.get(int(row[3]), ""))
            for row in db.execute(
                """SELECT p.passage, d.title, p.text, p.doc FROM content_passages AS p
                   JOIN content_documents AS d ON d.doc = p.doc"""
            )
        ),
    )


def _rewrite_passage_keys(db: sqlite3.Connection, doc: int, keys: str) -> None:
    """Write the FTS rows of document ``doc``'s passages again with ``keys`` (FTS5 rows are replaced whole)."""
    rows = db.execute(
        """SELECT p.passage, d.title, p.text FROM content_passages AS p JOIN content_documents AS d ON d.doc = p.doc
           WHERE p.doc = ?""",
        (doc,),
    ).fetchall()
    db.execute(
        "DELETE FROM content_passages_fts WHERE rowid IN (SELECT passage FROM content_passages WHERE doc = ?)", (doc,)
    )
    db.executemany(
        "INSERT INTO content_passages_fts (rowid, title, text, doc, keys) VALUES (?, ?, ?, ?, ?)",
        [(row[0], row[1], row[2], doc, keys) for row in rows],
    )
