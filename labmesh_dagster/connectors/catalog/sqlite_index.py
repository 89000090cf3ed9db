"""The local catalog's search index: what an experiment and its files are found by, and who may find them.

Why it is shaped so. A query must cost what its answer costs, not what the
catalog holds, so nothing is copied per file that a query would then have to
scan, and every filter has an index that returns rows in the order results are
formed:

- ``search_experiment_text`` (FTS5, one row per experiment, rowid = its *doc*
  number) holds the experiment's own text once, plus every word of its files in
  one ``files`` column. A query's words and experiment facets run here first, so
  BM25 ranks experiments (a word found in 1 of 12 experiments ranks 1/12 of the
  experiments, not every file of theirs) and ``LIMIT`` applies before any file
  is read.
- ``search_row_text`` (FTS5) and ``search_rows`` (a table) hold one row per
  file and one for the experiment itself, each with the file's own text only.
  A row's id is ``doc << 32 | position``, so an experiment's rows are one rowid
  range: deleting them on a write, or matching them for one experiment, is a
  range seek, never a scan.
- Access: each experiment's principals (`core.access`: its group, owner and
  people, plus grants) are kept in ``experiment_principals`` for readers that
  ask about one experiment, and as key tokens in both text tables, so a viewer's
  principals are one more ``AND`` inside the full-text query. FTS5 intersects
  them with the words and facets before ranking or counting anything: hiding
  more groups from a viewer only shortens the lists it walks.
- Facets that match a whole value (owner, protocol, zone) are key tokens too,
  so they combine with the rest in the same query; facets that match words
  (group, platform, format, file name) are ordinary columns; samples have their
  own table for their exact match; dates use an index on ``search_rows``.
- Counts: an experiment's share of each facet with few values (`COUNTED`),
  were all of it to match, is kept (``search_doc_facets``, values numbered in
  ``search_facet_values``) and summed per *home*, the experiment's group
  (``search_home_facets``), so counting adds up shares instead of reading
  files, and counting everything a viewer may see adds up one row per group.
  Each dataset's share is also summed per home, month and format
  (`sqlite_units`), for counts under a format, zone or date filter; each
  experiment's per home under its own platform, protocol and owner
  (`sqlite_value_sums`), and per word of its own text that many experiments
  hold (`sqlite_term_sums`), for counts under one of those or of one word.

The index is derived data: it is rebuilt for an experiment whenever that
experiment, one of its datasets or one of its grants changes, inside the same
transaction, so it never drifts from the tables. A catalog file from before
this index (one ``search_index`` table with the experiment's text in every file
row) is upgraded in place the first time it is opened (`upgrade`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from labmesh_dagster.connectors.catalog import sqlite_term_sums, sqlite_units, sqlite_value_sums
from labmesh_dagster.core.access import experiment_principals, group_principal, people_on
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.manifest import ManifestEntry
from labmesh_dagster.core.text import clean_text, words_of

INDEX_VERSION = 7
"""1: one ``search_index`` table; 2: without home groups; 3: without dataset rollups (`sqlite_units`);
4: without the experiments' own dates beside them; 5: without sums under own values (`sqlite_value_sums`);
6: without sums per word (`sqlite_term_sums`).

`upgrade` (re)builds the rollups of a version 3 to 6 index in place and rebuilds anything older."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS catalog_parts (
    part TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS experiment_grants (
    experiment_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    granted_at TEXT NOT NULL,
    PRIMARY KEY (experiment_id, principal)
) WITHOUT ROWID;
"""
"""What the index keeps that nothing else holds: created on every open."""

DERIVED = {
    "experiment_principals": """CREATE TABLE experiment_principals (
        experiment_id TEXT NOT NULL,
        principal TEXT NOT NULL,
        PRIMARY KEY (experiment_id, principal)
    ) WITHOUT ROWID;
    CREATE INDEX experiment_principals_by_principal ON experiment_principals (principal, experiment_id);""",
    "search_docs": """CREATE TABLE search_docs (
        doc INTEGER PRIMARY KEY,
        experiment_id TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL,
        home TEXT NOT NULL,
        group_name TEXT,
        owner TEXT,
        platform TEXT,
        protocol TEXT,
        samples TEXT NOT NULL
    );""",
    "search_rows": """CREATE TABLE search_rows (
        row INTEGER PRIMARY KEY,
        dataset TEXT,
        key TEXT,
        format TEXT,
        size INTEGER,
        samples TEXT NOT NULL,
        created TEXT
    );
    CREATE INDEX search_rows_by_created ON search_rows (created);""",
    "search_samples": """CREATE TABLE search_samples (
        sample TEXT NOT NULL,
        row INTEGER NOT NULL,
        PRIMARY KEY (sample, row)
    ) WITHOUT ROWID;
    CREATE INDEX search_samples_by_row ON search_samples (row);""",
    "search_access": """CREATE TABLE search_access (
        doc INTEGER NOT NULL,
        principal TEXT NOT NULL,
        home INTEGER NOT NULL,
        PRIMARY KEY (doc, principal)
    ) WITHOUT ROWID;
    CREATE INDEX search_access_by_principal ON search_access (principal, home, doc);""",
    "search_facet_values": """CREATE TABLE search_facet_values (
        id INTEGER PRIMARY KEY,
        facet TEXT NOT NULL,
        value TEXT NOT NULL,
        UNIQUE (facet, value)
    );""",
    "search_doc_facets": """CREATE TABLE search_doc_facets (
        doc INTEGER NOT NULL,
        value INTEGER NOT NULL,
        hits INTEGER NOT NULL,
        PRIMARY KEY (doc, value)
    ) WITHOUT ROWID;""",
    "search_home_facets": """CREATE TABLE search_home_facets (
        home TEXT NOT NULL,
        value INTEGER NOT NULL,
        hits INTEGER NOT NULL,
        PRIMARY KEY (home, value)
    ) WITHOUT ROWID;""",
    "search_experiment_text": """CREATE VIRTUAL TABLE search_experiment_text USING fts5(
        title, experiment, lab_group, platform, files, keys, tokenize = 'porter unicode61'
    );""",
    "search_row_text": """CREATE VIRTUAL TABLE search_row_text USING fts5(
        samples, file_name, file_format, content, lab_group, platform, keys, tokenize = 'porter unicode61'
    );""",
    **sqlite_units.SCHEMA,
    **sqlite_value_sums.SCHEMA,
    **sqlite_term_sums.SCHEMA,
}
"""The index proper, rebuilt from the catalog's tables by `upgrade`: table name -> its statements."""

COUNTED = ("group", "owner", "platform", "protocol", "format", "zone", "month")
"""The facets whose values are few (groups, people, instruments...): counted from per-experiment shares."""

# BM25 weights of search_experiment_text's columns: a word in the title counts most, one in the files least,
# and the key tokens (access, exact facets) not at all.
RANK = "bm25(4.0, 2.0, 1.0, 1.0, 1.0, 0.0)"

POSITION_BITS = 32
# Sample ids are kept between unit separators, which no id contains once cleaned of control characters.
SEPARATOR = "\x1f"


def doc_range(doc: int) -> tuple[int, int]:
    """The first and last row id an experiment's rows may have."""
    return doc << POSITION_BITS, (doc << POSITION_BITS) | ((1 << POSITION_BITS) - 1)


def normal(value: str) -> str:
    """A facet value as it is compared when matched whole: spaces collapsed, case ignored."""
    return " ".join(value.split()).casefold()


def key_token(kind: str, value: str) -> str:
    """One opaque word standing for a whole value (a principal, an owner...), so FTS5 can match it exactly.

    A digest rather than the value itself: the tokenizer would split ``group:genomics core`` into
    words, and ``genomics`` alone must not match it.
    """
    return f"k{kind}{hashlib.blake2b(normal(value).encode('utf-8'), digest_size=8).hexdigest()}"


def access_token(principal: str) -> str:
    return key_token("a", principal)


def owner_token(owner: str) -> str:
    return key_token("o", owner)


def protocol_token(protocol: str) -> str:
    return key_token("p", protocol)


def zone_token(zone: str) -> str:
    return key_token("z", zone)


def sample_key(sample: str) -> str:
    return clean_text(sample).lower()


def joined(sample_ids: Iterable[str]) -> str:
    return SEPARATOR.join(clean_text(sample_id) for sample_id in sample_ids)


def forget_experiment(db: sqlite3.Connection, experiment_id: str) -> int | None:
    """Delete the experiment's index rows (rowid-range deletes); its doc number, if it had one, is kept."""
    found = db.execute("SELECT doc FROM search_docs WHERE experiment_id = ?", (experiment_id,)).fetchone()
    db.execute("DELETE FROM experiment_principals WHERE experiment_id = ?", (experiment_id,))
    if found is None:
        return None
    doc = int(found[0])
    low, high = doc_range(doc)
    db.execute("DELETE FROM search_row_text WHERE rowid BETWEEN ? AND ?", (low, high))
    db.execute("DELETE FROM search_rows WHERE row BETWEEN ? AND ?", (low, high))
    db.execute("DELETE FROM search_samples WHERE row BETWEEN ? AND ?", (low, high))
    db.execute("DELETE FROM search_experiment_text WHERE rowid = ?", (doc,))
    db.execute("DELETE FROM search_access WHERE doc = ?", (doc,))
    # The experiment's share leaves its home group's counts with it.
    (home,) = db.execute("SELECT home FROM search_docs WHERE doc = ?", (doc,)).fetchone()
    db.execute(
        """UPDATE search_home_facets AS h SET hits = h.hits - f.hits FROM search_doc_facets AS f
           WHERE f.doc = ? AND h.home = ? AND h.value = f.value""",
        (doc, home),
    )
    db.execute("DELETE FROM search_home_facets WHERE home = ? AND hits <= 0", (home,))
    sqlite_value_sums.take_share(db, doc, home, sqlite_value_sums.own_value_ids(db, doc))
    sqlite_term_sums.take_share(db, doc, home)
    db.execute("DELETE FROM search_doc_facets WHERE doc = ?", (doc,))
    return doc


@dataclass(frozen=True)
class IndexRow:
    """One row of an experiment in the index: its own (``dataset`` None, position 0) or one file's."""

    dataset: str | None
    key: str | None
    format: str | None
    size: int | None
    own_samples: list[str]
    samples: list[str]
    """The samples it is found under: its own, or, for a file of no sample, the experiment's."""
    created: str | None
    name: str = ""
    content: str = ""

    @property
    def own_text(self) -> str:
        return " ".join(part for part in (" ".join(self.samples), self.name, self.format or "", self.content) if part)


def _rows(db: sqlite3.Connection, record: ExperimentRecord) -> list[IndexRow]:
    experiment_samples = [clean_text(sample_id) for sample_id in record.sample_ids]
    rows = [IndexRow(None, None, None, None, experiment_samples, experiment_samples, record.created or None)]
    sql = "SELECT dataset, entry FROM files WHERE experiment_id = ? ORDER BY dataset, key"
    for dataset, text in db.execute(sql, (record.id,)).fetchall():
        entry = ManifestEntry.from_dict(json.loads(text))
        own = [clean_text(sample_id) for sample_id in entry.sample_ids]
        rows.append(
            IndexRow(
                dataset=dataset,
                key=clean_text(entry.key),
                format=entry.format,
                size=entry.size,
                own_samples=own,
                # A file with no sample of its own (a run summary, say) belongs to
                # the whole experiment, so it is found under each of its samples.
                samples=own or experiment_samples,
                created=entry.created,
                name=clean_text(entry.name),
                content=clean_text(" ".join([entry.key, entry.text, " ".join(words_of(entry.metadata))])),
            )
        )
    if len(rows) >= 1 << POSITION_BITS:
        raise ValueError(f"experiment {record.id} has more files than the search index can hold")
    return rows


def facet_summary(record: ExperimentRecord, rows: list[IndexRow]) -> Counter[tuple[str, str]]:
    """What the experiment adds to each `COUNTED` facet when every row of it matches: its hits per value.

    A hit is a dataset, or the experiment itself while it has none (as `search` forms them).
    """
    units: dict[str | None, list[IndexRow]] = {}
    for row in rows[1:]:
        units.setdefault(row.dataset, []).append(row)
    if not units:
        units[None] = rows[:1]
    summary: Counter[tuple[str, str]] = Counter()
    experiment = {"group": record.group, "owner": record.owner, "platform": record.platform}
    for facet, value in {**experiment, "protocol": record.protocol}.items():
        if value:
            summary[facet, value] += len(units)
    for dataset, unit in units.items():
        summary.update([("zone", dataset)] if dataset else [])
        summary.update({("format", row.format) for row in unit if row.format})
        summary.update({("month", row.created[:7]) for row in unit if row.created})
    return summary


def _value_id(db: sqlite3.Connection, facet: str, value: str) -> int:
    sql = (
        "INSERT INTO search_facet_values (facet, value) VALUES (?, ?) "
        "ON CONFLICT (facet, value) DO UPDATE SET facet = excluded.facet RETURNING id"
    )
    return int(db.execute(sql, (facet, clean_text(value))).fetchone()[0])


def index_experiment(db: sqlite3.Connection, experiment_id: str) -> None:
    """Rebuild the experiment's index rows and principals from the tables, inside the caller's transaction."""
    doc = forget_experiment(db, experiment_id)
    # Taken out before the experiment's values change: the sums it is in are those of its old home and values.
    previous = sqlite_units.forget_units(db, doc) if doc is not None else Counter()
    found = db.execute("SELECT record FROM experiments WHERE experiment_id = ?", (experiment_id,)).fetchone()
    if found is None:
        sqlite_units.index_units(db, None, [], previous)
        db.execute("DELETE FROM search_docs WHERE experiment_id = ?", (experiment_id,))
        return
    record = ExperimentRecord.from_dict(json.loads(found[0]))
    sql = "SELECT principal FROM experiment_grants WHERE experiment_id = ?"
    grants = [row[0] for row in db.execute(sql, (record.id,))]
    principals = sorted(experiment_principals(record.group, record.owner, people_on(record.custom), grants))
    rows = _rows(db, record)
    # An experiment's home is its group: counts over everything a viewer may see add up per home.
    home = group_principal(record.group) if record.group and record.group.strip() else ""
    doc = db.execute(
        """INSERT INTO search_docs (doc, experiment_id, title, home, group_name, owner, platform, protocol, samples)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (experiment_id) DO UPDATE SET
             title = excluded.title, home = excluded.home, group_name = excluded.group_name, owner = excluded.owner,
             platform = excluded.platform, protocol = excluded.protocol, samples = excluded.samples
           RETURNING doc""",
        (
            doc,
            record.id,
            clean_text(record.title),
            home,
            record.group,
            record.owner,
            record.platform,
            record.protocol,
            joined(rows[0].samples),
        ),
    ).fetchone()[0]
    sqlite_units.index_units(db, doc, [(row.dataset, row.format, row.created) for row in rows], previous)
    db.executemany(
        "INSERT INTO experiment_principals (experiment_id, principal) VALUES (?, ?)",
        [(record.id, principal) for principal in principals],
    )
    db.executemany(
        "INSERT INTO search_access (doc, principal, home) VALUES (?, ?, ?)",
        [(doc, principal, principal == home) for principal in principals],
    )
    # Facet values are numbered, so counts add up integers, not strings.
    share = facet_summary(record, rows)
    numbers = {(facet, value): _value_id(db, facet, value) for facet, value in share}
    summary = {numbers[key]: hits for key, hits in share.items()}
    if record.platform:
        sqlite_value_sums.register_platform(db, numbers["platform", record.platform], clean_text(record.platform))
    unders = [number for (facet, _), number in numbers.items() if facet in sqlite_value_sums.UNDER]
    sqlite_value_sums.add_share(db, home, unders, summary)
    db.executemany(
        "INSERT INTO search_doc_facets (doc, value, hits) VALUES (?, ?, ?)",
        [(doc, value, hits) for value, hits in summary.items()],
    )
    db.executemany(
        "INSERT INTO search_home_facets (home, value, hits) VALUES (?, ?, ?) "
        "ON CONFLICT (home, value) DO UPDATE SET hits = hits + excluded.hits",
        [(home, value, hits) for value, hits in summary.items()],
    )
    low, _ = doc_range(doc)
    db.executemany(
        "INSERT INTO search_rows (row, dataset, key, format, size, samples, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (low + position, row.dataset, row.key, row.format, row.size, joined(row.own_samples), row.created)
            for position, row in enumerate(rows)
        ],
    )
    db.executemany(
        "INSERT OR IGNORE INTO search_samples (sample, row) VALUES (?, ?)",
        [(sample_key(sample), low + position) for position, row in enumerate(rows) for sample in row.samples],
    )
    keys = [access_token(principal) for principal in principals]
    keys += [owner_token(record.owner)] if record.owner else []
    keys += [protocol_token(record.protocol)] if record.protocol else []
    group, platform = clean_text(record.group or ""), clean_text(record.platform or "")
    db.executemany(
        "INSERT INTO search_row_text (rowid, samples, file_name, file_format, content, lab_group, platform, keys) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                low + position,
                " ".join(row.samples),
                row.name,
                row.format or "",
                row.content,
                group,
                platform,
                " ".join([*keys, *([zone_token(row.dataset)] if row.dataset else [])]),
            )
            for position, row in enumerate(rows)
        ],
    )
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
    own = (clean_text(record.title), clean_text(experiment_text), group, platform)
    db.execute(
        "INSERT INTO search_experiment_text (rowid, title, experiment, lab_group, platform, files, keys) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (doc, *own, " ".join(row.own_text for row in rows), " ".join(keys)),
    )
    # After the full-text row: a word this experiment brings to the threshold is summed with it.
    sqlite_term_sums.add_share(db, doc, home, " ".join(own), summary)


def upgrade(db: sqlite3.Connection) -> bool:
    """Bring the index up to `INDEX_VERSION` inside the caller's write transaction; True if it had to.

    The index is derived, so an older one is dropped and rebuilt from the
    experiments, datasets, files and grants; version 3 only lacks the dataset
    rollups, which are summed from its index rows in place. Idempotent, and safe when several
    processes open an old catalog at once: the version is read under the write
    lock, so the first one rebuilds and the others find it done. The rebuild
    numbers experiments in the order they were first registered.
    """
    found = db.execute("SELECT version FROM catalog_parts WHERE part = 'search'").fetchone()
    if found is not None and found[0] >= INDEX_VERSION:
        return False
    if found is not None and found[0] in (3, 4, 5, 6):
        if found[0] < 5:
            _add_units(db)
        if found[0] < 6:
            _add_value_sums(db)
        _create(db, sqlite_term_sums.SCHEMA)
        sqlite_term_sums.rebuild(db)
    else:
        _rebuild(db)
    db.execute(
        "INSERT INTO catalog_parts (part, version) VALUES ('search', ?) "
        "ON CONFLICT (part) DO UPDATE SET version = excluded.version",
        (INDEX_VERSION,),
    )
    return True


def _create(db: sqlite3.Connection, tables: Iterable[str]) -> None:
    for table in tables:
        db.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in DERIVED[table].split(";"):
            if statement.strip():
                db.execute(statement)


def _add_units(db: sqlite3.Connection) -> None:
    """Version 3 or 4 to 5: the rollups, summed from the index rows already there (the rest is unchanged)."""
    _create(db, sqlite_units.SCHEMA)
    for (doc,) in db.execute("SELECT doc FROM search_docs ORDER BY doc").fetchall():
        low, high = doc_range(doc)
        sql = "SELECT dataset, format, created FROM search_rows WHERE row BETWEEN ? AND ? ORDER BY row"
        sqlite_units.index_units(db, doc, db.execute(sql, (low, high)).fetchall(), Counter())


def _add_value_sums(db: sqlite3.Connection) -> None:
    """Version 5 to 6: the sums under each experiment's own values, from the shares already kept."""
    _create(db, sqlite_value_sums.SCHEMA)
    for doc, home, platform in db.execute("SELECT doc, home, platform FROM search_docs ORDER BY doc").fetchall():
        share = dict(db.execute("SELECT value, hits FROM search_doc_facets WHERE doc = ?", (doc,)).fetchall())
        if platform:
            sqlite_value_sums.register_platform(db, _value_id(db, "platform", platform), clean_text(platform))
        sqlite_value_sums.add_share(db, home, sqlite_value_sums.own_value_ids(db, doc), share)


def _rebuild(db: sqlite3.Connection) -> None:
    """Any older version: the whole index, dropped and built again from the catalog's tables."""
    db.execute("DROP TABLE IF EXISTS search_index")  # version 1's one table
    _create(db, DERIVED)
    db.execute("INSERT INTO search_experiment_text (search_experiment_text, rank) VALUES ('rank', ?)", (RANK,))
    for (experiment_id,) in db.execute("SELECT experiment_id FROM experiments ORDER BY rowid").fetchall():
        index_experiment(db, experiment_id)


def index_is_current(db: sqlite3.Connection) -> bool:
    """Whether `upgrade` has nothing to do: read without the write lock, so a current catalog opens without writing."""
    found = db.execute("SELECT version FROM catalog_parts WHERE part = 'search'").fetchone()
    return found is not None and found[0] >= INDEX_VERSION
