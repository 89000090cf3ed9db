"""Facet counts under one of an experiment's own values (its platform, protocol or owner), from sums per home.

Why. ``--platform MiSeq`` matches a twelfth of every group's experiments, so
counting its hits by adding up each matching experiment's share
(``search_doc_facets``) reads ten times more at 100,000 datasets than at
10,000. Its counts are those of the experiments holding that value, so when an
experiment is indexed its share is also added to its home's sums *under* each
of its own values (``search_home_value_facets``: under, home, value, hits;
``under`` numbers the platform, protocol or owner in ``search_facet_values``;
keyed by it first, so an admin's count, over every home, is one range too).
A count under one of those filters then adds up the viewer's groups' sums
under the values the filter matches, plus the few experiments they see
otherwise (as owner, on its people, by a grant), read as before: its cost
follows the viewer's groups, not the experiments. Access chooses which sums are
read before anything is added up, as for the portal's first page.

Which values a filter matches is decided as the search decides it: a platform
by its phrase, in a full-text table of the platform values tokenized like the
experiments' own platform column (``search_platform_text``); an owner or a
protocol whole, case and spaces aside (`sqlite_index.normal`), as their key
tokens match. An experiment holds one value of each, so adding the sums of
several matching values never counts it twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

from labmesh_dagster.connectors.catalog.base import SearchQuery

SCHEMA = {
    "search_home_value_facets": """CREATE TABLE search_home_value_facets (
        home TEXT NOT NULL,
        under INTEGER NOT NULL,
        value INTEGER NOT NULL,
        hits INTEGER NOT NULL,
        PRIMARY KEY (under, home, value)
    ) WITHOUT ROWID;""",
    "search_platform_text": """CREATE VIRTUAL TABLE search_platform_text USING fts5(
        platform, tokenize = 'porter unicode61'
    );""",
}
"""Derived tables, rebuilt with the rest of the index (`sqlite_index.DERIVED`): name -> statements."""

UNDER = ("owner", "platform", "protocol")
"""The experiment's own values its share is summed under."""


def register_platform(db: sqlite3.Connection, value_id: int, platform: str) -> None:
    """Make a platform value findable by the phrases that find it in the experiments' text (once)."""
    if db.execute("SELECT 1 FROM search_platform_text WHERE rowid = ?", (value_id,)).fetchone() is None:
        db.execute("INSERT INTO search_platform_text (rowid, platform) VALUES (?, ?)", (value_id, platform))


def add_share(db: sqlite3.Connection, home: str, unders: Sequence[int], share: Mapping[int, int]) -> None:
    """Add the experiment's share (value id -> hits) to its home's sums under each of its own values."""
    db.executemany(
        "INSERT INTO search_home_value_facets (home, under, value, hits) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (under, home, value) DO UPDATE SET hits = hits + excluded.hits",
        [(home, under, value, hits) for under in unders for value, hits in share.items()],
    )


def take_share(db: sqlite3.Connection, doc: int, home: str, unders: Sequence[int]) -> None:
    """Take the experiment's share (its ``search_doc_facets`` rows, still there) back out of its home's sums."""
    if not unders:
        return
    marks = ", ".join("?" * len(unders))
    db.execute(
        f"""UPDATE search_home_value_facets AS h SET hits = h.hits - f.hits FROM search_doc_facets AS f
            WHERE f.doc = ? AND h.home = ? AND h.under IN ({marks}) AND h.value = f.value""",
        (doc, home, *unders),
    )
    db.execute(
        f"DELETE FROM search_home_value_facets WHERE home = ? AND under IN ({marks}) AND hits <= 0", (home, *unders)
    )


def own_value_ids(db: sqlite3.Connection, doc: int) -> list[int]:
    """The ids of the experiment's own values, as its ``search_doc_facets`` rows name them."""
    marks = ", ".join("?" * len(UNDER))
    sql = (
        "SELECT v.id FROM search_doc_facets AS f JOIN search_facet_values AS v ON v.id = f.value "
        f"WHERE f.doc = ? AND v.facet IN ({marks})"
    )
    return [row[0] for row in db.execute(sql, (doc, *UNDER))]


def sums_answer(query: SearchQuery) -> bool:
    """Whether the counts of ``query`` are sums under one own value: that filter alone, no words or file filter."""
    own = [value for value in (query.platform, query.protocol, query.owner) if value]
    others = (
        query.text.strip(),
        query.group,
        query.experiment,
        query.sample,
        query.file_name,
        query.format,
        query.zone,
        query.since,
        query.until,
    )
    return len(own) == 1 and not any(others)


def matched_values(db: sqlite3.Connection, query: SearchQuery, phrase: str | None, normal: str | None) -> list[int]:
    """The ids of the values the query's own-value filter matches: a platform's ``phrase``, or a ``normal`` value."""
    if query.platform:
        sql = "SELECT rowid FROM search_platform_text WHERE search_platform_text MATCH ?"
        return [row[0] for row in db.execute(sql, (f"platform : {phrase}",))]
    facet = "protocol" if query.protocol else "owner"
    sql = "SELECT id, value FROM search_facet_values WHERE facet = ?"
    return [number for number, value in db.execute(sql, (facet,)) if " ".join(value.split()).casefold() == normal]
