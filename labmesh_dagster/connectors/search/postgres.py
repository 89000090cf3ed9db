"""The content index on PostgreSQL: the SQLite index's twin for a deployment whose machines share one database.

Why. Several machines on the local profile cannot share a SQLite file, but
they share labmesh's PostgreSQL database (``LABMESH_DATABASE_URL``), so the
content index keeps its ``content_`` tables there beside the catalog's. It
answers as the SQLite index (`search.local`) does, document for document and
passage for passage: words are FTS5's own and ranked by FTS5's BM25
(`postgres_words`), passages are cut, hashed and embedded by the same code
(`stored_passages`, `passage_vectors`), and dense ranking scores the same
int8 vectors, kept as ``bytea``, in an in-process numpy matrix (no pgvector:
the same arithmetic as SQLite's, so the same order).

Writes. Every `replace`, `update_access` and `embed_missing` is one
transaction under the index's advisory write lock (`postgres_writes`), as
SQLite's ``BEGIN IMMEDIATE`` serialises its writers: a document's rows,
values, principals, passages and vectors change together, two processes
putting one id take turns and leave one document, and embedding happens
before the transaction, without the lock.

Reads. A search or retrieval is one repeatable-read snapshot: the passages'
version, the counts BM25 needs, both rankings and the hits' rows agree. The
matrix of vectors is kept per process and database, and its version (one row)
is read on every retrieval, so a write from another process, or another
machine, is seen by the next retrieval rather than served stale.

A database that cannot be reached raises `ContentIndexUnavailable`, as the
port asks. The tables are migrated on first use in each process
(`postgres_schema`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from labmesh_dagster.connectors.postgres import DatabaseUnavailable, check_url, connect, redacted, transaction
from labmesh_dagster.connectors.postgres_schema import ensure_migrated
from labmesh_dagster.connectors.search import postgres_ranking as ranking
from labmesh_dagster.connectors.search import postgres_writes as writes
from labmesh_dagster.connectors.search.base import (
    CONTENT_ATTRIBUTES,
    EXPERIMENT_ID,
    NO_FILTER,
    AttributeType,
    ContentDocument,
    ContentFilter,
    ContentHit,
    ContentIndexUnavailable,
    IndexReport,
    access_principals,
    principals_problem,
    viewer_principals,
)
from labmesh_dagster.connectors.search.local import match_expression
from labmesh_dagster.connectors.search.passage_index import PassageIndex
from labmesh_dagster.connectors.search.passage_vectors import (
    MatrixCache,
    Vectors,
    embedded_vectors,
    matrix_of,
    new_passage_vectors,
)
from labmesh_dagster.connectors.search.postgres_filters import document_conditions
from labmesh_dagster.connectors.search.postgres_schema import MIGRATIONS, VECTORS_WANTED
from labmesh_dagster.connectors.search.postgres_words import phrases_of
from labmesh_dagster.connectors.search.question_words import question_terms, search_terms
from labmesh_dagster.connectors.search.stored_passages import (
    CANDIDATES,
    COMMON_MATCHES,
    COMMON_WINDOW,
    INLINE_VECTORS,
    PLAIN_EXCERPT,
    EmbedderFactory,
    StoredPassage,
    decoded_attributes,
    embedded_text,
    passage_hit,
)
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.passages import PassageHit, SearchMode
from labmesh_dagster.semantic.embedding import DIMENSION, default_embedder
from labmesh_dagster.semantic.fusion import weighted_rank_fusion
from labmesh_dagster.semantic.match_strength import bm25_idf, keyword_strength
from labmesh_dagster.semantic.vectors import VectorMatrix

_MATRICES = MatrixCache()
"""Each database's matrix (per model), shared by every index object of it in the process."""

_migrating = threading.Lock()


class PostgresContentIndex(PassageIndex):
    """The content index in a PostgreSQL database (``postgresql://user@host:5432/name``)."""

    def __init__(
        self,
        url: str,
        *,
        schema: Mapping[str, AttributeType] = CONTENT_ATTRIBUTES,
        embedder: EmbedderFactory | None = default_embedder,
        inline_vectors: int = INLINE_VECTORS,
    ) -> None:
        super().__init__(schema=schema, embedder=embedder, inline_vectors=inline_vectors)
        self.url = check_url(url)
        self._prepared = False

    @contextmanager
    def _reached(self) -> Iterator[None]:
        """The port's `ContentIndexUnavailable` for a database that cannot be reached (or went away)."""
        import psycopg

        try:
            yield
        except (DatabaseUnavailable, psycopg.OperationalError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ContentIndexUnavailable(
                f"the content index in PostgreSQL at {redacted(self.url)} cannot be reached: {reason}"
            ) from error

    @contextmanager
    def _writing(self) -> Iterator[Any]:
        """One write transaction holding the index's write lock."""
        with self._reached(), transaction(self.url) as db:
            writes.lock(db)
            yield db

    @contextmanager
    def _snapshot(self) -> Iterator[Any]:
        """One read-only snapshot: every statement of the block sees the same committed state."""
        with self._reached(), connect(self.url) as db, db.transaction():
            db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield db

    def prepare(self) -> None:
        """Create the tables (if they are not there yet); attributes need no declaring."""
        if self._prepared:
            return
        with self._reached(), _migrating:
            ensure_migrated(self.url, MIGRATIONS)
        self._prepared = True

    def replace(self, documents: Sequence[ContentDocument], *, removed_ids: Sequence[str] = ()) -> IndexReport:
        plan = self._plan_replace(
            documents, removed_ids, storage_problem=writes.storage_problem, storable=writes.storable
        )
        self.prepare()
        valid, failed, removed, passages, model = plan.valid, plan.failed, plan.removed, plan.passages, self.model_id
        hashes = {stored.text_hash for document in valid for stored in passages[document.id]}
        # Embedded and cut into words before the write transaction: a publish's passages may take a while.
        vectors = self._new_vectors(stored for document in valid for stored in passages[document.id])
        rows = writes.document_rows(valid, passages, self.schema)
        with self._writing() as db:
            released = writes.write_documents(db, rows, removed)
            writes.put_vectors(db, model, vectors)
            writes.release_vectors(db, released - set(vectors))
            # Read under the lock, after the release: a vector this put counted on and another write released
            # meanwhile is wanted again, as is any the embedder left.
            if self._embedder_factory is not None and writes.lacking_vectors(db, hashes):
                writes.want_vectors(db)
            if valid or removed:
                writes.bump(db)
        return IndexReport(indexed=tuple(document.id for document in valid), failed=failed, deleted=removed)

    def _new_vectors(self, stored: Iterable[StoredPassage]) -> Vectors:
        """Vectors by hash for the passages whose hash has none yet, when they are few enough to embed now."""
        wanted = {item.text_hash: item.embedded for item in stored}
        if not wanted or self._embedder_factory is None:
            return {}
        with self._reached(), connect(self.url) as db:
            known = {
                row["text_hash"]
                for row in db.execute(
                    "SELECT text_hash FROM content_vectors WHERE text_hash = ANY(%s::text[])", (sorted(wanted),)
                )
            }
        missing = {key: wanted[key] for key in sorted(set(wanted) - known)}
        vectors, _ = new_passage_vectors(self._required_embedder, missing, self.inline_vectors)
        return vectors

    def embed_missing(self, *, limit: int | None = None) -> int:
        """Embed up to ``limit`` (None: all) passages that have no vector yet; how many were.

        Unlike `replace`, an embedder that fails raises (its `LabmeshError`):
        the vectors are all that was asked. A passage deleted meanwhile gets
        none (no vector is kept that no passage uses).
        """
        self.prepare()
        if self._embedder_factory is None or (limit is not None and limit < 1):
            return 0
        with self._reached(), connect(self.url) as db:
            rows = db.execute(
                """SELECT DISTINCT ON (p.text_hash) p.text_hash, d.title, p.text FROM content_passages AS p
                   JOIN content_documents AS d ON d.doc = p.doc
                   WHERE NOT EXISTS (SELECT 1 FROM content_vectors AS v WHERE v.text_hash = p.text_hash)
                   ORDER BY p.text_hash LIMIT %s""",
                (limit,),
            ).fetchall()
        if not rows:
            with self._writing() as db:
                writes.set_state(db, VECTORS_WANTED, 0)
            return 0
        texts = {row["text_hash"]: embedded_text(row["title"], row["text"]) for row in rows}
        vectors = embedded_vectors(self._required_embedder(), texts)
        with self._writing() as db:
            used = {
                row["text_hash"]
                for row in db.execute(
                    "SELECT DISTINCT text_hash FROM content_passages WHERE text_hash = ANY(%s::text[])",
                    (sorted(vectors),),
                )
            }
            kept = {key: value for key, value in vectors.items() if key in used}
            writes.put_vectors(db, self.model_id, kept)
            if kept:
                writes.bump(db)
            if limit is None or len(rows) < limit:
                writes.set_state(db, VECTORS_WANTED, 0)  # none is left: this found fewer than it was allowed
        return len(kept)

    def vectors_wanted(self) -> bool:
        """Whether passages may lack their vector: one row read, what a sensor tick can afford at any size."""
        if self._embedder_factory is None:
            return False
        self.prepare()
        with self._reached(), connect(self.url) as db:
            row = db.execute("SELECT value FROM content_state WHERE name = %s", (VECTORS_WANTED,)).fetchone()
        return int(row["value"]) != 0

    def update_access(
        self,
        experiment_id: str,
        principals: Collection[str],
        documents: Callable[[], Sequence[ContentDocument]],
    ) -> IndexReport:
        """Rewrite the experiment's documents' principal rows and their passages' keys, in place, in one transaction.

        No document is put again nor any passage embedded.
        """
        self.prepare()
        wanted = access_principals(principals)
        with self._writing() as db:
            docs = [
                (int(row["doc"]), row["document_id"])
                for row in db.execute(
                    """SELECT d.doc, d.document_id FROM content_values AS v JOIN content_documents AS d ON d.doc = v.doc
                       WHERE v.name = %s AND v.text_value = %s ORDER BY d.document_id""",
                    (EXPERIMENT_ID, experiment_id),
                )
            ]
            problem = principals_problem(principals)
            if problem:
                return IndexReport(failed=dict.fromkeys((document_id for _, document_id in docs), problem))
            writes.rewrite_access(db, [doc for doc, _ in docs], wanted)
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
        terms = search_terms(text)
        if not terms and text.strip():
            return []  # Only punctuation: there is no word to match, so nothing matches.
        conditions = document_conditions(filters, viewer_principals(viewer), "d.doc")
        with self._snapshot() as db:
            if terms:
                expression = match_expression(text)
                assert expression is not None
                rows = ranking.search_documents(db, phrases_of(terms), conditions, limit, expression)
            else:
                rows = ranking.list_documents(db, conditions, limit)
        return [self._hit(row) for row in rows]

    def _hit(self, row: Mapping[str, Any]) -> ContentHit:
        excerpt = row["excerpt"] if row["excerpt"] is not None else row["text"][:PLAIN_EXCERPT]
        return ContentHit(
            id=row["document_id"],
            title=row["title"],
            uri=row["uri"],
            excerpt=excerpt.strip(),
            score=float(row["score"]),
            attributes=decoded_attributes(row["attributes"], self.schema),
        )

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

        As `SqliteContentIndex.retrieve`: `HYBRID` fuses the two rankings by
        reciprocal rank, each place weighted by how well its passage matched;
        both rankings hold only passages of documents the filters and the
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
        conditions = document_conditions(filters, principals, "p.doc")
        with self._snapshot() as db:
            allowed: list[int] | None = None
            if mode is not SearchMode.KEYWORD:
                allowed = ranking.allowed_documents(db, document_conditions(filters, principals, "d.doc"))
                if allowed is not None and not allowed:
                    return []
            phrases = [] if mode is SearchMode.DENSE else phrases_of(question_terms(text))
            matched = {
                phrase: ranking.rows_holding(
                    db, "content_passages", ranking.PASSAGE_COLUMNS, phrase, COMMON_MATCHES + 1
                )
                for phrase in phrases
            }
            keyword = (
                ranking.keyword_passages(db, matched, conditions, depth, COMMON_MATCHES, COMMON_WINDOW)
                if matched
                else []
            )
            dense = [] if mode is SearchMode.KEYWORD else self._dense_ranking(db, text, allowed, depth)
            if mode is SearchMode.HYBRID:
                ranked = weighted_rank_fusion([self._keyword_strengths(db, keyword, matched.values()), dense])[:limit]
            else:
                ranked = (keyword or dense)[:limit]
            rows = ranking.passage_rows(db, [passage for passage, _ in ranked]) if ranked else {}
        meaning = dict(dense)
        return [
            passage_hit(rows[passage], score, meaning.get(passage), self.schema)
            for passage, score in ranked
            if passage in rows
        ]

    def _keyword_strengths(
        self, db: Any, keyword: Sequence[tuple[int, float]], counts: Collection[int]
    ) -> list[tuple[int, float]]:
        """The keyword ranking with each passage's BM25 score as a share of the question's IDF mass, in [0, 1]."""
        if not keyword:
            return []
        total = ranking.passage_count(db)
        idfs = [bm25_idf(count, total) for count in counts]
        return [(passage, keyword_strength(score, idfs)) for passage, score in keyword]

    def _dense_ranking(self, db: Any, text: str, allowed: Sequence[int] | None, depth: int) -> list[tuple[int, float]]:
        embedder = self._get_embedder()
        if embedder is None:
            return []
        matrix = self._vector_matrix(db)
        if not len(matrix):
            return []
        query = embedder.embed([text])[0]
        return matrix.nearest(query, depth) if allowed is None else matrix.nearest_among(query, depth, allowed)

    def vector_matrix(self) -> VectorMatrix:
        """Every passage's vector, loaded once per change of the passages and shared by this database's indexes."""
        self.prepare()
        with self._snapshot() as db:
            return self._vector_matrix(db)

    def _vector_matrix(self, db: Any) -> VectorMatrix:
        key = f"{self.url}\n{self.model_id}"
        version = ranking.passages_version(db)
        cached = _MATRICES.get(key, version)
        if cached is not None:
            return cached
        embedder = self._get_embedder()
        matrix = matrix_of(
            ranking.vector_rows(db, self.model_id), embedder.dimension if embedder is not None else DIMENSION
        )
        _MATRICES.put(key, version, matrix)
        return matrix

    def document_ids(self) -> list[str]:
        """Every indexed id, in order: for tests and for checking the index against the manifests."""
        self.prepare()
        with self._reached(), connect(self.url) as db:
            return [
                row["document_id"]
                for row in db.execute("SELECT document_id FROM content_documents ORDER BY document_id")
            ]
