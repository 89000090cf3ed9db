"""Every catalog keeps what made each processed file, as the manifest said, with no schema of its own for it.

Pinned here: a processed dataset published with `produced_by` on its entries
(the pipeline, version, engine and run, command line, tool versions, inputs
with their sha256) is read back by `get_dataset` with every file's provenance
equal to what was published, and the pipelines of the dataset follow from it;
a new pipeline version is a new revision; a raw dataset reads back with none.
SQLite and PostgreSQL run each test: both keep each file's manifest entry as
JSON, so provenance needed no new column.
"""

from __future__ import annotations

from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest, ManifestEntry, Provenance, ProvenanceInput
from labmesh_dagster_tests.connectors.catalog_contract.conftest import AnyCatalog

READS = ManifestEntry(
    key="raw/EXP-1/S1_R1.fastq.gz", size=10, sha256="cd" * 32, format="fastq", created="2026-12-01T09:00:00+00:00"
)


def made_by(version: str) -> Provenance:
    return Provenance(
        pipeline="fastp",
        version=version,
        invocation_id=f"fastp-{version}",
        engine="local",
        engine_run_id="pid-7",
        run_id="run-1",
        command_line="fastp --in1 /work/in/S1_R1.fastq.gz --json /work/out/S1_R1.fastp.json",
        tool_versions={"fastp": "0.23.2"},
        inputs=(ProvenanceInput(READS.key, READS.sha256),),
    )


def report(version: str) -> Manifest:
    output = ManifestEntry(
        key="processed/EXP-1/fastp/fastq/S1_R1.fastp.json",
        size=5,
        sha256="ef" * 32,
        format="json",
        created="2026-12-01T10:00:00+00:00",
        derived_from=(READS.key,),
        produced_by=made_by(version),
    )
    return Manifest.build("EXP-1", "processed", [output])


def test_a_processed_files_provenance_is_read_back_as_it_was_published(catalog: AnyCatalog) -> None:
    catalog.upsert_experiment(ExperimentRecord(id="EXP-1", title="Liver"), {})
    catalog.upsert_dataset(Manifest.build("EXP-1", "raw", [READS]), "file:///raw/EXP-1/", run_id="run-0")
    first = catalog.upsert_dataset(report("1"), "file:///processed/EXP-1/", run_id="run-1")

    stored = catalog.get_dataset("EXP-1", Zone.PROCESSED)
    raw = catalog.get_dataset("EXP-1", Zone.RAW)

    assert stored is not None and raw is not None
    assert [entry.produced_by for entry in stored.files] == [made_by("1")]
    assert Manifest("EXP-1", Zone.PROCESSED, stored.files).pipelines == [("fastp", "1")]
    assert [entry.produced_by for entry in raw.files] == [None]
    assert catalog.upsert_dataset(report("2"), "file:///processed/EXP-1/", run_id="run-2").revision == (
        first.revision + 1
    )
    again = catalog.get_dataset("EXP-1", Zone.PROCESSED)
    assert again is not None and [entry.produced_by for entry in again.files] == [made_by("2")]
