"""Before any import job starts, the raw bucket is checked as HealthOmics needs it: same Region, readable keys.

Pinned here, with S3 served by moto and HealthOmics by the model-bound fake:
a bucket in the store's Region passes; a bucket in another Region stops the
import before any job starts, naming both Regions; a bucket that does not
exist is named; a bucket whose default encryption is SSE-KMS is reported as
needing ``kms:Decrypt`` on its key for the import role, and a source that
fails for want of access is named with that requirement; without an S3
client the buckets are reported unchecked rather than passed.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.connectors.aws import make_client
from labmesh_dagster.connectors.omics import OmicsImportError, OmicsSourceError
from labmesh_dagster.connectors.omics.healthomics import HealthOmicsSequenceStore
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.experiment import ExperimentRecord, Sample
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.steps.read_set_import import ImportPolicy, import_experiment
from labmesh_dagster.steps.read_set_journal import ImportJournal
from labmesh_dagster_tests.omics.fake_omics import FakeOmicsClient

STORE_ID = "1234567890"
ROLE = "arn:aws:iam::123456789012:role/labmesh-omics-import"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1111aaaa-2222-bbbb-3333-cccc4444dddd"


@pytest.fixture
def s3(moto_endpoint: str, aws_environment: None) -> Any:
    return make_client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


def bucket(s3: Any, region: str = "us-east-1", kms_key: str | None = None) -> str:
    name = f"lm-raw-{uuid.uuid4().hex[:10]}"
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    if kms_key:
        default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key}
        s3.put_bucket_encryption(
            Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": default}]}
        )
    return name


def store_for(client: FakeOmicsClient, s3: Any) -> HealthOmicsSequenceStore:
    return HealthOmicsSequenceStore(client, sequence_store_id=STORE_ID, role_arn=ROLE, s3_client=s3)


def test_a_bucket_in_the_stores_region_passes(s3: Any) -> None:
    name = bucket(s3)

    check = store_for(FakeOmicsClient(region="us-east-1"), s3).check_sources([f"s3://{name}/EXP-1/S1.fastq.gz"])

    assert check.problems == () and check.requirements == () and check.unchecked == ()


def test_a_bucket_in_another_region_stops_the_import_before_any_job(s3: Any, tmp_path: Path) -> None:
    name = bucket(s3, region="eu-west-1")
    client = FakeOmicsClient(region="us-east-1")
    manifest = Manifest.build(
        "EXP-1",
        "raw",
        [ManifestEntry("raw/EXP-1/S1.fastq.gz", 10, "0" * 64, "fastq.gz", "2025-01-06T09:00:00+00:00")],
    )
    experiment = ExperimentRecord(id="EXP-1", title="Liver", samples=(Sample("S1"),))
    policy = ImportPolicy(platforms=(), reference_arn=None, timeout_seconds=60, poll_seconds=1)
    journal = ImportJournal(LocalObjectStore(tmp_path), "EXP-1", STORE_ID)

    with pytest.raises(OmicsSourceError) as raised:
        import_experiment(
            store_for(client, s3),
            journal,
            manifest,
            experiment,
            policy,
            uri_of=lambda key: f"s3://{name}/" + key.split("/", 1)[1],
        )

    message = str(raised.value)
    assert f"raw bucket {name} is in eu-west-1 but the sequence store is in us-east-1" in message
    assert "no import started" in message
    assert client.jobs == {} and journal.jobs() == []


def test_a_bucket_that_does_not_exist_is_named(s3: Any) -> None:
    with pytest.raises(OmicsImportError, match="raw bucket lm-raw-missing-0 does not exist"):
        store_for(FakeOmicsClient(), s3).check_sources(["s3://lm-raw-missing-0/EXP-1/S1.fastq.gz"])


def test_an_sse_kms_bucket_needs_kms_decrypt_for_the_role_and_an_access_failure_says_so(
    s3: Any, tmp_path: Path
) -> None:
    name = bucket(s3, kms_key=KEY)
    uri = f"s3://{name}/EXP-1/S1.fastq.gz"
    client = FakeOmicsClient(polls_to_finish=1, failures={uri: "Access Denied reading the source file"})
    store = store_for(client, s3)
    manifest = Manifest.build(
        "EXP-1",
        "raw",
        [ManifestEntry("raw/EXP-1/S1.fastq.gz", 10, "0" * 64, "fastq.gz", "2025-01-06T09:00:00+00:00")],
    )
    experiment = ExperimentRecord(id="EXP-1", title="Liver", samples=(Sample("S1"),))
    policy = ImportPolicy(platforms=(), reference_arn=None, timeout_seconds=60, poll_seconds=1)

    check = store.check_sources([uri])
    result = import_experiment(
        store,
        ImportJournal(LocalObjectStore(tmp_path), "EXP-1", STORE_ID),
        manifest,
        experiment,
        policy,
        uri_of=lambda key: f"s3://{name}/" + key.split("/", 1)[1],
    )

    (requirement,) = check.requirements
    assert KEY in requirement and ROLE in requirement and "kms:Decrypt" in requirement
    assert result.requirements == check.requirements
    (problem,) = result.problems
    assert problem.startswith(f"{uri}: FAILED Access Denied") and "kms:Decrypt" in problem


def test_without_an_s3_client_the_buckets_are_unchecked_not_passed() -> None:
    store = HealthOmicsSequenceStore(FakeOmicsClient(), sequence_store_id=STORE_ID, role_arn=ROLE)

    check = store.check_sources(["s3://lm-raw-x/EXP-1/S1.fastq.gz"])

    assert check.unchecked == ("the Region and encryption of bucket lm-raw-x",)
