"""The PostgreSQL catalog's search tables for one experiment, rebuilt inside the write that changed it.

The rows are those the SQLite index keeps (`sqlite_index`): the experiment's
own row, then one per file in (dataset, key) order, each found under its own
samples or, for a file of none, the experiment's. Their text is cut into
words by FTS5's own tokenizer (`postgres_text`) and given to Postgres as
tsvector literals, positions included. The experiment keeps its
``doc`` number for life (from ``catalog_experiments``), so newest first stays
the order in which experiments were first registered, and its length in words
counts what FTS5 counts: its text, its files' words and one key word per
principal, owner and protocol.
"""

from __future__ import annotations

import json
from typing import Any

from labmesh_dagster.connectors.catalog.postgres_text import files_words, row_words, tokens_of, vector
from labmesh_dagster.connectors.catalog.sqlite_index import IndexRow, normal, sample_key
from labmesh_dagster.core.access import experiment_principals, people_on
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.manifest import ManifestEntry
from labmesh_dagster.core.text import clean_text, words_of

ROW_COLUMNS = ("samples_text", "name_text", "format_text", "content_text")
"""A row's text columns, in the order SQLite joins them into the experiment's files column."""


def _row_texts(row: IndexRow) -> tuple[str, str, str, str]:
    """The row's samples, file name, format and contents: `IndexRow.own_text`'s parts, in its order."""
    return " ".join(row.samples), row.name, row.format or "", row.content


def index_rows(db: Any, record: ExperimentRecord) -> list[IndexRow]:
    """The experiment's own row, then its files' rows in (dataset, key) byte order."""
    experiment_samples = [clean_text(sample_id) for sample_id in record.sample_ids]
    rows = [IndexRow(None, None, None, None, experiment_samples, experiment_samples, record.created or None)]
    files = db.execute(
        "SELECT dataset, entry FROM catalog_files WHERE experiment_id = %s ORDER BY dataset, key", (record.id,)
    ).fetchall()
    for file in files:
        entry = ManifestEntry.from_dict(json.loads(file["entry"]))
        own = [clean_text(sample_id) for sample_id in entry.sample_ids]
        rows.append(
            IndexRow(
                dataset=file["dataset"],
                key=clean_text(entry.key),
                format=entry.format,
                size=entry.size,
                own_samples=own,
                samples=own or experiment_samples,
                created=entry.created,
                name=clean_text(entry.name),
                content=clean_text(" ".join([entry.key, entry.text, " ".join(words_of(entry.metadata))])),
            )
        )
    return rows


def index_experiment(db: Any, experiment_id: str) -> None:
    """Rebuild the experiment's search rows and principals from the tables, inside the caller's transaction."""
    db.execute("DELETE FROM catalog_search_docs WHERE experiment_id = %s", (experiment_id,))
    found = db.execute(
        "SELECT doc, record FROM catalog_experiments WHERE experiment_id = %s", (experiment_id,)
    ).fetchone()
    if found is None:
        return
    doc, record = found["doc"], ExperimentRecord.from_dict(json.loads(found["record"]))
    grants = [
        row["principal"]
        for row in db.execute("SELECT principal FROM catalog_grants WHERE experiment_id = %s", (experiment_id,))
    ]
    principals = sorted(experiment_principals(record.group, record.owner, people_on(record.custom), grants))
    rows = index_rows(db, record)
    experiment_text = " ".join(
        part
        for part in [
            record.id,
            record.description,
            record.owner,
            record.project,
            record.protocol,
            " ".join(record.tags),
            " ".join(words_of(record.custom)),
        ]
        if part
    )
    own = [
        clean_text(record.title),
        clean_text(experiment_text),
        clean_text(record.group or ""),
        clean_text(record.platform or ""),
    ]
    # Every text of the experiment cut at once: its own four, then each row's samples, name, format, contents.
    cut = tokens_of([*own, *(text for row in rows for text in _row_texts(row))])
    texts = dict(zip(("title_text", "experiment_text", "group_text", "platform_text"), cut[:4], strict=True))
    row_tokens = [cut[4 + 4 * position : 8 + 4 * position] for position in range(len(rows))]
    # The files column is every row's own text in turn, as SQLite joins it.
    files = [token for parts in row_tokens for part in parts for token in part]
    # FTS5's row length counts every word of its text and files, and a key word per principal, owner and protocol.
    keys = len(principals) + bool(record.owner) + bool(record.protocol)
    length = sum(len(tokens) for tokens in texts.values()) + len(files) + keys
    held, texts["files_text"] = files_words(files)
    texts["words_text"] = list(dict.fromkeys(token for tokens in texts.values() for token in tokens))
    db.execute(
        """INSERT INTO catalog_search_docs (doc, experiment_id, title, group_name, owner, platform, protocol,
                owner_key, protocol_key, samples, words, files_words, title_text, experiment_text, group_text,
                platform_text, files_text, words_text)
            VALUES (%(doc)s, %(experiment_id)s, %(title)s, %(group)s, %(owner)s, %(platform)s, %(protocol)s,
                %(owner_key)s, %(protocol_key)s, %(samples)s, %(words)s, %(files_words)s, %(title_text)s::tsvector,
                %(experiment_text)s::tsvector, %(group_text)s::tsvector, %(platform_text)s::tsvector,
                %(files_text)s::tsvector, %(words_text)s::tsvector)""",
        {
            "doc": doc,
            "experiment_id": record.id,
            "title": clean_text(record.title),
            "group": record.group,
            "owner": record.owner,
            "platform": record.platform,
            "protocol": record.protocol,
            "owner_key": normal(record.owner) if record.owner else None,
            "protocol_key": normal(record.protocol) if record.protocol else None,
            "samples": rows[0].samples,
            "words": length,
            "files_words": int(held),
            **{column: vector(tokens) for column, tokens in texts.items()},
        },
    )
    with db.cursor() as cursor:
        cursor.executemany(
            """INSERT INTO catalog_search_rows (doc, position, dataset, zone_key, key, format, size, samples, created,
                    samples_text, name_text, format_text, content_text)
                VALUES (%(doc)s, %(position)s, %(dataset)s, %(zone_key)s, %(key)s, %(format)s, %(size)s,
                    %(samples)s, %(created)s, %(samples_text)s::tsvector, %(name_text)s::tsvector,
                    %(format_text)s::tsvector, %(content_text)s::tsvector)""",
            [
                {
                    "doc": doc,
                    "position": position,
                    "dataset": row.dataset,
                    "zone_key": normal(row.dataset) if row.dataset else None,
                    "key": row.key,
                    "format": row.format,
                    "size": row.size,
                    "samples": row.own_samples,
                    "created": row.created,
                    **{
                        column: vector(row_words(tokens))
                        for column, tokens in zip(ROW_COLUMNS, row_tokens[position], strict=True)
                    },
                }
                for position, row in enumerate(rows)
            ],
        )
        cursor.executemany(
            "INSERT INTO catalog_search_samples (sample, doc, position) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            [(sample_key(sample), doc, position) for position, row in enumerate(rows) for sample in row.samples],
        )
        cursor.executemany(
            "INSERT INTO catalog_search_access (doc, principal) VALUES (%s, %s)",
            [(doc, principal) for principal in principals],
        )
