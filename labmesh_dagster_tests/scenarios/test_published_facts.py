"""Published facts are true: lineage says what really happened, in the order it happened.

Contract: a final dataset published before its processed dataset exists
names no processed input (it came from nothing labmesh made), and once the
processed dataset is made, automation refreshes the final dataset so that its
lineage names the processed version it now comes from; every run records
START when it starts and one COMPLETE or FAIL when it ends, a failed
registration included; a failed processed run still names the dataset it
was meant to write.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest

from labmesh_dagster.connectors.eln.folder import FolderEln
from labmesh_dagster.core.keys import Zone, manifest_key
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster_tests.conftest import Lab

RECORD = {"id": "EXP-7", "title": "Facts", "samples": ["S1"]}
FASTQ = b"@r1\nACGTACGT\n+\nIIIIIIII\n"


def events_of(lab: Lab, job: str) -> list[dict[str, Any]]:
    return [event for event in lab.ports.lineage_log().events("EXP-7") if event["job"]["name"].endswith(job)]


def last_complete(lab: Lab, job: str) -> dict[str, Any]:
    return [event for event in events_of(lab, job) if event["eventType"] == "COMPLETE"][-1]


def automation_requests(lab: Lab, cursor: Any) -> tuple[set[tuple[str, str]], Any]:
    """What declarative automation requests now, and its cursor ("updated" means since the previous evaluation)."""
    result = dg.evaluate_automation_conditions(defs=lab.defs, instance=lab.instance, cursor=cursor)
    requested = {
        (r.key.to_user_string(), partition)
        for r in result.results
        for partition in (r.true_subset.get_internal_subset_value().get_partition_keys() if r.true_subset.size else [])
    }
    return requested, result.cursor


def registered_with_raw(lab: Lab) -> None:
    lab.write_record("exp.yaml", RECORD)
    lab.run_sensor("eln_sensor")
    lab.land("EXP-7", "S1.fastq", FASTQ)
    assert [run.success for run in lab.run_sensor("landing_sensor")] == [True]


@pytest.mark.slow  # three whole materializations; make test and CI run it
def test_a_final_report_published_before_processed_is_refreshed_to_name_the_processed_version(lab: Lab) -> None:
    registered_with_raw(lab)
    lab.put_final("EXP-7", "report.md", b"# Findings\nS1 looks fine.\n")
    assert [run.success for run in lab.run_sensor("final_sensor")] == [True]
    early = last_complete(lab, "final_dataset")
    # Before: the input was `processed/EXP-7/`, unversioned, a folder that did not exist yet.
    assert early["inputs"] == []
    _, cursor = automation_requests(lab, None)

    assert lab.materialize("processed_dataset", partition="EXP-7").success
    requested, _ = automation_requests(lab, cursor)

    assert ("final_dataset", "EXP-7") in requested, "the published final dataset follows processed"
    assert lab.materialize("final_dataset", partition="EXP-7").success
    [processed_input] = last_complete(lab, "final_dataset")["inputs"]
    processed = Manifest.from_json(lab.store.read_bytes(manifest_key(Zone.PROCESSED, "EXP-7")))
    assert processed_input["name"].rstrip("/").endswith("processed/EXP-7")
    assert processed_input["facets"]["version"]["datasetVersion"] == processed.digest


def test_a_final_dataset_never_published_is_not_made_by_automation(lab: Lab) -> None:
    registered_with_raw(lab)
    _, cursor = automation_requests(lab, None)

    assert lab.materialize("processed_dataset", partition="EXP-7").success
    requested, _ = automation_requests(lab, cursor)

    assert ("final_dataset", "EXP-7") not in requested, "no one put files in final: nothing to publish"


def test_a_registration_that_fails_records_start_and_fail(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    lab.write_record("exp.yaml", RECORD)

    def unreachable(self: FolderEln, experiment_id: str) -> None:
        raise ConnectionError("the ELN did not answer")

    monkeypatch.setattr(FolderEln, "fetch", unreachable)
    [failed] = lab.run_sensor("eln_sensor", raise_on_error=False)

    assert not failed.success
    # Before: no event at all, as if the run had never happened.
    assert [event["eventType"] for event in events_of(lab, "experiment")] == ["START", "FAIL"]
    fail = events_of(lab, "experiment")[-1]
    assert "the ELN did not answer" in fail["run"]["facets"]["errorMessage"]["message"]


def test_a_failed_processed_run_names_the_dataset_it_was_to_write(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    registered_with_raw(lab)

    def broken(self: dg.PipesSubprocessClient, **_: Any) -> None:
        raise RuntimeError("the pipeline crashed")

    monkeypatch.setattr(dg.PipesSubprocessClient, "run", broken)
    assert not lab.materialize("processed_dataset", partition="EXP-7", raise_on_error=False).success

    start, fail = events_of(lab, "processed_dataset")
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    assert [output["name"].rstrip("/").rsplit("/", 2)[-2:] for output in fail["outputs"]] == [["processed", "EXP-7"]]
    assert [i["name"].rstrip("/").rsplit("/", 2)[-2:] for i in fail["inputs"]] == [["raw", "EXP-7"]]
