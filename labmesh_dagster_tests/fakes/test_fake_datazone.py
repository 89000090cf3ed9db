"""The DataZone fake refuses what DataZone refuses and keeps a catalog that behaves like one.

Pinned here: requests are refused as boto3 (missing or unknown members) or the
service (too long, bad enum, bad pattern, malformed Smithy, form content
that breaks its form type) would refuse them, and valid Smithy the fake does
not model is a `ModelViolation`, not a made-up answer; form types and asset
types get a new revision only when they change; an asset revision keeps the
asset's id and never makes a second asset; ``externalIdentifier`` is unique;
client tokens make retries idempotent and reuse for another request a
conflict; Search and SearchListings match text in searchable members only,
filter and sort only on members the form type allows, and page; listing
search finds the published revision only; deleting an asset removes its
listing and frees its external identifier, unless it has subscriptions; an
asset is written and seen in inventory by its project's members only; lineage
events move from REQUESTED
to SUCCESS, or FAILED when they are not run events; throttling injection and
call counters work; and every answer was checked against the model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from labmesh_dagster_tests.fake_datazone import FakeDataZoneClient
from labmesh_dagster_tests.service_model import ModelViolation, matches

EXPERIMENT_FORM = """
$version: "2"
namespace labmesh

/// The experiment a dataset belongs to.
structure ExperimentForm {
    @required
    @amazon.datazone#searchable(modes: ["TECHNICAL"])
    experimentId: String

    @amazon.datazone#searchable(modes: ["LEXICAL"])
    platform: String

    @amazon.datazone#searchable
    title: String

    @amazon.datazone#sortable
    fileCount: Integer

    @length(max: 20)
    operator: String

    samples: SampleIds
}

list SampleIds {
    member: String
}
"""


def form_model(name: str = "ExperimentForm", body: str = "@required\n experimentId: String") -> str:
    return f"structure {name} {{ {body} }}"


def code_of(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


class Catalog:
    """A fake domain with the labmesh form and asset types, and shortcuts for the calls the tests repeat."""

    def __init__(self, client: FakeDataZoneClient | None = None) -> None:
        self.client = client or FakeDataZoneClient()
        self.domain = self.client.domain_id
        self.project = self.client.project_id
        self.client.create_form_type(
            domainIdentifier=self.domain,
            name="ExperimentForm",
            model={"smithy": EXPERIMENT_FORM},
            owningProjectIdentifier=self.project,
        )
        self.client.create_asset_type(
            domainIdentifier=self.domain,
            name="LabDataset",
            formsInput={"ExperimentForm": {"typeIdentifier": "ExperimentForm", "typeRevision": "1", "required": True}},
            owningProjectIdentifier=self.project,
        )

    def asset(self, name: str, content: Any, **extra: Any) -> dict[str, Any]:
        return self.client.create_asset(
            domainIdentifier=self.domain,
            name=name,
            typeIdentifier="LabDataset",
            owningProjectIdentifier=self.project,
            formsInput=[{"formName": "ExperimentForm", "content": json.dumps(content)}],
            **extra,
        )

    def revise(self, asset_id: str, name: str, content: Mapping[str, Any]) -> dict[str, Any]:
        return self.client.create_asset_revision(
            domainIdentifier=self.domain,
            identifier=asset_id,
            name=name,
            formsInput=[{"formName": "ExperimentForm", "content": json.dumps(content)}],
        )

    def publish(self, asset_id: str, revision: str | None = None, action: str = "PUBLISH") -> dict[str, Any]:
        params = {"entityRevision": revision} if revision else {}
        return self.client.create_listing_change_set(
            domainIdentifier=self.domain, entityIdentifier=asset_id, entityType="ASSET", action=action, **params
        )

    def search(self, **params: Any) -> list[dict[str, Any]]:
        items = self.client.search(domainIdentifier=self.domain, searchScope="ASSET", **params)["items"]
        return [item["assetItem"] for item in items]

    def listings(self, **params: Any) -> list[dict[str, Any]]:
        items = self.client.search_listings(domainIdentifier=self.domain, **params)["items"]
        return [item["assetListing"] for item in items]


@pytest.fixture
def catalog() -> Catalog:
    return Catalog()


def test_generated_ids_follow_the_models_patterns() -> None:
    client = FakeDataZoneClient()

    assert client.domain_id.startswith("dzd_") and matches("dzd[-_][a-zA-Z0-9_-]{1,36}", client.domain_id)
    assert matches("[a-zA-Z0-9_-]{1,36}", client.project_id)
    with pytest.raises(ValueError, match="DomainId"):
        FakeDataZoneClient(domain_id="domain-1")
    with pytest.raises(ValueError, match="ProjectId"):
        FakeDataZoneClient(project_ids=["project one"])


def test_requests_boto3_refuses_raise_param_validation_error_and_reach_no_one(catalog: Catalog) -> None:
    calls = dict(catalog.client.call_counts)

    with pytest.raises(ParamValidationError, match="owningProjectIdentifier"):
        catalog.client.create_glossary(domainIdentifier=catalog.domain, name="Lab")
    with pytest.raises(ParamValidationError, match="colour"):
        catalog.client.create_glossary(
            domainIdentifier=catalog.domain, name="Lab", owningProjectIdentifier=catalog.project, colour="red"
        )

    assert dict(catalog.client.call_counts) == calls


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"name": "x" * 257}, "257 characters, at most 256"),
        ({"searchScope": "FILES"}, "'FILES' is not one of"),
        ({"domainIdentifier": "domain-1"}, "does not match the pattern"),
        ({"maxResults": 51}, "above the maximum 50"),
    ],
)
def test_what_the_service_checks_is_refused_with_a_validation_exception(
    catalog: Catalog, params: dict[str, Any], problem: str
) -> None:
    operation = catalog.client.create_glossary if "name" in params else catalog.client.search
    base: dict[str, Any] = (
        {"domainIdentifier": catalog.domain, "name": "Lab", "owningProjectIdentifier": catalog.project}
        if "name" in params
        else {"domainIdentifier": catalog.domain, "searchScope": "ASSET"}
    )

    with pytest.raises(ClientError, match="ValidationException") as raised:
        operation(**{**base, **params})

    assert problem in str(raised.value)


def test_another_domain_is_answered_as_one_the_caller_cannot_access(catalog: Catalog) -> None:
    with pytest.raises(catalog.client.exceptions.AccessDeniedException):
        catalog.client.search(domainIdentifier="dzd_someoneelse", searchScope="ASSET")


@pytest.mark.parametrize(
    ("smithy", "problem"),
    [
        ("structure ExperimentForm { experimentId: String", "expected"),
        ("structure ExperimentForm { @indexed experimentId: String }", "unable to resolve trait"),
        ("structure ExperimentForm { samples: SampleIds }", "not defined"),
        ("structure ExperimentForm { experimentId: String experimentId: String }", "defined twice"),
        ("structure OtherForm { experimentId: String }", "structure named ExperimentForm"),
        ("structure ExperimentForm { @length(most: 3) note: String }", "@length takes min and max"),
        ('structure ExperimentForm { @range(min: "1") count: Integer }', "@range bounds must be numbers"),
        ('structure ExperimentForm { @pattern("[a-") code: String }', "invalid @pattern"),
        ("list ExperimentForm { item: String }", "exactly one member named member"),
        ('$version: "3"\nstructure ExperimentForm {}', "unsupported Smithy version"),
        ("structure ExperimentForm { note: String } %", "unexpected character"),
    ],
)
def test_malformed_smithy_is_refused_with_a_validation_exception(smithy: str, problem: str) -> None:
    client = FakeDataZoneClient()

    with pytest.raises(client.exceptions.ValidationException, match=problem):
        client.create_form_type(
            domainIdentifier=client.domain_id,
            name="ExperimentForm",
            model={"smithy": smithy},
            owningProjectIdentifier=client.project_id,
        )

    assert "ExperimentForm" not in client.form_types


@pytest.mark.parametrize(
    "smithy",
    [
        "structure ExperimentForm { tags: Tags }\nmap Tags { key: String, value: String }",
        "structure ExperimentForm { n: Integer = 1 }",
    ],
)
def test_valid_smithy_the_fake_does_not_model_is_refused_as_the_fakes_limit(smithy: str) -> None:
    client = FakeDataZoneClient()

    with pytest.raises(ModelViolation, match="does not model"):
        client.create_form_type(
            domainIdentifier=client.domain_id,
            name="ExperimentForm",
            model={"smithy": smithy},
            owningProjectIdentifier=client.project_id,
        )


def test_a_form_type_name_is_unique_in_the_domain_and_revisions_come_from_the_portal(catalog: Catalog) -> None:
    def create(smithy: str) -> str:
        return catalog.client.create_form_type(
            domainIdentifier=catalog.domain,
            name="ExperimentForm",
            model={"smithy": smithy},
            owningProjectIdentifier=catalog.project,
        )["revision"]

    # The fixture made revision 1; the API reference: "The name must be unique within the domain".
    with pytest.raises(ClientError) as raised:
        create(EXPERIMENT_FORM)
    assert code_of(raised) == "ConflictException"
    steward = catalog.client.revise_form_type(
        "ExperimentForm",
        "/// Edited in the portal.\n" + EXPERIMENT_FORM.replace("operator: String", "operatorName: String"),
    )

    latest = catalog.client.get_form_type(domainIdentifier=catalog.domain, formTypeIdentifier="ExperimentForm")
    first = catalog.client.get_form_type(
        domainIdentifier=catalog.domain, formTypeIdentifier="ExperimentForm", revision="1"
    )
    assert steward == latest["revision"] == "2" and "operatorName" in latest["model"]["smithy"]
    assert "Edited in the portal" not in latest["model"]["smithy"], "documentation comments do not come back"
    assert "operator: String" in first["model"]["smithy"] and "operatorName" not in first["model"]["smithy"]
    with pytest.raises(catalog.client.exceptions.ResourceNotFoundException):
        catalog.client.get_form_type(domainIdentifier=catalog.domain, formTypeIdentifier="SampleForm")


def test_an_asset_type_name_is_unique_and_every_custom_type_gets_the_common_details_slot(catalog: Catalog) -> None:
    asset_type = catalog.client.get_asset_type(domainIdentifier=catalog.domain, identifier="LabDataset")
    assert asset_type["formsOutput"]["AssetCommonDetailsForm"] == {
        "typeName": "amazon.datazone.AssetCommonDetailsFormType",
        "typeRevision": "6",
        "required": False,
    }
    common = catalog.client.get_form_type(
        domainIdentifier=catalog.domain, formTypeIdentifier="amazon.datazone.AssetCommonDetailsFormType"
    )
    assert "sourceIdentifier" in common["model"]["smithy"] and "owningProjectId" not in common

    with pytest.raises(ClientError) as raised:
        catalog.client.create_asset_type(
            domainIdentifier=catalog.domain,
            name="LabDataset",
            formsInput={"ExperimentForm": {"typeIdentifier": "ExperimentForm", "typeRevision": "1", "required": True}},
            owningProjectIdentifier=catalog.project,
        )
    assert code_of(raised) == "ConflictException"


def test_an_asset_type_takes_at_most_ten_forms_of_existing_form_types(catalog: Catalog) -> None:
    eleven = {f"Form{n}": {"typeIdentifier": "ExperimentForm", "typeRevision": "1"} for n in range(11)}
    unknown = {"SampleForm": {"typeIdentifier": "SampleForm", "typeRevision": "1"}}

    for forms, problem in [(eleven, "11 entries, at most 10"), (unknown, "form type SampleForm")]:
        with pytest.raises(ClientError, match=problem) as raised:
            catalog.client.create_asset_type(
                domainIdentifier=catalog.domain,
                name="Other",
                formsInput=forms,
                owningProjectIdentifier=catalog.project,
            )
        assert code_of(raised) == "ValidationException"

    asset_type = catalog.client.get_asset_type(domainIdentifier=catalog.domain, identifier="LabDataset")
    assert asset_type["formsOutput"] == {
        "ExperimentForm": {"typeName": "ExperimentForm", "typeRevision": "1", "required": True},
        "AssetCommonDetailsForm": {
            "typeName": "amazon.datazone.AssetCommonDetailsFormType",
            "typeRevision": "6",
            "required": False,
        },
    }


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ({"experimentId": "EXP-1", "colour": "red"}, "colour is not a member of ExperimentForm"),
        ({"experimentId": "EXP-1", "fileCount": "three"}, "fileCount must be an integer"),
        ({"experimentId": "EXP-1", "fileCount": True}, "fileCount must be an integer"),
        ({"experimentId": "EXP-1", "samples": "S1"}, "samples must be a JSON array"),
        ({"experimentId": "EXP-1", "samples": ["S1", 2]}, r"samples\[1\] must be a string"),
        ({"experimentId": "EXP-1", "operator": "x" * 21}, "operator has length 21"),
        ({"platform": "NovaSeq"}, "experimentId is required"),
        ({"experimentId": None}, "experimentId is required"),
        ([{"experimentId": "EXP-1"}], "must be a JSON object"),
    ],
)
def test_form_content_must_be_valid_for_its_form_type(catalog: Catalog, content: Any, problem: str) -> None:
    with pytest.raises(catalog.client.exceptions.ValidationException, match=problem):
        catalog.asset("EXP-1 raw", content)

    assert catalog.client.assets == {}


def test_form_content_that_is_not_json_or_a_missing_required_form_is_refused(catalog: Catalog) -> None:
    base = {
        "domainIdentifier": catalog.domain,
        "name": "EXP-1 raw",
        "typeIdentifier": "LabDataset",
        "owningProjectIdentifier": catalog.project,
    }

    with pytest.raises(ClientError, match="not JSON"):
        catalog.client.create_asset(**base, formsInput=[{"formName": "ExperimentForm", "content": "{experimentId"}])
    with pytest.raises(ClientError, match="required forms missing: ExperimentForm"):
        catalog.client.create_asset(**base, formsInput=[])


def test_an_external_identifier_names_one_asset_only(catalog: Catalog) -> None:
    catalog.asset("EXP-1 raw", {"experimentId": "EXP-1"}, externalIdentifier="raw/EXP-1")

    with pytest.raises(catalog.client.exceptions.ConflictException, match="raw/EXP-1"):
        catalog.asset("EXP-1 raw again", {"experimentId": "EXP-1"}, externalIdentifier="raw/EXP-1")

    assert len(catalog.client.assets) == 1


def test_a_revision_is_a_new_revision_of_the_same_asset_never_a_second_asset(catalog: Catalog) -> None:
    first = catalog.asset("EXP-1 raw", {"experimentId": "EXP-1", "fileCount": 2}, externalIdentifier="raw/EXP-1")

    second = catalog.revise(first["id"], "EXP-1 raw", {"experimentId": "EXP-1", "fileCount": 3})

    assert (first["revision"], second["revision"]) == ("1", "2")
    assert second["id"] == first["id"] and second["externalIdentifier"] == "raw/EXP-1"
    assert [item["identifier"] for item in catalog.search()] == [first["id"]]
    latest = catalog.client.get_asset(domainIdentifier=catalog.domain, identifier=first["id"])
    earlier = catalog.client.get_asset(domainIdentifier=catalog.domain, identifier=first["id"], revision="1")
    assert json.loads(latest["formsOutput"][0]["content"])["fileCount"] == 3
    assert json.loads(earlier["formsOutput"][0]["content"])["fileCount"] == 2
    with pytest.raises(catalog.client.exceptions.ResourceNotFoundException):
        catalog.revise("nosuchasset", "x", {"experimentId": "EXP-1"})


def test_every_asset_carries_the_common_form_and_listings_show_it(catalog: Catalog) -> None:
    source = {"formName": "AssetCommonDetailsForm", "content": json.dumps({"sourceIdentifier": "s3://raw/EXP-1"})}
    plain = catalog.asset("plain", {"experimentId": "EXP-1"})
    traced = catalog.client.create_asset(
        domainIdentifier=catalog.domain,
        name="traced",
        typeIdentifier="LabDataset",
        owningProjectIdentifier=catalog.project,
        formsInput=[{"formName": "ExperimentForm", "content": json.dumps({"experimentId": "EXP-2"})}, source],
    )
    catalog.publish(plain["id"])
    catalog.publish(traced["id"])

    def common(asset: dict[str, Any]) -> dict[str, Any]:
        form = next(form for form in asset["formsOutput"] if form["formName"] == "AssetCommonDetailsForm")
        assert form["typeName"] == "amazon.datazone.AssetCommonDetailsFormType" and form["typeRevision"] == "6"
        return dict(json.loads(form["content"]))

    assert (common(plain), common(traced)) == ({}, {"sourceIdentifier": "s3://raw/EXP-1"})
    listed = [
        json.loads(listing["additionalAttributes"]["forms"])
        for listing in catalog.listings(additionalAttributes=["FORMS"])
    ]
    assert all(set(forms) == {"ExperimentForm", "AssetCommonDetailsForm"} for forms in listed)


def test_a_revision_keeps_only_the_forms_it_is_given(catalog: Catalog) -> None:
    steward = {"formName": "AssetCommonDetailsForm", "content": json.dumps({"sourceIdentifier": "s3://raw/EXP-1"})}
    first = catalog.client.create_asset(
        domainIdentifier=catalog.domain,
        name="EXP-1",
        typeIdentifier="LabDataset",
        owningProjectIdentifier=catalog.project,
        formsInput=[{"formName": "ExperimentForm", "content": json.dumps({"experimentId": "EXP-1"})}, steward],
    )

    second = catalog.revise(first["id"], "EXP-1", {"experimentId": "EXP-1", "fileCount": 2})

    contents = {form["formName"]: json.loads(form["content"]) for form in second["formsOutput"]}
    assert contents == {"ExperimentForm": {"experimentId": "EXP-1", "fileCount": 2}, "AssetCommonDetailsForm": {}}
    with pytest.raises(ClientError, match="required forms missing: ExperimentForm"):
        catalog.client.create_asset_revision(
            domainIdentifier=catalog.domain, identifier=first["id"], name="EXP-1", formsInput=[steward]
        )


def test_form_content_comes_back_in_the_services_own_rendering(catalog: Catalog) -> None:
    sent = json.dumps({"title": "Liver", "experimentId": "EXP-1"}, separators=(",", ":"))
    form_type = """structure TimedForm {
    @required
    experimentId: String
    created: Timestamp
}"""
    catalog.client.create_form_type(
        domainIdentifier=catalog.domain,
        name="TimedForm",
        model={"smithy": form_type},
        owningProjectIdentifier=catalog.project,
    )
    asset = catalog.client.create_asset(
        domainIdentifier=catalog.domain,
        name="EXP-1",
        typeIdentifier="LabDataset",
        owningProjectIdentifier=catalog.project,
        formsInput=[
            {"formName": "ExperimentForm", "content": sent},
            {
                "formName": "Timed",
                "typeIdentifier": "TimedForm",
                "typeRevision": "1",
                "content": json.dumps({"experimentId": "EXP-1", "created": "2024-03-01T10:00:00+00:00"}),
            },
        ],
    )

    contents = {form["formName"]: form["content"] for form in asset["formsOutput"]}
    assert contents["ExperimentForm"] != sent and json.loads(contents["ExperimentForm"]) == json.loads(sent)
    assert json.loads(contents["Timed"])["created"] == "2024-03-01T10:00:00.000Z"


def test_get_asset_takes_the_documented_external_identifier_form(catalog: Catalog) -> None:
    made = catalog.asset("EXP-1 raw", {"experimentId": "EXP-1"}, externalIdentifier="labmesh:EXP-1:raw")

    found = catalog.client.get_asset(domainIdentifier=catalog.domain, identifier="externalIdentifer/labmesh:EXP-1:raw")

    assert found["id"] == made["id"]
    assert catalog.client.calls[-1][1]["identifier"] == "externalIdentifer/labmesh:EXP-1:raw"
    with pytest.raises(catalog.client.exceptions.ResourceNotFoundException):
        catalog.client.get_asset(domainIdentifier=catalog.domain, identifier="externalIdentifer/labmesh:EXP-2")
    with pytest.raises(catalog.client.exceptions.ValidationException):
        catalog.client.get_asset(domainIdentifier=catalog.domain, identifier="labmesh:EXP-1:raw")


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        ("@amazon.datazone#sortable\n title: String", "#sortable applies to numeric members, not a string"),
        ("@amazon.datazone#sortable\n created: Timestamp", "#sortable applies to numeric members, not a timestamp"),
        ('@amazon.datazone#searchable(modes: "LEXICAL")\n title: String', "takes modes: a list"),
    ],
)
def test_index_traits_are_refused_where_the_documentation_does_not_allow_them(
    catalog: Catalog, member: str, problem: str
) -> None:
    with pytest.raises(catalog.client.exceptions.ValidationException, match=problem):
        catalog.client.create_form_type(
            domainIdentifier=catalog.domain,
            name="OtherForm",
            model={"smithy": form_model("OtherForm", member)},
            owningProjectIdentifier=catalog.project,
        )
    with pytest.raises(ModelViolation, match="documented modes"):
        catalog.client.create_form_type(
            domainIdentifier=catalog.domain,
            name="OtherForm",
            model={"smithy": form_model("OtherForm", '@amazon.datazone#searchable(modes: ["FUZZY"])\n title: String')},
            owningProjectIdentifier=catalog.project,
        )


def test_a_v2_domain_creates_types_and_glossaries_only_with_the_projects_policy_grants() -> None:
    client = FakeDataZoneClient(domain_version="V2", policy_grants={"CREATE_GLOSSARY"})
    request = {"domainIdentifier": client.domain_id, "owningProjectIdentifier": client.project_id}

    with pytest.raises(client.exceptions.AccessDeniedException, match="CREATE_FORM_TYPE"):
        client.create_form_type(**request, name="OtherForm", model={"smithy": form_model("OtherForm")})
    with pytest.raises(client.exceptions.AccessDeniedException, match="CREATE_ASSET_TYPE"):
        client.create_asset_type(**request, name="Other", formsInput={})
    assert client.create_glossary(**request, name="labmesh")["name"] == "labmesh"


def test_a_retry_with_the_same_client_token_returns_the_first_answer(catalog: Catalog) -> None:
    first = catalog.asset("EXP-1 raw", {"experimentId": "EXP-1"}, clientToken="labmesh-raw-EXP-1")
    retried = catalog.asset("EXP-1 raw", {"experimentId": "EXP-1"}, clientToken="labmesh-raw-EXP-1")

    assert retried == first
    assert list(catalog.client.assets) == [first["id"]]
    with pytest.raises(catalog.client.exceptions.ConflictException, match="labmesh-raw-EXP-1"):
        catalog.asset("EXP-2 raw", {"experimentId": "EXP-2"}, clientToken="labmesh-raw-EXP-1")


def test_search_text_matches_searchable_members_in_their_modes_and_quotes_make_it_lexical(catalog: Catalog) -> None:
    liver = catalog.asset("Liver RNA-seq", {"experimentId": "EXP-1", "platform": "NovaSeq", "operator": "ada"})
    catalog.asset("Kidney proteomics", {"experimentId": "EXP-2", "platform": "Orbitrap"}, description="mass spec")
    catalog.asset("Spleen", {"experimentId": "EXP-10", "platform": "NovaSeq X"})

    def names(**params: Any) -> list[str]:
        return [item["name"] for item in catalog.search(**params)]

    assert names(searchText="novaseq") == ["Liver RNA-seq", "Spleen"]  # LEXICAL platform
    assert names(searchText="mass spec") == ["Kidney proteomics"]  # semantic description
    assert names(searchText="EXP-1") == ["Liver RNA-seq"], "TECHNICAL matches a whole identifier, not EXP-10"
    assert names(searchText="ada") == []  # operator is not searchable
    # Semantic by default: a related word finds the asset; in double quotes only the words themselves do.
    assert names(searchText="proteome") == ["Kidney proteomics"]
    assert names(searchText='"proteome"') == []
    assert names(searchText="liver orbitrap") == ["Liver RNA-seq"]  # "liver" is related to the name
    assert names(searchText='"liver orbitrap"') == []
    assert names(searchText='"novaseq x"') == ["Spleen"]
    assert names(searchText="liver", searchIn=[{"attribute": "ExperimentForm.platform"}]) == []
    with pytest.raises(ClientError, match="searchIn: ExperimentForm.operator is not a searchable"):
        catalog.search(searchText="ada", searchIn=[{"attribute": "ExperimentForm.operator"}])
    assert "additionalAttributes" not in catalog.search(searchText="liver")[0]
    forms = catalog.search(searchText="liver", additionalAttributes=["FORMS"])[0]["additionalAttributes"]
    assert forms["formsOutput"][0]["formName"] == "ExperimentForm" and liver["id"]


def test_an_eq_filter_is_exact_on_a_technical_member_and_semantic_on_a_default_one(catalog: Catalog) -> None:
    catalog.asset("one", {"experimentId": "EXP-1", "title": "Liver RNA-seq"})
    catalog.asset("ten", {"experimentId": "EXP-10", "title": "Liver biopsy RNA"})

    def names(attribute: str, value: str) -> list[str]:
        filters = {"filter": {"attribute": f"ExperimentForm.{attribute}", "value": value, "operator": "EQ"}}
        return [item["name"] for item in catalog.search(filters=filters)]

    assert names("experimentId", "EXP-1") == ["one"]
    assert names("experimentId", "exp-1") == []
    assert names("title", "Liver RNA-seq") == ["one", "ten"], "semantic: related titles match too"


def test_filters_name_only_documented_attributes(catalog: Catalog) -> None:
    catalog.asset("one", {"experimentId": "EXP-1"})
    for attribute in ("name", "description", "owningProjectId", "typeIdentifier"):
        with pytest.raises(ClientError, match=f"unknown filter attribute {attribute}"):
            catalog.search(filters={"filter": {"attribute": attribute, "value": "one"}})
    created = {"filter": {"attribute": "creationTime", "intValue": 0, "operator": "GT"}}
    assert [item["name"] for item in catalog.search(filters=created)] == ["one"]


def test_filters_combine_with_and_and_or_over_searchable_and_sortable_members(catalog: Catalog) -> None:
    catalog.asset("one", {"experimentId": "EXP-1", "platform": "NovaSeq", "fileCount": 1})
    catalog.asset("two", {"experimentId": "EXP-2", "platform": "NovaSeq", "fileCount": 5})
    catalog.asset("three", {"experimentId": "EXP-3", "platform": "MiSeq", "fileCount": 9})

    def names(filters: dict[str, Any]) -> list[str]:
        return [item["name"] for item in catalog.search(filters=filters)]

    platform = {"filter": {"attribute": "ExperimentForm.platform", "value": "NovaSeq"}}
    many = {"filter": {"attribute": "ExperimentForm.fileCount", "intValue": 4, "operator": "GT"}}
    first = {"filter": {"attribute": "ExperimentForm.experimentId", "value": "EXP-1", "operator": "EQ"}}
    assert names(platform) == ["one", "two"]
    assert names({"and": [platform, many]}) == ["two"]
    assert names({"or": [first, {"and": [platform, many]}]}) == ["one", "two"]
    assert names({"filter": {"attribute": "ExperimentForm.platform", "value": "miseq", "operator": "TEXT_SEARCH"}}) == [
        "three"
    ]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"attribute": "ExperimentForm.operator", "value": "ada"}, "not searchable"),
        ({"attribute": "ExperimentForm.samples", "value": "S1"}, "not searchable"),
        ({"attribute": "ExperimentForm.platform", "intValue": 3}, "not a sortable number"),
        ({"attribute": "ExperimentForm.colour", "value": "red"}, "unknown filter attribute"),
        ({"attribute": "ExperimentForm.fileCount", "value": "3", "intValue": 3}, "exactly one of value and intValue"),
        ({"attribute": "ExperimentForm.platform", "value": "a", "operator": "GT"}, "give an intValue"),
    ],
)
def test_a_filter_on_what_the_form_type_does_not_index_is_refused(
    catalog: Catalog, spec: dict[str, Any], problem: str
) -> None:
    catalog.asset("one", {"experimentId": "EXP-1"})

    with pytest.raises(catalog.client.exceptions.ValidationException, match=problem):
        catalog.search(filters={"filter": spec})
    with pytest.raises(catalog.client.exceptions.ValidationException, match=problem):
        catalog.listings(filters={"or": [{"filter": spec}]})


def test_results_sort_on_sortable_members_only(catalog: Catalog) -> None:
    for name, count in [("b", 5), ("a", 9), ("c", 1)]:
        catalog.asset(name, {"experimentId": f"EXP-{name}", "fileCount": count})
    catalog.asset("none", {"experimentId": "EXP-none"})

    descending = catalog.search(sort={"attribute": "ExperimentForm.fileCount", "order": "DESCENDING"})
    by_name = catalog.search(sort={"attribute": "name"})

    assert [item["name"] for item in descending] == ["a", "b", "c", "none"]
    assert [item["name"] for item in by_name] == ["a", "b", "c", "none"]
    with pytest.raises(ClientError, match="ExperimentForm.platform is not sortable"):
        catalog.search(sort={"attribute": "ExperimentForm.platform"})


def test_search_pages_with_max_results_and_next_token(catalog: Catalog) -> None:
    for number in range(5):
        catalog.asset(f"asset {number}", {"experimentId": f"EXP-{number}"})

    first = catalog.client.search(domainIdentifier=catalog.domain, searchScope="ASSET", maxResults=2)
    second = catalog.client.search(
        domainIdentifier=catalog.domain, searchScope="ASSET", maxResults=2, nextToken=first["nextToken"]
    )
    pages = catalog.client.get_paginator("search").paginate(
        domainIdentifier=catalog.domain, searchScope="ASSET", PaginationConfig={"PageSize": 2}
    )

    assert first["totalMatchCount"] == 5
    assert [item["assetItem"]["name"] for item in first["items"] + second["items"]] == [
        f"asset {number}" for number in range(4)
    ]
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    with pytest.raises(ClientError, match="nextToken does not belong to this query"):
        catalog.client.search(
            domainIdentifier=catalog.domain, searchScope="ASSET", searchText="asset", nextToken=first["nextToken"]
        )


def test_glossaries_and_terms_are_searched_in_their_own_scopes(catalog: Catalog) -> None:
    client = catalog.client
    glossary = client.create_glossary(
        domainIdentifier=catalog.domain, name="Assays", owningProjectIdentifier=catalog.project, clientToken="g-1"
    )
    term = client.create_glossary_term(
        domainIdentifier=catalog.domain,
        glossaryIdentifier=glossary["id"],
        name="RNA-seq",
        shortDescription="Sequencing of RNA",
    )
    catalog.asset("Liver", {"experimentId": "EXP-1"}, glossaryTerms=[term["id"]])

    glossaries = client.search(domainIdentifier=catalog.domain, searchScope="GLOSSARY", searchText='"assays"')
    terms = client.search(domainIdentifier=catalog.domain, searchScope="GLOSSARY_TERM", searchText="sequencing")
    by_term = catalog.search(filters={"filter": {"attribute": "__DataZoneGlossaryTerms", "value": term["id"]}})

    assert [item["glossaryItem"]["id"] for item in glossaries["items"]] == [glossary["id"]]
    assert [item["glossaryTermItem"]["id"] for item in terms["items"]] == [term["id"]]
    assert [item["name"] for item in by_term] == ["Liver"]
    with pytest.raises(client.exceptions.ConflictException):
        client.create_glossary_term(domainIdentifier=catalog.domain, glossaryIdentifier=glossary["id"], name="RNA-seq")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.create_glossary_term(domainIdentifier=catalog.domain, glossaryIdentifier="nosuchglossary", name="x")


def test_listing_search_finds_the_published_revision_only(catalog: Catalog) -> None:
    asset = catalog.asset("EXP-1 raw", {"experimentId": "EXP-1", "platform": "NovaSeq"})
    listed = catalog.publish(asset["id"])
    catalog.revise(asset["id"], "EXP-1 raw", {"experimentId": "EXP-1", "platform": "MiSeq"})

    assert [item["entityRevision"] for item in catalog.listings(searchText="novaseq")] == ["1"]
    assert catalog.listings(searchText="miseq") == []

    republished = catalog.publish(asset["id"])

    assert (listed["listingRevision"], republished["listingRevision"]) == ("1", "2")
    assert republished["listingId"] == listed["listingId"] and republished["status"] == "ACTIVE"
    assert catalog.listings(searchText="novaseq") == []
    found = catalog.listings(searchText="miseq", additionalAttributes=["FORMS"])
    assert [(item["entityRevision"], item["listingRevision"]) for item in found] == [("2", "2")]
    assert json.loads(found[0]["additionalAttributes"]["forms"])["ExperimentForm"]["platform"] == "MiSeq"
    assert catalog.publish(asset["id"])["listingRevision"] == "2"


def test_a_listing_keeps_its_revisions_and_unpublishing_hides_it(catalog: Catalog) -> None:
    asset = catalog.asset("EXP-1 raw", {"experimentId": "EXP-1", "platform": "NovaSeq"})
    catalog.revise(asset["id"], "EXP-1 raw v2", {"experimentId": "EXP-1", "platform": "MiSeq"})
    first = catalog.publish(asset["id"], revision="1")
    catalog.publish(asset["id"], revision="2")

    listing = catalog.client.get_listing(domainIdentifier=catalog.domain, identifier=first["listingId"])
    earlier = catalog.client.get_listing(
        domainIdentifier=catalog.domain, identifier=first["listingId"], listingRevision="1"
    )
    assert (listing["listingRevision"], listing["item"]["assetListing"]["assetRevision"]) == ("2", "2")
    assert json.loads(earlier["item"]["assetListing"]["forms"])["ExperimentForm"]["platform"] == "NovaSeq"
    assert catalog.client.get_asset(domainIdentifier=catalog.domain, identifier=asset["id"])["listing"] == {
        "listingId": first["listingId"],
        "listingStatus": "ACTIVE",
    }

    assert catalog.publish(asset["id"], action="UNPUBLISH")["status"] == "INACTIVE"

    assert catalog.listings() == []
    with pytest.raises(catalog.client.exceptions.ResourceNotFoundException):
        catalog.publish("nosuchasset")


def test_deleting_an_asset_removes_its_listing_and_frees_its_external_identifier(catalog: Catalog) -> None:
    made = catalog.asset("EXP-1", {"experimentId": "EXP-1"}, externalIdentifier="labmesh:EXP-1")
    catalog.publish(made["id"])

    catalog.client.delete_asset(domainIdentifier=catalog.domain, identifier=made["id"])

    assert catalog.listings() == [] and catalog.search() == []
    with pytest.raises(ClientError) as gone:
        catalog.client.get_asset(domainIdentifier=catalog.domain, identifier=made["id"])
    assert code_of(gone) == "ResourceNotFoundException"
    again = catalog.asset("EXP-1", {"experimentId": "EXP-1"}, externalIdentifier="labmesh:EXP-1")
    assert again["id"] != made["id"]


def test_an_asset_with_subscriptions_is_not_deleted(catalog: Catalog) -> None:
    made = catalog.asset("EXP-1", {"experimentId": "EXP-1"})
    catalog.publish(made["id"])
    catalog.client.add_subscription(made["id"])

    with pytest.raises(ClientError) as refused:
        catalog.client.delete_asset(domainIdentifier=catalog.domain, identifier=made["id"])

    assert code_of(refused) == "ConflictException" and "revoke" in str(refused.value)
    assert [listing["entityId"] for listing in catalog.listings()] == [made["id"]]


def test_assets_are_written_and_seen_in_inventory_by_their_projects_members_only() -> None:
    client = FakeDataZoneClient(project_ids=["labmesh", "genomics", "imaging"], member_of=["labmesh", "genomics"])
    catalog = Catalog(client)
    genomics = client.create_asset(
        domainIdentifier=catalog.domain,
        name="EXP-1",
        typeIdentifier="LabDataset",
        owningProjectIdentifier="genomics",
        formsInput=[{"formName": "ExperimentForm", "content": json.dumps({"experimentId": "EXP-1"})}],
    )
    with pytest.raises(ClientError) as refused:
        client.create_asset(
            domainIdentifier=catalog.domain,
            name="EXP-2",
            typeIdentifier="LabDataset",
            owningProjectIdentifier="imaging",
            formsInput=[{"formName": "ExperimentForm", "content": json.dumps({"experimentId": "EXP-2"})}],
        )
    assert code_of(refused) == "AccessDeniedException" and "project imaging" in str(refused.value)

    client.member_of.discard("genomics")
    with pytest.raises(ClientError) as not_member:
        catalog.revise(genomics["id"], "EXP-1", {"experimentId": "EXP-1", "platform": "MiSeq"})
    assert code_of(not_member) == "AccessDeniedException"
    with pytest.raises(ClientError):
        catalog.search(owningProjectIdentifier="genomics")
    assert catalog.search() == []


def run_event(event_type: str = "COMPLETE", **extra: Any) -> bytes:
    event = {
        "eventType": event_type,
        "eventTime": "2025-01-06T10:00:00+00:00",
        "run": {"runId": "0190a1b2-0000-7000-8000-000000000001"},
        "job": {"namespace": "labmesh", "name": "raw_dataset"},
        "inputs": [{"namespace": "s3://labmesh-landing", "name": "EXP-1"}],
        "outputs": [{"namespace": "s3://labmesh-raw", "name": "EXP-1"}],
        "producer": "https://github.com/labmesh",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        **extra,
    }
    return json.dumps(event).encode()


def statuses(client: FakeDataZoneClient, event_id: str, reads: int) -> list[str]:
    return [
        client.get_lineage_event(domainIdentifier=client.domain_id, identifier=event_id)["processingStatus"]
        for _ in range(reads)
    ]


def test_a_lineage_event_moves_from_requested_through_processing_to_success() -> None:
    client = FakeDataZoneClient()
    posted = client.post_lineage_event(domainIdentifier=client.domain_id, event=run_event())

    assert matches("[a-z0-9]{14}", posted["id"])
    assert statuses(client, posted["id"], 4) == ["REQUESTED", "PROCESSING", "SUCCESS", "SUCCESS"]
    read = client.get_lineage_event(domainIdentifier=client.domain_id, identifier=posted["id"])
    assert json.loads(read["event"].read())["job"]["name"] == "raw_dataset"


@pytest.mark.parametrize(
    "event",
    [b"{not json", json.dumps({"eventType": "COMPLETE", "run": {"runId": "r"}}).encode(), run_event("DONE")],
)
def test_an_event_that_is_not_an_openlineage_run_event_fails(event: bytes) -> None:
    client = FakeDataZoneClient(lineage_reads_to_finish=1)
    posted = client.post_lineage_event(domainIdentifier=client.domain_id, event=event)

    assert statuses(client, posted["id"], 2) == ["REQUESTED", "FAILED"]


def test_a_lineage_client_token_makes_a_retry_idempotent_and_other_events_a_conflict() -> None:
    client = FakeDataZoneClient()
    first = client.post_lineage_event(domainIdentifier=client.domain_id, event=run_event(), clientToken="run-1")

    retried = client.post_lineage_event(domainIdentifier=client.domain_id, event=run_event(), clientToken="run-1")

    assert retried == first and len(client.lineage_events) == 1
    with pytest.raises(client.exceptions.ConflictException, match="run-1"):
        client.post_lineage_event(domainIdentifier=client.domain_id, event=run_event("FAIL"), clientToken="run-1")
    with pytest.raises(client.exceptions.ValidationException, match="at most 300000"):
        client.post_lineage_event(domainIdentifier=client.domain_id, event=b" " * 300_001)


def test_lineage_events_are_listed_with_their_run_summary_newest_first() -> None:
    client = FakeDataZoneClient(lineage_reads_to_finish=0)
    start = client.post_lineage_event(
        domainIdentifier=client.domain_id, event=run_event("START", eventTime="2025-01-06T09:30:00+00:00")
    )
    complete = client.post_lineage_event(domainIdentifier=client.domain_id, event=run_event())
    broken = client.post_lineage_event(domainIdentifier=client.domain_id, event="not json")

    listed = client.list_lineage_events(domainIdentifier=client.domain_id, processingStatus="SUCCESS")["items"]
    failed = client.list_lineage_events(domainIdentifier=client.domain_id, processingStatus="FAILED")["items"]
    ascending = client.list_lineage_events(
        domainIdentifier=client.domain_id, processingStatus="SUCCESS", sortOrder="ASCENDING"
    )["items"]

    assert [item["id"] for item in listed] == [complete["id"], start["id"]]
    assert [item["id"] for item in ascending] == [start["id"], complete["id"]]
    assert [item["id"] for item in failed] == [broken["id"]] and "eventSummary" not in failed[0]
    summary = listed[0]["eventSummary"]["openLineageRunEventSummary"]
    assert summary["job"] == {"name": "raw_dataset", "namespace": "labmesh"}
    assert summary["outputs"] == [{"name": "EXP-1", "namespace": "s3://labmesh-raw"}]


class Ticking:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_throttling_injection_fails_the_next_calls_and_the_counters_see_them() -> None:
    clock = Ticking()
    catalog = Catalog(FakeDataZoneClient(clock=clock))
    catalog.client.throttle("Search", times=2)

    for _ in range(2):
        with pytest.raises(catalog.client.exceptions.ThrottlingException) as raised:
            catalog.search()
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        clock.now += 0.05
    assert catalog.search() == []

    assert catalog.client.call_counts["Search"] == 3
    assert catalog.client.call_counts["CreateFormType"] == 1
    assert catalog.client.peak_calls_per_second("Search") == 3
    clock.now += 5
    catalog.search()
    assert catalog.client.call_times["Search"][-1] == pytest.approx(5.1)


def test_every_answer_is_checked_against_the_model(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    asset = catalog.asset("EXP-1 raw", {"experimentId": "EXP-1"})
    build = FakeDataZoneClient._asset_response

    def broken(self: FakeDataZoneClient, *args: Any) -> dict[str, Any]:
        return {**build(self, *args), "revision": "", "colour": "red"}

    monkeypatch.setattr(FakeDataZoneClient, "_asset_response", broken)

    with pytest.raises(ModelViolation, match="GetAsset response breaks the datazone model") as raised:
        catalog.client.get_asset(domainIdentifier=catalog.domain, identifier=asset["id"])
    assert "colour" in str(raised.value) and "revision" in str(raised.value)
