"""An experiment set up in eLabFTW flows into labmesh, and eLabFTW learns where its data lives.

Against a local HTTP server that behaves like eLabFTW's REST API v2: the
poll finds the new entry, `eln_sensor` adds its partition and `experiment` is
materialized; the data locations written back are visible on the server and
the `eln_knows_data_location` check passes; the write-back itself starts no
new run; an edit in eLabFTW registers a new catalog revision of the same entry;
an outage (5xx) fails the tick clearly and the next tick resumes from the cursor.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from labmesh_dagster.core.keys import Zone
from labmesh_dagster_tests.conftest import Lab, make_settings
from labmesh_dagster_tests.eln.elabftw_server import API_KEY, FakeElabFtw


@pytest.fixture
def lab(tmp_path: Path, instance: dg.DagsterInstance, elabftw: FakeElabFtw) -> Lab:
    settings = make_settings(
        tmp_path / "home", LABMESH_ELN="elabftw", LABMESH_ELABFTW_URL=elabftw.url, LABMESH_ELABFTW_API_KEY=API_KEY
    )
    return Lab(settings, instance)


def sequencing_run(elabftw: FakeElabFtw) -> int:
    return elabftw.add_experiment(
        "Liver RNA-seq, batch 3",
        body="<p>Bulk RNA-seq of <b>fibrotic</b> liver biopsies.</p>",
        extra_fields={
            "Experiment ID": {"type": "text", "value": "EXP-300"},
            "Samples": {"type": "text", "value": "LIV-31, LIV-32"},
            "Instrument": {"type": "select", "value": "Illumina NovaSeq"},
            "Flowcell": {"type": "text", "value": "HX7"},
        },
        tags=["rna-seq"],
    )


def test_a_new_elabftw_experiment_is_registered_and_told_where_its_data_lives(lab: Lab, elabftw: FakeElabFtw) -> None:
    entry = sequencing_run(elabftw)

    [run] = lab.run_sensor("eln_sensor")

    assert run.success and lab.partitions() == ["EXP-300"]
    record = lab.catalog.get_experiment("EXP-300")
    assert record is not None and record.sample_ids == ["LIV-31", "LIV-32"] and record.platform == "Illumina NovaSeq"
    assert record.custom.get("Flowcell") == "HX7"  # unmapped fields are kept, never dropped
    assert elabftw.extra_value(entry, "labmesh raw location") == lab.store.location(Zone.RAW, "EXP-300")
    [check] = [c for c in run.get_asset_check_evaluations() if c.check_name == "eln_knows_data_location"]
    assert check.passed
    assert lab.run_sensor("eln_sensor") == []  # labmesh's own write-back is not an edit


def test_an_edit_in_elabftw_makes_a_new_revision_of_the_same_entry(lab: Lab, elabftw: FakeElabFtw) -> None:
    entry = sequencing_run(elabftw)
    lab.run_sensor("eln_sensor")
    first = lab.catalog.summaries()[0].revision

    elabftw.tick(5)
    elabftw.set_extra(entry, "Samples", "LIV-31, LIV-32, LIV-33")
    [run] = lab.run_sensor("eln_sensor")

    assert run.success
    [summary] = lab.catalog.summaries()
    assert summary.revision == first + 1 and lab.catalog.get_experiment("EXP-300").sample_ids[-1] == "LIV-33"  # type: ignore[union-attr]


@pytest.mark.slow  # waits out the client's retries; make test and CI run it
def test_an_outage_fails_the_tick_clearly_and_the_next_tick_resumes(lab: Lab, elabftw: FakeElabFtw) -> None:
    sequencing_run(elabftw)
    elabftw.fail(503, times=20)

    with pytest.raises(Exception, match="eLabFTW.*503"):
        lab.tick("eln_sensor")
    assert lab.partitions() == []

    elabftw.faults.clear()
    [run] = lab.run_sensor("eln_sensor")
    assert run.success and lab.partitions() == ["EXP-300"]
