"""A HealthOmics client for tests, held to botocore's own service model for ``omics``.

moto does not serve HealthOmics, so this fake stands in for
``boto3.client("omics")``. It is only worth having if it is as strict as the
service, so every request and every response is checked against the model:

- ``ParamValidator`` first, as a real boto3 client does before sending: a
  missing required member, an unknown member, a wrong type or a value below a
  minimum raises `botocore.exceptions.ParamValidationError`, exactly as boto3 would;
- then the constraints botocore leaves to the service (maximum lengths, enums,
  patterns): a violation raises a ``ValidationException`` `ClientError`
  listing every problem, as the service would answer.

Patterns are matched against the whole value (the service rejects a value
with anything around the allowed text). Responses are built from the model's
members only and checked the same way, with timestamps required to be
``datetime`` as botocore parses them; a response that breaks the model is a bug
in the fake and raises `ModelViolation`. Errors are only raised with codes the
operation declares: StartReadSetImportJob declares no ``ConflictException``,
so a client token reused with other parameters is answered with a
``ValidationException``.
"""

from __future__ import annotations

import copy
import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
from botocore.exceptions import ClientError, ParamValidationError
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator

# The model's one Unicode pattern: any letter, mark, separator, symbol, number or
# punctuation (Java's \p{..} classes, which Python's re does not know).
_UNICODE_TEXT = r"[\p{L}||\p{M}||\p{Z}||\p{S}||\p{N}||\p{P}]+"
_UNICODE_CATEGORIES = frozenset("LMZSNP")


class ModelViolation(AssertionError):
    """A response the fake built that the service model does not allow: a bug in the fake."""


@functools.cache
def omics_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("omics")


def operation(name: str) -> OperationModel:
    return omics_model().operation_model(name)


def _matches(pattern: str, value: str) -> bool:
    if pattern == _UNICODE_TEXT:
        return bool(value) and all(unicodedata.category(char)[0] in _UNICODE_CATEGORIES for char in value)
    if r"\p{" in pattern:
        # Refuse rather than pass a value the fake cannot judge: a silent pass would hide a bad request.
        raise ModelViolation(f"the fake cannot check the pattern {pattern!r}")
    return re.fullmatch(pattern, value) is not None


def service_problems(value: Any, shape: Shape, name: str = "", *, response: bool = False) -> list[str]:
    """What botocore does not check and the service does: maxima, enums, patterns (and datetimes in responses)."""
    problems: list[str] = []
    meta = shape.metadata
    if shape.type_name == "structure" and isinstance(value, Mapping):
        for member, member_value in value.items():
            if member in shape.members:
                problems += service_problems(member_value, shape.members[member], f"{name}.{member}", response=response)
    elif shape.type_name == "list" and isinstance(value, (list, tuple)):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{name}: {len(value)} items, at most {meta['max']} allowed")
        for index, item in enumerate(value):
            problems += service_problems(item, shape.member, f"{name}[{index}]", response=response)
    elif shape.type_name == "map" and isinstance(value, Mapping):
        for key, item in value.items():
            problems += service_problems(key, shape.key, f"{name} key {key!r}", response=response)
            problems += service_problems(item, shape.value, f"{name}[{key!r}]", response=response)
    elif shape.type_name == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{name}: {len(value)} characters, at most {meta['max']} allowed")
        if shape.enum and value not in shape.enum:
            problems.append(f"{name}: {value!r} is not one of {', '.join(shape.enum)}")
        if "pattern" in meta and not _matches(meta["pattern"], value):
            problems.append(f"{name}: {value!r} does not match the pattern {meta['pattern']}")
    elif shape.type_name in {"integer", "long"} and isinstance(value, int):
        if "max" in meta and value > meta["max"]:
            problems.append(f"{name}: {value} is above the maximum {meta['max']}")
    elif shape.type_name == "timestamp" and response and not isinstance(value, datetime):
        problems.append(f"{name}: {value!r} must be a datetime, as botocore parses timestamps")
    return problems


def check_request(operation_name: str, params: Mapping[str, Any]) -> None:
    """Raise what boto3 (client-side) or the service (``ValidationException``) would for an invalid request."""
    shape = operation(operation_name).input_shape
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise ParamValidationError(report=report.generate_report())
    problems = service_problems(params, shape)
    if problems:
        raise service_error(operation_name, "ValidationException", "; ".join(problems))


def check_response(operation_name: str, response: Mapping[str, Any]) -> None:
    shape = operation(operation_name).output_shape
    report = ParamValidator().validate(response, shape)
    problems = [report.generate_report()] if report.has_errors() else []
    problems += service_problems(response, shape, response=True)
    if problems:
        raise ModelViolation(f"{operation_name} response breaks the omics model: " + "; ".join(problems))


def service_error(operation_name: str, code: str, message: str) -> ClientError:
    """A `ClientError` as botocore raises it, only with an error code the operation declares."""
    declared = {error.name for error in operation(operation_name).error_shapes}
    if code not in declared:
        raise ModelViolation(f"{operation_name} declares no {code}; it declares {', '.join(sorted(declared))}")
    return ClientError({"Error": {"Code": code, "Message": message}}, operation_name)


@dataclass
class _Job:
    id: str
    token: str | None
    request: dict[str, Any]
    created: datetime
    polls: int = 0
    read_set_ids: dict[int, str] = field(default_factory=dict)


class FakeOmicsClient:
    """One sequence store's read set import jobs, answering like ``boto3.client("omics")``.

    A job is SUBMITTED when started and on the first status poll, IN_PROGRESS
    after, and ends on poll number ``polls_to_finish``. ``failures`` maps a
    source's ``source1`` URI to the message its import fails with;
    ``job_failure`` fails the whole job. The job then ends COMPLETED (no
    failures), COMPLETED_WITH_FAILURES (some) or FAILED (all, or ``job_failure``).
    """

    def __init__(
        self,
        *,
        sequence_store_id: str = "1234567890",
        polls_to_finish: int = 2,
        failures: Mapping[str, str] | None = None,
        job_failure: str | None = None,
    ) -> None:
        self.sequence_store_id = sequence_store_id
        self.polls_to_finish = polls_to_finish
        self.failures = dict(failures or {})
        self.job_failure = job_failure
        self.jobs: dict[str, _Job] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._tokens: dict[str, str] = {}
        self._next_read_set = 5_000_000_000
        self._clock = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)

    def _now(self) -> datetime:
        self._clock += timedelta(seconds=30)
        return self._clock

    def _store(self, operation_name: str, store_id: str) -> None:
        if store_id != self.sequence_store_id:
            raise service_error(operation_name, "ResourceNotFoundException", f"sequence store {store_id} not found")

    def start_read_set_import_job(self, **params: Any) -> dict[str, Any]:
        operation_name = "StartReadSetImportJob"
        check_request(operation_name, params)
        self.calls.append((operation_name, copy.deepcopy(params)))
        self._store(operation_name, params["sequenceStoreId"])
        token = params.get("clientToken")
        request = {key: copy.deepcopy(value) for key, value in params.items() if key != "clientToken"}
        if token is not None and token in self._tokens:
            job = self.jobs[self._tokens[token]]
            if job.request != request:
                raise service_error(
                    operation_name,
                    "ValidationException",
                    f"client token {token} was already used for import job {job.id} with other parameters",
                )
        else:
            job = _Job(id=str(4_000_000_000 + len(self.jobs)), token=token, request=request, created=self._now())
            self.jobs[job.id] = job
            if token is not None:
                self._tokens[token] = job.id
        response = {
            "id": job.id,
            "sequenceStoreId": self.sequence_store_id,
            "roleArn": job.request["roleArn"],
            "status": self._status(job)[0],
            "creationTime": job.created,
        }
        check_response(operation_name, response)
        return response

    def _status(self, job: _Job) -> tuple[str, list[str]]:
        """The job's status and each source's, as of the polls so far."""
        sources = job.request["sources"]
        if job.polls < self.polls_to_finish:
            status = "SUBMITTED" if job.polls <= 1 else "IN_PROGRESS"
            return status, ["NOT_STARTED" if status == "SUBMITTED" else "IN_PROGRESS"] * len(sources)
        if self.job_failure:
            return "FAILED", ["FAILED"] * len(sources)
        items = ["FAILED" if item["sourceFiles"]["source1"] in self.failures else "FINISHED" for item in sources]
        if "FAILED" not in items:
            return "COMPLETED", items
        return ("FAILED" if "FINISHED" not in items else "COMPLETED_WITH_FAILURES"), items

    def get_read_set_import_job(self, **params: Any) -> dict[str, Any]:
        operation_name = "GetReadSetImportJob"
        check_request(operation_name, params)
        self.calls.append((operation_name, copy.deepcopy(params)))
        self._store(operation_name, params["sequenceStoreId"])
        job = self.jobs.get(params["id"])
        if job is None:
            raise service_error(operation_name, "ResourceNotFoundException", f"import job {params['id']} not found")
        job.polls += 1
        status, item_statuses = self._status(job)
        response: dict[str, Any] = {
            "id": job.id,
            "sequenceStoreId": self.sequence_store_id,
            "roleArn": job.request["roleArn"],
            "status": status,
            "creationTime": job.created,
            "sources": [self._source(job, index, item_status) for index, item_status in enumerate(item_statuses)],
        }
        if status in {"COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED"}:
            response["completionTime"] = job.created + timedelta(minutes=job.polls)
        if status == "FAILED" and self.job_failure:
            response["statusMessage"] = self.job_failure
        elif status in {"COMPLETED_WITH_FAILURES", "FAILED"}:
            response["statusMessage"] = "One or more sources failed to import"
        check_response(operation_name, response)
        return response

    def _source(self, job: _Job, index: int, status: str) -> dict[str, Any]:
        request = job.request["sources"][index]
        # The request's source members, all of which the response item shares, plus status and read set id.
        item = copy.deepcopy(request)
        item["status"] = status
        if status == "FINISHED":
            if index not in job.read_set_ids:
                job.read_set_ids[index] = str(self._next_read_set)
                self._next_read_set += 1
            item["readSetId"] = job.read_set_ids[index]
        elif status == "FAILED":
            item["statusMessage"] = self.job_failure or self.failures[request["sourceFiles"]["source1"]]
        return item
