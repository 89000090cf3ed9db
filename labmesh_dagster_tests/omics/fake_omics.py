"""A HealthOmics client for tests, held to botocore's own service model for ``omics``.

moto does not serve HealthOmics, so this fake stands in for
``boto3.client("omics")``. Requests and responses are checked against the
model as `labmesh_dagster_tests.service_model` describes: botocore's own
``ParamValidator`` first (`ParamValidationError`, as boto3 raises), then the
maxima, enums and patterns the service checks (a ``ValidationException``
listing every problem), and every response the fake builds (`ModelViolation`,
a bug in the fake). Errors are only raised with codes the operation declares:
StartReadSetImportJob declares no ``ConflictException``, so a client token
reused with other parameters is answered with a ``ValidationException``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from botocore.model import OperationModel, ServiceModel

from labmesh_dagster_tests import service_model
from labmesh_dagster_tests.service_model import ModelViolation, service_problems

__all__ = [
    "FakeOmicsClient",
    "ModelViolation",
    "check_request",
    "check_response",
    "omics_model",
    "operation",
    "service_error",
    "service_problems",
]

SERVICE = "omics"


def omics_model() -> ServiceModel:
    return service_model.load_model(SERVICE)


def operation(name: str) -> OperationModel:
    return service_model.operation_model(SERVICE, name)


def check_request(operation_name: str, params: Mapping[str, Any]) -> None:
    """Raise what boto3 (client-side) or the service (``ValidationException``) would for an invalid request."""
    service_model.check_request(SERVICE, operation_name, params)


def check_response(operation_name: str, response: Mapping[str, Any]) -> None:
    service_model.check_response(SERVICE, operation_name, response)


def service_error(operation_name: str, code: str, message: str) -> ClientError:
    """A `ClientError` as botocore raises it, only with an error code the operation declares."""
    return service_model.service_error(SERVICE, operation_name, code, message)


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
