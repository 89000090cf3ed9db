"""The PostgreSQL catalog's tables, as numbered migrations (`connectors.postgres_migrations`).

The first tables mirror the SQLite catalog's (experiments, datasets, files,
revisions, grants, archive), so the two hold the same records. The search
tables are derived from them and rebuilt for an experiment inside every write
that touches it (`postgres_index`):

- ``catalog_search_docs``: one row per experiment, numbered by ``doc`` in the
  order experiments were first registered (newest first is ``doc DESC``), with
  its text in one ``tsvector`` column per FTS5 column (title, ELN fields, group,
  platform, the words of all its files), so a phrase never spans two fields,
  and its length in words for BM25. ``files_words`` says how its files' words
  are held (`postgres_text.FilesWords`): a tsvector keeps word positions only
  up to 16,383 and its size under 1 MB, so a very large experiment keeps its
  files' distinct words only, or none, and its rows decide. ``words_text``
  holds every distinct word of both, positions aside: one index that narrows a
  query's experiments to those holding its words before phrases are checked.
- ``catalog_search_rows``: the experiment's own row (position 0) and one per
  file, each with its own text, format, zone, samples and date.
- ``catalog_search_samples``: the sample ids each row is found under (exact match).
- ``catalog_search_access``: each experiment's principals, indexed by principal,
  so a viewer's access is a semi-join inside every search and count.

Text columns that are ordered or compared as ranges (ids, keys, dates) use the
``C`` collation: byte order, as SQLite compares them, so dates compare as the
strings they are and lists sort the same in both catalogs.
"""

from __future__ import annotations

from labmesh_dagster.connectors.postgres_migrations import Migrations

_TABLES = """
CREATE TABLE catalog_experiments (
    experiment_id TEXT COLLATE "C" PRIMARY KEY,
    doc BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    title TEXT NOT NULL,
    group_name TEXT,
    platform TEXT,
    created TEXT,
    fingerprint TEXT NOT NULL,
    record TEXT NOT NULL,
    locations TEXT NOT NULL,
    revision INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    run_id TEXT
);
CREATE TABLE catalog_archived (
    experiment_id TEXT COLLATE "C" PRIMARY KEY REFERENCES catalog_experiments (experiment_id),
    archived_at TEXT NOT NULL
);
CREATE TABLE catalog_datasets (
    experiment_id TEXT COLLATE "C" NOT NULL REFERENCES catalog_experiments (experiment_id),
    dataset TEXT COLLATE "C" NOT NULL,
    location TEXT NOT NULL,
    manifest_digest TEXT NOT NULL,
    file_count INTEGER NOT NULL,
    total_bytes BIGINT NOT NULL,
    revision INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    run_id TEXT,
    PRIMARY KEY (experiment_id, dataset)
);
CREATE TABLE catalog_files (
    experiment_id TEXT COLLATE "C" NOT NULL,
    dataset TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (experiment_id, dataset, key),
    FOREIGN KEY (experiment_id, dataset) REFERENCES catalog_datasets (experiment_id, dataset)
);
CREATE TABLE catalog_dataset_revisions (
    experiment_id TEXT COLLATE "C" NOT NULL,
    dataset TEXT COLLATE "C" NOT NULL,
    revision INTEGER NOT NULL,
    manifest_digest TEXT NOT NULL,
    file_count INTEGER NOT NULL,
    total_bytes BIGINT NOT NULL,
    published_at TEXT NOT NULL,
    run_id TEXT,
    checks TEXT,
    failed_checks INTEGER,
    PRIMARY KEY (experiment_id, dataset, revision)
);
CREATE TABLE catalog_grants (
    experiment_id TEXT COLLATE "C" NOT NULL REFERENCES catalog_experiments (experiment_id),
    principal TEXT NOT NULL,
    granted_at TEXT NOT NULL,
    PRIMARY KEY (experiment_id, principal)
);

CREATE TABLE catalog_search_docs (
    doc BIGINT PRIMARY KEY,
    experiment_id TEXT COLLATE "C" NOT NULL UNIQUE REFERENCES catalog_experiments (experiment_id),
    title TEXT NOT NULL,
    group_name TEXT,
    owner TEXT,
    platform TEXT,
    protocol TEXT,
    owner_key TEXT,
    protocol_key TEXT,
    samples TEXT[] NOT NULL,
    words INTEGER NOT NULL,
    files_words SMALLINT NOT NULL,
    title_text TSVECTOR NOT NULL,
    experiment_text TSVECTOR NOT NULL,
    group_text TSVECTOR NOT NULL,
    platform_text TSVECTOR NOT NULL,
    files_text TSVECTOR NOT NULL,
    words_text TSVECTOR NOT NULL
);
CREATE INDEX catalog_search_docs_words ON catalog_search_docs USING gin (words_text);
CREATE INDEX catalog_search_docs_title ON catalog_search_docs USING gin (title_text);
CREATE INDEX catalog_search_docs_experiment ON catalog_search_docs USING gin (experiment_text);
CREATE INDEX catalog_search_docs_group ON catalog_search_docs USING gin (group_text);
CREATE INDEX catalog_search_docs_platform ON catalog_search_docs USING gin (platform_text);
CREATE INDEX catalog_search_docs_files ON catalog_search_docs USING gin (files_text);
CREATE INDEX catalog_search_docs_unheld ON catalog_search_docs (doc) WHERE files_words = 2;
CREATE INDEX catalog_search_docs_owner ON catalog_search_docs (owner_key);
CREATE INDEX catalog_search_docs_protocol ON catalog_search_docs (protocol_key);

CREATE TABLE catalog_search_rows (
    doc BIGINT NOT NULL REFERENCES catalog_search_docs (doc) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    dataset TEXT COLLATE "C",
    zone_key TEXT,
    key TEXT COLLATE "C",
    format TEXT,
    size BIGINT,
    samples TEXT[] NOT NULL,
    created TEXT COLLATE "C",
    samples_text TSVECTOR NOT NULL,
    name_text TSVECTOR NOT NULL,
    format_text TSVECTOR NOT NULL,
    content_text TSVECTOR NOT NULL,
    PRIMARY KEY (doc, position)
);
CREATE INDEX catalog_search_rows_created ON catalog_search_rows (created);
CREATE INDEX catalog_search_rows_name ON catalog_search_rows USING gin (name_text);
CREATE INDEX catalog_search_rows_format ON catalog_search_rows USING gin (format_text);
CREATE INDEX catalog_search_rows_zone ON catalog_search_rows (zone_key, doc);

CREATE TABLE catalog_search_samples (
    sample TEXT COLLATE "C" NOT NULL,
    doc BIGINT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (sample, doc, position),
    FOREIGN KEY (doc, position) REFERENCES catalog_search_rows (doc, position) ON DELETE CASCADE
);
CREATE INDEX catalog_search_samples_row ON catalog_search_samples (doc, position);

CREATE TABLE catalog_search_access (
    doc BIGINT NOT NULL REFERENCES catalog_search_docs (doc) ON DELETE CASCADE,
    principal TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (doc, principal)
);
CREATE INDEX catalog_search_access_principal ON catalog_search_access (principal, doc);

-- How many times a phrase (its words, in order) occurs in a tsvector: the term frequency BM25 weighs.
CREATE FUNCTION labmesh_catalog_phrase_count(document TSVECTOR, lexemes TEXT[]) RETURNS INTEGER
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT count(*)::INTEGER
    FROM unnest(document) AS head, unnest(head.positions) AS start
    WHERE head.lexeme = lexemes[1] AND NOT EXISTS (
        SELECT 1 FROM generate_series(2, cardinality(lexemes)) AS k
        WHERE NOT EXISTS (
            SELECT 1 FROM unnest(document) AS word
            WHERE word.lexeme = lexemes[k] AND (start + k - 1)::SMALLINT = ANY (word.positions)
        )
    )
$$;
"""

MIGRATIONS = Migrations("catalog", (_TABLES,))
"""The catalog's schema history: step 1 builds it; later changes are new steps, never edits."""
