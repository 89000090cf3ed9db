"""Who sees what in either catalog: every search and every count is formed from what the viewer may see.

Pinned here, on a lab of four experiments in two groups plus one with no
group: a person in one group never gets another group's experiment, nor the one
with no group, from any query shape (words, each facet, ids, samples, dates,
an empty query) or from any facet count; the owner and the people an ELN
record lists see their experiment; an experiment with no group and no owner is
for admins only; grants add a person or a group and revoking takes it back, and
both survive the experiment's next revision; a hidden experiment never takes a
place under the limit; a viewer with many groups gets what a viewer with few
gets (the two ways access enters the query agree); the admin (None, or the
CLI's local admin) sees what everyone sees together; each facet count is the
number of hits carrying its value, and months count what matched by its dates;
summaries list only what the viewer may see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from labmesh_dagster.connectors.catalog.base import FACETS, ExperimentNotRegistered, SearchHit, SearchQuery
from labmesh_dagster.connectors.catalog.sqlite_search import TOKEN_PRINCIPALS
from labmesh_dagster.core.access import LOCAL_ADMIN, Viewer
from labmesh_dagster.core.experiment import ExperimentRecord, Sample
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster_tests.connectors.catalog_contract.conftest import AnyCatalog


def entry(key: str, fmt: str, created: str, samples: tuple[str, ...] = (), **extra: Any) -> ManifestEntry:
    return ManifestEntry(key=key, size=100, sha256="0" * 64, format=fmt, created=created, sample_ids=samples, **extra)


def record(experiment_id: str, **fields: Any) -> ExperimentRecord:
    fields.setdefault("title", f"Liver biopsy study {experiment_id}")
    return ExperimentRecord(id=experiment_id, **fields)


LIVER = record(
    "EXP-1",
    owner="Ada Lovelace",
    group="Hepatology",
    platform="MiSeq",
    protocol="RNA-seq",
    samples=(Sample("LIV-01"), Sample("LIV-02")),
    created="2024-03-01",
)
KIDNEY = record(
    "EXP-2",
    owner="Alan Turing",
    group="Nephrology",
    platform="MiSeq",
    protocol="RNA-seq",
    samples=(Sample("KID-01"),),
    created="2024-03-02",
)
ORPHAN = record(
    "EXP-3",
    owner="Grace Hopper",
    platform="MiSeq",
    protocol="RNA-seq",
    samples=(Sample("ORP-01"),),
    created="2024-03-03",
)
SHARED = record(
    "EXP-4",
    owner="Ada Lovelace",
    group="Hepatology",
    platform="NovaSeq 6000",
    custom={"people": ["Alan Turing"]},
    created="2024-03-04",
)
NOBODY = record("EXP-5", platform="MiSeq", created="2024-03-05")


def raw(experiment: ExperimentRecord, *samples: str) -> Manifest:
    files = [
        entry(f"raw/{experiment.id}/{sample}_R1.fastq.gz", "fastq.gz", "2024-04-01T10:00:00+00:00", (sample,))
        for sample in samples
    ]
    files.append(entry(f"raw/{experiment.id}/run_summary.csv", "csv", "2024-04-02T10:00:00+00:00", text="biopsy yield"))
    return Manifest.build(experiment.id, "raw", files)


def build_lab(catalog: AnyCatalog) -> AnyCatalog:
    for experiment in (LIVER, KIDNEY, ORPHAN, SHARED, NOBODY):
        catalog.upsert_experiment(experiment, {})
    catalog.upsert_dataset(raw(LIVER, "LIV-01", "LIV-02"), "file:///raw/EXP-1/")
    catalog.upsert_dataset(raw(KIDNEY, "KID-01"), "file:///raw/EXP-2/")
    catalog.upsert_dataset(raw(ORPHAN, "ORP-01"), "file:///raw/EXP-3/")
    catalog.upsert_dataset(
        Manifest.build("EXP-1", "processed", [entry("processed/EXP-1/counts.tsv", "tsv", "2024-05-01T10:00:00+00:00")]),
        "file:///processed/EXP-1/",
    )
    return catalog


@pytest.fixture(scope="module")
def catalog(open_module_catalog: Callable[[], AnyCatalog]) -> AnyCatalog:
    """The lab, built once per backend: the tests that take it only read."""
    return build_lab(open_module_catalog())


@pytest.fixture
def fresh_catalog(open_catalog: Callable[[], AnyCatalog]) -> AnyCatalog:
    """The lab, built for one test that changes it."""
    return build_lab(open_catalog())


HEPATOLOGY = Viewer(name="bob", groups=frozenset({"hepatology "}))  # the identity provider spells groups its own way
NEPHROLOGY = Viewer(name="carol", groups=frozenset({"Nephrology"}))
# More groups than fit the full-text clause: access then enters the query through the access table.
BUSY = Viewer(name="bob", groups=frozenset({"Hepatology", *(f"Committee {n}" for n in range(TOKEN_PRINCIPALS))}))

SHAPES: list[dict[str, Any]] = [
    {},
    {"text": "liver"},
    {"text": "biopsy"},
    {"text": "liver yield"},
    {"text": "KID-01"},
    {"experiment": "EXP-2"},
    {"experiment": "EXP-3"},
    {"sample": "KID-01"},
    {"sample": "ORP-01"},
    {"group": "Nephrology"},
    {"platform": "MiSeq"},
    {"protocol": "rna-seq"},
    {"owner": "Alan Turing"},
    {"owner": "Grace Hopper"},
    {"format": "fastq"},
    {"format": "csv", "since": "2024-01-01"},
    {"file_name": "KID-01_R1.fastq.gz"},
    {"zone": "raw"},
    {"since": "2024-03-02", "until": "2024-03-03"},
    {"until": "2024-03-02"},
    {"text": "biopsy", "platform": "MiSeq", "format": "csv"},
    {"text": "biopsy", "experiment": "EXP-1"},
    {"text": "liver yield", "experiment": "EXP-2"},
]


def experiments(hits: list[SearchHit]) -> set[str]:
    return {hit.experiment_id for hit in hits}


def counted(catalog: AnyCatalog, query: SearchQuery) -> set[str]:
    """Every value any facet count names for the query."""
    return {value for values in catalog.facet_counts(query, top=1000).values() for value, _ in values}


@pytest.mark.parametrize("shape", SHAPES, ids=[repr(shape) for shape in SHAPES])
@pytest.mark.parametrize("viewer", [HEPATOLOGY, BUSY], ids=["few groups", "many groups"])
def test_a_person_in_one_group_never_meets_another_groups_experiment(
    catalog: AnyCatalog, viewer: Viewer, shape: dict[str, Any]
) -> None:
    query = SearchQuery(**shape, viewer=viewer)

    found = experiments(catalog.search(query))
    names = counted(catalog, query)

    assert found <= {"EXP-1", "EXP-4"}, shape
    assert not names & {"EXP-2", "EXP-3", "EXP-5", "Nephrology", "Alan Turing", "Grace Hopper", "KID-01", "ORP-01"}
    assert found == experiments(catalog.search(replace(query, viewer=None))) & {"EXP-1", "EXP-4"}


@pytest.mark.parametrize("shape", SHAPES, ids=[repr(shape) for shape in SHAPES])
def test_the_admin_sees_everything_and_a_viewer_exactly_their_share(catalog: AnyCatalog, shape: dict[str, Any]) -> None:
    everything = catalog.search(SearchQuery(**shape))

    assert catalog.search(SearchQuery(**shape, viewer=LOCAL_ADMIN)) == everything
    assert catalog.facet_counts(SearchQuery(**shape, viewer=LOCAL_ADMIN)) == catalog.facet_counts(SearchQuery(**shape))
    for viewer in (HEPATOLOGY, BUSY, NEPHROLOGY):
        visible = {hit.experiment_id for hit in everything if viewer.may_see(catalog.principals(hit.experiment_id))}
        assert catalog.search(SearchQuery(**shape, viewer=viewer)) == [
            hit for hit in everything if hit.experiment_id in visible
        ], viewer


def test_an_experiment_with_no_group_is_its_owners_and_the_admins(catalog: AnyCatalog) -> None:
    grace = Viewer(name="Grace Hopper")

    assert experiments(catalog.search(SearchQuery(viewer=grace))) == {"EXP-3"}
    assert experiments(catalog.search(SearchQuery(platform="MiSeq", viewer=grace))) == {"EXP-3"}
    assert catalog.principals("EXP-5") == frozenset()
    for viewer in (HEPATOLOGY, NEPHROLOGY, grace, Viewer(name="")):
        assert "EXP-5" not in experiments(catalog.search(SearchQuery(viewer=viewer)))
    assert "EXP-5" in experiments(catalog.search(SearchQuery(viewer=LOCAL_ADMIN)))


def test_the_owner_and_the_people_on_an_experiment_see_it(catalog: AnyCatalog) -> None:
    alan = Viewer(name="alan turing")

    assert experiments(catalog.search(SearchQuery(viewer=alan))) == {"EXP-2", "EXP-4"}
    assert catalog.principals("EXP-4") == frozenset({"group:hepatology", "user:ada lovelace", "user:alan turing"})
    assert experiments(catalog.search(SearchQuery(viewer=NEPHROLOGY))) == {"EXP-2"}


def test_a_grant_lets_a_group_in_and_revoking_takes_it_back(fresh_catalog: AnyCatalog) -> None:
    assert fresh_catalog.grant("EXP-2", "group:Hepatology") is True
    assert fresh_catalog.grant("EXP-2", "group:hepatology") is False

    assert experiments(fresh_catalog.search(SearchQuery(text="biopsy", viewer=HEPATOLOGY))) == {
        "EXP-1",
        "EXP-2",
        "EXP-4",
    }
    assert "KID-01" in counted(fresh_catalog, SearchQuery(viewer=HEPATOLOGY))
    assert "group:hepatology" in fresh_catalog.principals("EXP-2")

    assert fresh_catalog.revoke("EXP-2", "group:Hepatology") is True
    assert fresh_catalog.revoke("EXP-2", "group:Hepatology") is False
    assert "EXP-2" not in experiments(fresh_catalog.search(SearchQuery(viewer=HEPATOLOGY)))


def test_a_grant_survives_the_experiments_next_revision(fresh_catalog: AnyCatalog) -> None:
    fresh_catalog.grant("EXP-3", "user:bob")

    fresh_catalog.upsert_experiment(replace(ORPHAN, description="now with a plan"), {})
    fresh_catalog.upsert_dataset(raw(ORPHAN, "ORP-01", "ORP-02"), "file:///raw/EXP-3/")

    assert experiments(fresh_catalog.search(SearchQuery(text="plan", viewer=HEPATOLOGY))) == {"EXP-3"}
    assert experiments(fresh_catalog.search(SearchQuery(sample="ORP-02", viewer=HEPATOLOGY))) == {"EXP-3"}


def test_grants_name_a_registered_experiment_and_a_user_or_group(catalog: AnyCatalog) -> None:
    with pytest.raises(ExperimentNotRegistered):
        catalog.grant("EXP-404", "user:bob")
    for principal in ("bob", "team:x", "user:", "group:  "):
        with pytest.raises(ValueError, match="user:NAME or group:NAME"):
            catalog.grant("EXP-1", principal)
    assert catalog.principals("EXP-404") == frozenset()


def test_hidden_experiments_take_no_place_under_the_limit(catalog: AnyCatalog) -> None:
    for viewer in (HEPATOLOGY, BUSY):
        [hit] = catalog.search(SearchQuery(platform="MiSeq", limit=1, viewer=viewer))
        assert hit.experiment_id == "EXP-1"
        [hit] = catalog.search(SearchQuery(text="biopsy", limit=1, viewer=viewer))
        assert hit.experiment_id in {"EXP-1", "EXP-4"}


def test_facet_counts_count_the_viewers_hits(catalog: AnyCatalog) -> None:
    counts = catalog.facet_counts(SearchQuery(viewer=HEPATOLOGY))

    assert set(counts) == set(FACETS)
    assert counts["experiment"] == [("EXP-4", 1), ("EXP-1", 2)]  # as the results come: newest first
    assert counts["group"] == [("Hepatology", 3)]
    assert counts["owner"] == [("Ada Lovelace", 3)]
    assert counts["platform"] == [("MiSeq", 2), ("NovaSeq 6000", 1)]
    assert counts["protocol"] == [("RNA-seq", 2)]
    assert counts["zone"] == [("processed", 1), ("raw", 1)]
    assert counts["format"] == [("csv", 1), ("fastq.gz", 1), ("tsv", 1)]
    assert counts["sample"] == [("LIV-01", 2), ("LIV-02", 2)]
    assert counts["month"] == [("2024-03", 1), ("2024-04", 1), ("2024-05", 1)]


@pytest.mark.parametrize("shape", SHAPES, ids=[repr(shape) for shape in SHAPES])
@pytest.mark.parametrize("viewer", [None, HEPATOLOGY, BUSY], ids=["admin", "few groups", "many groups"])
def test_each_count_is_the_number_of_hits_that_carry_its_value(
    catalog: AnyCatalog, viewer: Viewer | None, shape: dict[str, Any]
) -> None:
    query = SearchQuery(**shape, viewer=viewer, limit=1000)
    hits = catalog.search(query)
    expected: dict[str, dict[str, int]] = {facet: {} for facet in FACETS}

    def add(facet: str, value: str | None) -> None:
        if value:
            expected[facet][value] = expected[facet].get(value, 0) + 1

    for hit in hits:
        record = catalog.get_experiment(hit.experiment_id)
        assert record is not None
        for facet, value in [
            ("experiment", hit.experiment_id),
            ("group", record.group),
            ("owner", record.owner),
            ("platform", record.platform),
            ("protocol", record.protocol),
            ("zone", hit.dataset),
        ]:
            add(facet, value)
        for fmt in {file.format for file in hit.files}:
            add("format", fmt)
        # A file of no sample, and an experiment without datasets, hold the experiment's samples.
        held = {name for file in hit.files for name in file.sample_ids or record.sample_ids}
        for name in held if hit.dataset else record.sample_ids:
            add("sample", name)

    counts = catalog.facet_counts(query, top=1000)

    for facet in ("experiment", "group", "owner", "platform", "protocol", "zone", "format", "sample"):
        assert dict(counts[facet]) == expected[facet], facet


def test_dates_count_the_month_of_what_matched(catalog: AnyCatalog) -> None:
    recent_tables = catalog.facet_counts(SearchQuery(format="csv", since="2024-04-01", viewer=HEPATOLOGY))
    registered_early = catalog.facet_counts(SearchQuery(until="2024-03-02"))

    assert recent_tables["month"] == [("2024-04", 1)] and recent_tables["zone"] == [("raw", 1)]
    # No file is that old: the experiments themselves are the hits, by the dates of their records.
    assert registered_early["month"] == [("2024-03", 2)] and registered_early["zone"] == []
    assert registered_early["experiment"] == [("EXP-2", 1), ("EXP-1", 1)]


def test_summaries_list_the_experiments_a_viewer_may_see(catalog: AnyCatalog) -> None:
    assert [s.experiment_id for s in catalog.summaries(viewer=HEPATOLOGY)] == ["EXP-1", "EXP-4"]
    assert [s.experiment_id for s in catalog.summaries(viewer=Viewer(name="grace hopper"))] == ["EXP-3"]
    assert len(catalog.summaries(viewer=LOCAL_ADMIN)) == len(catalog.summaries()) == 5
