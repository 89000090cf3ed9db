"""The experiment page shows each dataset's check results and revision history, from the catalog alone.

Pinned here: a dataset's current revision shows each check it recorded, passed
or failed with its problems, in the page and in its JSON twin alike; a
revision whose checks were never recorded says "unknown", never "passed"; the
revision history lists every revision newest first with its run and its
checks' summary; a problem text holding markup is escaped; the other group's
viewer gets 404 for the page and the API.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from labmesh_dagster.core.checks import CheckOutcome
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster_tests.portal.lab import SCRIPT, PortalLab, build_lab
from labmesh_dagster_tests.portal.test_portal_pages import sign_in

FAILED_INDEX = CheckOutcome.of("content_indexed", [f"raw/EXP-1/run1/{SCRIPT}.txt: could not be read"])
PASSED_CATALOG = CheckOutcome.of("catalog_matches_manifest", [])


@pytest.fixture
def lab(tmp_path: Path) -> PortalLab:
    return build_lab(tmp_path / "home")


def republish_with_one_file_less(lab: PortalLab, run_id: str) -> int:
    """A second revision of EXP-1's raw dataset (the run summary gone), made by ``run_id``."""
    raw = lab.catalog.get_dataset("EXP-1", Zone.RAW)
    assert raw is not None
    kept = [entry for entry in raw.files if entry.format.startswith("fastq")]
    return lab.catalog.upsert_dataset(Manifest.build("EXP-1", "raw", kept), raw.location, run_id=run_id).revision


def test_the_current_revisions_checks_are_shown_with_their_problems(lab: PortalLab) -> None:
    lab.catalog.record_checks("EXP-1", Zone.RAW, 1, [PASSED_CATALOG, FAILED_INDEX])
    ada = sign_in(lab, "ada")

    [raw] = ada.get("/api/experiments/EXP-1").json()["datasets"]
    page = ada.get("/experiments/EXP-1").text

    assert raw["checks"] == {
        "known": True,
        "passed": False,
        "failed": 1,
        "outcomes": [PASSED_CATALOG.to_dict(), FAILED_INDEX.to_dict()],
    }
    assert "catalog_matches_manifest</strong>: passed" in page and "content_indexed</strong>: failed" in page
    assert "could not be read" in page and SCRIPT not in page and "&lt;script&gt;" in page


def test_checks_never_recorded_are_unknown_not_passed(lab: PortalLab) -> None:
    ada = sign_in(lab, "ada")

    [raw] = ada.get("/api/experiments/EXP-1").json()["datasets"]
    page = ada.get("/experiments/EXP-1").text

    assert raw["checks"] == {"known": False, "passed": None, "failed": 0, "outcomes": []}
    assert "Check results unknown" in page and ": passed" not in page


def test_the_revision_history_lists_every_revision_newest_first(lab: PortalLab) -> None:
    lab.catalog.record_checks("EXP-1", Zone.RAW, 1, [FAILED_INDEX])
    second = republish_with_one_file_less(lab, "run-0123456789")
    lab.catalog.record_checks("EXP-1", Zone.RAW, second, [PASSED_CATALOG])
    ada = sign_in(lab, "ada")

    [raw] = ada.get("/api/experiments/EXP-1").json()["datasets"]
    page = ada.get("/experiments/EXP-1").text

    assert raw["revision"] == 2 and raw["checks"]["passed"] is True
    assert [(r["revision"], r["files"], r["run_id"], r["checks"]["failed"]) for r in raw["revisions"]] == [
        (2, 1, "run-0123456789", 0),
        (1, 2, None, 1),
    ]
    assert raw["revisions"][0]["dagster_run"] == "http://127.0.0.1:3000/runs/run-0123456789"
    assert "Revision history (2)" in page and "all passed" in page and "1 failed" in page
    assert 'href="http://127.0.0.1:3000/runs/run-0123456789"' in page


def test_the_other_groups_viewer_sees_neither_checks_nor_history(lab: PortalLab) -> None:
    lab.catalog.record_checks("EXP-1", Zone.RAW, 1, [FAILED_INDEX])
    bob = sign_in(lab, "bob")

    assert bob.get("/api/experiments/EXP-1").status_code == 404
    page = bob.get("/experiments/EXP-1", headers={"accept": "text/html"})
    assert page.status_code == 404 and "content_indexed" not in page.text
