"""The DataZone catalog publishes one asset per experiment and per dataset, and finds what the local catalog finds.

Pinned here, against the model-bound DataZone fake with a real SqliteCatalog as
registry: bootstrap creates the form types, the asset type, the glossary and
its terms once, and a second call only reads; an upsert creates one asset per
(experiment, dataset), a change makes a new revision of it (never a second
asset) and republishes, no change writes nothing; published assets are found
by SearchListings; every facet is sent to DataZone as a filter and finds what
the local catalog finds; for the same data both catalogs answer the same hits
to facet and keyword queries, except for what DataZone does not list; throttling
on a fifth of the calls still publishes everything; calls stay under the
configured rate; a processed dataset's form names the pipelines that made it
(name@version, accepted by the form type's model) and a raw one's names none;
and the lineage sink reports FAILED, unfinished and refused
events as problems, and replays nothing twice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.connectors.catalog.base import SearchQuery
from labmesh_dagster.connectors.catalog.datazone import BootstrapRefused, DataZoneCatalog
from labmesh_dagster.connectors.catalog.datazone_forms import (
    DATASET_FORM,
    EXPERIMENT_FORM,
    FORM_CONTENT_MAX,
    dataset_form,
    experiment_form,
    form_json,
)
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.lineage.datazone import DataZoneLineageSink
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.experiment import ExperimentRecord, Sample
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest, ManifestEntry, Provenance
from labmesh_dagster_tests.fake_datazone import FakeDataZoneClient
from labmesh_dagster_tests.service_model import ThrottledShare

WRITES = ("CreateAsset", "CreateAssetRevision", "CreateListingChangeSet")
CREATES = ("CreateFormType", "CreateAssetType", "CreateGlossary", "CreateGlossaryTerm")


class Clock:
    """Time that passes only when someone sleeps: pacing and backoff cost the test nothing."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def entry(key: str, *, fmt: str, created: str, samples: tuple[str, ...] = (), **extra: Any) -> ManifestEntry:
    return ManifestEntry(key=key, size=100, sha256="0" * 64, format=fmt, created=created, sample_ids=samples, **extra)


LIVER = ExperimentRecord(
    id="EXP-1",
    title="Liver RNA-seq",
    description="Mouse liver, fasting versus fed",
    owner="Ada Lovelace",
    group="Genomics Core",
    platform="NovaSeq 6000",
    protocol="RNA-seq",
    samples=(Sample("LIV-01"), Sample("LIV-02")),
    created="2024-03-01",
    tags=("liver", "mouse"),
)
KIDNEY = ExperimentRecord(
    id="EXP-2",
    title="Kidney proteomics",
    description="Label-free quantification",
    group="Proteomics Lab",
    platform="Orbitrap Exploris",
    samples=(Sample("KID-01"),),
    created="2024-05-10",
    custom={"funding": "grant 42"},
)
PILOT = ExperimentRecord(
    id="EXP-3",
    title="Pilot imaging",
    description="A sample of cultured cells",
    group="Imaging",
    platform="Zeiss LSM 980",
    samples=(Sample("IMG-01"),),
    created="2024-06-01",
)
RECORDS = (LIVER, KIDNEY, PILOT)


def liver_raw(*extra: ManifestEntry) -> Manifest:
    return Manifest.build(
        "EXP-1",
        "raw",
        [
            entry(
                "raw/EXP-1/S1_L001_R1_001.fastq.gz",
                fmt="fastq",
                created="2024-03-02T10:00:00+00:00",
                samples=("LIV-01",),
            ),
            entry(
                "raw/EXP-1/S2_L001_R1_001.fastq.gz",
                fmt="fastq",
                created="2024-03-02T11:00:00+00:00",
                samples=("LIV-02",),
            ),
            entry("raw/EXP-1/run_summary.csv", fmt="csv", created="2024-03-03T09:00:00+00:00", text="run summary"),
            *extra,
        ],
    )


MANIFESTS = (
    liver_raw(),
    Manifest.build(
        "EXP-1",
        "processed",
        [
            entry(
                "processed/EXP-1/LIV-01.counts.tsv", fmt="tsv", created="2024-03-05T08:00:00+00:00", samples=("LIV-01",)
            ),
            entry("processed/EXP-1/multiqc_report.html", fmt="html", created="2024-03-05T08:30:00+00:00"),
        ],
    ),
    Manifest.build(
        "EXP-2",
        "raw",
        [
            entry("raw/EXP-2/KID-01.raw", fmt="thermo", created="2024-05-11T12:00:00+00:00", samples=("KID-01",)),
            entry(
                "raw/EXP-2/KID-01.mzML",
                fmt="mzml",
                created="2024-05-11T12:05:00+00:00",
                samples=("KID-01",),
                metadata={"instrument": "Orbitrap", "scans": 12000},
            ),
        ],
    ),
)


def location(manifest: Manifest) -> str:
    return f"s3://labmesh-{manifest.zone}/{manifest.experiment_id}/"


def make_catalog(
    client: Any, tmp_path: Path, clock: Clock, name: str = "registry.db", **options: Any
) -> DataZoneCatalog:
    return DataZoneCatalog(
        client,
        domain_id=client.domain_id,
        project_id=client.project_id,
        registry=SqliteCatalog(tmp_path / name),
        clock=clock,
        sleep=clock.sleep,
        **options,
    )


def publish_all(catalog: Any) -> None:
    for record in RECORDS:
        catalog.upsert_experiment(record, {"raw": f"s3://labmesh-raw/{record.id}/"})
    for manifest in MANIFESTS:
        catalog.upsert_dataset(manifest, location(manifest))


def writes(client: FakeDataZoneClient) -> dict[str, int]:
    return {operation: client.call_counts[operation] for operation in WRITES}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(clock: Clock) -> FakeDataZoneClient:
    return FakeDataZoneClient(clock=clock)


@pytest.fixture
def catalog(client: FakeDataZoneClient, tmp_path: Path, clock: Clock) -> DataZoneCatalog:
    return make_catalog(client, tmp_path, clock, glossary_terms={"platform": ["NovaSeq 6000", "Orbitrap Exploris"]})


def test_bootstrap_creates_the_types_glossary_and_terms_once(
    catalog: DataZoneCatalog, client: FakeDataZoneClient
) -> None:
    first = catalog.bootstrap()
    counts = dict(client.call_counts)

    second = catalog.bootstrap()

    assert first.created == (
        "form type LabmeshExperimentForm revision 1",
        "form type LabmeshDatasetForm revision 1",
        "asset type LabmeshAsset revision 1",
        "glossary labmesh",
        "glossary term platform",
        "glossary term NovaSeq 6000",
        "glossary term Orbitrap Exploris",
    )
    assert second.created == ()
    assert (second.form_types, second.asset_type_revision, second.glossary_id) == (
        first.form_types,
        first.asset_type_revision,
        first.glossary_id,
    )
    assert second.terms == first.terms and set(first.terms["platform"]) == {"NovaSeq 6000", "Orbitrap Exploris"}
    new_calls = {op: client.call_counts[op] - counts.get(op, 0) for op in client.call_counts}
    assert {op: n for op, n in new_calls.items() if n} == {"GetFormType": 2, "GetAssetType": 1, "Search": 2}
    # labmesh's two form types beside DataZone's own common form type.
    assert [len(client.form_types), len(client.asset_types), len(client.glossaries), len(client.terms)] == [3, 1, 1, 3]
    asset_type = client.get_asset_type(domainIdentifier=client.domain_id, identifier="LabmeshAsset")
    assert asset_type["formsOutput"] == {
        EXPERIMENT_FORM: {"typeName": EXPERIMENT_FORM, "typeRevision": "1", "required": True},
        DATASET_FORM: {"typeName": DATASET_FORM, "typeRevision": "1", "required": False},
        "AssetCommonDetailsForm": {
            "typeName": "amazon.datazone.AssetCommonDetailsFormType",
            "typeRevision": "6",
            "required": False,
        },
    }


def test_bootstrap_twice_in_new_processes_creates_nothing_however_datazone_renders_the_models(
    client: FakeDataZoneClient, tmp_path: Path, clock: Clock
) -> None:
    make_catalog(client, tmp_path, clock).bootstrap()
    created = {op: client.call_counts[op] for op in CREATES}

    # A second process (every Dagster run bootstraps its own catalog object) reads and creates nothing,
    # though the models come back without their documentation comments.
    report = make_catalog(client, tmp_path, clock, name="other.db").bootstrap()

    assert report.created == ()
    assert {op: client.call_counts[op] for op in CREATES} == created


def test_a_form_type_of_the_same_name_with_another_model_is_reported_not_replaced(
    catalog: DataZoneCatalog, client: FakeDataZoneClient
) -> None:
    client.create_form_type(
        domainIdentifier=client.domain_id,
        name=EXPERIMENT_FORM,
        model={"smithy": "structure LabmeshExperimentForm { experimentId: String }"},
        owningProjectIdentifier=client.project_id,
    )

    with pytest.raises(BootstrapRefused, match="LabmeshExperimentForm.*has another model.*names are unique"):
        catalog.bootstrap()

    assert len(client.form_types[EXPERIMENT_FORM].revisions) == 1


@pytest.mark.parametrize(
    ("missing", "creating"),
    [
        ("CREATE_FORM_TYPE", "form type LabmeshExperimentForm"),
        ("CREATE_ASSET_TYPE", "asset type LabmeshAsset"),
        ("CREATE_GLOSSARY", "glossary labmesh"),
    ],
)
def test_a_v2_domain_without_a_policy_grant_is_reported_with_the_grant_it_needs(
    tmp_path: Path, clock: Clock, missing: str, creating: str
) -> None:
    grants = {"CREATE_FORM_TYPE", "CREATE_ASSET_TYPE", "CREATE_GLOSSARY"} - {missing}
    client = FakeDataZoneClient(domain_version="V2", policy_grants=grants, clock=clock)

    with pytest.raises(BootstrapRefused) as refused:
        make_catalog(client, tmp_path, clock).bootstrap()

    message = str(refused.value)
    assert f"refused to create {creating}" in message and f"{missing} policy grant" in message
    assert "AccessDeniedException" in message


def test_one_asset_per_experiment_and_dataset_and_an_unchanged_upsert_writes_nothing(
    catalog: DataZoneCatalog, client: FakeDataZoneClient, tmp_path: Path
) -> None:
    local = SqliteCatalog(tmp_path / "local.db")
    publish_all(catalog)
    publish_all(local)
    before = writes(client)

    again = [catalog.upsert_experiment(record, {"raw": f"s3://labmesh-raw/{record.id}/"}) for record in RECORDS]
    again += [catalog.upsert_dataset(m, location(m)) for m in MANIFESTS]

    assert sorted(str(asset.external_identifier) for asset in client.assets.values()) == [
        "labmesh:EXP-1",
        "labmesh:EXP-1:processed",
        "labmesh:EXP-1:raw",
        "labmesh:EXP-2",
        "labmesh:EXP-2:raw",
        "labmesh:EXP-3",
    ]
    assert all(len(asset.revisions) == 1 for asset in client.assets.values())
    assert writes(client) == before
    assert not any(item.changed for item in again)
    # The entries are the registry's, so both profiles answer an upsert alike.
    assert [item.revision for item in again] == [1] * 6
    assert catalog.summaries() == local.summaries()
    assert catalog.get_dataset("EXP-1", "raw") == local.get_dataset("EXP-1", "raw")


def test_changed_content_is_a_new_revision_of_the_same_asset_and_is_republished(
    catalog: DataZoneCatalog, client: FakeDataZoneClient
) -> None:
    publish_all(catalog)
    raw = catalog.published_asset("EXP-1", Zone.RAW)
    assert raw is not None and raw["revision"] == "1"

    grown = liver_raw(entry("raw/EXP-1/S3_L001_R1_001.fastq.gz", fmt="fastq", created="2024-03-04T10:00:00+00:00"))
    result = catalog.upsert_dataset(grown, location(grown))

    revised = catalog.published_asset("EXP-1", Zone.RAW)
    assert revised is not None
    assert (result.entry_id, result.revision, result.changed) == ("dataset:EXP-1/raw", 2, True)
    assert (revised["id"], revised["revision"]) == (raw["id"], "2") and len(client.assets) == 6
    content = json.loads(next(f["content"] for f in revised["formsOutput"] if f["formName"] == DATASET_FORM))
    assert content["fileCount"] == 4 and "S3_L001_R1_001.fastq.gz" in content["fileNames"]
    listing = client.get_listing(domainIdentifier=client.domain_id, identifier=revised["listing"]["listingId"])
    assert listing["item"]["assetListing"]["assetRevision"] == "2"
    found = client.search_listings(domainIdentifier=client.domain_id, searchText='"S3_L001_R1_001.fastq.gz"')["items"]
    assert [item["assetListing"]["entityId"] for item in found] == [raw["id"]]


def test_a_form_a_steward_added_survives_labmeshs_revisions_and_changes_nothing_by_itself(
    catalog: DataZoneCatalog, client: FakeDataZoneClient
) -> None:
    publish_all(catalog)
    raw = catalog.published_asset("EXP-1", Zone.RAW)
    assert raw is not None
    client.create_form_type(
        domainIdentifier=client.domain_id,
        name="StewardNotes",
        model={"smithy": "structure StewardNotes { note: String }"},
        owningProjectIdentifier=client.project_id,
    )
    # A data steward adds a form in DataZone's portal: a revision of every form the asset has, and the note.
    kept = [
        {
            "formName": form["formName"],
            "typeIdentifier": form["typeName"],
            "typeRevision": form["typeRevision"],
            "content": form["content"],
        }
        for form in raw["formsOutput"]
    ]
    note = {"formName": "Notes", "typeIdentifier": "StewardNotes", "typeRevision": "1", "content": '{"note": "QC ok"}'}
    client.create_asset_revision(
        domainIdentifier=client.domain_id, identifier=raw["id"], name=raw["name"], formsInput=[*kept, note]
    )
    before = writes(client)

    catalog.upsert_dataset(MANIFESTS[0], location(MANIFESTS[0]))
    unchanged = writes(client)
    grown = liver_raw(entry("raw/EXP-1/S3_L001_R1_001.fastq.gz", fmt="fastq", created="2024-03-04T10:00:00+00:00"))
    catalog.upsert_dataset(grown, location(grown))

    assert unchanged["CreateAssetRevision"] == before["CreateAssetRevision"]
    revised = catalog.published_asset("EXP-1", Zone.RAW)
    assert revised is not None and revised["revision"] == "3"
    forms = {form["formName"]: json.loads(form["content"]) for form in revised["formsOutput"]}
    assert forms["Notes"] == {"note": "QC ok"}
    assert forms["AssetCommonDetailsForm"] == {"sourceIdentifier": "s3://labmesh-raw/EXP-1"}
    assert forms[DATASET_FORM]["fileCount"] == 4


def test_an_experiment_change_revises_its_datasets_assets_which_carry_its_form(
    catalog: DataZoneCatalog, client: FakeDataZoneClient
) -> None:
    publish_all(catalog)
    before = writes(client)

    renamed = ExperimentRecord(**{**LIVER.__dict__, "title": "Liver RNA-seq, fasting"})
    catalog.upsert_experiment(renamed, {"raw": "s3://labmesh-raw/EXP-1/"})

    assert writes(client) == {op: count + 3 for op, count in before.items() if op != "CreateAsset"} | {
        "CreateAsset": before["CreateAsset"]
    }
    for zone in (None, Zone.RAW, Zone.PROCESSED):
        asset = catalog.published_asset("EXP-1", zone)
        assert asset is not None and asset["revision"] == "2" and asset["name"].endswith("Liver RNA-seq, fasting")
    assert catalog.search(SearchQuery(text="fasting", format="fastq"))[0].dataset == "raw"


def test_published_assets_are_listed_and_found_by_search_listings(
    catalog: DataZoneCatalog, client: FakeDataZoneClient
) -> None:
    publish_all(catalog)

    found = client.search_listings(
        domainIdentifier=client.domain_id,
        filters={"filter": {"attribute": f"{EXPERIMENT_FORM}.experimentId", "value": "EXP-2"}},
        additionalAttributes=["FORMS"],
    )["items"]
    raw = catalog.published_asset("EXP-2", Zone.RAW)

    assert raw is not None and raw["listing"]["listingStatus"] == "ACTIVE"
    assert raw["externalIdentifier"] == "labmesh:EXP-2:raw"
    assert raw["glossaryTerms"] == [catalog.bootstrap().terms["platform"]["Orbitrap Exploris"]]
    assert sorted(item["assetListing"]["name"] for item in found) == [
        "EXP-2 raw: Kidney proteomics",
        "EXP-2: Kidney proteomics",
    ]
    forms = json.loads(found[0]["assetListing"]["additionalAttributes"]["forms"])
    assert forms[EXPERIMENT_FORM]["group"] == "Proteomics Lab"
    assert catalog.published_asset("EXP-9") is None


def test_an_unpublished_asset_is_republished_on_the_next_upsert_and_not_found_until_then(
    catalog: DataZoneCatalog, client: FakeDataZoneClient
) -> None:
    publish_all(catalog)
    raw = catalog.published_asset("EXP-2", Zone.RAW)
    assert raw is not None
    client.create_listing_change_set(
        domainIdentifier=client.domain_id, entityIdentifier=raw["id"], entityType="ASSET", action="UNPUBLISH"
    )

    hidden = catalog.search(SearchQuery(text="kidney"))
    before = writes(client)
    catalog.upsert_dataset(MANIFESTS[2], location(MANIFESTS[2]))

    # The documented difference: what DataZone does not list is not found, whatever the registry holds.
    assert [hit.dataset for hit in catalog.registry.search(SearchQuery(text="kidney"))] == ["raw"]
    assert hidden == []
    assert writes(client) == {**before, "CreateListingChangeSet": before["CreateListingChangeSet"] + 1}
    assert [hit.dataset for hit in catalog.search(SearchQuery(text="kidney"))] == ["raw"]


class Racing:
    """The fake, as seen by a process that another one races: the next ``hide`` GetAsset calls find nothing."""

    def __init__(self, client: FakeDataZoneClient) -> None:
        self.client = client
        self.hide = 0
        self.domain_id = client.domain_id
        self.project_id = client.project_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def get_asset(self, **params: Any) -> dict[str, Any]:
        answer = self.client.get_asset(**params)
        if self.hide > 0:
            self.hide -= 1
            raise self.client.exceptions.ResourceNotFoundException(
                {"Error": {"Code": "ResourceNotFoundException", "Message": "not yet"}}, "GetAsset"
            )
        return answer


def test_assets_are_found_by_external_identifier_so_a_lagging_search_index_changes_nothing(
    catalog: DataZoneCatalog, client: FakeDataZoneClient
) -> None:
    publish_all(catalog)
    before = client.call_counts["Search"]
    raw = MANIFESTS[0]

    catalog.upsert_dataset(raw, location(raw))

    assert client.call_counts["Search"] == before, "inventory Search is eventually consistent: never asked"
    lookups = [params["identifier"] for op, params in client.calls[-4:] if op == "GetAsset"]
    assert lookups == ["externalIdentifer/labmesh:EXP-1", "externalIdentifer/labmesh:EXP-1:raw"]


def test_an_asset_another_process_just_made_is_neither_duplicated_nor_left_unrevised(
    client: FakeDataZoneClient, tmp_path: Path, clock: Clock
) -> None:
    racing = Racing(client)
    catalog = make_catalog(racing, tmp_path, clock)
    publish_all(catalog)
    raw = MANIFESTS[0]

    racing.hide = 2
    catalog.upsert_dataset(raw, location(raw))
    replayed = client.call_counts["CreateAsset"]
    grown = liver_raw(entry("raw/EXP-1/S3_L001_R1_001.fastq.gz", fmt="fastq", created="2024-03-04T10:00:00+00:00"))
    racing.hide = 2
    catalog.upsert_dataset(grown, location(grown))

    # Same content: the client token makes the repeated CreateAsset answer with the asset made first.
    assert replayed == 6 + 2 and len(client.assets) == 6
    # Other content: CreateAsset conflicts on the externalIdentifier, GetAsset finds it, the asset is revised.
    assert client.call_counts["CreateAsset"] == replayed + 2 and len(client.assets) == 6
    revised = catalog.published_asset("EXP-1", Zone.RAW)
    assert revised is not None and revised["revision"] == "2" and revised["listing"]["listingStatus"] == "ACTIVE"


FACETS: list[tuple[SearchQuery, str, set[tuple[str, str | None]]]] = [
    (SearchQuery(experiment="EXP-3"), "LabmeshExperimentForm.experimentId", {("EXP-3", None)}),
    # multiqc_report.html has no sample of its own, so it is found under each of the experiment's.
    (SearchQuery(sample="liv-02"), "LabmeshDatasetForm.sampleIds", {("EXP-1", "raw"), ("EXP-1", "processed")}),
    (SearchQuery(group="proteomics"), "LabmeshExperimentForm.groupTerms", {("EXP-2", "raw")}),
    (SearchQuery(platform="Zeiss LSM"), "LabmeshExperimentForm.platformTerms", {("EXP-3", None)}),
    (SearchQuery(format="tsv"), "LabmeshDatasetForm.formatTerms", {("EXP-1", "processed")}),
    (SearchQuery(file_name="S1_L001"), "LabmeshDatasetForm.fileNameTerms", {("EXP-1", "raw")}),
    (SearchQuery(since="2024-05-11"), "LabmeshDatasetForm.createdToDay", {("EXP-2", "raw"), ("EXP-3", None)}),
    (SearchQuery(until="2024-03-02"), "LabmeshDatasetForm.createdFromDay", {("EXP-1", "raw")}),
]


@pytest.mark.parametrize(("query", "attribute", "expected"), FACETS, ids=[a for _, a, _ in FACETS])
def test_every_facet_is_a_datazone_filter_and_finds_what_it_should(
    catalog: DataZoneCatalog, client: FakeDataZoneClient, query: SearchQuery, attribute: str, expected: set[Any]
) -> None:
    publish_all(catalog)

    hits = catalog.search(query)

    assert {(hit.experiment_id, hit.dataset) for hit in hits} == expected
    request = next(params for op, params in reversed(client.calls) if op == "SearchListings")
    assert attribute in json.dumps(request["filters"])


def test_a_facet_datazone_does_not_match_returns_nothing_without_asking_the_registry(
    catalog: DataZoneCatalog, client: FakeDataZoneClient
) -> None:
    publish_all(catalog)

    assert catalog.search(SearchQuery(platform="MiSeq")) == []
    assert catalog.search(SearchQuery(text="liver", experiment="EXP-2")) == []


PARITY_QUERIES = [
    SearchQuery(),
    SearchQuery(text="liver"),
    SearchQuery(text="Liver RNA"),
    SearchQuery(text="kidney orbitrap"),
    SearchQuery(text="summary"),
    SearchQuery(text="samples"),
    SearchQuery(text="S1_L001"),
    SearchQuery(text="LIV-02"),
    SearchQuery(text="lovelace"),
    SearchQuery(text="grant"),
    SearchQuery(text="12000"),
    SearchQuery(text="pilot"),
    SearchQuery(text="nothing-here"),
    SearchQuery(text="fasting fed", limit=1),
    SearchQuery(experiment="EXP-1"),
    SearchQuery(experiment="EXP-1", text="counts"),
    SearchQuery(sample="LIV-01"),
    SearchQuery(sample="kid-01"),
    SearchQuery(sample="IMG-01"),
    SearchQuery(sample="LIV"),
    SearchQuery(group="Genomics Core"),
    SearchQuery(group="imaging"),
    SearchQuery(platform="novaseq"),
    SearchQuery(format="fastq"),
    SearchQuery(format="mzml", sample="KID-01"),
    SearchQuery(file_name="counts"),
    SearchQuery(file_name="KID-01.mzML"),
    SearchQuery(file_name="summary", text="run"),
    SearchQuery(since="2024-03-03"),
    SearchQuery(until="2024-03-02"),
    SearchQuery(since="2024-03-02", until="2024-03-04"),
    SearchQuery(since="2024-03-05T08:15:00+00:00"),
    SearchQuery(since="2024-05-01", group="Imaging"),
    SearchQuery(text="fastq", limit=1),
]


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataZoneCatalog, SqliteCatalog]:
    """The same data in both catalogs, published once for every parity query (they only read)."""
    tmp_path = tmp_path_factory.mktemp("parity")
    clock = Clock()
    datazone = make_catalog(FakeDataZoneClient(clock=clock), tmp_path, clock)
    local = SqliteCatalog(tmp_path / "local.db")
    publish_all(datazone)
    publish_all(local)
    return datazone, local


@pytest.mark.parametrize("query", PARITY_QUERIES, ids=[repr(query)[12:60] for query in PARITY_QUERIES])
def test_the_datazone_and_local_catalogs_answer_a_query_alike(
    both: tuple[DataZoneCatalog, SqliteCatalog], query: SearchQuery
) -> None:
    datazone, local = both

    assert datazone.search(query) == local.search(query)


def test_parity_is_not_vacuous(both: tuple[DataZoneCatalog, SqliteCatalog]) -> None:
    datazone, _ = both

    answered = [datazone.search(query) for query in PARITY_QUERIES]

    assert sum(1 for hits in answered if hits) >= len(PARITY_QUERIES) - 2
    assert {hit.dataset for hits in answered for hit in hits} == {None, "raw", "processed"}


def test_throttling_on_a_fifth_of_the_calls_still_publishes_everything(
    client: FakeDataZoneClient, tmp_path: Path, clock: Clock
) -> None:
    flaky = ThrottledShare(client, share=0.2)
    catalog = make_catalog(flaky, tmp_path, clock)
    steady = make_catalog(FakeDataZoneClient(clock=clock), tmp_path, clock, name="steady.db")

    publish_all(catalog)
    publish_all(steady)

    assert flaky.injected >= 10 and catalog.call.retries == flaky.injected
    assert len(client.assets) == 6 and all(len(asset.revisions) == 1 for asset in client.assets.values())
    assert all(listing.status == "ACTIVE" for listing in client.listings.values()) and len(client.listings) == 6
    for query in (SearchQuery(text="liver"), SearchQuery(sample="KID-01"), SearchQuery(since="2024-05-01")):
        assert catalog.search(query) == steady.search(query) != []


def test_a_viewer_finds_in_datazone_only_what_the_registry_lets_them_see(catalog: DataZoneCatalog) -> None:
    """Grants, principals and counts are the registry's; DataZone's search then lists within the viewer's share."""
    publish_all(catalog)
    genomics = Viewer(name="bob", groups=frozenset({"genomics core"}))

    assert {hit.experiment_id for hit in catalog.search(SearchQuery(viewer=genomics))} == {"EXP-1"}
    assert catalog.grant("EXP-2", "user:bob") is True
    assert {hit.experiment_id for hit in catalog.search(SearchQuery(viewer=genomics))} == {"EXP-1", "EXP-2"}
    assert catalog.principals("EXP-2") == catalog.registry.principals("EXP-2") >= {"user:bob"}
    counts = catalog.facet_counts(SearchQuery(viewer=genomics))
    assert counts == catalog.registry.facet_counts(SearchQuery(viewer=genomics))
    assert dict(counts["experiment"]) == {"EXP-1": 2, "EXP-2": 1}
    assert catalog.revoke("EXP-2", "user:bob") is True
    assert {hit.experiment_id for hit in catalog.search(SearchQuery(viewer=genomics))} == {"EXP-1"}


def test_calls_stay_under_the_configured_rate(tmp_path: Path, clock: Clock) -> None:
    client = FakeDataZoneClient(clock=clock)
    # 8 a second: an interval of 0.125 s is exact in binary, so the clock adds up without rounding.
    catalog = make_catalog(client, tmp_path, clock, max_per_second=8)

    publish_all(catalog)
    for query in PARITY_QUERIES[:10]:
        catalog.search(query)

    total = sum(client.call_counts.values())
    assert total > 30
    assert client.peak_calls_per_second() == 8
    assert clock.now >= (total - 1) / 8


def test_form_content_stays_within_datazone_limits_and_says_what_was_clipped() -> None:
    many = Manifest.build(
        "EXP-1",
        "raw",
        [
            entry(
                f"raw/EXP-1/{'sample_' * 10}{number:05d}.fastq", fmt="fastq", created="2024-03-02", text=f"w{number}x"
            )
            for number in range(3000)
        ],
    )
    record = ExperimentRecord(**{**LIVER.__dict__, "description": "words " * 100_000})

    content = dataset_form(many, location="s3://labmesh-raw/EXP-1/", record=record)
    experiment = experiment_form(record)

    assert len(form_json(content)) <= FORM_CONTENT_MAX and len(form_json(experiment)) <= FORM_CONTENT_MAX
    assert content["fileCount"] == 3000 and "fileNames" in content["clipped"]
    assert len(content["fileNames"]) < 3000 and "description" in experiment["clipped"]


def test_a_processed_datasets_form_names_the_pipelines_that_made_it(catalog: DataZoneCatalog) -> None:
    def made_by(pipeline: str, version: str) -> Provenance:
        return Provenance(pipeline, version, f"{pipeline}-1", "local", "run-1", f"{pipeline} --version")

    processed = Manifest.build(
        "EXP-1",
        "processed",
        [
            entry("processed/EXP-1/S1.fastp.json", fmt="json", created="2024-03-05", produced_by=made_by("fastp", "1")),
            entry("processed/EXP-1/S2.fastp.json", fmt="json", created="2024-03-05", produced_by=made_by("fastp", "1")),
            entry(
                "processed/EXP-1/multiqc_report.html",
                fmt="html",
                created="2024-03-05",
                produced_by=made_by("multiqc", "2"),
            ),
        ],
    )
    catalog.upsert_experiment(LIVER, {"raw": "s3://labmesh-raw/EXP-1/"})
    catalog.upsert_dataset(processed, location(processed))
    catalog.upsert_dataset(liver_raw(), location(liver_raw()))

    def form(zone: Zone) -> dict[str, Any]:
        asset = catalog.published_asset("EXP-1", zone)
        assert asset is not None
        return json.loads(next(f["content"] for f in asset["formsOutput"] if f["formName"] == DATASET_FORM))

    assert form(Zone.PROCESSED)["pipelines"] == ["fastp@1", "multiqc@2"]
    assert "pipelines" not in form(Zone.RAW)


def run_event(event_type: str = "COMPLETE", **extra: Any) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "eventTime": "2025-01-06T10:00:00+00:00",
        "run": {"runId": "0190a1b2-0000-7000-8000-000000000001"},
        "job": {"namespace": "labmesh", "name": "raw_dataset"},
        "inputs": [{"namespace": "s3://labmesh-landing", "name": "EXP-1"}],
        "outputs": [{"namespace": "s3://labmesh-raw", "name": "EXP-1"}],
        "producer": "https://labmesh.example/labmesh-dagster/0.1.0",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        **extra,
    }


def make_sink(client: Any, clock: Clock, **options: Any) -> DataZoneLineageSink:
    return DataZoneLineageSink(client, domain_id=client.domain_id, clock=clock, sleep=clock.sleep, **options)


def test_lineage_events_are_posted_and_confirmed_and_a_replay_records_nothing_twice(clock: Clock) -> None:
    client = FakeDataZoneClient(clock=clock, lineage_reads_to_finish=3)
    sink = make_sink(client, clock)
    events = [run_event("START"), run_event("COMPLETE")]

    assert sink.emit(events) == []
    assert sink.emit(events) == []

    assert len(client.lineage_events) == 2 and client.call_counts["PostLineageEvent"] == 4
    tokens = {params["clientToken"] for op, params in client.calls if op == "PostLineageEvent"}
    assert len(tokens) == 2 and all(token.startswith("0190a1b2-0000-7000-8000-000000000001-") for token in tokens)
    assert all(event.reads >= 3 for event in client.lineage_events.values())


def test_a_failed_event_is_one_problem_and_the_others_still_succeed(clock: Clock) -> None:
    client = FakeDataZoneClient(clock=clock)
    broken = {key: value for key, value in run_event("FAIL").items() if key != "job"}

    problems = make_sink(client, clock).emit([run_event("START"), broken, run_event("COMPLETE")])

    assert len(problems) == 1
    assert "failed to process lineage event" in problems[0] and "FAIL of job ?/? run 0190a1b2" in problems[0]


def test_an_event_not_processed_in_time_is_reported_after_the_timeout(clock: Clock) -> None:
    client = FakeDataZoneClient(clock=clock, lineage_reads_to_finish=1000)

    problems = make_sink(client, clock, timeout_seconds=5, poll_seconds=1).emit([run_event()])

    assert len(problems) == 1 and "after 5 s: still PROCESSING" in problems[0]
    assert 5 <= clock.now < 7 and client.call_counts["GetLineageEvent"] <= 7


def test_refused_events_are_problems_not_exceptions(clock: Clock) -> None:
    client = FakeDataZoneClient(clock=clock)
    elsewhere = DataZoneLineageSink(client, domain_id="dzd_otherdomain", clock=clock, sleep=clock.sleep)
    huge = run_event(run={"runId": "r-1", "facets": {"big": {"text": "x" * 300_000}}})

    refused = elsewhere.emit([run_event()])
    too_big = make_sink(client, clock).emit([huge])

    assert len(refused) == 1 and "AccessDeniedException" in refused[0]
    assert len(too_big) == 1 and "at most 300000" in too_big[0]
    assert client.lineage_events == {}
