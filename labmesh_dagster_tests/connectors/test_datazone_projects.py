"""An experiment's DataZone assets belong to its group's project; restricted experiments stay out of the catalog.

Pinned here, against the model-bound DataZone fake with a real SqliteCatalog as
registry: the operator's map from groups to projects is read as the access
rules read group names, and refuses what DataZone would; each experiment's
assets are created in its group's project and published, while an experiment
with no group, or of a group mapped to no project, is owned by the restricted
project and never listed, yet found by those labmesh lets see it and by no one
else; a group changed in the ELN moves every asset of the experiment (deleted
from the old project, created in the new, a steward's form kept), once; losing
its group takes an experiment out of the catalog, also when the restricted
project is the shared one; a crash between the delete and the create heals on
the next run; an asset DataZone will not delete (it has subscriptions, or is in
a data product) stops the move with what to do, and moves once that is done; a project labmesh may
not write to is named in the error; and the map set in the environment reaches
the catalog both through the ports and through the Dagster resource.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from labmesh_dagster.connectors.catalog.base import CatalogUnavailable, SearchQuery
from labmesh_dagster.connectors.catalog.datazone import AssetMoveRefused, DataZoneCatalog
from labmesh_dagster.connectors.catalog.datazone_projects import GroupProjects, Placement
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.experiment import ExperimentRecord, Sample
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.definitions import build_definitions
from labmesh_dagster.ports import Ports
from labmesh_dagster.settings import AwsConnection
from labmesh_dagster_tests.conftest import make_settings
from labmesh_dagster_tests.fake_datazone import FakeDataZoneClient
from labmesh_dagster_tests.service_model import service_error

LABMESH, GENOMICS, PROTEOMICS, RESTRICTED = "labmeshprj01", "genomicsprj01", "proteomicsprj1", "restrictedprj1"
MAPPING = {"Genomics Core": GENOMICS, "proteomics lab": PROTEOMICS}

LIVER = ExperimentRecord(
    id="EXP-1",
    title="Liver RNA-seq",
    description="Mouse liver, fasting versus fed",
    owner="ada",
    group="Genomics Core",
    samples=(Sample("LIV-01"),),
    created="2024-03-01",
)
KIDNEY = ExperimentRecord(id="EXP-2", title="Kidney proteomics", owner="kim", group="Proteomics Lab")
NOTEBOOK = ExperimentRecord(id="EXP-3", title="Private notebook pilot", owner="grace")
IMAGING = ExperimentRecord(id="EXP-4", title="Imaging pilot", owner="iris", group="Imaging")

ADMIN = Viewer(name="root", admin=True)
ADA = Viewer(name="ada", groups=frozenset({"genomics core"}))
BEN = Viewer(name="ben", groups=frozenset({"Genomics Core"}))
GRACE = Viewer(name="grace")
KIM = Viewer(name="kim", groups=frozenset({"Proteomics Lab"}))


class Clock:
    """Time that passes only when someone sleeps: pacing costs the test nothing."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def raw_manifest(experiment_id: str) -> Manifest:
    entry = ManifestEntry(
        key=f"raw/{experiment_id}/S1_R1.fastq.gz",
        size=100,
        sha256="0" * 64,
        format="fastq",
        created="2024-03-02T10:00:00+00:00",
        sample_ids=("LIV-01",),
    )
    return Manifest.build(experiment_id, "raw", [entry])


@pytest.fixture
def client() -> FakeDataZoneClient:
    return FakeDataZoneClient(project_ids=[LABMESH, GENOMICS, PROTEOMICS, RESTRICTED])


def make_catalog(client: Any, tmp_path: Path, **options: Any) -> DataZoneCatalog:
    clock = Clock()
    settings: dict[str, Any] = {"group_projects": MAPPING, "restricted_project_id": RESTRICTED, **options}
    return DataZoneCatalog(
        client,
        domain_id=client.domain_id,
        project_id=LABMESH,
        registry=SqliteCatalog(tmp_path / "registry.db"),
        clock=clock,
        sleep=clock.sleep,
        **settings,
    )


@pytest.fixture
def catalog(client: FakeDataZoneClient, tmp_path: Path) -> DataZoneCatalog:
    return make_catalog(client, tmp_path)


def register(catalog: DataZoneCatalog, record: ExperimentRecord, *, raw: bool = True) -> None:
    catalog.upsert_experiment(record, {"landing": f"s3://labmesh-landing/{record.id}/"})
    if raw:
        catalog.upsert_dataset(raw_manifest(record.id), f"s3://labmesh-raw/{record.id}/")


def owner(catalog: DataZoneCatalog, experiment_id: str, zone: Zone | None = None) -> str | None:
    asset = catalog.published_asset(experiment_id, zone)
    return None if asset is None else str(asset["owningProjectId"])


def listed(client: FakeDataZoneClient) -> set[tuple[str, str | None]]:
    """(experiment, dataset) of every listing the domain's catalog shows, as anyone in the domain finds them."""
    items = client.search_listings(domainIdentifier=client.domain_id, additionalAttributes=["FORMS"])["items"]
    keys = set()
    for item in items:
        forms = json.loads(item["assetListing"]["additionalAttributes"]["forms"])
        keys.add((forms["LabmeshExperimentForm"]["experimentId"], forms.get("LabmeshDatasetForm", {}).get("dataset")))
    return keys


def writes(client: FakeDataZoneClient) -> dict[str, int]:
    operations = ("CreateAsset", "CreateAssetRevision", "CreateListingChangeSet", "DeleteAsset")
    return {operation: client.call_counts[operation] for operation in operations}


def found(catalog: DataZoneCatalog, text: str, viewer: Viewer) -> set[str]:
    return {hit.experiment_id for hit in catalog.search(SearchQuery(text=text, viewer=viewer))}


def test_the_operators_map_reads_group_names_as_access_does_and_refuses_what_datazone_would() -> None:
    projects = GroupProjects.build({" genomics  CORE ": GENOMICS, "*": LABMESH}, restricted_project_id=RESTRICTED)

    assert projects.placement("Genomics Core") == Placement(GENOMICS, listed=True)
    assert projects.placement("Imaging") == Placement(LABMESH, listed=True)
    assert projects.placement(None) == projects.placement("  ") == Placement(RESTRICTED, listed=False)
    assert GroupProjects.build({}, restricted_project_id=RESTRICTED).placement("Imaging").listed is False
    with pytest.raises(ValueError, match="not a DataZone project id"):
        GroupProjects.build({"imaging": "prj/1"}, restricted_project_id=RESTRICTED)
    with pytest.raises(ValueError, match="two DataZone projects"):
        GroupProjects.build({"Imaging": GENOMICS, "imaging": PROTEOMICS}, restricted_project_id=RESTRICTED)


def test_each_experiment_is_owned_by_its_groups_project_and_restricted_ones_are_never_listed(
    catalog: DataZoneCatalog, client: FakeDataZoneClient
) -> None:
    for record in (LIVER, KIDNEY, NOTEBOOK, IMAGING):
        register(catalog, record)

    assert [owner(catalog, "EXP-1"), owner(catalog, "EXP-1", Zone.RAW)] == [GENOMICS, GENOMICS]
    assert owner(catalog, "EXP-2") == PROTEOMICS
    assert [owner(catalog, "EXP-3"), owner(catalog, "EXP-3", Zone.RAW)] == [RESTRICTED, RESTRICTED]
    assert owner(catalog, "EXP-4") == RESTRICTED  # "Imaging" is mapped to no project
    assert listed(client) == {("EXP-1", None), ("EXP-1", "raw"), ("EXP-2", None), ("EXP-2", "raw")}
    assert client.call_counts["DeleteAsset"] == 0


def test_a_restricted_experiment_is_found_by_those_labmesh_lets_see_it_and_by_no_one_else(
    catalog: DataZoneCatalog,
) -> None:
    for record in (LIVER, NOTEBOOK):
        register(catalog, record)

    assert found(catalog, "pilot", ADMIN) == found(catalog, "pilot", GRACE) == {"EXP-3"}
    assert found(catalog, "pilot", ADA) == set()
    assert found(catalog, "liver", ADA) == {"EXP-1"} and found(catalog, "liver", GRACE) == set()


def test_a_group_changed_in_the_eln_moves_every_asset_of_the_experiment_once_keeping_a_stewards_form(
    catalog: DataZoneCatalog, client: FakeDataZoneClient
) -> None:
    register(catalog, LIVER)
    raw = catalog.published_asset("EXP-1", Zone.RAW)
    assert raw is not None
    client.create_form_type(
        domainIdentifier=client.domain_id,
        name="StewardNotes",
        model={"smithy": "structure StewardNotes { note: String }"},
        owningProjectIdentifier=LABMESH,
    )
    kept = [
        {key: form[key] for key in ("formName", "content")} | {"typeIdentifier": form["typeName"]}
        for form in raw["formsOutput"]
    ]
    note = {"formName": "Notes", "typeIdentifier": "StewardNotes", "typeRevision": "1", "content": '{"note": "QC ok"}'}
    client.create_asset_revision(
        domainIdentifier=client.domain_id, identifier=raw["id"], name=raw["name"], formsInput=[*kept, note]
    )

    catalog.upsert_experiment(replace(LIVER, group="Proteomics Lab"), {"landing": "s3://labmesh-landing/EXP-1/"})
    moved = writes(client)
    catalog.upsert_experiment(replace(LIVER, group="Proteomics Lab"), {"landing": "s3://labmesh-landing/EXP-1/"})

    assert [owner(catalog, "EXP-1"), owner(catalog, "EXP-1", Zone.RAW)] == [PROTEOMICS, PROTEOMICS]
    assert raw["id"] not in client.assets and len(client.assets) == 2
    assert listed(client) == {("EXP-1", None), ("EXP-1", "raw")}
    now = catalog.published_asset("EXP-1", Zone.RAW)
    assert now is not None
    forms = {form["formName"]: json.loads(form["content"]) for form in now["formsOutput"]}
    assert forms["Notes"] == {"note": "QC ok"}
    assert forms["AssetCommonDetailsForm"] == {"sourceIdentifier": "s3://labmesh-raw/EXP-1"}
    assert forms["LabmeshExperimentForm"]["group"] == "Proteomics Lab"
    assert moved["DeleteAsset"] == 2 and writes(client) == moved
    assert found(catalog, "liver", KIM) == {"EXP-1"} and found(catalog, "liver", BEN) == set()


def test_an_experiment_moved_away_and_back_is_created_again_not_answered_from_its_first_creation(
    catalog: DataZoneCatalog, client: FakeDataZoneClient
) -> None:
    register(catalog, LIVER, raw=False)
    first = catalog.published_asset("EXP-1")

    for group in ("Proteomics Lab", "Genomics Core"):
        catalog.upsert_experiment(replace(LIVER, group=group), {"landing": "s3://labmesh-landing/EXP-1/"})

    back = catalog.published_asset("EXP-1")
    assert first is not None and back is not None
    assert back["owningProjectId"] == GENOMICS and back["id"] != first["id"] and back["id"] in client.assets
    assert listed(client) == {("EXP-1", None)}


def test_losing_its_group_takes_an_experiment_out_of_the_catalog_into_the_restricted_project(
    catalog: DataZoneCatalog, client: FakeDataZoneClient
) -> None:
    register(catalog, LIVER)

    catalog.upsert_experiment(replace(LIVER, group=None), {"landing": "s3://labmesh-landing/EXP-1/"})

    assert [owner(catalog, "EXP-1"), owner(catalog, "EXP-1", Zone.RAW)] == [RESTRICTED, RESTRICTED]
    assert listed(client) == set()
    assert found(catalog, "liver", ADMIN) == found(catalog, "liver", ADA) == {"EXP-1"}  # ada owns it
    assert found(catalog, "liver", KIM) == set()


def test_without_a_map_every_group_shares_labmeshs_project_and_a_group_lost_there_is_unpublished(
    client: FakeDataZoneClient, tmp_path: Path
) -> None:
    catalog = make_catalog(client, tmp_path, group_projects=None, restricted_project_id=None)
    register(catalog, LIVER)
    register(catalog, IMAGING, raw=False)
    assert {owner(catalog, "EXP-1"), owner(catalog, "EXP-4")} == {LABMESH}
    assert listed(client) == {("EXP-1", None), ("EXP-1", "raw"), ("EXP-4", None)}

    catalog.upsert_experiment(replace(LIVER, group=None), {"landing": "s3://labmesh-landing/EXP-1/"})
    catalog.upsert_experiment(replace(LIVER, group=None), {"landing": "s3://labmesh-landing/EXP-1/"})

    assert owner(catalog, "EXP-1") == owner(catalog, "EXP-1", Zone.RAW) == LABMESH
    assert listed(client) == {("EXP-4", None)}
    assert client.call_counts["DeleteAsset"] == 0
    assert client.call_counts["CreateListingChangeSet"] == 3 + 2  # three published, then two unpublished once
    assert found(catalog, "liver", ADMIN) == {"EXP-1"} and found(catalog, "liver", Viewer(name="iris")) == set()


class CrashingCreate:
    """A DataZone client whose first CreateAsset is lost with the connection, after everything before it was done."""

    def __init__(self, client: FakeDataZoneClient) -> None:
        self.client = client
        self.crashes = 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def create_asset(self, **params: Any) -> dict[str, Any]:
        if self.crashes:
            self.crashes -= 1
            raise EndpointConnectionError(endpoint_url="https://datazone.eu-west-1.amazonaws.com")
        return self.client.create_asset(**params)


def test_a_crash_between_deleting_and_creating_a_moved_asset_is_healed_by_the_next_run(
    client: FakeDataZoneClient, tmp_path: Path
) -> None:
    register(make_catalog(client, tmp_path), LIVER, raw=False)
    crashing = make_catalog(CrashingCreate(client), tmp_path)
    kidney_group = replace(LIVER, group="Proteomics Lab")

    with pytest.raises(CatalogUnavailable, match="create asset labmesh:EXP-1"):
        crashing.upsert_experiment(kidney_group, {"landing": "s3://labmesh-landing/EXP-1/"})
    assert crashing.published_asset("EXP-1") is None

    crashing.upsert_experiment(kidney_group, {"landing": "s3://labmesh-landing/EXP-1/"})

    assert owner(crashing, "EXP-1") == PROTEOMICS and listed(client) == {("EXP-1", None)}


def test_an_asset_with_subscriptions_stops_its_move_with_what_to_do_and_moves_once_they_are_revoked(
    catalog: DataZoneCatalog, client: FakeDataZoneClient
) -> None:
    register(catalog, LIVER, raw=False)
    asset = catalog.published_asset("EXP-1")
    assert asset is not None
    listing = client.add_subscription(asset["id"])

    with pytest.raises(AssetMoveRefused) as refused:
        catalog.upsert_experiment(replace(LIVER, group="Proteomics Lab"), {"landing": "s3://labmesh-landing/EXP-1/"})

    assert all(words in str(refused.value) for words in ("labmesh:EXP-1", GENOMICS, PROTEOMICS, "revoke"))
    assert owner(catalog, "EXP-1") == GENOMICS and listed(client) == {("EXP-1", None)}
    assert catalog.get_experiment("EXP-1") == replace(LIVER, group="Proteomics Lab")  # labmesh's record is current

    client.subscribed_listings.discard(listing)
    catalog.upsert_experiment(replace(LIVER, group="Proteomics Lab"), {"landing": "s3://labmesh-landing/EXP-1/"})

    assert owner(catalog, "EXP-1") == PROTEOMICS


def test_a_mapped_project_labmesh_may_not_write_to_is_named_in_the_error(tmp_path: Path) -> None:
    client = FakeDataZoneClient(
        project_ids=[LABMESH, GENOMICS, PROTEOMICS, RESTRICTED], member_of=[LABMESH, RESTRICTED]
    )
    catalog = make_catalog(client, tmp_path)

    with pytest.raises(CatalogUnavailable, match=f"create asset labmesh:EXP-1.*AccessDenied.*project {GENOMICS}"):
        register(catalog, LIVER, raw=False)

    register(catalog, NOTEBOOK, raw=False)
    assert owner(catalog, "EXP-3") == RESTRICTED


def test_the_map_in_the_settings_reaches_the_catalog_through_the_ports_and_the_dagster_resource(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "home",
        LABMESH_PROFILE="aws",
        LABMESH_DATAZONE_DOMAIN_ID="dzd_abc123",
        LABMESH_DATAZONE_PROJECT_ID=LABMESH,
        LABMESH_DATAZONE_GROUP_PROJECTS=f"Genomics Core={GENOMICS},proteomics lab={PROTEOMICS}",
        LABMESH_DATAZONE_RESTRICTED_PROJECT_ID=RESTRICTED,
    )

    def clients(service: str, connection: AwsConnection) -> Any:
        return FakeDataZoneClient(domain_id="dzd_abc123", project_ids=[LABMESH, GENOMICS, PROTEOMICS, RESTRICTED])

    resources = build_definitions(settings, clients=clients).resources or {}
    for catalog in (Ports(settings, clients).catalog(), resources["catalog"].get_catalog()):
        assert isinstance(catalog, DataZoneCatalog)
        assert catalog.projects == GroupProjects.build(MAPPING, restricted_project_id=RESTRICTED)


class LinkedToAProduct:
    """A DataZone client whose DeleteAsset refuses as for an asset in a data product, which the fake does not model."""

    def __init__(self, client: FakeDataZoneClient) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def delete_asset(self, **params: Any) -> dict[str, Any]:
        raise service_error("datazone", "DeleteAsset", "ValidationException", "the asset is in a data product")


def test_an_asset_datazone_keeps_for_another_reason_stops_the_move_the_same_way(
    client: FakeDataZoneClient, tmp_path: Path
) -> None:
    register(make_catalog(client, tmp_path), LIVER, raw=False)
    catalog = make_catalog(LinkedToAProduct(client), tmp_path)

    with pytest.raises(AssetMoveRefused, match="data product"):
        catalog.upsert_experiment(replace(LIVER, group="Proteomics Lab"), {"landing": "s3://labmesh-landing/EXP-1/"})

    assert owner(catalog, "EXP-1") == GENOMICS and listed(client) == {("EXP-1", None)}
