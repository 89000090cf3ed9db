"""HealthOmics import on the aws profile: raw FASTQ on S3 (moto's server) become read sets.

Contract: with a sequence store configured, `sequence_read_sets` imports an
experiment's raw gzip FASTQ files (R1/R2 as one paired read set, sample and
subject from the experiment, `experimentId` tag), waits for the job, and
records each file's read-set id in the raw manifest and the catalog,
publishing it as every dataset is published (every check passes); running it
again imports nothing twice; a file HealthOmics fails on fails the asset
check, naming it; a FASTQ that is not gzip is never sent, and the warning
check names it with why; a run that dies after a partly failed job leaves the
next run to import only the failed sources; every run takes a slot of the
`healthomics_import` pool. The HealthOmics client is a fake held to botocore's
own service model that reads the files' first bytes from moto, as the service
reads them from S3.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from labmesh_dagster.connectors.aws import make_client
from labmesh_dagster.connectors.omics import ReadSetSource
from labmesh_dagster.connectors.omics.healthomics import HealthOmicsSequenceStore
from labmesh_dagster.core.keys import Zone, manifest_key
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.defs.omics_assets import ALL_IMPORTABLE, ALL_IMPORTED, IMPORT_POOL
from labmesh_dagster_tests.conftest import Lab, aws_settings
from labmesh_dagster_tests.omics.fake_omics import NOT_GZIP, FakeOmicsClient, s3_head_reader

FASTQ = b"@r1\nACGT\n+\nIIII\n"
FASTQ_GZ = gzip.compress(FASTQ, mtime=0)
ROLE = "arn:aws:iam::123456789012:role/labmesh-omics-import"
RECORD = {
    "id": "EXP-1",
    "title": "Tumour exomes",
    "platform": "Illumina NovaSeq",
    "samples": [{"id": "S1", "subject_id": "PATIENT-7"}, {"id": "S2"}],
}


@pytest.fixture
def omics_lab(tmp_path: Path, moto_endpoint: str, s3_buckets: dict[str, str], instance: dg.DagsterInstance) -> Lab:
    settings = aws_settings(
        tmp_path / "home",
        moto_endpoint,
        s3_buckets,
        LABMESH_OMICS_SEQUENCE_STORE_ID="1234567890",
        LABMESH_OMICS_ROLE_ARN=ROLE,
        LABMESH_OMICS_POLL_SECONDS="0.01",
    )
    lab = Lab(settings, instance)
    lab.write_record("exp.yaml", RECORD)
    lab.run_sensor("eln_sensor")
    for name in ("S1_R1.fastq.gz", "S1_R2.fastq.gz", "S2.fastq.gz"):
        lab.land("EXP-1", name, FASTQ_GZ)
    lab.land("EXP-1", "notes.txt", b"library prep notes\n")
    lab.run_sensor("landing_sensor")
    return lab


@pytest.fixture
def read_head(moto_endpoint: str) -> Any:
    """How the fake HealthOmics reads a source file's first bytes: from moto, where labmesh put it."""
    return s3_head_reader(make_client("s3", endpoint_url=moto_endpoint, region_name="us-east-1"))


def _use(lab: Lab, client: Any) -> None:
    """HealthOmics, which moto does not serve, answers through the fake."""
    lab.clients.fakes["omics"] = client


def _check(result: dg.ExecuteInProcessResult, name: str) -> dg.AssetCheckEvaluation:
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == name]
    return check


class DiesAfterTheJob:
    """The fake, reached by a run whose process dies once it has seen the job end, before it records anything."""

    def __init__(self, fake: FakeOmicsClient) -> None:
        self.fake = fake

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fake, name)

    def get_read_set_import_job(self, **params: Any) -> dict[str, Any]:
        response = self.fake.get_read_set_import_job(**params)
        if response["status"] in {"COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED"}:
            raise RuntimeError(f"worker killed after job {params['id']} ended")
        return response


def test_raw_fastq_become_read_sets_recorded_in_the_manifest_and_catalog(omics_lab: Lab, read_head: Any) -> None:
    client = FakeOmicsClient(polls_to_finish=2, read_head=read_head)
    _use(omics_lab, client)

    result = omics_lab.materialize("sequence_read_sets", partition="EXP-1")

    assert result.success
    [start] = [params for name, params in client.calls if name == "StartReadSetImportJob"]
    sources = sorted(start["sources"], key=lambda s: s["sampleId"])
    assert [(s["sampleId"], s["subjectId"], sorted(s["sourceFiles"])) for s in sources] == [
        ("S1", "PATIENT-7", ["source1", "source2"]),
        ("S2", "S2", ["source1"]),
    ]
    assert all(s["tags"]["experimentId"] == "EXP-1" for s in sources)
    manifest = Manifest.from_json(omics_lab.store.read_bytes(manifest_key(Zone.RAW, "EXP-1")))
    ids = {entry.name: entry.metadata.get("healthomics_read_set_id") for entry in manifest.entries}
    assert ids["S1_R1.fastq.gz"] == ids["S1_R2.fastq.gz"] and ids["S2.fastq.gz"] and ids["notes.txt"] is None
    cataloged = omics_lab.catalog.get_dataset("EXP-1", "raw")
    assert cataloged.manifest_digest == manifest.digest

    assert all(check.passed for check in result.get_asset_check_evaluations())  # catalog, index, lineage too

    again = omics_lab.materialize("sequence_read_sets", partition="EXP-1")
    assert again.success
    assert [name for name, _ in client.calls].count("StartReadSetImportJob") == 1
    assert all(check.passed for check in again.get_asset_check_evaluations())


@pytest.mark.slow  # a whole import flow against the HealthOmics fake; the quick loop keeps the first
def test_a_file_healthomics_cannot_import_fails_the_check_by_name(omics_lab: Lab, read_head: Any) -> None:
    bucket = omics_lab.store.location(Zone.RAW, "EXP-1")
    failures = {f"{bucket}S2.fastq.gz": "Invalid FASTQ header"}
    client = FakeOmicsClient(polls_to_finish=1, failures=failures, read_head=read_head)
    _use(omics_lab, client)

    result = omics_lab.materialize("sequence_read_sets", partition="EXP-1")

    check = _check(result, ALL_IMPORTED)
    assert not check.passed
    assert (
        "S2.fastq.gz" in check.metadata["problems"].value and "Invalid FASTQ header" in check.metadata["problems"].value
    )


@pytest.mark.slow  # a whole import flow against the HealthOmics fake; the quick loop keeps the first
def test_a_fastq_that_is_not_gzip_is_never_sent_and_the_warning_names_it(omics_lab: Lab, read_head: Any) -> None:
    """HealthOmics takes FASTQ gzip-only: a plain one would only fail inside the job, so it stays out, by name."""
    omics_lab.land("EXP-1", "S2_extra.fastq", FASTQ)
    omics_lab.run_sensor("landing_sensor")
    client = FakeOmicsClient(polls_to_finish=1, read_head=read_head)
    _use(omics_lab, client)

    result = omics_lab.materialize("sequence_read_sets", partition="EXP-1")

    assert result.success
    [sent] = client.started_sources()
    assert not any(uri.endswith("S2_extra.fastq") for uri in sent) and len(sent) == 2
    assert _check(result, ALL_IMPORTED).passed
    warning = _check(result, ALL_IMPORTABLE)
    assert not warning.passed and warning.severity == dg.AssetCheckSeverity.WARN
    problems = warning.metadata["problems"].value
    assert "S2_extra.fastq: a FASTQ without compression" in problems and "gzip-compressed only" in problems


@pytest.mark.slow  # a whole import flow against the HealthOmics fake; the quick loop keeps the first
def test_the_fake_refuses_a_plain_fastq_named_gz_as_the_service_would(omics_lab: Lab, read_head: Any) -> None:
    """The fake reads the bytes, not the name: a misnamed plain FASTQ sent anyway fails inside the job."""
    bucket = omics_lab.store.location(Zone.RAW, "EXP-1")
    omics_lab.land("EXP-1", "S9.fastq.gz", FASTQ)
    omics_lab.run_sensor("landing_sensor")
    client = FakeOmicsClient(polls_to_finish=1, read_head=read_head)
    store = HealthOmicsSequenceStore(client, sequence_store_id="1234567890", role_arn=ROLE)
    sources = [
        ReadSetSource(files=(f"{bucket}{name}",), file_type="FASTQ", subject_id="S2", sample_id="S2", name=name)
        for name in ("S2.fastq.gz", "S9.fastq.gz")
    ]

    job_id = store.start_import(sources, client_token="t-misnamed")
    result = store.wait_for_import(job_id, timeout_seconds=60, poll_seconds=1, sleep=lambda _: None)

    assert result.status == "COMPLETED_WITH_FAILURES"
    assert [(rs.status, rs.message) for rs in result.read_sets] == [("FINISHED", ""), ("FAILED", NOT_GZIP)]


@pytest.mark.slow  # a whole import flow against the HealthOmics fake; the quick loop keeps the first
def test_a_crash_after_a_partly_failed_job_reimports_only_the_failed_sources(omics_lab: Lab, read_head: Any) -> None:
    bucket = omics_lab.store.location(Zone.RAW, "EXP-1")
    failures = {f"{bucket}S2.fastq.gz": "Invalid FASTQ header"}
    client = FakeOmicsClient(polls_to_finish=2, failures=failures, read_head=read_head)
    _use(omics_lab, DiesAfterTheJob(client))

    crashed = omics_lab.materialize("sequence_read_sets", partition="EXP-1", raise_on_error=False)
    assert not crashed.success
    manifest = Manifest.from_json(omics_lab.store.read_bytes(manifest_key(Zone.RAW, "EXP-1")))
    assert not any("healthomics_read_set_id" in entry.metadata for entry in manifest.entries)

    _use(omics_lab, client)
    result = omics_lab.materialize("sequence_read_sets", partition="EXP-1")

    assert [sorted(uri.rsplit("/", 1)[1] for uri in job) for job in client.started_sources()] == [
        ["S1_R1.fastq.gz", "S2.fastq.gz"],
        ["S2.fastq.gz"],
    ]
    manifest = Manifest.from_json(omics_lab.store.read_bytes(manifest_key(Zone.RAW, "EXP-1")))
    ids = {entry.name: entry.metadata.get("healthomics_read_set_id") for entry in manifest.entries}
    first_job = next(iter(client.jobs.values()))
    assert ids["S1_R1.fastq.gz"] == ids["S1_R2.fastq.gz"] == first_job.read_set_ids[0]
    assert (
        ids["S2.fastq.gz"] is None and "Invalid FASTQ header" in _check(result, ALL_IMPORTED).metadata["problems"].value
    )


@pytest.mark.slow  # a whole import flow against the HealthOmics fake; the quick loop keeps the first
def test_every_import_run_takes_a_slot_of_the_healthomics_import_pool(omics_lab: Lab) -> None:
    assets = omics_lab.defs.resolve_assets_def("sequence_read_sets")

    assert assets.op.pool == IMPORT_POOL == "healthomics_import"
