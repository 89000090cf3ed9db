"""A HealthOmics client for tests, held to botocore's own service model for ``omics`` and to the documented behaviour.

moto does not serve HealthOmics, so this fake stands in for
``boto3.client("omics")``. Requests and responses are checked against the
model as `labmesh_dagster_tests.service_model` describes: botocore's own
``ParamValidator`` first (`ParamValidationError`, as boto3 raises), then the
maxima, enums and patterns the service checks (a ``ValidationException``
listing every problem), and every response the fake builds (`ModelViolation`,
a bug in the fake). Errors are only raised with codes the operation declares:
StartReadSetImportJob declares no ``ConflictException``, so a client token
reused with other parameters is answered with a ``ValidationException``.

What it does beyond the model is what the HealthOmics documentation says the
service does, so that a test passing here means something:

- A sequence store takes "FASTQ (gzip-only)", uBAM, BAM and CRAM (Developer
  Guide, "Creating a HealthOmics sequence store"). A FASTQ source whose file
  is not gzip fails inside the job, as a bad file does: the source ends
  ``FAILED`` with a ``statusMessage`` and the job ``COMPLETED_WITH_FAILURES``
  (or ``FAILED`` when no source imported), per GetReadSetImportJob's
  per-source ``status`` and ``statusMessage``. The fake reads each file's first
  bytes through ``read_head`` (an S3 client, with `s3_head_reader`); without
  one it goes by the ``.gz`` suffix. A file ``read_head`` cannot find fails too.
- An import with an aligned source (BAM, CRAM) "must include a reference
  genome" ("Importing read sets into a HealthOmics sequence store"): one
  without ``referenceArn`` is refused with a ``ValidationException``.
- GetSequenceStore answers the store's ARN, whose Region is ``region``.

The wording of the messages is the fake's own: the service documents where a
failure appears, not its words.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from botocore.model import OperationModel, ServiceModel

from labmesh_dagster_tests import service_model
from labmesh_dagster_tests.service_model import FakeServiceClient, ModelViolation, service_problems

__all__ = [
    "FakeOmicsClient",
    "ModelViolation",
    "check_request",
    "check_response",
    "omics_model",
    "operation",
    "s3_head_reader",
    "service_error",
    "service_problems",
]

SERVICE = "omics"
GZIP_MAGIC = b"\x1f\x8b"
NOT_GZIP = "FASTQ files must be gzip compressed"
ALIGNED_FILE_TYPES = frozenset({"BAM", "CRAM"})


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


def s3_head_reader(s3: Any) -> Callable[[str], bytes | None]:
    """Read the first bytes of an ``s3://`` object through ``s3`` (moto's server), None if it is not there."""

    def read_head(uri: str) -> bytes | None:
        bucket, _, key = uri[len("s3://") :].partition("/")
        try:
            return bytes(s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-15")["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "NoSuchBucket", "404"}:
                return None
            raise

    return read_head


def _by_name(uri: str) -> bytes | None:
    return GZIP_MAGIC if uri.lower().endswith(".gz") else b"@"


@dataclass
class _Job:
    id: str
    token: str | None
    request: dict[str, Any]
    created: datetime
    outcomes: list[str | None]
    polls: int = 0
    read_set_ids: dict[int, str] = field(default_factory=dict)


class FakeOmicsClient(FakeServiceClient):
    """One sequence store's read set import jobs, answering like ``boto3.client("omics")``.

    A job is SUBMITTED when started and on the first status poll, IN_PROGRESS
    after, and ends on poll number ``polls_to_finish``. Each source's fate is
    settled when the job starts: it fails if its file is not what the store
    takes (see the module), or with the message ``failures`` maps its
    ``source1`` URI to; ``job_failure`` fails the whole job. The job then ends
    COMPLETED (no failures), COMPLETED_WITH_FAILURES (some) or FAILED (all, or
    ``job_failure``).
    """

    service_name = SERVICE

    def __init__(
        self,
        *,
        sequence_store_id: str = "1234567890",
        region: str = "us-east-1",
        account: str = "123456789012",
        polls_to_finish: int = 2,
        failures: Mapping[str, str] | None = None,
        job_failure: str | None = None,
        read_head: Callable[[str], bytes | None] | None = None,
    ) -> None:
        super().__init__()
        self.sequence_store_id = sequence_store_id
        self.region = region
        self.arn = f"arn:aws:omics:{region}:{account}:sequenceStore/{sequence_store_id}"
        self.polls_to_finish = polls_to_finish
        self.failures = dict(failures or {})
        self.job_failure = job_failure
        self.read_head = read_head or _by_name
        self.jobs: dict[str, _Job] = {}
        self._tokens: dict[str, str] = {}
        self._next_read_set = 5_000_000_000
        self._job_clock = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)

    def started_sources(self) -> list[list[str]]:
        """The ``source1`` URIs of each job the store created, in order: what was actually imported, or tried."""
        return [[item["sourceFiles"]["source1"] for item in job.request["sources"]] for job in self.jobs.values()]

    def _now(self) -> datetime:
        self._job_clock += timedelta(seconds=30)
        return self._job_clock

    def _store(self, operation_name: str, store_id: str) -> None:
        if store_id != self.sequence_store_id:
            raise self._missing(operation_name, f"sequence store {store_id} not found")

    def get_sequence_store(self, **params: Any) -> dict[str, Any]:
        operation_name = "GetSequenceStore"
        self._receive(operation_name, params)
        self._store(operation_name, params["id"])
        response = {
            "id": self.sequence_store_id,
            "arn": self.arn,
            "name": "labmesh-test",
            "creationTime": datetime(2025, 1, 1, tzinfo=UTC),
            "status": "ACTIVE",
        }
        return self._reply(operation_name, response)

    def _outcome(self, item: Mapping[str, Any]) -> str | None:
        """Why the source will fail, judged as the service would when the job reads it; None if it imports."""
        files = [item["sourceFiles"][name] for name in ("source1", "source2") if item["sourceFiles"].get(name)]
        for uri in files:
            head = self.read_head(uri)
            if head is None:
                return f"Source file not found: {uri}"[:127]
            if item["sourceFileType"] == "FASTQ" and not head.startswith(GZIP_MAGIC):
                return NOT_GZIP
        return self.failures.get(files[0])

    def start_read_set_import_job(self, **params: Any) -> dict[str, Any]:
        operation_name = "StartReadSetImportJob"
        self._receive(operation_name, params)
        self._store(operation_name, params["sequenceStoreId"])
        unreferenced = [
            index
            for index, item in enumerate(params["sources"])
            if item["sourceFileType"] in ALIGNED_FILE_TYPES and not item.get("referenceArn")
        ]
        if unreferenced:
            raise self._error(
                operation_name,
                "ValidationException",
                f"sources {unreferenced} are aligned (BAM or CRAM) and need a referenceArn",
            )
        token = params.get("clientToken")
        request = {key: copy.deepcopy(value) for key, value in params.items() if key != "clientToken"}
        if token is not None and token in self._tokens:
            job = self.jobs[self._tokens[token]]
            if job.request != request:
                raise self._error(
                    operation_name,
                    "ValidationException",
                    f"client token {token} was already used for import job {job.id} with other parameters",
                )
        else:
            job = _Job(
                id=str(4_000_000_000 + len(self.jobs)),
                token=token,
                request=request,
                created=self._now(),
                outcomes=[self._outcome(item) for item in request["sources"]],
            )
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
        return self._reply(operation_name, response)

    def _status(self, job: _Job) -> tuple[str, list[str]]:
        """The job's status and each source's, as of the polls so far."""
        sources = job.request["sources"]
        if job.polls < self.polls_to_finish:
            status = "SUBMITTED" if job.polls <= 1 else "IN_PROGRESS"
            return status, ["NOT_STARTED" if status == "SUBMITTED" else "IN_PROGRESS"] * len(sources)
        if self.job_failure:
            return "FAILED", ["FAILED"] * len(sources)
        items = ["FINISHED" if outcome is None else "FAILED" for outcome in job.outcomes]
        if "FAILED" not in items:
            return "COMPLETED", items
        return ("FAILED" if "FINISHED" not in items else "COMPLETED_WITH_FAILURES"), items

    def get_read_set_import_job(self, **params: Any) -> dict[str, Any]:
        operation_name = "GetReadSetImportJob"
        self._receive(operation_name, params)
        self._store(operation_name, params["sequenceStoreId"])
        job = self.jobs.get(params["id"])
        if job is None:
            raise self._missing(operation_name, f"import job {params['id']} not found")
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
        return self._reply(operation_name, response)

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
            item["statusMessage"] = self.job_failure or job.outcomes[index]
        return item
