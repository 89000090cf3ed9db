"""PostgreSQL's full-text search gives FTS5's answers: the same hits, in the same order, with the same counts.

Pinned here, on one lab written to both catalogs: experiments that hold a word
once or many times, in the title, the ELN fields or only in their files, of
different lengths, so BM25 orders them, and ties fall to the newest; ids and
samples cut into words (``LIV-01``), stemmed words (where Porter and
Postgres's Snowball stem apart too), accented words, words that
are FTS5 operators, punctuation, and a term of no word; every facet alone and
with words (a file facet then weighs in the ranking too); a viewer who sees one
group. For each query, under each viewer, the PostgreSQL catalog's hits equal
the SQLite catalog's, order and files included, at a limit that cuts the
ranking and without one, and so do its facet counts, the first hits' facets
included.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.connectors.catalog.base import SearchQuery
from labmesh_dagster.connectors.catalog.postgres import PostgresCatalog
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.experiment import ExperimentRecord, Sample
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster_tests.connectors.catalog_contract.conftest import AnyCatalog, schema_of_its_own


def entry(key: str, fmt: str, created: str, *samples: str, text: str = "", **metadata: Any) -> ManifestEntry:
    return ManifestEntry(
        key=key,
        size=len(key),
        sha256="0" * 64,
        format=fmt,
        created=created,
        sample_ids=samples,
        text=text,
        metadata=metadata,
    )


RECORDS = (
    ExperimentRecord(
        id="LIV-01",
        title="Liver biopsy",
        owner="Ada Lovelace",
        group="Hepatology",
        platform="MiSeq",
        protocol="RNA-seq",
        samples=(Sample("LIV-01-A"), Sample("LIV-01-B")),
        created="2024-03-01",
    ),
    ExperimentRecord(
        id="LIV-02",
        title="Liver, liver and more liver: a long study of regenerating liver tissue after resection",
        description="Follow-up of the first liver biopsies, sequenced again",
        owner="Ada Lovelace",
        group="Hepatology",
        platform="NovaSeq 6000",
        protocol="RNA-seq",
        tags=("regeneration", "resection"),
        samples=(Sample("LIV-02-A"),),
        created="2024-04-01",
    ),
    ExperimentRecord(
        id="KID-01",
        title="Kidney organoids",
        description="Organoids grown from liver and kidney progenitors; Über-protocol",
        owner="Alan Turing",
        group="Nephrology",
        platform="MiSeq",
        protocol="scRNA-seq",
        custom={"people": ["Grace Hopper"], "instrument": "Chromium X"},
        samples=(Sample("KID-01-A"),),
        created="2024-05-01",
    ),
    ExperimentRecord(
        id="KID-02",
        title="Knockout OR wild type kidneys",
        description="Deployment of the knockout line, cleanly done; clear phenotype",
        owner="Alan Turing",
        group="Nephrology",
        platform="HiSeq",
        created="2024-06-01",
    ),
    ExperimentRecord(id="PLAN-01", title="Planned liver atlas", group="Hepatology", created="2024-07-01"),
)

DATASETS = (
    Manifest.build("LIV-01", "raw", [
        entry("raw/LIV-01/LIV-01-A_R1.fastq.gz", "fastq.gz", "2024-03-02T09:00:00+00:00", "LIV-01-A"),
        entry("raw/LIV-01/LIV-01-B_R1.fastq.gz", "fastq.gz", "2024-03-02T09:00:00+00:00", "LIV-01-B"),
        entry("raw/LIV-01/run_summary.csv", "csv", "2024-03-02T10:00:00+00:00", text="cluster density liver"),
    ]),
    Manifest.build("LIV-01", "processed", [
        entry("processed/LIV-01/counts.tsv", "tsv", "2024-04-10T10:00:00+00:00", text="gene counts", genes=20000),
    ]),
    Manifest.build("LIV-02", "raw", [
        entry("raw/LIV-02/LIV-02-A_R1.fastq.gz", "fastq.gz", "2024-04-02T09:00:00+00:00", "LIV-02-A"),
        entry("raw/LIV-02/notes.md", "md", "", text="resection margins clearly free; cluster of cells"),
    ]),
    Manifest.build("KID-01", "raw", [
        entry("raw/KID-01/KID-01-A.h5", "h5", "2024-05-02T09:00:00+00:00", "KID-01-A", chemistry="Chromium v3"),
        entry("raw/KID-01/qc_report.pdf", "pdf", "2024-05-03T09:00:00+00:00", text="liver contamination below 1%"),
    ]),
    Manifest.build("KID-02", "final", [
        entry("final/KID-02/results.csv", "csv", "2024-06-10T09:00:00+00:00", text="knockout kidneys compared"),
    ]),
)  # fmt: skip

HEPATOLOGY = Viewer(name="bob", groups=frozenset({"Hepatology"}))
GRACE = Viewer(name="Grace Hopper")

QUERIES: list[dict[str, Any]] = [
    {},
    {"text": "liver"},
    {"text": "livers"},
    {"text": "biopsy"},
    {"text": "liver biopsy"},
    {"text": "liver cluster"},
    {"text": "cluster"},
    {"text": "LIV-01"},
    {"text": "liv-01-a"},
    {"text": "01"},
    {"text": "sequencing"},
    {"text": "RNA-seq"},
    {"text": "rna"},
    {"text": "uber"},
    {"text": "knockout OR"},
    {"text": "NOT liver"},
    {"text": '"liver biopsy"'},
    {"text": "liver -"},
    {"text": "_"},
    {"text": "x:y"},
    {"text": "counts.tsv"},
    {"text": "20000"},
    {"text": "chromium"},
    {"text": "Grace"},
    {"text": "clear"},  # Porter keeps "clearly" apart from "clear"; Snowball, Postgres's own, would not
    {"text": "clearly"},
    {"text": "clean"},
    {"text": "deploy"},
    {"text": "liver", "format": "csv"},
    {"text": "liver", "format": "fastq"},
    {"text": "liver", "sample": "LIV-01-B"},
    {"text": "liver", "group": "hepatology"},
    {"text": "liver", "platform": "NovaSeq"},
    {"text": "liver", "file_name": "run_summary.csv"},
    {"text": "liver", "owner": "ada lovelace", "zone": "raw"},
    {"text": "liver", "since": "2024-04-01"},
    {"text": "kidney", "protocol": "SCRNA-SEQ"},
    {"text": "liver", "experiment": "KID-01"},
    {"group": "Nephrology"},
    {"platform": "miseq"},
    {"platform": "6000"},
    {"platform": "-"},
    {"owner": "Alan  Turing"},
    {"protocol": "rna-seq"},
    {"format": "fastq.gz"},
    {"format": "gz"},
    {"file_name": "qc_report.pdf"},
    {"sample": "liv-01-a"},
    {"sample": "LIV-01"},
    {"zone": "processed"},
    {"since": "2024-04-01", "until": "2024-05-02"},
    {"until": "2024-03-01"},
    {"experiment": "PLAN-01"},
]


def build(catalog: AnyCatalog) -> AnyCatalog:
    for record in RECORDS:
        catalog.upsert_experiment(record, {})
    for manifest in DATASETS:
        catalog.upsert_dataset(manifest, f"file:///{manifest.zone}/{manifest.experiment_id}/")
    return catalog


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory: pytest.TempPathFactory, contract_database: str) -> Iterator[tuple[AnyCatalog, ...]]:
    """The lab in SQLite and in PostgreSQL, built once: the tests only read."""
    sqlite = build(SqliteCatalog(Path(tmp_path_factory.mktemp("lab")) / "catalog.sqlite"))
    with schema_of_its_own(contract_database) as url:
        yield sqlite, build(PostgresCatalog(url))


def described(hits: list[Any]) -> list[dict[str, Any]]:
    return [asdict(hit) for hit in hits]


@pytest.mark.parametrize("viewer", [None, HEPATOLOGY, GRACE], ids=["admin", "hepatology", "grace"])
@pytest.mark.parametrize("shape", QUERIES, ids=[repr(shape) for shape in QUERIES])
def test_postgres_finds_and_counts_what_fts5_does(
    catalogs: tuple[AnyCatalog, AnyCatalog], shape: dict[str, Any], viewer: Viewer | None
) -> None:
    sqlite, postgres = catalogs
    for limit in (2, 50):
        query = SearchQuery(**shape, viewer=viewer, limit=limit)
        assert described(postgres.search(query)) == described(sqlite.search(query)), limit
    query = SearchQuery(**shape, viewer=viewer)
    assert postgres.facet_counts(query, top=3) == sqlite.facet_counts(query, top=3)


def test_the_lab_ranks_by_more_than_recency(catalogs: tuple[AnyCatalog, AnyCatalog]) -> None:
    """The order pinned above is BM25's, not the newest first: the lab must make them differ."""
    sqlite, postgres = catalogs
    ranked = [hit.experiment_id for hit in postgres.search(SearchQuery(text="liver"))]

    assert ranked == [hit.experiment_id for hit in sqlite.search(SearchQuery(text="liver"))]
    assert ranked[0] == "LIV-02"  # liver four times in its title
    newest_first = sorted(set(ranked), key=[record.id for record in RECORDS].index, reverse=True)
    assert list(dict.fromkeys(ranked)) != newest_first
