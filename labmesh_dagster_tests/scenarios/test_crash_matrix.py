"""The crash matrix: killed at any side-effect boundary, the flow converges by itself within two sensor ticks.

Contract (R3): for each boundary of registration, promotion and publishing, a
run stopped right after that side effect leaves unfinished work that
`unfinished_work_sensor` finds and starts again, with no person involved, and
within two of its ticks the store, catalog, content index, lineage and ELN are
those of a lab where nothing crashed. Every run, the crashed one included,
records START and exactly one COMPLETE or FAIL.
"""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.eln.folder import FolderEln
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.defs import dataset_assets
from labmesh_dagster.steps import promotion, publishing
from labmesh_dagster.steps.lineage_run import LineageRun
from labmesh_dagster_tests.conftest import Lab, make_settings
from labmesh_dagster_tests.scenarios.lab_state import lab_state, well_formed_runs

EXPERIMENT = "EXP-CRASH"
RECORD = {"id": EXPERIMENT, "title": "Crash matrix", "samples": ["S1", "S2"]}
FILES = {
    "run1/S1_R1.fastq": b"@r1/1\nACGTACGT\n+\nIIIIIIII\n",
    "run1/S1_R2.fastq": b"@r1/2\nTTGCAACG\n+\nIIIIIIII\n",
    "run1/S2.csv": b"sample,value\nS2,1.5\n",
    "notes/readme.txt": b"plate layout in the ELN\n",
}


class Crash(Exception):
    """The process stopping right there, as an exception."""


@dataclass(frozen=True)
class Boundary:
    """A side effect after which the run is stopped: ``owner.name``'s ``nth`` call completes, then the crash."""

    step: str
    after: str
    owner: Any
    name: str
    nth: int = 1

    @property
    def after_lineage(self) -> bool:
        """Stopped once the run's lineage had already been recorded as COMPLETE."""
        return self.name in {"record", "forget_recorded"}

    def __str__(self) -> str:
        return f"{self.step}: after {self.after}"


BOUNDARIES = [
    Boundary("registration", "the folders were provisioned in every zone", LocalObjectStore, "provision"),
    Boundary("registration", "the catalog registered the experiment", SqliteCatalog, "upsert_experiment"),
    Boundary("registration", "the data locations were written to the ELN", FolderEln, "write_back"),
    Boundary("promotion", "the first file was copied to raw", LocalObjectStore, "copy"),
    Boundary("promotion", "the landing checksums were journaled", promotion, "record_promotions"),
    Boundary("promotion", "the first landing file was deleted", LocalObjectStore, "delete_if_unchanged"),
    Boundary("promotion", "half the landing files were deleted", LocalObjectStore, "delete_if_unchanged", nth=2),
    Boundary("promotion", "landing was emptied", LocalObjectStore, "delete_if_unchanged", nth=len(FILES)),
    Boundary("publishing", "the manifest was written", publishing, "write_manifest"),
    Boundary("publishing", "the catalog revision was made", SqliteCatalog, "upsert_dataset"),
    Boundary("publishing", "the content index was updated", publishing, "index_dataset"),
    Boundary("publishing", "the run's lineage was recorded", LineageRun, "record"),
    Boundary("publishing", "the promotion journal was cleared", dataset_assets, "forget_recorded"),
]


def crashing(original: Callable[..., Any], nth: int) -> Callable[..., Any]:
    calls = 0

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        result = original(*args, **kwargs)
        calls += 1
        if calls == nth:
            raise Crash(f"stopped after call {nth} of {original.__qualname__}")
        return result

    return wrapper


def run_step(lab: Lab, sensor: str, boundary: Boundary | None, step: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """One sensor tick and its runs, stopped at ``boundary`` when the boundary belongs to this part of the flow."""
    if boundary is None or boundary.step not in step:
        assert all(run.success for run in lab.run_sensor(sensor))
        return
    with monkeypatch.context() as patch:
        patch.setattr(boundary.owner, boundary.name, crashing(getattr(boundary.owner, boundary.name), boundary.nth))
        [crashed] = lab.run_sensor(sensor, raise_on_error=False)
    [failure] = crashed.get_step_failure_events()
    assert "stopped after call" in str(failure.event_specific_data.error), "the run stopped at the boundary"


def recover(lab: Lab) -> int:
    """Two ticks of the recovery sensor, no more; the runs they start must succeed. Returns how many it started."""
    started = 0
    for _ in range(2):
        runs = lab.run_sensor("unfinished_work_sensor")
        assert all(run.success for run in runs)
        started += len(runs)
    return started


def run_the_lab(lab: Lab, boundary: Boundary | None, monkeypatch: pytest.MonkeyPatch) -> int:
    """Register the experiment, land its files, promote and publish them; recover after each part."""
    lab.write_record("exp.yaml", RECORD)
    run_step(lab, "eln_sensor", boundary, "registration", monkeypatch)
    resumed = recover(lab)
    for path, content in FILES.items():
        lab.land(EXPERIMENT, path, content)
    run_step(lab, "landing_sensor", boundary, "promotion publishing", monkeypatch)
    return resumed + recover(lab)


@pytest.fixture(scope="module")
def never_crashed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    with dg.instance_for_test() as instance, pytest.MonkeyPatch.context() as patch:
        lab = Lab(make_settings(tmp_path_factory.mktemp("reference") / "home"), instance)
        assert run_the_lab(lab, None, patch) == 0
        assert well_formed_runs(lab, EXPERIMENT) == {"COMPLETE": 2}
        return lab_state(lab, EXPERIMENT)


@pytest.mark.slow  # thirteen whole flows; the quick loop keeps the SIGKILL case and test_recovery's
@pytest.mark.parametrize("boundary", BOUNDARIES, ids=str)
def test_a_run_stopped_at_each_boundary_converges_to_the_never_crashed_state(
    boundary: Boundary, never_crashed: dict[str, Any], tmp_path: Path, instance: dg.DagsterInstance, monkeypatch
) -> None:
    lab = Lab(make_settings(tmp_path / "home"), instance)

    resumed = run_the_lab(lab, boundary, monkeypatch)

    assert resumed == 1, "one run, started by the recovery sensor, finished the work"
    assert lab_state(lab, EXPERIMENT) == never_crashed
    # The reference's two runs, and the crashed one: it ended FAIL, or COMPLETE where it had said so before it stopped.
    endings = well_formed_runs(lab, EXPERIMENT)
    assert endings.total() == 3 and endings["FAIL"] == (0 if boundary.after_lineage else 1)
    if boundary.step != "registration":
        raw = lab.catalog.get_dataset(EXPERIMENT, Zone.RAW)
        assert raw is not None and {f.key for f in raw.files} == {f"raw/{EXPERIMENT}/{p}" for p in FILES}


def test_a_promotion_killed_by_the_kernel_converges_once_run_monitoring_fails_its_run(
    never_crashed: dict[str, Any], tmp_path: Path
) -> None:
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    instance = dg.DagsterInstance.local_temp(str(dagster_home))
    lab = Lab(make_settings(tmp_path / "home"), instance)
    lab.write_record("exp.yaml", RECORD)
    lab.run_sensor("eln_sensor")
    for path, content in FILES.items():
        lab.land(EXPERIMENT, path, content)

    killed = subprocess.run(
        [
            sys.executable,
            "-m",
            "labmesh_dagster_tests.scenarios.killed_run",
            str(lab.settings.home),
            str(dagster_home),
            EXPERIMENT,
            "2",
        ],
        capture_output=True,
        check=False,
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    [run] = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": EXPERIMENT}), limit=1)
    assert run.status == dg.DagsterRunStatus.STARTED and len(lab.keys(Zone.LANDING, EXPERIMENT)) == 2
    assert lab.tick("unfinished_work_sensor").run_requests == [], "a run that may still be going is left alone"
    # What Dagster's run monitoring does once the run's worker is gone (dagster.yaml `run_monitoring`).
    instance.report_run_failed(run)

    assert recover(lab) == 1
    assert lab_state(lab, EXPERIMENT) == never_crashed
    # The killed run could not say it ended; the run that resumed its work closed its lineage with FAIL.
    assert well_formed_runs(lab, EXPERIMENT) == {"COMPLETE": 2, "FAIL": 1}
