"""A lab's landing zone does not fill with empty run folders: what promotion emptied, the raw run removes.

Contract, on the local profile and on S3 alike: after the landing sensor's
`raw_dataset` run, the instrument's run folders (on S3, the folder markers
DataSync makes) are gone, the experiment's provisioned landing folder stays,
and the materialization says how many folders it removed; a run that
stopped after promoting leaves its folders to the next run, which removes them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from labmesh_dagster.core.keys import Zone
from labmesh_dagster.steps.promotion import promote_experiment
from labmesh_dagster_tests.conftest import Lab
from labmesh_dagster_tests.connectors.test_store_contract import folders
from labmesh_dagster_tests.steps.test_landing_folders import deliver


def registered(lab: Lab) -> None:
    lab.write_record("exp.yaml", {"id": "EXP-1", "title": "Run folders", "samples": ["S1", "S2"]})
    assert [run.success for run in lab.run_sensor("eln_sensor")] == [True]


def test_the_raw_run_removes_the_run_folders_it_emptied_and_keeps_the_experiment_folder(any_lab: Lab) -> None:
    lab = any_lab
    registered(lab)
    deliver(lab.store, "EXP-1/run1/S1_R1.fastq", "EXP-1/run1/InterOp/metrics.bin", "EXP-1/run2/S2_R1.fastq")

    [raw_run] = lab.run_sensor("landing_sensor")

    assert raw_run.success
    assert folders(lab.store, Zone.LANDING) == {"EXP-1"}
    [materialization] = raw_run.asset_materializations_for_node("raw_dataset")
    assert materialization.metadata["landing_folders_removed"].value == 3
    assert lab.keys(Zone.RAW, "EXP-1")[-3:] == [
        "EXP-1/run1/InterOp/metrics.bin",
        "EXP-1/run1/S1_R1.fastq",
        "EXP-1/run2/S2_R1.fastq",
    ]


def test_a_run_stopped_after_promoting_leaves_its_folders_to_the_next_run(any_lab: Lab) -> None:
    lab = any_lab
    registered(lab)
    deliver(lab.store, "EXP-1/run1/lane1/S1_R1.fastq")
    # The stopped run: promoted (its landing checksums journaled beside raw), nothing after that.
    promote_experiment(lab.store, "EXP-1", settled_before=datetime.now(UTC) + timedelta(days=1))
    assert "EXP-1/run1/lane1" in folders(lab.store, Zone.LANDING)

    assert lab.materialize("raw_dataset", partition="EXP-1").success

    assert folders(lab.store, Zone.LANDING) == {"EXP-1"}
