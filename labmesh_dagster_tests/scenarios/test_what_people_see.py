"""What people see in the Dagster UI says what is true of each experiment.

Contract: every asset check result belongs to its experiment's partition (so
the UI shows it per partition, not "Not evaluated"); processed metadata counts
the FASTQ files QC could not read, names them, and fails a check for them,
an empty FASTQ included, and a tool that failed fails the run and its own
check, naming the input; a file table cut short says how much of the dataset
it shows and where the rest is. Locations (the experiment's folder in every
zone, a dataset's folder and manifest) are paths to copy, never ``file://``
links a browser will not open, on the local profile and on S3 alike, and
`see_files` is a `labmesh` command that lists the dataset's files with theirs.
"""

from __future__ import annotations

import shlex

import dagster as dg
import pytest

from labmesh_dagster import cli
from labmesh_dagster.core.keys import ObjectKey, Zone, manifest_key
from labmesh_dagster.core.locations import copyable_location
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.defs.dataset_assets import FILE_TABLE_LIMIT, files_shown
from labmesh_dagster.defs.processed_assets import PIPELINES_SUCCEEDED, QC_PASSED
from labmesh_dagster_tests.conftest import Lab

# What people see of QC is what the real tools (fastp) report.
pytestmark = pytest.mark.real_tools

GOOD = b"@r1\nACGTACGT\n+\nIIIIIIII\n"
TRUNCATED = b"@r1\nACGTACGT\n+\nIIII"


def materialization_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return {name: value.value for name, value in event.materialization.metadata.items()}


def flow_with_raw(lab: Lab, files: dict[str, bytes]) -> None:
    lab.write_record("exp.yaml", {"id": "EXP-9", "title": "QC", "samples": ["S1", "S2", "S3"]})
    lab.run_sensor("eln_sensor")
    for path, content in files.items():
        lab.land("EXP-9", path, content)
    assert [run.success for run in lab.run_sensor("landing_sensor")] == [True]


def test_every_check_result_belongs_to_its_experiment_partition(lab: Lab) -> None:
    flow_with_raw(lab, {"S1.fastq": GOOD})

    result = lab.materialize("processed_dataset", partition="EXP-9")

    evaluations = result.get_asset_check_evaluations()
    assert evaluations and {evaluation.partition for evaluation in evaluations} == {"EXP-9"}
    assert all(evaluation.passed for evaluation in evaluations)
    for assets_def in lab.defs.assets or []:
        for spec in getattr(assets_def, "check_specs", ()):
            assert spec.partitions_def == assets_def.partitions_def, f"{spec.key} is not partitioned like its asset"


def test_qc_failures_are_counted_and_named_an_empty_fastq_included(lab: Lab) -> None:
    flow_with_raw(lab, {"S1.fastq": GOOD, "S2.fastq": TRUNCATED, "S3_R1.fastq.gz": b""})

    result = lab.materialize("processed_dataset", partition="EXP-9", raise_on_error=False)

    # fastp exits 0 on the truncated file (reporting what it could read) and fails on the empty "gzip":
    # the verdict comes from extraction, the reports and the failed run, and the run fails naming the file.
    assert not result.success
    recorded = lab.instance.get_latest_materialization_event(dg.AssetKey("processed_dataset"))
    assert recorded is not None and recorded.asset_materialization is not None
    metadata = {name: value.value for name, value in recorded.asset_materialization.metadata.items()}
    assert metadata["qc_failures"] == 2 and metadata["pipelines_failed"] == 1
    assert "raw/EXP-9/S2.fastq: truncated" in str(metadata["qc_failed_inputs"])
    assert "raw/EXP-9/S3_R1.fastq.gz: fastp failed on it" in str(metadata["qc_failed_inputs"])
    logged = lab.instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    checks = {
        data.check_name: data
        for data in (record.dagster_event.event_specific_data for record in logged if record.dagster_event)
    }
    assert not checks[QC_PASSED].passed and not checks[PIPELINES_SUCCEEDED].passed
    assert "fastp on raw/EXP-9/S3_R1.fastq.gz" in str(checks[PIPELINES_SUCCEEDED].metadata)
    failure = "\n".join(str(event.event_specific_data) for event in result.all_events if event.is_failure)
    assert "fastp on raw/EXP-9/S3_R1.fastq.gz: fastp failed with exit code 255" in failure
    # What succeeded is published: the good file's and the truncated file's reports, never the failed one's.
    reports = [info.key.path for info in lab.store.list(Zone.PROCESSED, "EXP-9/fastp/")]
    assert [path for path in reports if path.endswith(".json")] == [
        "EXP-9/fastp/S1.fastp.json",
        "EXP-9/fastp/S2.fastp.json",
    ]


def entry(number: int) -> ManifestEntry:
    return ManifestEntry(key=f"raw/EXP-1/f{number:05d}.txt", size=1, sha256="0" * 64, format="text", created="")


def test_a_file_table_cut_short_says_how_much_it_shows_and_where_the_rest_is() -> None:
    manifest = Manifest.build("EXP-1", "raw", [entry(n) for n in range(3012)])

    note = files_shown(manifest, "/lab/raw/EXP-1/_labmesh/manifest.json")

    assert note.startswith(f"{FILE_TABLE_LIMIT} of 3,012 files; every file: labmesh files EXP-1 raw")
    assert "/lab/raw/EXP-1/_labmesh/manifest.json" in note
    assert files_shown(Manifest.build("EXP-1", "raw", [entry(1)]), "m") == "all 1 file"


def metadata_values(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, dg.MetadataValue]:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return dict(event.materialization.metadata)


def test_locations_are_paths_to_copy_and_see_files_lists_the_files_with_theirs(
    any_lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = any_lab
    lab.write_record("exp.yaml", {"id": "EXP-9", "title": "Locations", "samples": ["S1"]})
    [registration] = lab.run_sensor("eln_sensor")
    lab.land("EXP-9", "run1/S1.fastq", GOOD)
    [raw_run] = lab.run_sensor("landing_sensor")

    experiment = metadata_values(registration, "experiment")
    raw = metadata_values(raw_run, "raw_dataset")

    for zone in Zone:
        assert experiment[f"location_{zone.value}"] == dg.MetadataValue.path(
            copyable_location(lab.store.location(zone, "EXP-9"))
        )
    assert raw["location"] == dg.MetadataValue.path(copyable_location(lab.store.location(Zone.RAW, "EXP-9")))
    assert raw["manifest"] == dg.MetadataValue.path(copyable_location(lab.store.uri(manifest_key(Zone.RAW, "EXP-9"))))
    shown = [value.value for value in [*experiment.values(), *raw.values()] if isinstance(value.value, str)]
    assert not any("file://" in text for text in shown), "a browser will not open a file:// link from the UI"
    assert not any(isinstance(value, dg.UrlMetadataValue) for value in [*experiment.values(), *raw.values()])
    assert experiment["see_files"] == dg.MetadataValue.text("labmesh files EXP-9")
    assert raw["see_files"] == dg.MetadataValue.text("labmesh files EXP-9 raw")

    # The command the UI shows, as a person pastes it.
    assert cli.main(shlex.split(str(raw["see_files"].value))[1:], settings=lab.settings) == 0
    out = capsys.readouterr().out
    assert f"    {copyable_location(lab.store.uri(ObjectKey(Zone.RAW, 'EXP-9/run1/S1.fastq')))}\n" in out
