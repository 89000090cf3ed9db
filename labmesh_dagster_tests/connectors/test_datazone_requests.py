"""The exact requests the DataZone catalog sends, pinned with botocore's Stubber on a real boto3 client.

The fake checks that requests are valid; these tests pin what they are: the
order and parameters of bootstrap on an empty domain (find, then create each
form type, the asset type, the glossary and its terms), a bootstrap that finds
everything and creates nothing, the one Search, CreateAsset and
CreateListingChangeSet of a new experiment (with its form content as
canonical JSON and the digest of what labmesh wrote, and the common form's
``sourceIdentifier``), an unchanged upsert that only reads (GetAsset by
external identifier, GetListing), and the SearchListings request a faceted
keyword query becomes (a lexical, quoted query), with the same Search of the
restricted project's inventory. The Stubber answers before anything
is sent, and fails on any call it was not told to expect.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from labmesh_dagster.connectors.catalog.base import SearchQuery
from labmesh_dagster.connectors.catalog.datazone import DataZoneCatalog
from labmesh_dagster.connectors.catalog.datazone_forms import (
    DATASET_FORM_SMITHY,
    EXPERIMENT_FORM_SMITHY,
    form_type_description,
)
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.core.experiment import ExperimentRecord, Sample

DOMAIN = "dzd_labmesh01"
PROJECT = "prj0labmesh01"
EXPERIMENT_FORM = "LabmeshExperimentForm"
DATASET_FORM = "LabmeshDatasetForm"
RECORD = ExperimentRecord(
    id="EXP-1",
    title="Liver RNA-seq",
    group="Genomics Core",
    platform="NovaSeq 6000",
    samples=(Sample("LIV-01"),),
    created="2024-03-01",
)
EXPERIMENT_CONTENT = {
    "created": "2024-03-01",
    "createdDay": 20240301,
    "experimentId": "EXP-1",
    "group": "Genomics Core",
    "groupTerms": "genom core",
    "platform": "NovaSeq 6000",
    "platformTerms": "novaseq 6000",
    "sampleIds": ["LIV-01"],
    "searchTerms": "exp 1 liver rna seq liv 01 genom core novaseq 6000",
    "title": "Liver RNA-seq",
}


def canonical(content: dict[str, Any]) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "datazone",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def stub(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def make_catalog(client: Any, tmp_path: Path, **options: Any) -> DataZoneCatalog:
    return DataZoneCatalog(
        client,
        domain_id=DOMAIN,
        project_id=PROJECT,
        registry=SqliteCatalog(tmp_path / "registry.db"),
        clock=lambda: 0.0,
        sleep=lambda seconds: None,
        **options,
    )


def not_found(stub: Stubber, operation: str, params: dict[str, Any]) -> None:
    stub.add_client_error(
        operation,
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
        expected_params={"domainIdentifier": DOMAIN, **params},
    )


def expect(stub: Stubber, operation: str, params: dict[str, Any], response: dict[str, Any]) -> None:
    stub.add_response(operation, response, {"domainIdentifier": DOMAIN, **params})


def forms_output(experiment_revision: str, dataset_revision: str) -> dict[str, Any]:
    """The asset type's slots as DataZone answers them: labmesh's two and the common form DataZone adds."""
    return {
        EXPERIMENT_FORM: {"typeName": EXPERIMENT_FORM, "typeRevision": experiment_revision, "required": True},
        DATASET_FORM: {"typeName": DATASET_FORM, "typeRevision": dataset_revision, "required": False},
        "AssetCommonDetailsForm": {
            "typeName": "amazon.datazone.AssetCommonDetailsFormType",
            "typeRevision": "6",
            "required": False,
        },
    }


GLOSSARY_SEARCH = {
    "searchScope": "GLOSSARY",
    "owningProjectIdentifier": PROJECT,
    "searchText": '"labmesh"',
    "maxResults": 50,
}
LOCATIONS = {"landing": "s3://labmesh-landing/EXP-1/", "raw": "s3://labmesh-raw/EXP-1/"}


def test_bootstrap_on_an_empty_domain_finds_then_creates_each_part_in_order(
    client: Any, stub: Stubber, tmp_path: Path
) -> None:
    catalog = make_catalog(client, tmp_path, glossary_terms={"platform": ["NovaSeq 6000"]})
    for name, smithy in [(EXPERIMENT_FORM, EXPERIMENT_FORM_SMITHY), (DATASET_FORM, DATASET_FORM_SMITHY)]:
        description = form_type_description(name)
        assert "(labmesh model " in description
        not_found(stub, "get_form_type", {"formTypeIdentifier": name})
        expect(
            stub,
            "create_form_type",
            {
                "name": name,
                "model": {"smithy": smithy},
                "owningProjectIdentifier": PROJECT,
                "status": "ENABLED",
                "description": description,
            },
            {"domainId": DOMAIN, "name": name, "revision": "1"},
        )
    not_found(stub, "get_asset_type", {"identifier": "LabmeshAsset"})
    expect(
        stub,
        "create_asset_type",
        {
            "name": "LabmeshAsset",
            "description": "labmesh: an experiment, or one of its datasets (raw, processed, final)",
            "formsInput": {
                EXPERIMENT_FORM: {"typeIdentifier": EXPERIMENT_FORM, "typeRevision": "1", "required": True},
                DATASET_FORM: {"typeIdentifier": DATASET_FORM, "typeRevision": "1", "required": False},
            },
            "owningProjectIdentifier": PROJECT,
        },
        {"domainId": DOMAIN, "name": "LabmeshAsset", "revision": "1", "formsOutput": forms_output("1", "1")},
    )
    expect(stub, "search", GLOSSARY_SEARCH, {"items": []})
    expect(
        stub,
        "create_glossary",
        {
            "name": "labmesh",
            "owningProjectIdentifier": PROJECT,
            "description": "labmesh: the words experiments and datasets are described and found by",
            "status": "ENABLED",
            "clientToken": ANY,
        },
        {"domainId": DOMAIN, "id": "glossary01", "name": "labmesh", "owningProjectId": PROJECT},
    )
    for name, description, relations, term_id in [
        ("platform", "labmesh facet: platform", {}, "term0platform"),
        ("NovaSeq 6000", "a platform (labmesh)", {"termRelations": {"isA": ["term0platform"]}}, "term0novaseq"),
    ]:
        expect(
            stub,
            "create_glossary_term",
            {
                "glossaryIdentifier": "glossary01",
                "name": name,
                "shortDescription": description,
                "status": "ENABLED",
                "clientToken": ANY,
                **relations,
            },
            {"id": term_id, "domainId": DOMAIN, "glossaryId": "glossary01", "name": name, "status": "ENABLED"},
        )

    report = catalog.bootstrap()

    assert report.terms == {"platform": {"NovaSeq 6000": "term0novaseq"}}
    assert len(report.created) == 6


def found_everything(stub: Stubber) -> None:
    """Bootstrap answers for a domain that already has labmesh's types and glossary (no terms configured)."""
    for name, revision in [(EXPERIMENT_FORM, "3"), (DATASET_FORM, "1")]:
        # DataZone renders the model its own way; the description says which model it is.
        answer = {"domainId": DOMAIN, "name": name, "revision": revision, "model": {"smithy": "structure X {}"}}
        answer |= {"status": "ENABLED", "description": form_type_description(name)}
        expect(stub, "get_form_type", {"formTypeIdentifier": name}, answer)
    expect(
        stub,
        "get_asset_type",
        {"identifier": "LabmeshAsset"},
        {
            "domainId": DOMAIN,
            "name": "LabmeshAsset",
            "revision": "2",
            "formsOutput": forms_output("3", "1"),
            "owningProjectId": PROJECT,
        },
    )
    glossary = {
        "domainId": DOMAIN,
        "id": "glossary01",
        "name": "labmesh",
        "owningProjectId": PROJECT,
        "status": "ENABLED",
    }
    expect(stub, "search", GLOSSARY_SEARCH, {"items": [{"glossaryItem": glossary}]})


def by_external_id(external: str) -> dict[str, str]:
    return {"identifier": f"externalIdentifer/{external}"}


def nothing_published_yet(stub: Stubber) -> None:
    for external in ("labmesh:EXP-1", "labmesh:EXP-1:raw", "labmesh:EXP-1:processed", "labmesh:EXP-1:final"):
        not_found(stub, "get_asset", by_external_id(external))


class Sent:
    """The parameters of every call of one operation, as the client was given them."""

    def __init__(self, client: Any, operation: str) -> None:
        self.params: list[dict[str, Any]] = []
        client.meta.events.register(f"provide-client-params.datazone.{operation}", self.record)

    def record(self, params: dict[str, Any], **_: Any) -> None:
        self.params.append(json.loads(json.dumps(params)))


def new_experiment_is_created(stub: Stubber) -> None:
    nothing_published_yet(stub)
    expect(
        stub,
        "create_asset",
        {
            "name": "EXP-1: Liver RNA-seq",
            "description": "",
            "externalIdentifier": "labmesh:EXP-1",
            "typeIdentifier": "LabmeshAsset",
            "typeRevision": "2",
            "owningProjectIdentifier": PROJECT,
            "formsInput": ANY,
            "clientToken": ANY,
        },
        {
            "id": "asset0exp1",
            "name": "EXP-1: Liver RNA-seq",
            "typeIdentifier": "LabmeshAsset",
            "typeRevision": "2",
            "revision": "1",
            "owningProjectId": PROJECT,
            "domainId": DOMAIN,
            "formsOutput": [],
        },
    )
    expect(
        stub,
        "create_listing_change_set",
        {"entityIdentifier": "asset0exp1", "entityType": "ASSET", "entityRevision": "1", "action": "PUBLISH"},
        {"listingId": "listing01", "listingRevision": "1", "status": "ACTIVE"},
    )


def test_a_new_experiment_is_looked_up_then_created_with_its_forms_and_published(
    client: Any, stub: Stubber, tmp_path: Path
) -> None:
    catalog = make_catalog(client, tmp_path)
    sent = Sent(client, "CreateAsset")
    found_everything(stub)
    new_experiment_is_created(stub)

    entry = catalog.upsert_experiment(RECORD, LOCATIONS)

    assert (entry.entry_id, entry.revision, entry.changed) == ("experiment:EXP-1", 1, True)
    experiment, common = sent.params[0]["formsInput"]
    assert {key: experiment[key] for key in ("formName", "typeIdentifier", "typeRevision")} == {
        "formName": EXPERIMENT_FORM,
        "typeIdentifier": EXPERIMENT_FORM,
        "typeRevision": "3",
    }
    content = json.loads(experiment["content"])
    digest = content.pop("labmeshDigest")
    assert content == EXPERIMENT_CONTENT and len(digest) == 64
    assert experiment["content"] == canonical({**EXPERIMENT_CONTENT, "labmeshDigest": digest})
    # The experiment's data starts in its landing folder, the dataset registration's lineage outputs.
    assert common == {
        "formName": "AssetCommonDetailsForm",
        "content": '{"sourceIdentifier":"s3://labmesh-landing/EXP-1"}',
    }


def test_an_unchanged_experiment_is_only_read(client: Any, stub: Stubber, tmp_path: Path) -> None:
    first = make_catalog(client, tmp_path)
    sent = Sent(client, "CreateAsset")
    found_everything(stub)
    new_experiment_is_created(stub)
    first.upsert_experiment(RECORD, LOCATIONS)
    written = sent.params[0]["formsInput"]
    # DataZone hands the forms back its own way: other spacing, its own forms beside labmesh's.
    shown = [{**form, "content": json.dumps(json.loads(form["content"]), indent=1)} for form in written]
    forms = [
        {**form, "typeName": form.get("typeIdentifier", "amazon.datazone.AssetCommonDetailsFormType")} for form in shown
    ]
    forms = [{key: value for key, value in form.items() if key != "typeIdentifier"} for form in forms]
    forms.append({"formName": "README", "typeName": "amazon.datazone.ReadmeFormType", "content": '{"text": "hi"}'})
    asset = {
        "id": "asset0exp1",
        "name": "EXP-1: Liver RNA-seq",
        "typeIdentifier": "LabmeshAsset",
        "typeRevision": "2",
        "revision": "1",
        "externalIdentifier": "labmesh:EXP-1",
        "owningProjectId": PROJECT,
        "domainId": DOMAIN,
        "formsOutput": forms,
        "listing": {"listingId": "listing01", "listingStatus": "ACTIVE"},
    }
    listed = {name: json.loads(form["content"]) for name, form in ((f["formName"], f) for f in forms)}

    second = make_catalog(client, tmp_path)
    found_everything(stub)
    expect(stub, "get_asset", by_external_id("labmesh:EXP-1"), asset)
    for external in ("labmesh:EXP-1:raw", "labmesh:EXP-1:processed", "labmesh:EXP-1:final"):
        not_found(stub, "get_asset", by_external_id(external))
    expect(
        stub,
        "get_listing",
        {"identifier": "listing01"},
        {
            "domainId": DOMAIN,
            "id": "listing01",
            "listingRevision": "1",
            "item": {"assetListing": {"assetId": "asset0exp1", "assetRevision": "1", "forms": json.dumps(listed)}},
        },
    )

    entry = second.upsert_experiment(RECORD, LOCATIONS)

    assert entry.changed is False and len(sent.params) == 1


QUERY_REQUEST = {
    "additionalAttributes": ["FORMS"],
    "searchText": '"liver sampl"',
    "searchIn": [
        {"attribute": "LabmeshExperimentForm.searchTerms"},
        {"attribute": "LabmeshDatasetForm.searchTerms"},
    ],
    "filters": {
        "and": [
            {"filter": {"attribute": "LabmeshExperimentForm.experimentId", "value": "EXP-1", "operator": "EQ"}},
            {
                "or": [
                    {
                        "filter": {
                            "attribute": "LabmeshExperimentForm.sampleIds",
                            "value": "LIV-01",
                            "operator": "TEXT_SEARCH",
                        }
                    },
                    {
                        "filter": {
                            "attribute": "LabmeshDatasetForm.sampleIds",
                            "value": "LIV-01",
                            "operator": "TEXT_SEARCH",
                        }
                    },
                ]
            },
            {
                "filter": {
                    "attribute": "LabmeshDatasetForm.fileNameTerms",
                    "value": "s1 l001",
                    "operator": "TEXT_SEARCH",
                }
            },
            {
                "or": [
                    {
                        "filter": {
                            "attribute": "LabmeshExperimentForm.createdDay",
                            "intValue": 20240301,
                            "operator": "GE",
                        }
                    },
                    {
                        "filter": {
                            "attribute": "LabmeshDatasetForm.createdToDay",
                            "intValue": 20240301,
                            "operator": "GE",
                        }
                    },
                ]
            },
        ]
    },
    "maxResults": 50,
}
"""A faceted keyword query as DataZone is asked it: a lexical query in the forms' terms, and filters."""


def test_a_faceted_keyword_query_is_one_search_listings_and_one_restricted_inventory_request(
    client: Any, stub: Stubber, tmp_path: Path
) -> None:
    """The listings and the restricted project's inventory (whose experiments are never listed) get the same query."""
    catalog = make_catalog(client, tmp_path)
    found_everything(stub)
    expect(stub, "search_listings", QUERY_REQUEST, {"items": []})
    expect(stub, "search", {"searchScope": "ASSET", "owningProjectIdentifier": PROJECT, **QUERY_REQUEST}, {"items": []})

    hits = catalog.search(
        SearchQuery(text="Liver samples", experiment="EXP-1", sample="LIV-01", file_name="S1_L001", since="2024-03-01")
    )

    assert hits == []
