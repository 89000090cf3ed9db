"""Either catalog registers experiments and datasets idempotently and finds them by text and facet.

Pinned here: upserting the same record or manifest again changes nothing (same
revision, ``changed`` False) and new content makes the next revision of the
same entry, never a second one; a dataset needs its experiment first; a new
manifest replaces the dataset's files everywhere, search included; search
matches stemmed text, each facet, the experiment id and a date range, all
combined with AND, and quotes user input so no term is read as SQL or FTS
syntax; an experiment without datasets is found as ``dataset=None``;
each revision names the Dagster run that made it; `summaries` counts files per
dataset; a catalog opened again holds what was written; two threads publishing
at once, each through its own catalog object, both succeed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from labmesh_dagster.connectors.catalog.base import SearchHit, SearchQuery
from labmesh_dagster.core.experiment import ExperimentRecord, record_from_mapping
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster_tests.connectors.catalog_contract.conftest import AnyCatalog


def experiment(experiment_id: str = "EXP-1", **fields: Any) -> ExperimentRecord:
    data: dict[str, Any] = {"id": experiment_id, "title": f"Experiment {experiment_id}", **fields}
    return record_from_mapping(data, source="test")


def file_entry(key: str, samples: tuple[str, ...] = (), **overrides: Any) -> ManifestEntry:
    fields: dict[str, Any] = {
        "key": key,
        "size": 100,
        "sha256": "ab" * 32,
        "format": "fastq",
        "created": "2024-03-01T10:00:00+00:00",
        "sample_ids": samples,
    }
    fields.update(overrides)
    return ManifestEntry(**fields)


def manifest(experiment_id: str, *entries: ManifestEntry, zone: str = "raw") -> Manifest:
    return Manifest.build(experiment_id, zone, entries)


def found(hits: list[SearchHit]) -> list[tuple[str, str | None]]:
    return sorted((hit.experiment_id, hit.dataset) for hit in hits)


LOCATIONS = {"raw": "file:///store/raw/EXP-1/"}


def test_upserting_the_same_experiment_again_changes_nothing(catalog: AnyCatalog) -> None:
    record = experiment(samples=["S1"])

    first = catalog.upsert_experiment(record, LOCATIONS)
    again = catalog.upsert_experiment(record, LOCATIONS)

    assert (first.entry_id, first.revision, first.changed) == ("experiment:EXP-1", 1, True)
    assert (again.entry_id, again.revision, again.changed) == ("experiment:EXP-1", 1, False)
    assert catalog.get_experiment("EXP-1") == record
    assert catalog.experiment_locations("EXP-1") == LOCATIONS


def test_a_changed_experiment_is_the_next_revision_of_the_same_entry(catalog: AnyCatalog) -> None:
    catalog.upsert_experiment(experiment(), LOCATIONS)

    edited = catalog.upsert_experiment(experiment(description="Now with an aim"), LOCATIONS)
    moved = catalog.upsert_experiment(experiment(description="Now with an aim"), {"raw": "s3://raw/EXP-1/"})

    assert (edited.revision, edited.changed) == (2, True)
    assert (moved.revision, moved.changed) == (3, True)
    assert len(catalog.snapshot()["experiments"]) == 1
    assert catalog.get_experiment("EXP-1").description == "Now with an aim"  # type: ignore[union-attr]
    assert catalog.experiment_fingerprints() == {"EXP-1": experiment(description="Now with an aim").fingerprint}


def test_unknown_experiments_are_none(catalog: AnyCatalog) -> None:
    assert catalog.get_experiment("EXP-404") is None
    assert catalog.experiment_locations("EXP-404") == {}
    assert catalog.get_dataset("EXP-404", "raw") is None
    assert catalog.experiment_fingerprints() == {}


def test_a_dataset_needs_its_experiment_registered_first(catalog: AnyCatalog) -> None:
    with pytest.raises(LookupError, match="EXP-1 is not registered"):
        catalog.upsert_dataset(manifest("EXP-1", file_entry("raw/EXP-1/a")), "file:///raw/EXP-1/")

    assert catalog.snapshot()["datasets"] == []


def test_upserting_the_same_dataset_again_changes_nothing(catalog: AnyCatalog) -> None:
    catalog.upsert_experiment(experiment(), LOCATIONS)
    content = manifest("EXP-1", file_entry("raw/EXP-1/a.fastq", ("S1",)))

    first = catalog.upsert_dataset(content, "file:///raw/EXP-1/")
    snapshot = catalog.snapshot()
    again = catalog.upsert_dataset(content, "file:///raw/EXP-1/")

    assert (first.entry_id, first.revision, first.changed) == ("dataset:EXP-1/raw", 1, True)
    assert (again.revision, again.changed) == (1, False)
    assert catalog.snapshot() == snapshot
    dataset = catalog.get_dataset("EXP-1", "raw")
    assert dataset is not None
    assert dataset.manifest_digest == content.digest
    assert dataset.files == content.entries


def test_a_new_manifest_is_the_next_revision_and_replaces_the_files_everywhere(catalog: AnyCatalog) -> None:
    catalog.upsert_experiment(experiment(), LOCATIONS)
    catalog.upsert_dataset(
        manifest("EXP-1", file_entry("raw/EXP-1/kept.fastq"), file_entry("raw/EXP-1/removed_lonely.fastq")),
        "file:///raw/EXP-1/",
    )
    assert found(catalog.search(SearchQuery(file_name="removed_lonely.fastq"))) == [("EXP-1", "raw")]

    entry = catalog.upsert_dataset(
        manifest("EXP-1", file_entry("raw/EXP-1/kept.fastq"), file_entry("raw/EXP-1/added.fastq")),
        "file:///raw/EXP-1/",
    )

    assert (entry.revision, entry.changed) == (2, True)
    dataset = catalog.get_dataset("EXP-1", "raw")
    assert dataset is not None and dataset.revision == 2
    assert [item.key for item in dataset.files] == ["raw/EXP-1/added.fastq", "raw/EXP-1/kept.fastq"]
    assert len(catalog.snapshot()["datasets"]) == 1
    assert catalog.search(SearchQuery(text="removed_lonely")) == []
    assert catalog.search(SearchQuery(file_name="removed_lonely.fastq")) == []
    [hit] = catalog.search(SearchQuery(file_name="added.fastq"))
    assert [file.key for file in hit.files] == ["raw/EXP-1/added.fastq"]


def test_a_new_location_alone_is_a_new_revision(catalog: AnyCatalog) -> None:
    catalog.upsert_experiment(experiment(), LOCATIONS)
    content = manifest("EXP-1", file_entry("raw/EXP-1/a"))
    catalog.upsert_dataset(content, "file:///raw/EXP-1/")

    entry = catalog.upsert_dataset(content, "s3://raw/EXP-1/")

    assert (entry.revision, entry.changed) == (2, True)
    assert catalog.get_dataset("EXP-1", "raw").location == "s3://raw/EXP-1/"  # type: ignore[union-attr]


@pytest.fixture
def lab_catalog(catalog: AnyCatalog) -> AnyCatalog:
    """Three experiments: two with datasets, one registered but still without data."""
    catalog.upsert_experiment(
        experiment(
            "EXP-1",
            title="Skin biopsies of psoriasis patients",
            samples=["S1", "S2"],
            group="Dermatology",
            platform="MiSeq",
            created="2024-03-01",
        ),
        {},
    )
    catalog.upsert_dataset(
        manifest(
            "EXP-1",
            file_entry("raw/EXP-1/S1_R1.fastq.gz", ("S1",), created="2024-03-01T09:00:00+00:00"),
            file_entry("raw/EXP-1/S2_R1.fastq.gz", ("S2",), created="2024-03-01T09:00:00+00:00"),
            file_entry(
                "raw/EXP-1/run_summary.csv",
                format="csv",
                text="cluster density",
                created="2024-03-01T09:00:00+00:00",
            ),
        ),
        "file:///raw/EXP-1/",
    )
    catalog.upsert_experiment(
        experiment(
            "EXP-2",
            title="Organoid RNA sequencing",
            samples=["S10"],
            group="Stem cells",
            platform="NovaSeq",
            created="2024-06-15",
        ),
        {},
    )
    catalog.upsert_dataset(
        manifest(
            "EXP-2",
            file_entry("processed/EXP-2/S10_qc.json", ("S10",), format="json", created="2024-06-15T12:00:00+00:00"),
            zone="processed",
        ),
        "file:///processed/EXP-2/",
    )
    catalog.upsert_experiment(
        experiment("EXP-3", title="Planned biopsy study", group="Dermatology", created="2024-09-01"), {}
    )
    return catalog


def test_text_search_is_stemmed(lab_catalog: AnyCatalog) -> None:
    assert found(lab_catalog.search(SearchQuery(text="biopsy"))) == [("EXP-1", "raw"), ("EXP-3", None)]
    assert found(lab_catalog.search(SearchQuery(text="Sequenced organoids"))) == [("EXP-2", "processed")]


def test_text_terms_must_all_match(lab_catalog: AnyCatalog) -> None:
    assert found(lab_catalog.search(SearchQuery(text="biopsy psoriasis"))) == [("EXP-1", "raw")]
    assert lab_catalog.search(SearchQuery(text="biopsy organoid")) == []


def test_file_text_and_metadata_are_searchable_and_only_matching_files_are_listed(lab_catalog: AnyCatalog) -> None:
    [hit] = lab_catalog.search(SearchQuery(text="cluster density"))

    assert (hit.experiment_id, hit.dataset, hit.location) == ("EXP-1", "raw", "file:///raw/EXP-1/")
    assert hit.entry_id == "dataset:EXP-1/raw"
    assert [(file.name, file.format) for file in hit.files] == [("run_summary.csv", "csv")]


def test_an_experiment_without_datasets_is_found_with_dataset_none(lab_catalog: AnyCatalog) -> None:
    [hit] = lab_catalog.search(SearchQuery(text="planned"))

    assert hit == SearchHit(
        experiment_id="EXP-3",
        title="Planned biopsy study",
        dataset=None,
        entry_id="experiment:EXP-3",
        location=None,
        files=(),
        group="Dermatology",  # the experiment's own fields, for the portal's "matched in"
    )


def test_the_sample_facet_matches_whole_sample_ids(lab_catalog: AnyCatalog) -> None:
    [hit] = lab_catalog.search(SearchQuery(sample="S1"))

    assert hit.experiment_id == "EXP-1"
    # The run summary names no sample, so it belongs to every sample of the experiment.
    assert [file.name for file in hit.files] == ["S1_R1.fastq.gz", "run_summary.csv"]
    assert found(lab_catalog.search(SearchQuery(sample="s10"))) == [("EXP-2", "processed")]


def test_the_sample_facet_does_not_match_a_longer_id_that_starts_the_same(catalog: AnyCatalog) -> None:
    catalog.upsert_experiment(experiment(samples=["LIV-01-B", "north core A"]), LOCATIONS)

    assert catalog.search(SearchQuery(sample="LIV-01")) == []
    assert found(catalog.search(SearchQuery(sample="liv-01-b"))) == [("EXP-1", None)]
    assert found(catalog.search(SearchQuery(sample="north core A"))) == [("EXP-1", None)]
    assert catalog.search(SearchQuery(sample="core")) == []


@pytest.mark.parametrize(
    ("facet", "value", "expected"),
    [
        ("group", "Dermatology", [("EXP-1", "raw"), ("EXP-3", None)]),
        ("group", "stem cells", [("EXP-2", "processed")]),
        ("platform", "miseq", [("EXP-1", "raw")]),
        ("platform", "NovaSeq", [("EXP-2", "processed")]),
        ("format", "csv", [("EXP-1", "raw")]),
        ("format", "json", [("EXP-2", "processed")]),
        ("file_name", "S10_qc.json", [("EXP-2", "processed")]),
        ("file_name", "S2_R1.fastq.gz", [("EXP-1", "raw")]),
        ("sample", "S3", []),
        ("platform", "HiSeq", []),
    ],
)
def test_each_facet_filters(lab_catalog: AnyCatalog, facet: str, value: str, expected: list[Any]) -> None:
    assert found(lab_catalog.search(SearchQuery(**{facet: value}))) == expected


def test_the_format_facet_lists_only_files_of_that_format(lab_catalog: AnyCatalog) -> None:
    [hit] = lab_catalog.search(SearchQuery(format="fastq"))

    assert [file.name for file in hit.files] == ["S1_R1.fastq.gz", "S2_R1.fastq.gz"]


def test_search_by_experiment_id(lab_catalog: AnyCatalog) -> None:
    assert found(lab_catalog.search(SearchQuery(experiment="EXP-2"))) == [("EXP-2", "processed")]
    assert found(lab_catalog.search(SearchQuery(experiment="EXP-3"))) == [("EXP-3", None)]
    assert lab_catalog.search(SearchQuery(experiment="EXP")) == []


def test_an_empty_query_finds_everything(lab_catalog: AnyCatalog) -> None:
    assert found(lab_catalog.search(SearchQuery())) == [("EXP-1", "raw"), ("EXP-2", "processed"), ("EXP-3", None)]


def test_since_and_until_bound_the_dates_and_a_bare_until_date_includes_that_day(lab_catalog: AnyCatalog) -> None:
    assert found(lab_catalog.search(SearchQuery(since="2024-06-01"))) == [("EXP-2", "processed"), ("EXP-3", None)]
    assert found(lab_catalog.search(SearchQuery(until="2024-03-01"))) == [("EXP-1", "raw")]
    assert found(lab_catalog.search(SearchQuery(since="2024-06-15", until="2024-06-15"))) == [("EXP-2", "processed")]
    assert lab_catalog.search(SearchQuery(since="2025-01-01")) == []


def test_filters_combine_with_and(lab_catalog: AnyCatalog) -> None:
    assert found(lab_catalog.search(SearchQuery(text="biopsy", group="Dermatology", since="2024-08-01"))) == [
        ("EXP-3", None)
    ]
    assert found(lab_catalog.search(SearchQuery(text="biopsy", platform="MiSeq", sample="S2"))) == [("EXP-1", "raw")]
    assert lab_catalog.search(SearchQuery(text="biopsy", platform="NovaSeq")) == []
    assert lab_catalog.search(SearchQuery(group="Dermatology", experiment="EXP-2")) == []
    assert found(lab_catalog.search(SearchQuery(text="biopsy", experiment="EXP-3"))) == [("EXP-3", None)]
    assert lab_catalog.search(SearchQuery(text="biopsy", experiment="EXP-404")) == []


def test_limit_caps_the_number_of_hits(lab_catalog: AnyCatalog) -> None:
    assert len(lab_catalog.search(SearchQuery(limit=2))) == 2


@pytest.mark.parametrize(
    "text",
    ['a"b', "-", ":", "*", "OR", "AND", "NOT", "NEAR", "(", ")", "^", "x:y", "col:biopsy", "'", '"', '""', "S-001*"],
)
def test_user_input_is_quoted_so_it_is_never_read_as_syntax(lab_catalog: AnyCatalog, text: str) -> None:
    lab_catalog.search(SearchQuery(text=text))
    lab_catalog.search(SearchQuery(text=f"biopsy {text}", sample=text, group=text, file_name=text))


def test_operator_words_are_searched_as_words(catalog: AnyCatalog) -> None:
    catalog.upsert_experiment(experiment("EXP-1", title="Knockout OR wild type"), {})
    catalog.upsert_experiment(experiment("EXP-2", title="Wild type only"), {})

    assert found(catalog.search(SearchQuery(text="knockout OR"))) == [("EXP-1", None)]


def test_a_stray_punctuation_term_does_not_empty_the_results(lab_catalog: AnyCatalog) -> None:
    assert found(lab_catalog.search(SearchQuery(text="skin - biopsy"))) == [("EXP-1", "raw")]


def test_each_revision_names_the_run_that_made_it(catalog: AnyCatalog) -> None:
    catalog.upsert_experiment(experiment(), LOCATIONS, run_id="run-register")
    catalog.upsert_dataset(manifest("EXP-1", file_entry("raw/EXP-1/a")), "file:///raw/EXP-1/", run_id="run-1")

    catalog.upsert_dataset(manifest("EXP-1", file_entry("raw/EXP-1/a")), "file:///raw/EXP-1/", run_id="run-2")
    unchanged = catalog.get_dataset("EXP-1", Zone.RAW)
    catalog.upsert_dataset(manifest("EXP-1", file_entry("raw/EXP-1/b")), "file:///raw/EXP-1/", run_id="run-3")
    revised = catalog.get_dataset("EXP-1", Zone.RAW)

    assert unchanged is not None and (unchanged.revision, unchanged.run_id) == (1, "run-1")
    assert revised is not None and (revised.revision, revised.run_id) == (2, "run-3")
    assert [summary.run_id for summary in catalog.summaries()] == ["run-register"]


def test_summaries_count_files_per_dataset(lab_catalog: AnyCatalog) -> None:
    summaries = {summary.experiment_id: summary for summary in lab_catalog.summaries()}

    assert list(summaries) == ["EXP-1", "EXP-2", "EXP-3"]
    assert summaries["EXP-1"].datasets == {"raw": 3}
    assert summaries["EXP-2"].datasets == {"processed": 1}
    assert summaries["EXP-3"].datasets == {}
    assert (summaries["EXP-1"].group, summaries["EXP-1"].platform, summaries["EXP-1"].revision) == (
        "Dermatology",
        "MiSeq",
        1,
    )


def test_the_catalog_survives_reopening(open_catalog: Callable[[], AnyCatalog]) -> None:
    open_catalog().upsert_experiment(experiment(), LOCATIONS)

    reopened = open_catalog()

    assert reopened.upsert_experiment(experiment(), LOCATIONS).changed is False
    assert found(reopened.search(SearchQuery(experiment="EXP-1"))) == [("EXP-1", None)]


def test_two_threads_publishing_different_experiments_at_once_both_succeed(
    open_catalog: Callable[[], AnyCatalog],
) -> None:
    setup = open_catalog()
    for experiment_id in ("EXP-1", "EXP-2"):
        setup.upsert_experiment(experiment(experiment_id), {})
    start = threading.Barrier(2)
    results: dict[str, Any] = {}

    def publish(experiment_id: str) -> None:
        catalog = open_catalog()
        start.wait()
        try:
            for round_ in range(5):
                entries = [file_entry(f"raw/{experiment_id}/f{n}.fastq") for n in range(round_ + 1)]
                results[experiment_id] = catalog.upsert_dataset(
                    manifest(experiment_id, *entries),
                    f"file:///raw/{experiment_id}/",
                )
        except Exception as exc:  # reported below, on the test's thread
            results[experiment_id] = exc

    threads = [threading.Thread(target=publish, args=(experiment_id,)) for experiment_id in ("EXP-1", "EXP-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert {key: (value.revision, value.changed) for key, value in results.items()} == {
        "EXP-1": (5, True),
        "EXP-2": (5, True),
    }
    assert {summary.experiment_id: summary.datasets for summary in setup.summaries()} == {
        "EXP-1": {"raw": 5},
        "EXP-2": {"raw": 5},
    }
