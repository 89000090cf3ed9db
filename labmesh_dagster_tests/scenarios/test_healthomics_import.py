"""HealthOmics import on the aws profile: raw FASTQ on S3 (moto's server) become read sets.

Contract: with a sequence store configured, `sequence_read_sets` imports an
experiment's raw FASTQ files (R1/R2 as one paired read set, sample and subject
from the experiment, `experimentId` tag), waits for the job, and records each
file's read-set id in the raw manifest and the catalog, publishing it as every
dataset is published (every check passes); running it again imports nothing
twice; a file HealthOmics fails on fails the asset check, naming it.
The HealthOmics client is a fake held to botocore's own service model.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from labmesh_dagster.core.keys import Zone, manifest_key
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster_tests.conftest import Lab, aws_settings
from labmesh_dagster_tests.omics.fake_omics import FakeOmicsClient

FASTQ = b"@r1\nACGT\n+\nIIII\n"
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
        LABMESH_OMICS_ROLE_ARN="arn:aws:iam::123456789012:role/labmesh-omics-import",
        LABMESH_OMICS_POLL_SECONDS="0.01",
    )
    lab = Lab(settings, instance)
    lab.write_record("exp.yaml", RECORD)
    lab.run_sensor("eln_sensor")
    for name in ("S1_R1.fastq.gz", "S1_R2.fastq.gz", "S2.fastq.gz"):
        lab.land("EXP-1", name, FASTQ)
    lab.land("EXP-1", "notes.txt", b"library prep notes\n")
    lab.run_sensor("landing_sensor")
    return lab


def _use(lab: Lab, client: FakeOmicsClient) -> None:
    """HealthOmics, which moto does not serve, answers through the fake."""
    lab.clients.fakes["omics"] = client


def test_raw_fastq_become_read_sets_recorded_in_the_manifest_and_catalog(omics_lab: Lab) -> None:
    client = FakeOmicsClient(polls_to_finish=2)
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


def test_a_file_healthomics_cannot_import_fails_the_check_by_name(omics_lab: Lab) -> None:
    bucket = omics_lab.store.location(Zone.RAW, "EXP-1")
    client = FakeOmicsClient(polls_to_finish=1, failures={f"{bucket}S2.fastq.gz": "Invalid FASTQ header"})
    _use(omics_lab, client)

    result = omics_lab.materialize("sequence_read_sets", partition="EXP-1")

    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "every_sequencing_file_imported"]
    assert not check.passed
    assert (
        "S2.fastq.gz" in check.metadata["problems"].value and "Invalid FASTQ header" in check.metadata["problems"].value
    )
