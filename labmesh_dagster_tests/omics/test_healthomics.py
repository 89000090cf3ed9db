"""The HealthOmics sequence store sends model-valid import requests and reads each source's outcome from the job.

Pinned here, against a fake held to botocore's ``omics`` model: a paired FASTQ
is one source with ``source1``/``source2``; an aligned BAM is imported against
its reference; an empty description is left out (the model wants 1-255
characters); a start retried with the same client token returns the same job,
while the token reused for other sources is refused; waiting polls until a
terminal status and returns every source's read set id, status and message;
COMPLETED_WITH_FAILURES and FAILED are outcomes, not exceptions; waiting
longer than the timeout raises `OmicsImportTimeout` naming the job; and the
fake itself rejects what the model rejects, so its approval means something,
and does what the HealthOmics documentation says the service does: a FASTQ
that is not gzip fails inside the job as its own source, with a status
message, next to the sources that import; an aligned source without a
reference is refused; uBAM goes in without one; the store reports its ARN.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from labmesh_dagster.connectors.omics import (
    ImportedReadSet,
    ImportResult,
    OmicsImportError,
    OmicsImportTimeout,
    ReadSetSource,
)
from labmesh_dagster.connectors.omics.healthomics import HealthOmicsSequenceStore, source_item
from labmesh_dagster.steps.read_set_import import read_set_metadata
from labmesh_dagster_tests.omics.fake_omics import NOT_GZIP, FakeOmicsClient, ModelViolation, check_response

STORE_ID = "1234567890"
ROLE = "arn:aws:iam::123456789012:role/labmesh-omics-import"
REFERENCE = "arn:aws:omics:eu-west-1:123456789012:referenceStore/9876543210/reference/1122334455"
R1 = "s3://labmesh-raw/EXP-1/run1/S1_L001_R1_001.fastq.gz"
R2 = "s3://labmesh-raw/EXP-1/run1/S1_L001_R2_001.fastq.gz"
SINGLE = "s3://labmesh-raw/EXP-1/run1/S2.fastq.gz"
BAM = "s3://labmesh-raw/EXP-1/aligned/S1.bam"
TAGS = {"experimentId": "EXP-1", "labmesh": "raw"}


def paired(files: tuple[str, ...] = (R1, R2), sample: str = "S1") -> ReadSetSource:
    return ReadSetSource(
        files=files,
        file_type="FASTQ",
        subject_id="P-007",
        sample_id=sample,
        name=f"{sample}_L001",
        description="RNA-seq of liver (labmesh experiment EXP-1)",
        tags=TAGS,
    )


def single(uri: str = SINGLE, sample: str = "S2") -> ReadSetSource:
    return ReadSetSource(files=(uri,), file_type="FASTQ", subject_id=sample, sample_id=sample, name=sample, tags=TAGS)


def store_for(client: FakeOmicsClient) -> HealthOmicsSequenceStore:
    return HealthOmicsSequenceStore(client, sequence_store_id=STORE_ID, role_arn=ROLE)


class FakeTime:
    """A clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def waiting(store: HealthOmicsSequenceStore, clock: FakeTime, timeout: float = 600) -> Callable[[str], ImportResult]:
    return lambda job_id: store.wait_for_import(
        job_id, timeout_seconds=timeout, poll_seconds=30, sleep=clock.sleep, clock=clock.clock
    )


def test_a_paired_fastq_is_one_source_with_r1_and_r2_and_its_sample_subject_and_tags() -> None:
    client = FakeOmicsClient()

    job_id = store_for(client).start_import([paired()], client_token="labmesh-EXP-1-abc")

    assert client.calls == [
        (
            "StartReadSetImportJob",
            {
                "sequenceStoreId": STORE_ID,
                "roleArn": ROLE,
                "clientToken": "labmesh-EXP-1-abc",
                "sources": [
                    {
                        "sourceFiles": {"source1": R1, "source2": R2},
                        "sourceFileType": "FASTQ",
                        "subjectId": "P-007",
                        "sampleId": "S1",
                        "name": "S1_L001",
                        "description": "RNA-seq of liver (labmesh experiment EXP-1)",
                        "tags": TAGS,
                    }
                ],
            },
        )
    ]
    assert job_id in client.jobs


def test_an_empty_description_is_left_out_because_the_model_wants_one_to_255_characters() -> None:
    item = source_item(single())

    assert "description" not in item
    assert "referenceArn" not in item
    assert item["sourceFiles"] == {"source1": SINGLE}


def test_a_bam_needs_a_reference_and_is_imported_against_it() -> None:
    with pytest.raises(ValueError, match="reference"):
        ReadSetSource(files=(BAM,), file_type="BAM", subject_id="S1", sample_id="S1", name="S1")
    client = FakeOmicsClient()
    bam = ReadSetSource(
        files=(BAM,), file_type="BAM", subject_id="S1", sample_id="S1", name="S1", reference_arn=REFERENCE
    )

    store_for(client).start_import([bam], client_token="token-bam")

    item = client.calls[0][1]["sources"][0]
    assert item["sourceFileType"] == "BAM"
    assert item["referenceArn"] == REFERENCE
    assert item["sourceFiles"] == {"source1": BAM}


def test_sources_are_checked_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="1 file"):
        ReadSetSource(
            files=(BAM, BAM), file_type="CRAM", subject_id="S", sample_id="S", name="S", reference_arn=REFERENCE
        )
    with pytest.raises(ValueError, match="not one of"):
        ReadSetSource(files=(SINGLE,), file_type="FASTA", subject_id="S", sample_id="S", name="S")
    with pytest.raises(ValueError, match="s3://"):
        ReadSetSource(files=("/data/S2.fastq.gz",), file_type="FASTQ", subject_id="S", sample_id="S", name="S")
    store = store_for(FakeOmicsClient())
    with pytest.raises(ValueError, match="at most 100"):
        store.start_import(
            [single(f"s3://labmesh-raw/EXP-1/S{n}.fq.gz", f"S{n}") for n in range(101)], client_token="t"
        )
    with pytest.raises(ValueError, match="10 to 36 digits"):
        HealthOmicsSequenceStore(FakeOmicsClient(), sequence_store_id="seq-store", role_arn=ROLE)


def test_a_retried_start_with_the_same_token_returns_the_same_job() -> None:
    client = FakeOmicsClient()
    store = store_for(client)

    first = store.start_import([paired(), single()], client_token="labmesh-EXP-1-abc")
    retried = store.start_import([paired(), single()], client_token="labmesh-EXP-1-abc")

    assert retried == first
    assert list(client.jobs) == [first]


def test_the_same_token_for_other_sources_is_refused() -> None:
    store = store_for(FakeOmicsClient())
    store.start_import([paired()], client_token="labmesh-EXP-1-abc")

    with pytest.raises(OmicsImportError, match="already used") as raised:
        store.start_import([single()], client_token="labmesh-EXP-1-abc")

    assert isinstance(raised.value.__cause__, ClientError)


def test_waiting_polls_until_the_job_completes_and_returns_each_read_set_id() -> None:
    client = FakeOmicsClient(polls_to_finish=3)
    store, clock = store_for(client), FakeTime()
    job_id = store.start_import([paired(), single()], client_token="labmesh-EXP-1-abc")

    result = waiting(store, clock)(job_id)

    assert result.job_id == job_id
    assert result.status == "COMPLETED"
    assert [(read_set.files, read_set.status) for read_set in result.read_sets] == [
        ((R1, R2), "FINISHED"),
        ((SINGLE,), "FINISHED"),
    ]
    ids = [read_set.read_set_id for read_set in result.read_sets]
    assert all(read_set_id and read_set_id.isdigit() for read_set_id in ids) and len(set(ids)) == 2
    assert clock.sleeps == [30, 30]
    assert read_set_metadata(result) == {R1: ids[0], R2: ids[0], SINGLE: ids[1]}


def test_the_status_before_completion_is_reported_without_read_set_ids() -> None:
    client = FakeOmicsClient(polls_to_finish=5)
    store = store_for(client)
    job_id = store.start_import([single()], client_token="t1")

    statuses = [store.import_status(job_id) for _ in range(3)]

    assert [result.status for result in statuses] == ["SUBMITTED", "IN_PROGRESS", "IN_PROGRESS"]
    assert statuses[0].read_sets == (ImportedReadSet((SINGLE,), None, "NOT_STARTED"),)
    assert statuses[2].read_sets == (ImportedReadSet((SINGLE,), None, "IN_PROGRESS"),)
    assert not statuses[2].finished


def test_completed_with_failures_reports_each_file_with_its_status_and_message() -> None:
    client = FakeOmicsClient(polls_to_finish=1, failures={SINGLE: "File is not a valid FASTQ file"})
    store, clock = store_for(client), FakeTime()
    job_id = store.start_import([paired(), single()], client_token="labmesh-EXP-1-abc")

    result = waiting(store, clock)(job_id)

    assert result.status == "COMPLETED_WITH_FAILURES"
    good, bad = result.read_sets
    assert good.status == "FINISHED" and good.read_set_id is not None
    assert bad == ImportedReadSet((SINGLE,), None, "FAILED", "File is not a valid FASTQ file")
    assert result.failed == (bad,)
    assert read_set_metadata(result, key_of=lambda uri: "raw/" + uri.split("/", 3)[3]) == {
        "raw/EXP-1/run1/S1_L001_R1_001.fastq.gz": good.read_set_id,
        "raw/EXP-1/run1/S1_L001_R2_001.fastq.gz": good.read_set_id,
    }


def test_a_failed_job_is_returned_with_its_message_and_no_read_sets() -> None:
    client = FakeOmicsClient(polls_to_finish=2, job_failure="Access denied to s3://labmesh-raw")
    store, clock = store_for(client), FakeTime()
    job_id = store.start_import([paired(), single()], client_token="labmesh-EXP-1-abc")

    result = waiting(store, clock)(job_id)

    assert result.status == "FAILED"
    assert result.message == "Access denied to s3://labmesh-raw"
    assert [read_set.status for read_set in result.read_sets] == ["FAILED", "FAILED"]
    assert read_set_metadata(result) == {}


def test_waiting_past_the_timeout_raises_naming_the_job_and_its_last_status() -> None:
    client = FakeOmicsClient(polls_to_finish=1000)
    store, clock = store_for(client), FakeTime()
    job_id = store.start_import([single()], client_token="t1")

    with pytest.raises(OmicsImportTimeout, match=f"{job_id} is still IN_PROGRESS after 100s") as raised:
        waiting(store, clock, timeout=100)(job_id)

    assert raised.value.job_id == job_id
    assert clock.sleeps == [30, 30, 30, 10]
    assert clock.now == 100


def test_a_job_finishing_during_the_last_sleep_is_returned_not_timed_out() -> None:
    client = FakeOmicsClient(polls_to_finish=3)
    store, clock = store_for(client), FakeTime()
    job_id = store.start_import([single()], client_token="t1")

    assert waiting(store, clock, timeout=60)(job_id).status == "COMPLETED"


def test_an_unknown_job_is_reported_as_an_import_error() -> None:
    with pytest.raises(OmicsImportError, match="ResourceNotFoundException"):
        store_for(FakeOmicsClient()).import_status("4999999999")


def test_the_fake_rejects_a_request_without_a_role_as_boto3_would() -> None:
    client = FakeOmicsClient()

    with pytest.raises(ParamValidationError, match="roleArn"):
        client.start_read_set_import_job(sequenceStoreId=STORE_ID, sources=[source_item(single())])
    with pytest.raises(ParamValidationError, match="description"):
        client.start_read_set_import_job(
            sequenceStoreId=STORE_ID, roleArn=ROLE, sources=[{**source_item(single()), "description": ""}]
        )
    with pytest.raises(ParamValidationError, match="readSetName"):
        client.start_read_set_import_job(
            sequenceStoreId=STORE_ID, roleArn=ROLE, sources=[{**source_item(single()), "readSetName": "S2"}]
        )
    assert client.calls == []


def test_the_fake_rejects_what_the_service_checks_and_botocore_does_not() -> None:
    client = FakeOmicsClient()
    too_long = {**source_item(single()), "name": "x" * 128, "sourceFileType": "FASTA"}
    control = {**source_item(single()), "sampleId": "S2\n"}

    with pytest.raises(ClientError, match="ValidationException") as raised:
        client.start_read_set_import_job(
            sequenceStoreId=STORE_ID, roleArn=ROLE, clientToken="t" * 128, sources=[too_long, control]
        )

    message = str(raised.value)
    assert "clientToken: 128 characters, at most 127" in message
    assert "sources[0].name: 128 characters" in message
    assert "'FASTA' is not one of" in message
    assert "sources[1].sampleId" in message


def test_the_fake_checks_its_own_responses_against_the_model() -> None:
    response = {
        "id": "4000000000",
        "sequenceStoreId": STORE_ID,
        "roleArn": ROLE,
        "status": "DONE",
        "creationTime": "2025-01-06T09:00:00Z",
        "readSetIds": [],
    }

    with pytest.raises(ModelViolation) as raised:
        check_response("StartReadSetImportJob", response)

    message = str(raised.value)
    assert "readSetIds" in message and "'DONE' is not one of" in message and "must be a datetime" in message
    valid = {key: value for key, value in response.items() if key != "readSetIds"}
    check_response("StartReadSetImportJob", {**valid, "status": "SUBMITTED", "creationTime": datetime.now(UTC)})


def test_a_fastq_that_is_not_gzip_fails_in_the_job_as_its_own_source_with_a_message() -> None:
    """HealthOmics takes "FASTQ (gzip-only)": the bytes decide, and the other sources still import."""
    plain = "s3://labmesh-raw/EXP-1/run1/S3.fastq.gz"
    heads = {R1: b"\x1f\x8b\x08", R2: b"\x1f\x8b\x08", plain: b"@r1\nACGT\n"}
    client = FakeOmicsClient(polls_to_finish=1, read_head=heads.get)
    store, clock = store_for(client), FakeTime()
    job_id = store.start_import([paired(), single(plain, "S3")], client_token="t1")

    result = waiting(store, clock)(job_id)

    assert result.status == "COMPLETED_WITH_FAILURES"
    good, bad = result.read_sets
    assert good.status == "FINISHED" and good.read_set_id
    assert bad == ImportedReadSet((plain,), None, "FAILED", NOT_GZIP)


def test_a_file_that_is_not_there_fails_its_source_and_a_job_of_only_bad_files_fails() -> None:
    client = FakeOmicsClient(polls_to_finish=1, read_head={}.get)
    store, clock = store_for(client), FakeTime()

    result = waiting(store, clock)(store.start_import([single()], client_token="t1"))

    assert result.status == "FAILED"
    assert result.read_sets[0].message == f"Source file not found: {SINGLE}"


def test_an_aligned_source_without_a_reference_is_refused_and_a_ubam_goes_in_without_one() -> None:
    client = FakeOmicsClient(polls_to_finish=1)
    ubam = ReadSetSource(files=(BAM,), file_type="UBAM", subject_id="S1", sample_id="S1", name="S1")
    unreferenced = {**source_item(ubam), "sourceFileType": "BAM"}

    with pytest.raises(ClientError, match="ValidationException.*referenceArn"):
        client.start_read_set_import_job(sequenceStoreId=STORE_ID, roleArn=ROLE, sources=[unreferenced])
    store, clock = store_for(client), FakeTime()
    result = waiting(store, clock)(store.start_import([ubam], client_token="t-ubam"))

    assert "referenceArn" not in client.calls[-2][1]["sources"][0]
    assert result.status == "COMPLETED" and result.read_sets[0].read_set_id


def test_the_store_knows_its_region_from_its_arn() -> None:
    client = FakeOmicsClient(region="eu-west-1")

    assert store_for(client).region() == "eu-west-1"
    assert store_for(client).check_sources([]).problems == ()
