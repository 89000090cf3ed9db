"""The skeleton's flow on the aws profile, published to DataZone (catalog, lineage) and Kendra (content).

S3 and SQS are moto's server over HTTP; DataZone and Kendra, which moto does
not serve, are the fakes held to botocore's service models. Contract: every
dataset is one DataZone asset (revisions, never duplicates), listed and
searchable by every facet with the same answers the local profile gives;
lineage events reach DataZone, valid against the OpenLineage schema; Kendra
holds each passage of a searchable file as a document of its own and gets
ceil(passages / 10) BatchPutDocument calls per dataset (10 documents a call,
the dataset's passages packed across its files); rematerializing
everything adds no asset, document or lineage edge; and with a fifth of all
DataZone and Kendra calls throttled, every publish still succeeds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from labmesh_dagster.connectors.catalog.base import SearchHit, SearchQuery
from labmesh_dagster.connectors.search.indexed_passages import document_passages
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.lineage.graph import build_graph
from labmesh_dagster.steps.content import dataset_documents
from labmesh_dagster.steps.manifests import read_manifest
from labmesh_dagster_tests.aws_fakes import ServiceClients
from labmesh_dagster_tests.conftest import Lab, aws_settings, make_settings
from labmesh_dagster_tests.fake_datazone import FakeDataZoneClient
from labmesh_dagster_tests.fake_kendra import FakeKendraClient
from labmesh_dagster_tests.lineage.schemas import validate_event
from labmesh_dagster_tests.scenarios.test_end_to_end import run_flow
from labmesh_dagster_tests.service_model import ThrottledShare

ASSETS = ("experiment", "raw_dataset", "processed_dataset", "final_dataset")
FACET_QUERIES = [
    SearchQuery(text="fibrotic"),
    SearchQuery(text="liver biopsy"),
    SearchQuery(experiment="EXP-42"),
    SearchQuery(sample="S-001"),
    SearchQuery(sample="S-002", format="fastq"),
    SearchQuery(group="Hepatology"),
    SearchQuery(platform="MiSeq"),
    SearchQuery(format="fastq.gz"),
    SearchQuery(file_name="summary"),
    SearchQuery(file_name="SampleSheet"),
    SearchQuery(since="2020-01-01"),
    SearchQuery(until="2000-01-01"),
    SearchQuery(text="nothing-like-this"),
]


@dataclass
class Publishing:
    datazone: FakeDataZoneClient
    kendra: FakeKendraClient
    throttled: list[ThrottledShare]
    clients: ServiceClients


@pytest.fixture
def publishing() -> Callable[[float], Publishing]:
    """The two fakes, handed out for "datazone" and "kendra"; ``share`` of their calls throttled."""

    def install(share: float = 0.0) -> Publishing:
        datazone, kendra = FakeDataZoneClient(lineage_reads_to_finish=0), FakeKendraClient(reads_to_index=0)
        fakes = Publishing(datazone, kendra, [], ServiceClients({"datazone": datazone, "kendra": kendra}))
        if share:
            fakes.throttled = [ThrottledShare(datazone, share), ThrottledShare(kendra, share, seed=11)]
            fakes.clients.fakes = {"datazone": fakes.throttled[0], "kendra": fakes.throttled[1]}
        return fakes

    return install


def published_lab(tmp_path: Path, instance: dg.DagsterInstance, fakes: Publishing, request: Any) -> Lab:
    """A lab of the aws profile publishing to ``fakes``."""
    settings = aws_settings(
        tmp_path / "home",
        request.getfixturevalue("moto_endpoint"),
        request.getfixturevalue("s3_buckets"),
        LABMESH_DATAZONE_DOMAIN_ID=fakes.datazone.domain_id,
        LABMESH_DATAZONE_PROJECT_ID=fakes.datazone.project_id,
        LABMESH_DATAZONE_MAX_CALLS_PER_SECOND="500",
        LABMESH_KENDRA_INDEX_ID=fakes.kendra.index_id,
        LABMESH_KENDRA_MAX_CALLS_PER_SECOND="500",
    )
    return Lab(settings, instance, fakes.clients)


@pytest.fixture
def aws_lab(
    tmp_path: Path, instance: dg.DagsterInstance, publishing: Callable[..., Publishing], request: Any
) -> Iterator[tuple[Lab, Publishing]]:
    fakes = publishing()
    yield published_lab(tmp_path, instance, fakes, request), fakes


def answers(hits: list[SearchHit]) -> list[tuple[Any, ...]]:
    """What a person sees of a search, without the locations (file:// here, s3:// there)."""
    return [
        (
            hit.experiment_id,
            hit.title,
            hit.dataset,
            hit.entry_id,
            tuple((f.key, f.format, f.size, f.sample_ids) for f in hit.files),
        )
        for hit in hits
    ]


def assets_by_identifier(datazone: FakeDataZoneClient) -> dict[str, int]:
    counts: dict[str, int] = {}
    for asset in datazone.assets.values():
        counts[asset.external_identifier or ""] = counts.get(asset.external_identifier or "", 0) + 1
    return counts


def dataset_passage_ids(lab: Lab) -> dict[Zone, list[str]]:
    """The ids of the passages each dataset's searchable files are put as: one Kendra document each."""
    record = lab.catalog.get_experiment("EXP-42")
    assert record is not None
    ids: dict[Zone, list[str]] = {}
    for zone in (Zone.RAW, Zone.PROCESSED, Zone.FINAL):
        manifest = read_manifest(lab.store, zone, "EXP-42")
        assert manifest is not None
        documents = dataset_documents(manifest, record, lambda key: lab.store.uri(ObjectKey.parse(key)))
        ids[zone] = [passage.id for document in documents for passage in document_passages(document)]
    return ids


def expected_batch_puts(lab: Lab) -> int:
    """One publish per dataset, putting its passages 10 a call: ceil(passages / 10) calls each."""
    return sum(math.ceil(len(ids) / 10) for ids in dataset_passage_ids(lab).values())


def put_ids(kendra: FakeKendraClient) -> list[str]:
    """The document ids of every BatchPutDocument call, in the order sent."""
    return [
        document["Id"]
        for operation, params in kendra.calls
        if operation == "BatchPutDocument"
        for document in params["Documents"]
    ]


@pytest.mark.slow  # a whole aws flow on moto's server; make test and CI run it
def test_each_dataset_is_one_listed_datazone_asset_with_lineage_and_indexed_content(
    aws_lab: tuple[Lab, Publishing],
) -> None:
    lab, fakes = aws_lab
    run_flow(lab)

    assert assets_by_identifier(fakes.datazone) == {
        "labmesh:EXP-42": 1,
        "labmesh:EXP-42:raw": 1,
        "labmesh:EXP-42:processed": 1,
        "labmesh:EXP-42:final": 1,
    }
    assert all(listing.status == "ACTIVE" for listing in fakes.datazone.listings.values())
    assert len(fakes.datazone.listings) == 4
    posted = [json.loads(event.event) for event in fakes.datazone.lineage_events.values()]
    assert sorted((e["job"]["name"], e["eventType"]) for e in posted) == sorted(
        (asset, state) for asset in ASSETS for state in ("START", "COMPLETE")
    )
    for event in posted:
        validate_event(event)
    graph = build_graph(posted)
    assert {
        (graph.datasets[s].zone, r.job.name, graph.datasets[t].zone)
        for r in graph.runs.values()
        for s in r.inputs
        for t in r.outputs
    } == {
        ("landing", "raw_dataset", "raw"),
        ("raw", "processed_dataset", "processed"),
        ("processed", "final_dataset", "final"),
    }
    assert fakes.kendra.call_counts["BatchPutDocument"] == expected_batch_puts(lab)
    assert put_ids(fakes.kendra) == [item for ids in dataset_passage_ids(lab).values() for item in ids]
    assert fakes.kendra.documents and all(s.outcome in {"INDEXED", "UPDATED"} for s in fakes.kendra.statuses.values())


@pytest.mark.slow  # a whole aws flow on moto's server; make test and CI run it
def test_each_asset_carries_the_source_identifier_of_its_openlineage_dataset(aws_lab: tuple[Lab, Publishing]) -> None:
    lab, fakes = aws_lab
    run_flow(lab)
    datazone = lab.resources["catalog"].get_catalog()
    posted = [json.loads(event.event) for event in fakes.datazone.lineage_events.values()]
    written = {
        event["job"]["name"]: f"{dataset['namespace']}/{dataset['name']}"
        for event in posted
        if event["eventType"] == "COMPLETE"
        for dataset in event["outputs"]
    }

    for job, zone in (("experiment", None), ("raw_dataset", Zone.RAW), ("processed_dataset", Zone.PROCESSED)):
        asset = datazone.published_asset("EXP-42", zone)
        assert asset is not None
        common = next(form for form in asset["formsOutput"] if form["formName"] == "AssetCommonDetailsForm")
        assert json.loads(common["content"])["sourceIdentifier"] == written[job], job
    final = datazone.published_asset("EXP-42", Zone.FINAL)
    assert final is not None and written["final_dataset"] in json.dumps(final["formsOutput"])
    # DataZone joins an asset to the lineage node of the same sourceIdentifier: every asset has its node.
    assert set(written.values()) <= fakes.datazone.lineage_source_identifiers()
    assert written["raw_dataset"].startswith("s3://") and written["raw_dataset"].endswith("EXP-42")


@pytest.mark.slow  # a whole aws flow on moto's server; make test and CI run it
def test_publishing_an_unchanged_dataset_again_creates_and_revises_nothing(aws_lab: tuple[Lab, Publishing]) -> None:
    lab, fakes = aws_lab
    run_flow(lab)
    writes = ("CreateFormType", "CreateAssetType", "CreateGlossary", "CreateAsset", "CreateAssetRevision")
    before = {operation: fakes.datazone.call_counts[operation] for operation in writes}
    published = fakes.datazone.call_counts["CreateListingChangeSet"]

    result = lab.materialize("raw_dataset", partition="EXP-42")

    assert result.success
    # A new run bootstraps its own catalog: it reads the types and creates none, and the asset is unchanged.
    assert {operation: fakes.datazone.call_counts[operation] for operation in writes} == before
    assert fakes.datazone.call_counts["CreateListingChangeSet"] == published
    assert fakes.datazone.call_counts["GetFormType"] > 0


@pytest.mark.slow  # a whole aws flow on moto's server; make test and CI run it
def test_every_facet_finds_in_datazone_what_the_registry_finds(aws_lab: tuple[Lab, Publishing]) -> None:
    lab, fakes = aws_lab
    run_flow(lab)
    datazone = lab.resources["catalog"].get_catalog()

    for query in FACET_QUERIES:
        assert answers(datazone.search(query)) == answers(lab.catalog.search(query)), query
    assert all(datazone.search(query) for query in FACET_QUERIES[:-2])
    assert fakes.datazone.call_counts["SearchListings"] >= len(FACET_QUERIES)


@pytest.mark.slow
def test_rematerializing_everything_adds_no_asset_document_or_lineage_edge(aws_lab: tuple[Lab, Publishing]) -> None:
    lab, fakes = aws_lab
    run_flow(lab)
    assets, documents = assets_by_identifier(fakes.datazone), set(fakes.kendra.documents)
    revisions = {asset.id: len(asset.revisions) for asset in fakes.datazone.assets.values()}
    edges = build_graph([json.loads(e.event) for e in fakes.datazone.lineage_events.values()]).edges

    for asset in ASSETS:
        result = lab.materialize(asset, partition="EXP-42")
        failed = [(c.check_name, c.metadata) for c in result.get_asset_check_evaluations() if not c.passed]
        assert result.success and failed == [], (asset, failed)

    assert assets_by_identifier(fakes.datazone) == assets
    assert {asset.id: len(asset.revisions) for asset in fakes.datazone.assets.values()} == revisions
    assert set(fakes.kendra.documents) == documents
    assert build_graph([json.loads(e.event) for e in fakes.datazone.lineage_events.values()]).edges == edges


@pytest.mark.slow
def test_a_fifth_of_datazone_and_kendra_calls_throttled_still_publishes_everything(
    tmp_path: Path, instance: dg.DagsterInstance, publishing: Callable[..., Publishing], request: Any
) -> None:
    fakes = publishing(0.2)
    lab = published_lab(tmp_path, instance, fakes, request)

    run_flow(lab)

    assert all(share.injected >= 3 for share in fakes.throttled), [share.injected for share in fakes.throttled]
    assert len(assets_by_identifier(fakes.datazone)) == 4 and len(fakes.datazone.listings) == 4
    checks = [
        evaluation
        for run in lab.instance.get_run_records()
        for record in lab.instance.get_records_for_run(
            run.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        if (evaluation := record.event_log_entry.asset_check_evaluation) is not None
    ]
    assert checks and all(check.passed for check in checks)


@pytest.mark.slow
def test_the_local_profile_answers_every_search_as_the_aws_profile_does(
    tmp_path: Path, instance: dg.DagsterInstance, publishing: Callable[..., Publishing], request: Any
) -> None:
    # Both labs run the test suite's quick pipeline, labmesh's own deterministic QC (real tools' reports differ
    # run to run: fastp stamps the time and its temporary paths), so any difference is one of search.
    aws = published_lab(tmp_path, instance, publishing(), request)
    local = Lab(make_settings(tmp_path / "local-home"), instance)
    run_flow(aws)
    run_flow(local)
    datazone = aws.resources["catalog"].get_catalog()

    for query in FACET_QUERIES:
        assert answers(local.catalog.search(query)) == answers(datazone.search(query)), query


@pytest.mark.slow  # a whole aws flow on moto's server; make test and CI run it
def test_a_document_kendra_fails_fails_the_content_check_and_keeps_the_data_published(
    aws_lab: tuple[Lab, Publishing],
) -> None:
    lab, fakes = aws_lab
    fakes.kendra.fail_document("final/EXP-42/report/summary.md", "The document contains unsupported content.")
    run_flow(lab)

    result = lab.materialize("final_dataset", partition="EXP-42")

    assert result.success
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "content_indexed"]
    assert not check.passed
    assert "final/EXP-42/report/summary.md" in check.metadata["problems"].value
    assert lab.catalog.get_dataset("EXP-42", "final") is not None


def test_labmesh_datazone_bootstrap_sets_up_the_domain_once(
    aws_lab: tuple[Lab, Publishing], capsys: pytest.CaptureFixture[str]
) -> None:
    from labmesh_dagster import cli

    lab, fakes = aws_lab

    assert cli.main(["datazone", "bootstrap"], settings=lab.settings, clients=lab.clients) == 0
    first = capsys.readouterr().out
    assert cli.main(["datazone", "bootstrap"], settings=lab.settings, clients=lab.clients) == 0
    again = capsys.readouterr().out

    assert "LabmeshExperimentForm (revision 1)" in first and "created now: nothing" not in first
    assert "created now: nothing, everything was there" in again
    assert set(fakes.datazone.form_types) >= {"LabmeshExperimentForm", "LabmeshDatasetForm"}


def test_bootstrap_without_datazone_says_what_to_set(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from labmesh_dagster import cli

    monkeypatch.setenv("LABMESH_HOME", str(lab.settings.home))
    assert cli.main(["datazone", "bootstrap"]) == 2
    assert "LABMESH_DATAZONE_DOMAIN_ID" in capsys.readouterr().err
