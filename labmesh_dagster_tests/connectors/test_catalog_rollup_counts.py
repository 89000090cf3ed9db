"""Facet counts under file filters come from summaries, and they are exactly the counts read from the rows.

Pinned here, on a lab built to trip sums up: a dataset whose files span two
months, files dated mid-month with bounds that cut that month to the second,
undated files, two formats one word matches (``fastq`` and ``fastq.gz``), an
owner who sees an experiment outside her group, an experiment with no group.
For each query that filters files by format, zone and dates only (dates alone
too, where an experiment with no file in them may be its own hit), under each
viewer, the sums answer (they never quietly hand over to the rows, but for a
format matching several values) and give the counts that reading every
matching row gives; so do, with words or experiment facets as well, the
summaries of the matching experiments' datasets. After revisions that move datasets to other months and
formats, a group change and a grant, the sums are those of a catalog built
from scratch in that final state.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.connectors.catalog import sqlite_facets
from labmesh_dagster.connectors.catalog.base import SearchQuery
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.catalog.sqlite_search import Plan
from labmesh_dagster.connectors.sqlite_files import connect
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.experiment import ExperimentRecord, Sample
from labmesh_dagster.core.manifest import Manifest, ManifestEntry


def entry(key: str, fmt: str, created: str, *samples: str) -> ManifestEntry:
    return ManifestEntry(key=key, size=1, sha256="0" * 64, format=fmt, created=created, sample_ids=samples)


LIVER = ExperimentRecord(
    id="EXP-1", title="Liver", owner="Ada Lovelace", group="Hepatology", platform="MiSeq", protocol="RNA-seq",
    samples=(Sample("L1"),), created="2024-03-01",
)  # fmt: skip
KIDNEY = ExperimentRecord(
    id="EXP-2", title="Kidney", owner="Alan Turing", group="Hepatology", platform="NovaSeq 6000", created="2024-04-01"
)
ADAS_OWN = ExperimentRecord(
    id="EXP-3", title="Nephrons", owner="Ada Lovelace", group="Nephrology", created="2024-04-02"
)
NO_GROUP = ExperimentRecord(id="EXP-4", title="Loose ends", owner="Grace Hopper", created="2024-04-03")
PLANS = ExperimentRecord(id="EXP-5", title="Plans", owner="Alan Turing", group="Hepatology", created="2024-02-10")

DATASETS = [
    # Reads late on the last day of March, the run summary just after midnight: one dataset, two months.
    Manifest.build("EXP-1", "raw", [
        entry("raw/EXP-1/L1_R1.fastq.gz", "fastq.gz", "2024-03-31T23:30:00+00:00", "L1"),
        entry("raw/EXP-1/run_summary.csv", "csv", "2024-04-01T00:30:00+00:00"),
    ]),
    Manifest.build("EXP-1", "processed", [
        entry("processed/EXP-1/L1.fastq", "fastq", "2024-04-15T10:00:00+00:00", "L1"),
        entry("processed/EXP-1/counts.tsv", "tsv", "2024-04-15T10:00:00+00:00"),
        entry("processed/EXP-1/notes.md", "md", ""),  # undated
    ]),
    Manifest.build("EXP-1", "final", [entry("final/EXP-1/report.md", "md", "")]),  # nothing dated
    Manifest.build("EXP-2", "raw", [
        entry("raw/EXP-2/a.csv", "csv", "2024-04-10T08:00:00+00:00"),
        entry("raw/EXP-2/b.csv", "csv", "2024-04-20T18:00:00+00:00"),
    ]),
    Manifest.build("EXP-2", "processed", [entry("processed/EXP-2/c.csv", "csv", "2024-04-25T09:00:00+00:00")]),
    Manifest.build("EXP-2", "final", [entry("final/EXP-2/results.csv", "csv", "2024-05-01T09:00:00+00:00")]),
    Manifest.build("EXP-3", "raw", [entry("raw/EXP-3/n.csv", "csv", "2024-04-12T12:00:00+00:00")]),
    Manifest.build("EXP-4", "raw", [entry("raw/EXP-4/g.csv", "csv", "2024-04-12T12:00:00+00:00")]),
]  # fmt: skip


RECORDS = (LIVER, KIDNEY, ADAS_OWN, NO_GROUP, PLANS)


def build(path: Path, records: tuple[ExperimentRecord, ...] = RECORDS) -> SqliteCatalog:
    catalog = SqliteCatalog(path)
    for record in records:
        catalog.upsert_experiment(record, {})
    for manifest in DATASETS:
        catalog.upsert_dataset(manifest, f"file:///{manifest.zone}/{manifest.experiment_id}/")
    return catalog


def revised_and_fresh(folder: Path, *revisions: ExperimentRecord) -> tuple[SqliteCatalog, SqliteCatalog]:
    """The lab with ``revisions`` of its experiments upserted over it and a grant given and taken back, and
    the lab built from scratch in that final state."""
    changed = build(folder / "changed.sqlite")
    for record in revisions:
        changed.upsert_experiment(record, {})
    changed.grant("EXP-4", "group:hepatology")
    changed.revoke("EXP-4", "group:hepatology")
    final = {record.id: record for record in (*RECORDS, *revisions)}
    return changed, build(folder / "fresh.sqlite", tuple(final.values()))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> SqliteCatalog:
    """Built once: the tests that share it only read."""
    return build(tmp_path_factory.mktemp("lab") / "catalog.sqlite")


VIEWERS = {
    "admin": None,
    "hepatology": Viewer(name="bob", groups=frozenset({"Hepatology"})),
    "ada, who owns a nephrology experiment": Viewer(name="Ada Lovelace", groups=frozenset({"hepatology"})),
    "grace, in no group": Viewer(name="Grace Hopper"),
}
SUMMED: list[dict[str, Any]] = [
    {"format": "csv"},
    {"format": "CSV", "since": "2024-04-10T12:00:00"},
    {"format": "csv", "until": "2024-04-10"},
    {"format": "csv", "since": "2024-04-01", "until": "2024-04-30"},
    {"format": "csv", "since": "2024-04-20T18:00:00+00:00"},
    {"format": "csv", "since": "2024-04-20T19:00"},
    {"format": "csv", "until": "2024-04-24"},
    {"format": "fastq.gz", "until": "2024-03-31T23:59"},
    {"format": "tsv", "until": "2024-04-15T09:00"},
    {"format": "md"},
    {"format": "md", "until": "2024-12-31"},
    {"format": "no such format"},
    {"zone": "raw"},
    {"zone": " RAW ", "since": "2024-04-01"},
    {"zone": "processed", "until": "2024-04-15"},
    {"zone": "final", "format": "csv", "since": "2024-05"},
    {"zone": "nowhere"},
    {"zone": "final", "until": "2024-01-01"},
    # Dates alone: an experiment is its own hit when its date is in them and none of its files' is.
    {"since": "2024-03-01", "until": "2024-03-05"},  # EXP-1's files before and after, none inside
    {"until": "2024-04-05"},  # EXP-2's files all after
    {"since": "2024-04-02"},
    {"since": "2024-02-01", "until": "2024-02-28"},  # EXP-5 has no files at all
    {"until": "2024-03-31T23:45"},
    {"since": "2024-04-10T12:00", "until": "2024-04-20"},
]


def positive(counts: Counter[Any]) -> Counter[Any]:
    return Counter({key: hits for key, hits in counts.items() if hits > 0})


def by_sums_and_by_rows(catalog: SqliteCatalog, query: SearchQuery) -> tuple[Counter[Any] | None, Counter[Any]]:
    plan = Plan.of(query)
    with connect(catalog.path) as db:
        summed = sqlite_facets.counted_by_sums(db, plan)
        read = sqlite_facets.counted_by_rows(db, plan)
    return (None if summed is None else positive(summed)), positive(read)


@pytest.mark.parametrize("shape", SUMMED, ids=[repr(shape) for shape in SUMMED])
@pytest.mark.parametrize("viewer", list(VIEWERS), ids=list(VIEWERS))
def test_the_sums_count_what_the_rows_count(catalog: SqliteCatalog, viewer: str, shape: dict[str, Any]) -> None:
    summed, read = by_sums_and_by_rows(catalog, SearchQuery(**shape, viewer=VIEWERS[viewer]))

    assert summed is not None
    assert summed == read


def test_the_lab_gives_the_sums_something_to_count(catalog: SqliteCatalog) -> None:
    summed, _ = by_sums_and_by_rows(
        catalog, SearchQuery(format="csv", viewer=VIEWERS["ada, who owns a nephrology experiment"])
    )

    assert summed is not None
    assert summed["zone", "raw"] == 3  # EXP-1 and EXP-2 from the sums, EXP-3 as its owner: not EXP-4
    assert summed["month", "2024-04"] == 4 and summed["month", "2024-05"] == 1
    assert summed["owner", "Ada Lovelace"] == 2


WITH_EXPERIMENTS: list[dict[str, Any]] = [
    {"text": "liver", "format": "csv"},
    {"text": "liver", "zone": "processed", "until": "2024-04-15T09:00"},
    {"text": "kidney", "format": "csv", "since": "2024-04-20T19:00"},
    {"text": "L1", "zone": "raw"},  # a sample: in some files' own text only
    {"text": "counts liver", "format": "tsv"},
    {"text": "kidney", "format": "csv", "platform": "NovaSeq"},
    {"platform": "MiSeq", "format": "md"},
    {"text": "liver", "zone": "final"},
    {"platform": "MiSeq", "zone": "final"},
    {"owner": "Ada Lovelace", "zone": "raw", "since": "2024-04-01"},
    {"experiment": "EXP-2", "format": "csv", "until": "2024-04-24"},
    {"experiment": "EXP-3", "zone": "raw"},
]


@pytest.mark.parametrize("shape", WITH_EXPERIMENTS, ids=[repr(shape) for shape in WITH_EXPERIMENTS])
@pytest.mark.parametrize("viewer", list(VIEWERS), ids=list(VIEWERS))
def test_with_words_or_experiment_facets_the_datasets_summaries_count_what_the_rows_count(
    catalog: SqliteCatalog, viewer: str, shape: dict[str, Any]
) -> None:
    summed, read = by_sums_and_by_rows(catalog, SearchQuery(**shape, viewer=VIEWERS[viewer]))

    assert summed is not None
    assert summed == read


def test_a_format_that_matches_several_values_is_read_from_the_rows(catalog: SqliteCatalog) -> None:
    summed, read = by_sums_and_by_rows(catalog, SearchQuery(format="fastq"))

    assert summed is None
    assert read["format", "fastq"] == 1 and read["format", "fastq.gz"] == 1 and read["zone", "raw"] == 1


def sums(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(path) as db:
        return {
            table: db.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4").fetchall()
            for table in ("search_units", "search_home_units", "search_own")
        }


def test_after_revisions_the_sums_are_those_of_a_catalog_built_in_that_state(tmp_path: Path) -> None:
    changed = build(tmp_path / "changed.sqlite")
    moved = Manifest.build("EXP-2", "raw", [entry("raw/EXP-2/a.tsv", "tsv", "2023-12-31T10:00:00+00:00")])
    changed.upsert_dataset(moved, "file:///raw/EXP-2/")
    changed.upsert_experiment(replace(KIDNEY, group="Nephrology", owner="Grace Hopper"), {})
    changed.grant("EXP-4", "group:hepatology")
    changed.revoke("EXP-4", "group:hepatology")

    fresh = SqliteCatalog(tmp_path / "fresh.sqlite")
    for record in (LIVER, replace(KIDNEY, group="Nephrology", owner="Grace Hopper"), ADAS_OWN, NO_GROUP, PLANS):
        fresh.upsert_experiment(record, {})
    for manifest in DATASETS:
        manifest = moved if (manifest.experiment_id, manifest.zone) == ("EXP-2", "raw") else manifest
        fresh.upsert_dataset(manifest, f"file:///{manifest.zone}/{manifest.experiment_id}/")

    assert sums(changed.path) == sums(fresh.path)
    for viewer in VIEWERS.values():
        for shape in SUMMED:
            summed, read = by_sums_and_by_rows(changed, SearchQuery(**shape, viewer=viewer))
            assert summed == read, (shape, viewer)
