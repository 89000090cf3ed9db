"""AWS HealthOmics sequence stores: read sets imported from S3 with ``StartReadSetImportJob``.

The requests follow botocore's service model for ``omics``: a job takes 1 to
100 sources, each with ``sourceFiles.source1`` (and ``source2`` for the R2
file of a paired FASTQ), a ``sourceFileType``, and a ``subjectId`` and
``sampleId`` that the service requires; ``description`` must be 1 to 255
characters when given, so an empty one is left out rather than sent.

``GetReadSetImportJob`` reports every source it was given, in order, with its
own ``status`` (NOT_STARTED, IN_PROGRESS, FINISHED, FAILED), ``statusMessage``
and, once imported, ``readSetId``: the read set ids come from the job itself,
with no need to search the store for read sets by name or sample afterwards.
A source that fails leaves the others alone: the job ends
COMPLETED_WITH_FAILURES, or FAILED when none imported.

Before a job is started, `HealthOmicsSequenceStore.check_sources` compares
each source bucket's Region with the store's (``GetSequenceStore``'s ARN) and
reads its default encryption (`source_buckets`), given an S3 client.

Throttling and 5xx responses are retried by the client's adaptive retries
(`labmesh_dagster.connectors.aws.make_client`); what is left is raised as
`OmicsImportError` naming the job or store, with the service's error chained.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from typing import Any

from labmesh_dagster.connectors.aws import clear_failure
from labmesh_dagster.connectors.omics.base import (
    MAX_SOURCES_PER_JOB,
    ImportedReadSet,
    ImportResult,
    OmicsImportError,
    ReadSetSource,
    SequenceStore,
    SourceCheck,
)
from labmesh_dagster.connectors.omics.source_buckets import arn_region, bucket_of, check_buckets

# SequenceStoreId and ImportJobId: 10 to 36 digits.
_NUMERIC_ID = re.compile(r"[0-9]{10,36}")


def _clear_failure(action: str) -> contextlib.AbstractContextManager[None]:
    return clear_failure("HealthOmics", action, OmicsImportError)


def source_item(source: ReadSetSource) -> dict[str, Any]:
    """One member of StartReadSetImportJob's ``sources``."""
    files = {"source1": source.files[0]}
    if len(source.files) > 1:
        files["source2"] = source.files[1]
    item: dict[str, Any] = {
        "sourceFiles": files,
        "sourceFileType": source.file_type,
        "subjectId": source.subject_id,
        "sampleId": source.sample_id,
        "name": source.name,
    }
    if source.description:
        item["description"] = source.description
    if source.reference_arn:
        item["referenceArn"] = source.reference_arn
    if source.tags:
        item["tags"] = dict(source.tags)
    return item


class HealthOmicsSequenceStore(SequenceStore):
    """One HealthOmics sequence store; ``role_arn`` is the role the service assumes to read the raw zone's files.

    ``s3_client`` reaches the raw bucket for `check_sources`; without it the buckets are left unchecked.
    """

    def __init__(self, client: Any, *, sequence_store_id: str, role_arn: str, s3_client: Any = None) -> None:
        if not _NUMERIC_ID.fullmatch(sequence_store_id):
            raise ValueError(f"sequence store id {sequence_store_id!r} must be the store's id of 10 to 36 digits")
        if not role_arn.startswith("arn:") or not 20 <= len(role_arn) <= 2048:
            raise ValueError(f"role {role_arn!r} must be an IAM role ARN")
        self.client = client
        self.s3_client = s3_client
        self.sequence_store_id = sequence_store_id
        self.role_arn = role_arn
        self._region: str | None = None

    def region(self) -> str | None:
        """The store's Region, from its ARN (``GetSequenceStore``), asked once."""
        if self._region is None:
            with _clear_failure(f"describe sequence store {self.sequence_store_id}"):
                response = self.client.get_sequence_store(id=self.sequence_store_id)
            self._region = arn_region(str(response["arn"]))
        return self._region

    def check_sources(self, uris: Sequence[str]) -> SourceCheck:
        buckets = {bucket_of(uri) for uri in uris}
        if not buckets:
            return SourceCheck()
        if self.s3_client is None:
            return SourceCheck(unchecked=tuple(f"the Region and encryption of bucket {b}" for b in sorted(buckets)))
        return check_buckets(self.s3_client, buckets, store_region=self.region(), role_arn=self.role_arn)

    def start_import(self, sources: Sequence[ReadSetSource], *, client_token: str) -> str:
        if not sources:
            raise ValueError("an import job needs at least one source")
        if len(sources) > MAX_SOURCES_PER_JOB:
            raise ValueError(
                f"an import job takes at most {MAX_SOURCES_PER_JOB} sources, got {len(sources)}: split them into jobs"
            )
        with _clear_failure(f"start a read set import into sequence store {self.sequence_store_id}"):
            response = self.client.start_read_set_import_job(
                sequenceStoreId=self.sequence_store_id,
                roleArn=self.role_arn,
                clientToken=client_token,
                sources=[source_item(source) for source in sources],
            )
        return str(response["id"])

    def import_status(self, job_id: str) -> ImportResult:
        with _clear_failure(f"report import job {job_id} of sequence store {self.sequence_store_id}"):
            response = self.client.get_read_set_import_job(id=job_id, sequenceStoreId=self.sequence_store_id)
        read_sets = []
        for item in response.get("sources", []):
            files = item["sourceFiles"]
            read_sets.append(
                ImportedReadSet(
                    files=tuple(files[name] for name in ("source1", "source2") if files.get(name)),
                    # Only a FINISHED source counts as imported, whatever id a failed one might carry.
                    read_set_id=item.get("readSetId") if item["status"] == "FINISHED" else None,
                    status=str(item["status"]),
                    message=str(item.get("statusMessage", "")),
                )
            )
        return ImportResult(
            job_id=str(response["id"]),
            status=str(response["status"]),
            read_sets=tuple(read_sets),
            message=str(response.get("statusMessage", "")),
        )
