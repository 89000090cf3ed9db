"""The Kendra fake refuses what Kendra refuses and keeps an index that behaves like one.

Pinned here: requests are refused as boto3 (missing or unknown members) or
Kendra (11 documents in a batch, too-long or mis-patterned values, bad enums)
would; a document with an undeclared or mistyped attribute fails alone in
``FailedDocuments`` while Kendra's reserved fields need no declaration;
field types are fixed once declared; re-putting a document replaces it;
statuses read PROCESSING then INDEXED (UPDATED after a re-put), FAILED for a
document told to fail, NOT_FOUND once deleted; Query and Retrieve match terms,
honour attribute filters (with Kendra's depth and length limits), the
caller's groups against each access control list, facets and sorting only on
fields that allow them, and return highlighted excerpts and displayable
attributes; what the fake does not model is a `ModelViolation`; throttling
injection and call counters work.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from labmesh_dagster_tests.fake_kendra import RESERVED_FIELDS, FakeKendraClient
from labmesh_dagster_tests.service_model import ModelViolation

FIELDS = [
    {"Name": "experiment_id", "Type": "STRING_VALUE", "Search": {"Facetable": True}},
    {"Name": "sample_ids", "Type": "STRING_LIST_VALUE", "Search": {"Facetable": True}},
    {"Name": "file_size", "Type": "LONG_VALUE", "Search": {"Sortable": True}},
    {"Name": "acquired_at", "Type": "DATE_VALUE", "Search": {"Sortable": True}},
    {"Name": "checksum", "Type": "STRING_VALUE", "Search": {"Displayable": False}},
]


def attribute(key: str, **value: Any) -> dict[str, Any]:
    return {"Key": key, "Value": value}


def document(document_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"Id": document_id, "Title": document_id.rsplit("/", 1)[-1], "Blob": text.encode(), **extra}


LIVER = document(
    "raw/EXP-1/liver.txt",
    "RNA sequencing of liver tissue from sample S1 and S2, run on a NovaSeq.",
    Attributes=[
        attribute("experiment_id", StringValue="EXP-1"),
        attribute("sample_ids", StringListValue=["S1", "S2"]),
        attribute("file_size", LongValue=300),
        attribute("acquired_at", DateValue=datetime(2025, 1, 2, tzinfo=UTC)),
        attribute("checksum", StringValue="abc"),
        attribute("_source_uri", StringValue="https://labmesh.example/raw/EXP-1/liver.txt"),
    ],
    AccessControlList=[{"Name": "liver-lab", "Type": "GROUP", "Access": "ALLOW"}],
)
KIDNEY = document(
    "raw/EXP-2/kidney.txt",
    "Proteomics of kidney tissue, sample S3, on an Orbitrap mass spectrometer.",
    Attributes=[
        attribute("experiment_id", StringValue="EXP-2"),
        attribute("sample_ids", StringListValue=["S3"]),
        attribute("file_size", LongValue=100),
        attribute("acquired_at", DateValue="2025-01-05T00:00:00Z"),
        attribute("_source_uri", StringValue="s3://labmesh-raw/EXP-2/kidney.txt"),
    ],
    AccessControlList=[
        {"Name": "kidney-lab", "Type": "GROUP", "Access": "ALLOW"},
        {"Name": "mallory", "Type": "USER", "Access": "DENY"},
    ],
)
PROTOCOL = document("protocols/rna.md", "How to prepare RNA tissue samples.", ContentType="MD")


@pytest.fixture
def kendra() -> FakeKendraClient:
    client = FakeKendraClient()
    client.update_index(Id=client.index_id, DocumentMetadataConfigurationUpdates=FIELDS)
    assert client.batch_put_document(IndexId=client.index_id, Documents=[LIVER, KIDNEY, PROTOCOL]) == {
        "FailedDocuments": []
    }
    return client


def query(client: FakeKendraClient, text: str | None = None, **params: Any) -> list[str]:
    if text is not None:
        params["QueryText"] = text
    return [item["DocumentId"] for item in client.query(IndexId=client.index_id, **params)["ResultItems"]]


def status(client: FakeKendraClient, *document_ids: str) -> list[tuple[str, ...]]:
    infos = [{"DocumentId": document_id} for document_id in document_ids]
    found = client.batch_get_document_status(IndexId=client.index_id, DocumentInfoList=infos)["DocumentStatusList"]
    return [
        tuple(entry[key] for key in ("DocumentId", "DocumentStatus", "FailureReason") if key in entry)
        for entry in found
    ]


def equals(key: str, **value: Any) -> dict[str, Any]:
    return {"EqualsTo": attribute(key, **value)}


def test_the_index_id_is_a_valid_kendra_index_id() -> None:
    client = FakeKendraClient()

    assert len(client.index_id) == 36
    assert client.describe_index(Id=client.index_id)["Status"] == "ACTIVE"
    with pytest.raises(ValueError, match="not a Kendra index id"):
        FakeKendraClient(index_id="index-1")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_index(Id="0" * 36)


def test_requests_boto3_refuses_raise_param_validation_error(kendra: FakeKendraClient) -> None:
    with pytest.raises(ParamValidationError, match="IndexId"):
        kendra.batch_put_document(Documents=[PROTOCOL])
    with pytest.raises(ParamValidationError, match="Colour"):
        kendra.batch_put_document(IndexId=kendra.index_id, Documents=[{**PROTOCOL, "Colour": "red"}])
    with pytest.raises(ParamValidationError, match="Id"):
        kendra.describe_index(Id="short")


def test_eleven_documents_in_one_batch_are_refused_and_none_is_indexed(kendra: FakeKendraClient) -> None:
    batch = [document(f"batch/{number}.txt", "text") for number in range(11)]

    with pytest.raises(kendra.exceptions.ValidationException, match="11 items, at most 10 allowed"):
        kendra.batch_put_document(IndexId=kendra.index_id, Documents=batch)

    assert not any(document_id.startswith("batch/") for document_id in kendra.documents)
    assert kendra.batch_put_document(IndexId=kendra.index_id, Documents=batch[:10]) == {"FailedDocuments": []}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"ContentType": "TXT"}, "'TXT' is not one of"),
        ({"Attributes": [attribute("bad key!", StringValue="x")]}, "does not match the pattern"),
        ({"Attributes": [attribute("experiment_id", StringValue="x" * 2049)]}, "2049 characters, at most 2048"),
        ({"AccessControlList": [{"Name": "lab\n", "Type": "GROUP", "Access": "ALLOW"}]}, "does not match"),
        ({"AccessControlList": [{"Name": "lab", "Type": "TEAM", "Access": "ALLOW"}]}, "'TEAM' is not one of"),
    ],
)
def test_what_kendra_checks_is_refused_with_a_validation_exception(
    kendra: FakeKendraClient, change: dict[str, Any], problem: str
) -> None:
    with pytest.raises(kendra.exceptions.ValidationException, match=problem):
        kendra.batch_put_document(IndexId=kendra.index_id, Documents=[{**PROTOCOL, "Id": "new", **change}])

    assert "new" not in kendra.documents


def test_a_document_with_an_undeclared_or_mistyped_attribute_fails_alone(kendra: FakeKendraClient) -> None:
    undeclared = document("a.txt", "alpha", Attributes=[attribute("platform", StringValue="NovaSeq")])
    mistyped = document("b.txt", "beta", Attributes=[attribute("file_size", StringValue="300")])
    twice = document("c.txt", "gamma", Attributes=[attribute("_category", StringValue="x")] * 2)
    reserved = document("d.txt", "delta", Attributes=[attribute("_category", StringValue="raw")])

    answer = kendra.batch_put_document(IndexId=kendra.index_id, Documents=[undeclared, mistyped, twice, reserved])

    failed = {entry["Id"]: entry for entry in answer["FailedDocuments"]}
    assert set(failed) == {"a.txt", "b.txt", "c.txt"}
    assert "platform is not a field of the index" in failed["a.txt"]["ErrorMessage"]
    assert "file_size is a LONG_VALUE, not a STRING_VALUE" in failed["b.txt"]["ErrorMessage"]
    assert "given twice: _category" in failed["c.txt"]["ErrorMessage"]
    assert {entry["ErrorCode"] for entry in failed.values()} == {"InvalidRequest"}
    assert "d.txt" in kendra.documents and "a.txt" not in kendra.documents


def test_fields_are_declared_once_with_a_fixed_type_and_listed_with_kendras_own(kendra: FakeKendraClient) -> None:
    for update, problem in [
        ({"Name": "file_size", "Type": "STRING_VALUE"}, "a field's type cannot change"),
        ({"Name": "_lab", "Type": "STRING_VALUE"}, "reserved"),
        ({"Name": "tags", "Type": "STRING_LIST_VALUE", "Search": {"Sortable": True}}, "cannot be sortable"),
        ({"Name": "_created_at", "Type": "STRING_VALUE"}, "a field's type cannot change"),
    ]:
        with pytest.raises(kendra.exceptions.ValidationException, match=problem):
            kendra.update_index(Id=kendra.index_id, DocumentMetadataConfigurationUpdates=[update])

    configurations = kendra.describe_index(Id=kendra.index_id)["DocumentMetadataConfigurations"]
    declared = {configuration["Name"]: configuration for configuration in configurations}
    assert set(RESERVED_FIELDS) <= set(declared)
    assert declared["file_size"]["Search"] == {
        "Facetable": False,
        "Searchable": False,
        "Displayable": True,
        "Sortable": True,
    }
    assert "tags" not in declared


def test_re_putting_a_document_replaces_it(kendra: FakeKendraClient) -> None:
    revised = document("protocols/rna.md", "How to extract DNA.", ContentType="MD")

    kendra.batch_put_document(IndexId=kendra.index_id, Documents=[revised])

    assert query(kendra, "DNA") == ["protocols/rna.md"]
    assert "protocols/rna.md" not in query(kendra, "prepare")
    statistics = kendra.describe_index(Id=kendra.index_id)["IndexStatistics"]["TextDocumentStatistics"]
    assert statistics["IndexedTextDocumentsCount"] == 3


def test_a_status_reads_processing_then_indexed_then_updated_after_a_re_put(kendra: FakeKendraClient) -> None:
    assert status(kendra, LIVER["Id"], "nowhere") == [(LIVER["Id"], "PROCESSING"), ("nowhere", "NOT_FOUND")]
    assert status(kendra, LIVER["Id"]) == [(LIVER["Id"], "INDEXED")]

    kendra.batch_put_document(IndexId=kendra.index_id, Documents=[LIVER])

    assert status(kendra, LIVER["Id"], LIVER["Id"]) == [(LIVER["Id"], "PROCESSING"), (LIVER["Id"], "UPDATED")]


def test_a_document_told_to_fail_reads_failed_with_its_reason_and_is_not_searchable() -> None:
    client = FakeKendraClient(failures={"broken.txt": "The file is not valid UTF-8 text"}, reads_to_index=0)

    client.batch_put_document(IndexId=client.index_id, Documents=[document("broken.txt", "liver")])

    assert status(client, "broken.txt") == [("broken.txt", "FAILED", "The file is not valid UTF-8 text")]
    assert query(client, "liver") == []


def test_an_update_that_fails_keeps_the_indexed_version_searchable(kendra: FakeKendraClient) -> None:
    kendra.reads_to_index = 0
    kendra.fail_document(PROTOCOL["Id"], "Extraction failed")

    kendra.batch_put_document(IndexId=kendra.index_id, Documents=[document(PROTOCOL["Id"], "DNA")])

    assert status(kendra, PROTOCOL["Id"]) == [(PROTOCOL["Id"], "UPDATE_FAILED", "Extraction failed")]
    assert query(kendra, "prepare") == [PROTOCOL["Id"]]


def test_deleted_documents_are_neither_found_nor_searchable(kendra: FakeKendraClient) -> None:
    kendra.batch_delete_document(IndexId=kendra.index_id, DocumentIdList=[LIVER["Id"], "never-put"])

    assert status(kendra, LIVER["Id"]) == [(LIVER["Id"], "NOT_FOUND")]
    assert query(kendra, "liver") == []


def test_query_ranks_documents_matching_more_terms_then_more_occurrences_first(kendra: FakeKendraClient) -> None:
    # The protocol's title, rna.md, holds "rna" once more than the liver document.
    assert query(kendra, "RNA tissue") == [PROTOCOL["Id"], LIVER["Id"], KIDNEY["Id"]]
    assert query(kendra, "orbitrap") == [KIDNEY["Id"]]
    assert query(kendra, "the of") == []
    assert query(kendra, "zebrafish") == []


def test_results_carry_highlighted_excerpts_displayable_attributes_and_valid_uris(kendra: FakeKendraClient) -> None:
    answer = kendra.query(IndexId=kendra.index_id, QueryText="novaseq liver")
    liver = answer["ResultItems"][0]
    excerpt = liver["DocumentExcerpt"]

    assert [excerpt["Text"][h["BeginOffset"] : h["EndOffset"]] for h in excerpt["Highlights"]] == ["liver", "NovaSeq"]
    assert liver["DocumentTitle"]["Text"] == "liver.txt"
    assert liver["DocumentURI"] == "https://labmesh.example/raw/EXP-1/liver.txt"
    keys = {entry["Key"] for entry in liver["DocumentAttributes"]}
    assert "checksum" not in keys and {"experiment_id", "sample_ids", "acquired_at"} <= keys
    assert liver["ScoreAttributes"] == {"ScoreConfidence": "HIGH"}
    kidney = kendra.query(IndexId=kendra.index_id, QueryText="kidney")["ResultItems"][0]
    assert "DocumentURI" not in kidney
    only = kendra.query(IndexId=kendra.index_id, QueryText="liver", RequestedDocumentAttributes=["experiment_id"])
    assert only["ResultItems"][0]["DocumentAttributes"] == [attribute("experiment_id", StringValue="EXP-1")]


@pytest.mark.parametrize(
    ("attribute_filter", "expected"),
    [
        (equals("experiment_id", StringValue="EXP-2"), [KIDNEY["Id"]]),
        ({"ContainsAny": attribute("sample_ids", StringListValue=["S2", "S3"])}, [LIVER["Id"], KIDNEY["Id"]]),
        ({"ContainsAll": attribute("sample_ids", StringListValue=["S1", "S2"])}, [LIVER["Id"]]),
        ({"GreaterThan": attribute("file_size", LongValue=150)}, [LIVER["Id"]]),
        ({"LessThan": attribute("acquired_at", DateValue="2025-01-03T00:00:00Z")}, [LIVER["Id"]]),
        ({"NotFilter": equals("experiment_id", StringValue="EXP-1")}, [KIDNEY["Id"], PROTOCOL["Id"]]),
        (
            {
                "AndAllFilters": [
                    {"GreaterThanOrEquals": attribute("file_size", LongValue=100)},
                    {
                        "OrAllFilters": [
                            equals("experiment_id", StringValue="EXP-1"),
                            {"ContainsAny": attribute("sample_ids", StringListValue=["S3"])},
                        ]
                    },
                ]
            },
            [LIVER["Id"], KIDNEY["Id"]],
        ),
    ],
)
def test_attribute_filters_select_documents(
    kendra: FakeKendraClient, attribute_filter: dict[str, Any], expected: list[str]
) -> None:
    assert query(kendra, "tissue", AttributeFilter=attribute_filter) == expected


@pytest.mark.parametrize(
    ("attribute_filter", "problem"),
    [
        (equals("platform", StringValue="NovaSeq"), "platform is not a field of the index"),
        (equals("file_size", StringValue="300"), "file_size is a LONG_VALUE, not a STRING_VALUE"),
        ({"ContainsAny": attribute("sample_ids", StringValue="S1")}, "takes a StringListValue"),
        ({"GreaterThan": attribute("experiment_id", StringValue="EXP-1")}, "only applies to long and date"),
        ({**equals("experiment_id", StringValue="EXP-1"), "NotFilter": {}}, "exactly one operation"),
        (
            {"AndAllFilters": [{"OrAllFilters": [{"AndAllFilters": [equals("experiment_id", StringValue="x")]}]}]},
            "depth of more than 2",
        ),
        ({"OrAllFilters": [equals("experiment_id", StringValue=str(n)) for n in range(11)]}, "length of more than 10"),
    ],
)
def test_filters_kendra_refuses_are_refused(
    kendra: FakeKendraClient, attribute_filter: dict[str, Any], problem: str
) -> None:
    with pytest.raises(kendra.exceptions.ValidationException, match=problem):
        kendra.query(IndexId=kendra.index_id, QueryText="tissue", AttributeFilter=attribute_filter)
    with pytest.raises(kendra.exceptions.ValidationException, match=problem):
        kendra.retrieve(IndexId=kendra.index_id, QueryText="tissue", AttributeFilter=attribute_filter)


def test_the_callers_groups_decide_against_each_access_control_list(kendra: FakeKendraClient) -> None:
    def visible(**context: Any) -> list[str]:
        return sorted(query(kendra, "tissue", UserContext=context))

    assert sorted(query(kendra, "tissue")) == sorted([LIVER["Id"], KIDNEY["Id"], PROTOCOL["Id"]])
    assert visible(Groups=["liver-lab"]) == sorted([LIVER["Id"], PROTOCOL["Id"]])
    assert visible(Groups=["liver-lab", "kidney-lab"]) == sorted([LIVER["Id"], KIDNEY["Id"], PROTOCOL["Id"]])
    assert visible(UserId="mallory", Groups=["kidney-lab"]) == [PROTOCOL["Id"]]
    assert visible(UserId="ada") == [PROTOCOL["Id"]]


def test_a_user_principal_allows_that_user_alone_whatever_their_groups(kendra: FakeKendraClient) -> None:
    owned = document(
        "final/EXP-3/notes.txt",
        "Tissue notes kept by their owner.",
        AccessControlList=[{"Name": "ada", "Type": "USER", "Access": "ALLOW"}],
    )
    kendra.batch_put_document(IndexId=kendra.index_id, Documents=[owned])

    def visible(**context: Any) -> bool:
        return owned["Id"] in query(kendra, "tissue", UserContext=context)

    assert visible(UserId="ada")
    assert visible(UserId="ada", Groups=["kidney-lab"])
    assert not visible(UserId="bob", Groups=["liver-lab", "kidney-lab"])
    assert not visible(Groups=["ada"])  # a group of the same name is not the user
    assert owned["Id"] in query(kendra, "tissue")  # no user context: labmesh itself, or an admin


def test_facets_and_sorting_only_on_fields_that_allow_them(kendra: FakeKendraClient) -> None:
    answer = kendra.query(
        IndexId=kendra.index_id,
        QueryText="tissue",
        Facets=[{"DocumentAttributeKey": "sample_ids"}, {"DocumentAttributeKey": "experiment_id", "MaxResults": 1}],
        SortingConfiguration={"DocumentAttributeKey": "file_size", "SortOrder": "ASC"},
    )

    assert [item["DocumentId"] for item in answer["ResultItems"]] == [KIDNEY["Id"], LIVER["Id"], PROTOCOL["Id"]]
    samples, experiments = answer["FacetResults"]
    assert [
        (pair["DocumentAttributeValue"], pair["Count"]) for pair in samples["DocumentAttributeValueCountPairs"]
    ] == [
        ({"StringValue": "S1"}, 1),
        ({"StringValue": "S2"}, 1),
        ({"StringValue": "S3"}, 1),
    ]
    assert len(experiments["DocumentAttributeValueCountPairs"]) == 1
    with pytest.raises(kendra.exceptions.ValidationException, match="file_size is not a facetable"):
        kendra.query(IndexId=kendra.index_id, QueryText="tissue", Facets=[{"DocumentAttributeKey": "file_size"}])
    with pytest.raises(kendra.exceptions.ValidationException, match="experiment_id is not a sortable"):
        kendra.query(
            IndexId=kendra.index_id,
            QueryText="tissue",
            SortingConfiguration={"DocumentAttributeKey": "experiment_id", "SortOrder": "DESC"},
        )


def test_pages_hold_page_size_results_and_the_total_counts_all(kendra: FakeKendraClient) -> None:
    first = kendra.query(IndexId=kendra.index_id, QueryText="tissue", PageSize=2)
    second = kendra.query(IndexId=kendra.index_id, QueryText="tissue", PageSize=2, PageNumber=2)

    assert first["TotalNumberOfResults"] == 3
    assert len(first["ResultItems"]) == 2 and len(second["ResultItems"]) == 1


def test_retrieve_returns_passages_with_attributes(kendra: FakeKendraClient) -> None:
    answer = kendra.retrieve(IndexId=kendra.index_id, QueryText="orbitrap", UserContext={"Groups": ["kidney-lab"]})

    (item,) = answer["ResultItems"]
    assert item["DocumentId"] == KIDNEY["Id"] and "Orbitrap mass spectrometer" in item["Content"]
    assert item["DocumentTitle"] == "kidney.txt"
    assert attribute("experiment_id", StringValue="EXP-2") in item["DocumentAttributes"]
    with pytest.raises(ParamValidationError, match="QueryText"):
        kendra.retrieve(IndexId=kendra.index_id)


@pytest.mark.parametrize(
    "change",
    [
        {"S3Path": {"Bucket": "labmesh-raw", "Key": "EXP-1/report.pdf"}},
        {"ContentType": "PDF"},
        {"HierarchicalAccessControlList": [{"PrincipalList": []}]},
    ],
)
def test_what_the_fake_does_not_model_is_refused_as_its_limit(kendra: FakeKendraClient, change: dict[str, Any]) -> None:
    with pytest.raises(ModelViolation, match="the fake"):
        kendra.batch_put_document(IndexId=kendra.index_id, Documents=[{**PROTOCOL, **change}])


class Ticking:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_throttling_injection_fails_the_next_calls_and_the_counters_see_them() -> None:
    clock = Ticking()
    client = FakeKendraClient(clock=clock)
    client.throttle("BatchPutDocument")

    with pytest.raises(client.exceptions.ThrottlingException) as raised:
        client.batch_put_document(IndexId=client.index_id, Documents=[PROTOCOL])
    assert isinstance(raised.value, ClientError) and client.documents == {}
    for _ in range(25):
        clock.now += 0.04
        client.batch_put_document(IndexId=client.index_id, Documents=[PROTOCOL])

    assert client.call_counts["BatchPutDocument"] == 26
    assert client.peak_calls_per_second("BatchPutDocument") == 25
    assert list(client.documents) == [PROTOCOL["Id"]]
