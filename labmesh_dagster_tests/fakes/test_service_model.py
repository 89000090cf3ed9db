"""The checks every model-bound fake shares say what botocore's models say, and refuse what they cannot judge.

Pinned here: Java patterns are judged as Java would (``\\p{..}`` and ``\\P{..}``
categories, ``.`` stopping at every line terminator, ASCII-only ``\\w``), every
pattern in the DataZone, Kendra, HealthOmics and Bedrock knowledge base models can be judged, and a
construct the translation does not know (intersections, nested classes,
POSIX properties, quoting, named groups) is refused rather than passed;
requests fail as boto3 fails them (`ParamValidationError`) or as the service
does (a modeled ``ValidationException`` with the model's HTTP status);
errors the operation does not declare and responses the model does not allow
are bugs in the fake; and throttling injection and the call ledger count
what reached the service.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError, ParamValidationError

from labmesh_dagster_tests.service_model import (
    FakeServiceClient,
    ModelViolation,
    check_request,
    check_response,
    client_exceptions,
    load_model,
    matches,
    python_pattern,
    service_error,
    service_problems,
)

UNICODE_TEXT = r"[\p{L}||\p{M}||\p{Z}||\p{S}||\p{N}||\p{P}]+"
DATAZONE = "dzd_4p9n6sw4qt9xgn"


def model_patterns(service_name: str) -> list[str]:
    loader = botocore.session.get_session().get_component("data_loader")
    shapes = loader.load_service_model(service_name, "service-2")["shapes"]
    return sorted({shape["pattern"] for shape in shapes.values() if "pattern" in shape})


@pytest.mark.parametrize(
    "service_name", ["datazone", "kendra", "omics", "bedrock-agent", "bedrock-agent-runtime", "bedrock-runtime"]
)
def test_every_pattern_in_the_models_the_fakes_use_can_be_judged(service_name: str) -> None:
    patterns = model_patterns(service_name)

    assert patterns
    for pattern in patterns:
        matches(pattern, "x")


@pytest.mark.parametrize(
    ("pattern", "value", "accepted"),
    [
        (UNICODE_TEXT, "Zürich liver 42 (S1)", True),
        (UNICODE_TEXT, "S2\n", False),
        (r"^\P{C}*$", "Probe αβ – 5 µl", True),
        (r"^\P{C}*$", "tab\there", False),
        (r"^\P{C}*$", "", True),
        ("s3://.+", "s3://labmesh-raw/EXP-1/a.fq", True),
        ("s3://.+", "s3://labmesh-raw/EXP-1/a.fq\r", False),
        ("s3://.+", "s3://labmesh-raw/a\u2028b", False),
        (r"[\w -]+", "liver sample_1", True),
        (r"[\w -]+", "Zürich", False),
        (r"\d{12}", "١٢٣٤٥٦٧٨٩٠١٢", False),
        ("dzd[-_][a-zA-Z0-9_-]{1,36}", DATAZONE, True),
        ("dzd[-_][a-zA-Z0-9_-]{1,36}", f"x{DATAZONE}", False),
        ("dzd[-_][a-zA-Z0-9_-]{1,36}", f"{DATAZONE} ", False),
        (r"(amazon.datazone.)?(?![0-9_])\w+$|^_\w*[a-zA-Z0-9]\w*", "ExperimentForm", True),
        (r"(amazon.datazone.)?(?![0-9_])\w+$|^_\w*[a-zA-Z0-9]\w*", "1Form", False),
        (r"[\u0020-\uD7FF\uE000-\uFFFF\t]*", "tab\tok", True),
        (r"[\u0020-\uD7FF\uE000-\uFFFF\t]*", "line\nbreak", False),
    ],
)
def test_java_patterns_are_judged_as_java_judges_them(pattern: str, value: str, accepted: bool) -> None:
    assert matches(pattern, value) is accepted


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [
        ("[a-z&&[^b]]+", "intersections"),
        ("[a-z[0-9]]+", "nested classes"),
        (r"\p{Alpha}+", "Alpha"),
        (r"\Qa.b\E", r"\Q"),
        (r"(?<id>[0-9]+)", "named groups"),
        (r"\h+", r"\h"),
        ("[abc", "unclosed"),
    ],
)
def test_a_construct_the_translation_does_not_know_is_refused_not_passed(pattern: str, construct: str) -> None:
    with pytest.raises(ModelViolation, match="cannot check the pattern") as raised:
        python_pattern(pattern)

    assert construct in str(raised.value)


def test_property_classes_become_explicit_ranges_inside_and_outside_brackets() -> None:
    assert python_pattern(r"\pL").startswith("[\\U00000041-\\U0000005a")
    assert python_pattern(r"[\P{C}]").startswith("[\\U00000020-\\U0000007e")
    assert python_pattern("a.b") == "a[^\\n\\r\\u0085\\u2028\\u2029]b"


def test_a_request_boto3_would_refuse_raises_param_validation_error() -> None:
    with pytest.raises(ParamValidationError, match="owningProjectIdentifier"):
        check_request("datazone", "CreateGlossary", {"domainIdentifier": DATAZONE, "name": "Lab"})
    with pytest.raises(ParamValidationError, match="colour"):
        check_request("kendra", "DescribeIndex", {"Id": "i" * 36, "colour": "red"})


def test_what_the_service_checks_is_answered_with_its_modeled_validation_exception() -> None:
    params = {"domainIdentifier": DATAZONE, "name": "L" * 257, "owningProjectIdentifier": "p" * 37, "status": "ON"}

    with pytest.raises(client_exceptions("datazone").ValidationException) as raised:
        check_request("datazone", "CreateGlossary", params)

    error = raised.value
    assert isinstance(error, ClientError)
    assert error.response["Error"]["Code"] == "ValidationException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    message = str(error)
    assert ".name: 257 characters, at most 256" in message
    assert ".owningProjectIdentifier: 'ppp" in message and "does not match the pattern" in message
    assert "'ON' is not one of DISABLED, ENABLED" in message


def test_the_service_checks_map_sizes_and_blob_lengths_that_botocore_does_not() -> None:
    forms_shape = load_model("datazone").operation_model("CreateAssetType").input_shape.members["formsInput"]
    forms = {f"Form{n}": {"typeIdentifier": "F", "typeRevision": "1"} for n in range(11)}
    event_shape = load_model("datazone").operation_model("PostLineageEvent").input_shape.members["event"]

    assert service_problems(forms, forms_shape, "formsInput") == ["formsInput: 11 entries, at most 10 allowed"]
    assert service_problems(b"x" * 300_001, event_shape, "event") == ["event: 300001 bytes, at most 300000 allowed"]
    assert service_problems(b"x" * 300_000, event_shape, "event") == []


def test_an_error_code_the_operation_does_not_declare_is_a_bug_in_the_fake() -> None:
    with pytest.raises(ModelViolation, match="Search declares no ResourceNotFoundException"):
        service_error("datazone", "Search", "ResourceNotFoundException", "no such domain")

    throttled = service_error("kendra", "Query", "ThrottlingException", "Rate exceeded")
    assert isinstance(throttled, client_exceptions("kendra").ThrottlingException)


def test_a_response_the_model_does_not_allow_is_a_bug_in_the_fake() -> None:
    response = {"domainId": DATAZONE, "id": "not 14 chars", "processingStatus": "DONE", "createdAt": "today"}

    with pytest.raises(ModelViolation) as raised:
        check_response("datazone", "GetLineageEvent", response)

    message = str(raised.value)
    assert "does not match the pattern" in message
    assert "'DONE' is not one of" in message
    assert "must be a datetime" in message
    check_response("datazone", "GetLineageEvent", {"id": "abcdefghij1234", "createdAt": datetime.now(UTC)})


def test_an_operation_without_output_may_only_answer_nothing() -> None:
    check_response("kendra", "UpdateIndex", {})

    with pytest.raises(ModelViolation, match="no output is modeled"):
        check_response("kendra", "UpdateIndex", {"Status": "UPDATING"})


class Ticking:
    """A clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class DescribeOnly(FakeServiceClient):
    service_name = "kendra"

    def describe_index(self, **params: Any) -> dict[str, Any]:
        self._receive("DescribeIndex", params)
        return self._reply("DescribeIndex", {"Id": params["Id"], "Status": "ACTIVE"})


def test_throttled_calls_reached_the_service_and_are_counted_then_calls_go_through() -> None:
    clock = Ticking()
    client = DescribeOnly(clock=clock)
    client.throttle("DescribeIndex", times=2)

    for _ in range(2):
        with pytest.raises(client.exceptions.ThrottlingException):
            client.describe_index(Id="i" * 36)
        clock.now += 0.01
    assert client.describe_index(Id="i" * 36)["Status"] == "ACTIVE"

    assert client.call_counts["DescribeIndex"] == 3
    assert client.call_times["DescribeIndex"] == [0.0, 0.01, 0.02]


def test_a_request_boto3_refuses_never_reaches_the_service_so_it_is_not_counted() -> None:
    client = DescribeOnly()

    with pytest.raises(ParamValidationError):
        client.describe_index()

    assert client.call_counts == {} and client.calls == []


def test_the_peak_rate_is_the_most_calls_within_any_one_second() -> None:
    clock = Ticking()
    client = DescribeOnly(clock=clock)
    for moment in [0.0, 0.3, 0.6, 0.99, 1.0, 1.5, 3.0]:
        clock.now = moment
        client.describe_index(Id="i" * 36)

    assert client.peak_calls_per_second() == 4
    assert client.peak_calls_per_second("DescribeIndex") == 4
    assert client.peak_calls_per_second("Query") == 0


def test_throttling_an_operation_that_cannot_be_throttled_or_does_not_exist_is_refused() -> None:
    client = DescribeOnly()

    with pytest.raises(ModelViolation, match="GetSnapshots declares no ThrottlingException"):
        client.throttle("GetSnapshots")
    with pytest.raises(ModelViolation, match="kendra has no operation DescribeIndexes"):
        client.throttle("DescribeIndexes")
