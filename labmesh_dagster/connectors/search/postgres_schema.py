"""The PostgreSQL content index's tables, as numbered migrations (`connectors.postgres_migrations`).

They mirror the SQLite index's (`search.local`), all named ``content_`` so
they share the catalog's database without touching its tables:

- ``content_documents``: one row per document, numbered by ``doc`` in the
  order documents were first put (a document put again keeps its number),
  with its words as FTS5 cuts them (`postgres_words`), one ``tsvector`` per
  FTS5 column (title, text) so a phrase never spans two, and its length in
  words for BM25.
- ``content_values`` and ``content_principals``: a row per facet value and
  per principal of the access list, indexed as the facet and access filters
  read them (by name and value, by principal).
- ``content_passages``: one row per passage, numbered ``doc << 20 | ordinal``
  as in SQLite, with its words per FTS5 column of the SQLite passages table
  (title, text, and the access keys of `passage_access`, which count in a
  passage's length and match a question as any word would) and the hash of
  what was embedded for it.
- ``content_vectors``: int8 vectors as ``bytea``, keyed by that hash.
- ``content_state``: named numbers: the passages' version (random, written
  whenever passages or vectors change, read once per retrieval so a process
  notices another's writes), whether vectors are wanted, and the counts BM25
  needs of the whole index (rows and words of documents and of passages),
  kept in step inside every write so a search never scans the tables for them.

Ids and facet values compare as bytes (the ``C`` collation), as SQLite's do,
so documents list in the same order in both. The words' GIN indexes keep
Postgres's fast update: a large delivery's words wait in each index's pending
list, which searches read too, until autovacuum (triggered by the inserts)
merges them; turning it off would double the time a publish takes to write.
"""

from __future__ import annotations

from labmesh_dagster.connectors.postgres_migrations import Migrations

PASSAGES_VERSION = "passages_version"
VECTORS_WANTED = "vectors_wanted"
DOCUMENTS = "documents"
DOCUMENT_WORDS = "document_words"
PASSAGES = "passages"
PASSAGE_WORDS = "passage_words"

_TABLES = f"""
CREATE TABLE content_documents (
    doc BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id TEXT COLLATE "C" NOT NULL UNIQUE,
    title TEXT NOT NULL,
    uri TEXT NOT NULL,
    text TEXT NOT NULL,
    attributes TEXT NOT NULL,
    words INTEGER NOT NULL,
    title_words TSVECTOR NOT NULL,
    text_words TSVECTOR NOT NULL
);
CREATE INDEX content_documents_title_words ON content_documents USING gin (title_words);
CREATE INDEX content_documents_text_words ON content_documents USING gin (text_words);

CREATE TABLE content_values (
    doc BIGINT NOT NULL REFERENCES content_documents (doc) ON DELETE CASCADE,
    name TEXT COLLATE "C" NOT NULL,
    text_value TEXT COLLATE "C",
    number_value DOUBLE PRECISION
);
CREATE INDEX content_values_by_text ON content_values (name, text_value, doc);
CREATE INDEX content_values_by_number ON content_values (name, number_value, doc);
CREATE INDEX content_values_by_doc ON content_values (doc);

CREATE TABLE content_principals (
    doc BIGINT NOT NULL REFERENCES content_documents (doc) ON DELETE CASCADE,
    principal TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (doc, principal)
);
CREATE INDEX content_principals_by_name ON content_principals (principal, doc);

CREATE TABLE content_passages (
    passage BIGINT PRIMARY KEY,
    doc BIGINT NOT NULL REFERENCES content_documents (doc) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    location TEXT NOT NULL,
    text_hash TEXT COLLATE "C" NOT NULL,
    words INTEGER NOT NULL,
    keys INTEGER NOT NULL,
    title_words TSVECTOR NOT NULL,
    text_words TSVECTOR NOT NULL,
    keys_words TSVECTOR NOT NULL,
    UNIQUE (doc, ordinal)
);
CREATE INDEX content_passages_by_hash ON content_passages (text_hash);
CREATE INDEX content_passages_title_words ON content_passages USING gin (title_words);
CREATE INDEX content_passages_text_words ON content_passages USING gin (text_words);
CREATE INDEX content_passages_keys_words ON content_passages USING gin (keys_words);

CREATE TABLE content_vectors (
    text_hash TEXT COLLATE "C" PRIMARY KEY,
    model TEXT NOT NULL,
    scale DOUBLE PRECISION NOT NULL,
    vector BYTEA NOT NULL
);

CREATE TABLE content_state (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
-- The version starts random, so a new database at an old URL never looks unchanged to a process's kept matrix.
INSERT INTO content_state (name, value) VALUES
    ('{PASSAGES_VERSION}', floor(random() * 4e18)::BIGINT),
    ('{VECTORS_WANTED}', 0),
    ('{DOCUMENTS}', 0),
    ('{DOCUMENT_WORDS}', 0),
    ('{PASSAGES}', 0),
    ('{PASSAGE_WORDS}', 0);

-- How many times a phrase (its lexemes, in order) occurs in a tsvector: the term frequency BM25 weighs. The
-- phrase's own lexemes are picked out first (setweight and ts_filter work in C), so a long document costs a
-- scan of its few matching lexemes, not a row per word.
CREATE FUNCTION labmesh_content_phrase_count(document TSVECTOR, lexemes TEXT[]) RETURNS INTEGER
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    WITH words AS MATERIALIZED (
        SELECT u.lexeme, u.positions FROM unnest(ts_filter(setweight(document, 'A', lexemes), '{{a}}')) AS u
    )
    SELECT count(*)::INTEGER
    FROM words AS head, unnest(head.positions) AS start
    WHERE head.lexeme = lexemes[1] AND NOT EXISTS (
        SELECT 1 FROM generate_series(2, cardinality(lexemes)) AS k
        WHERE NOT EXISTS (
            SELECT 1 FROM words AS word
            WHERE word.lexeme = lexemes[k] AND (start + k - 1)::SMALLINT = ANY (word.positions)
        )
    )
$$;
"""

MIGRATIONS = Migrations("content", (_TABLES,))
"""The content index's schema history: step 1 builds it; later changes are new steps, never edits."""
