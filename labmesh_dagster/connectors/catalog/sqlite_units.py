"""Rollups of the local catalog's datasets, so a count under a file filter adds up sums instead of reading files.

Why. ``--format csv --since 2023-07-01`` matches a share of every dataset the
viewer may see, so its hits grow with the catalog: counting them from file rows
(or even one row per dataset) costs ten times more at 100,000 datasets than at
10,000. Counts only need how many hits carry each value, so each dataset is
summarised once, when its experiment is indexed, and the sums are kept per
*home* (the experiment's group, as `sqlite_index` keeps it):

- ``search_units``: one row per dataset (experiment doc, zone) with its home,
  its month (the ``YYYY-MM`` its files' dates start with, ``*`` when they
  span months) and its formats. Indexed by (home, month), so the
  datasets of one month of one group are one range.
- ``search_home_units``: per home, format (``f:NAME``, or ``''``: any), period (a month
  ``m:YYYY-MM`` and its year ``y:YYYY``) and zone, the number of datasets
  (facet ``hits``) and how many carry each value of the counted facets (group,
  owner, platform, protocol, format, month). A dataset counts under ``''`` and
  under each of its formats; in a format's cell only that format is counted,
  because a ``--format`` filter leaves only those files of the dataset.
- ``search_home_spans``: per home and month, the earliest and latest file date
  seen. They widen and never narrow, so they always hold every dataset of the
  month: a date filter takes the month whole, leaves it out, or cuts it (a
  bound inside the month, to the second). Only the months it cuts are read.
- ``search_own``: each dated experiment's own date, with the earliest and
  latest date of its datasets' files, indexed by (home, date) and by date. Under dates
  alone the experiment itself is a hit when its date is in them and none of
  its files is: the file dates tell, reading rows only when the dates fall
  between its first and last file with none known inside.
- ``search_row_values`` and ``search_format_text``: every format and zone
  seen; the formats in a full-text table tokenized like the files' own, so a
  ``--format`` filter resolves to the format values it matches, exactly as it
  matches file rows.

`sqlite_facets.counted_by_sums` answers a query whose only filters are
format, zone and dates (files filtered, the experiments not): the sums of the
months (or whole years)
a date filter takes whole, for the viewer's groups; then, read row by row, the
datasets of the months it cuts, those spanning months, and the experiments the
viewer sees otherwise (as owner, on its people, by a grant). Access thus
chooses which sums and rows are read before anything is counted. A filter
whose format matches several values (``gz``: ``fastq.gz`` and ``vcf.gz``)
could count a dataset twice from the sums, so it is left to the row reader.

Writes stay cheap: an experiment's datasets are summarised from the index rows
it is given anyway, and only the difference from what it added before is
written, so a new revision that keeps its months and formats touches no sum.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

SCHEMA = {
    "search_units": """CREATE TABLE search_units (
        doc INTEGER NOT NULL,
        zone TEXT NOT NULL,
        home TEXT NOT NULL,
        month TEXT NOT NULL,
        formats TEXT NOT NULL,
        PRIMARY KEY (doc, zone)
    ) WITHOUT ROWID;
    CREATE INDEX search_units_by_month ON search_units (home, month);""",
    "search_home_units": """CREATE TABLE search_home_units (
        home TEXT NOT NULL,
        format TEXT NOT NULL,
        period TEXT NOT NULL,
        zone TEXT NOT NULL,
        facet TEXT NOT NULL,
        value TEXT NOT NULL,
        hits INTEGER NOT NULL,
        PRIMARY KEY (home, format, period, zone, facet, value)
    ) WITHOUT ROWID;""",
    "search_home_spans": """CREATE TABLE search_home_spans (
        home TEXT NOT NULL,
        month TEXT NOT NULL,
        lo TEXT,
        hi TEXT,
        PRIMARY KEY (home, month)
    ) WITHOUT ROWID;""",
    "search_own": """CREATE TABLE search_own (
        doc INTEGER PRIMARY KEY,
        home TEXT NOT NULL,
        created TEXT NOT NULL,
        lo TEXT,
        hi TEXT
    );
    CREATE INDEX search_own_by_date ON search_own (home, created);
    CREATE INDEX search_own_by_created ON search_own (created);""",
    "search_row_values": """CREATE TABLE search_row_values (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        UNIQUE (kind, value)
    );""",
    "search_format_text": """CREATE VIRTUAL TABLE search_format_text USING fts5(
        file_format, tokenize = 'porter unicode61'
    );""",
}
"""Derived tables, rebuilt with the rest of the index (`sqlite_index.DERIVED`): name -> statements."""

SPREAD = "*"
"""The month of a dataset whose files are dated in several months (or some not at all): never summed, always read."""
EXPERIMENT_FACETS = ("group", "owner", "platform", "protocol")
Cell = tuple[str, str, str, str, str, str]
"""(home, format, period, zone, facet, value): one counter of ``search_home_units``."""


@dataclass(frozen=True)
class Unit:
    """One dataset of an experiment, as the sums see it."""

    zone: str
    month: str
    formats: tuple[str, ...]
    lo: str | None
    hi: str | None


def units_of(rows: Iterable[tuple[str | None, str | None, str | None]]) -> list[Unit]:
    """The datasets of an experiment's rows (dataset, format, created); the experiment's own row is none."""
    grouped: dict[str, list[tuple[str | None, str | None]]] = {}
    for dataset, fmt, created in rows:
        if dataset is not None:
            grouped.setdefault(dataset, []).append((fmt, created))
    found = []
    for zone, files in grouped.items():
        # As the rows are counted: a file's month is its date's first 7 characters, whatever they are.
        months = {created[:7] if created is not None else None for _, created in files}
        month = next(iter(months)) if len(months) == 1 else None
        dates = [created for _, created in files if created is not None]
        formats = tuple(sorted({fmt for fmt, _ in files if fmt is not None}))
        if month is None:  # several months, or an undated file (which no date filter lets through)
            month = SPREAD
        found.append(Unit(zone, month, formats, min(dates, default=None), max(dates, default=None)))
    return found


def periods(month: str) -> list[str]:
    """The periods a dataset of ``month`` is summed under: its month and its year."""
    return [f"m:{month}", f"y:{month[:4]}"]


def format_key(fmt: str | None) -> str:
    """A format's key in the sums; ``''`` stands for the dataset whatever its formats."""
    return "" if fmt is None else f"f:{fmt}"


def cells(home: str, values: dict[str, str | None], unit: Unit) -> Counter[Cell]:
    """What one dataset adds to its home's sums (nothing when its files span months: those are read)."""
    added: Counter[Cell] = Counter()
    if unit.month == SPREAD:
        return added
    carried = [("hits", ""), ("month", unit.month)]
    carried += [(facet, value) for facet, value in values.items() if value is not None]
    for fmt in (None, *unit.formats):
        formats = [("format", name) for name in (unit.formats if fmt is None else (fmt,))]
        key = format_key(fmt)
        for period in periods(unit.month):
            added.update((home, key, period, unit.zone, facet, value) for facet, value in (*carried, *formats))
    return added


def _values(db: sqlite3.Connection, doc: int) -> tuple[str, dict[str, str | None]]:
    sql = "SELECT home, group_name, owner, platform, protocol FROM search_docs WHERE doc = ?"
    home, *values = db.execute(sql, (doc,)).fetchone()
    return home, dict(zip(EXPERIMENT_FACETS, values, strict=True))


def forget_units(db: sqlite3.Connection, doc: int) -> Counter[Cell]:
    """Drop the experiment's datasets and return what they added to its home's sums, for `index_units` to take back.

    Call while the experiment's ``search_docs`` row still holds its home and values.
    """
    db.execute("DELETE FROM search_own WHERE doc = ?", (doc,))
    stored = db.execute("SELECT zone, month, formats FROM search_units WHERE doc = ?", (doc,)).fetchall()
    removed: Counter[Cell] = Counter()
    if not stored:
        return removed
    home, values = _values(db, doc)
    for zone, month, formats in stored:
        removed.update(cells(home, values, Unit(zone, month, tuple(json.loads(formats)), None, None)))
    db.execute("DELETE FROM search_units WHERE doc = ?", (doc,))
    return removed


def index_own(
    db: sqlite3.Connection, doc: int, home: str, rows: list[tuple[str | None, str | None, str | None]]
) -> None:
    """Keep the experiment's own date (its own row's, the first) beside its files' first and last dates."""
    created = rows[0][2] if rows and rows[0][0] is None else None
    if created is None:
        return  # no date of its own: dates never let the experiment itself through
    dates = [row[2] for row in rows if row[0] is not None and row[2] is not None]
    db.execute(
        "INSERT INTO search_own (doc, home, created, lo, hi) VALUES (?, ?, ?, ?, ?)",
        (doc, home, created, min(dates, default=None), max(dates, default=None)),
    )


def index_units(
    db: sqlite3.Connection,
    doc: int | None,
    rows: Iterable[tuple[str | None, str | None, str | None]],
    previous: Counter[Cell],
) -> None:
    """Summarise the experiment's datasets from its index rows (dataset, format, created) into its home's sums.

    ``previous`` is what `forget_units` took out: only the difference is written, so a new revision that
    keeps its months and formats (the usual one) changes no sum at all. ``doc`` None: the experiment is gone.
    """
    rows = list(rows)
    units = units_of(rows) if doc is not None else []
    added: Counter[Cell] = Counter()
    if doc is not None:
        home, values = _values(db, doc)
        index_own(db, doc, home, rows)
        for unit in units:
            added.update(cells(home, values, unit))
        db.executemany(
            "INSERT INTO search_units (doc, zone, home, month, formats) VALUES (?, ?, ?, ?, ?)",
            [(doc, unit.zone, home, unit.month, json.dumps(unit.formats)) for unit in units],
        )
        db.executemany(
            "INSERT INTO search_home_spans (home, month, lo, hi) VALUES (?, ?, ?, ?) ON CONFLICT (home, month) "
            "DO UPDATE SET lo = min(coalesce(lo, excluded.lo), coalesce(excluded.lo, lo)), "
            "hi = max(coalesce(hi, excluded.hi), coalesce(excluded.hi, hi))",
            [(home, unit.month, unit.lo, unit.hi) for unit in units],
        )
    changes = {cell: added[cell] - previous[cell] for cell in added.keys() | previous.keys()}
    db.executemany(
        "INSERT INTO search_home_units (home, format, period, zone, facet, value, hits) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (home, format, period, zone, facet, value) DO UPDATE SET hits = hits + excluded.hits",
        [(*cell, change) for cell, change in changes.items() if change > 0],
    )
    fewer = [cell for cell, change in changes.items() if change < 0]
    db.executemany(
        "UPDATE search_home_units SET hits = hits + ? WHERE home = ? AND format = ? AND period = ? AND zone = ? "
        "AND facet = ? AND value = ?",
        [(changes[cell], *cell) for cell in fewer],
    )
    db.executemany(
        "DELETE FROM search_home_units WHERE home = ? AND format = ? AND period = ? AND zone = ? AND facet = ? "
        "AND value = ? AND hits <= 0",
        fewer,
    )
    seen = {("zone", unit.zone) for unit in units} | {("format", fmt) for unit in units for fmt in unit.formats}
    for kind, value in seen:
        sql = "INSERT INTO search_row_values (kind, value) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING id"
        new = db.execute(sql, (kind, value)).fetchone()
        if new is not None and kind == "format":
            db.execute("INSERT INTO search_format_text (rowid, file_format) VALUES (?, ?)", (new[0], value))
