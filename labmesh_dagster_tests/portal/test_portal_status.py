"""The status page lists rejected ELN records to admins, and each viewer's datasets whose checks need attention.

Pinned here: an admin sees the rejected ELN records `labmesh status` lists
(a record file since deleted left out), page and API alike, with any markup in
a reason escaped; anyone else is told such records are an admin's to see and
learns nothing of them, not even how many; the datasets whose current
revision failed a check are listed with the failed checks and their
problems, and those whose checks are unknown apart, each viewer seeing only
their own experiments' (the other group's viewer sees none of them, and a
dataset fixed by a passing revision drops off).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from labmesh_dagster.core.checks import CheckOutcome
from labmesh_dagster.core.errors import RecordError
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster_tests.portal.lab import SCRIPT, PortalLab, build_lab
from labmesh_dagster_tests.portal.test_portal_pages import sign_in

FAILED = CheckOutcome.of("raw_files_match_landing_checksums", [f"raw/EXP-1/run1/{SCRIPT}.txt: sha256 differs"])
THEIRS_FAILED = CheckOutcome.of("content_indexed", ["raw/EXP-2/KID-01.csv: the index refused it"])
PASSED = CheckOutcome.of("catalog_matches_manifest", [])


@pytest.fixture
def lab(tmp_path: Path) -> PortalLab:
    return build_lab(tmp_path / "home")


def reject_records(lab: PortalLab, folder: Path) -> None:
    """The ELN sensor rejects two record files; one is deleted afterwards (nothing left to fix)."""
    folder.mkdir()
    kept, deleted = folder / "liver.yaml", folder / "gone.yaml"
    kept.write_text("id: [", encoding="utf-8")
    lab.rejections.record(
        [
            RecordError(str(kept), f"not YAML: {SCRIPT}"),
            RecordError(str(deleted), "two records claim EXP-2"),
        ]
    )


def test_an_admin_sees_the_rejected_eln_records_labmesh_status_lists(lab: PortalLab, tmp_path: Path) -> None:
    reject_records(lab, tmp_path / "records")
    root = sign_in(lab, "root")

    rejected = root.get("/api/status").json()["rejected"]
    page = root.get("/status").text

    assert [(item["source"], item["reason"]) for item in rejected] == [
        (str(tmp_path / "records" / "liver.yaml"), f"not YAML: {SCRIPT}")
    ]
    assert "liver.yaml" in page and "gone.yaml" not in page
    assert SCRIPT not in page and "not YAML: &lt;script&gt;" in page


def test_anyone_else_learns_nothing_of_rejected_records(lab: PortalLab, tmp_path: Path) -> None:
    reject_records(lab, tmp_path / "records")
    ada = sign_in(lab, "ada")

    status = ada.get("/api/status").json()
    page = ada.get("/status").text

    assert status["rejected"] is None
    assert "liver.yaml" not in page and "not YAML" not in page and "shown to admins" in page


def test_each_viewer_sees_only_their_own_datasets_whose_checks_failed(lab: PortalLab) -> None:
    lab.catalog.record_checks("EXP-1", Zone.RAW, 1, [PASSED, FAILED])
    lab.catalog.record_checks("EXP-2", Zone.RAW, 1, [THEIRS_FAILED])
    ada, bob = sign_in(lab, "ada"), sign_in(lab, "bob")

    mine, theirs = ada.get("/api/status").json(), bob.get("/api/status").json()
    page, their_page = ada.get("/status").text, bob.get("/status").text

    assert [(row["experiment_id"], row["zone"], row["revision"]) for row in mine["failing_checks"]] == [
        ("EXP-1", "raw", 1)
    ]
    assert mine["failing_checks"][0]["failed"] == [FAILED.to_dict()] and mine["failing_checks_count"] == 1
    assert [(row["experiment_id"], row["zone"]) for row in mine["unchecked"]] == [("EXP-3", "raw")]
    assert [row["experiment_id"] for row in theirs["failing_checks"]] == ["EXP-2"] and theirs["unchecked"] == []
    assert 'href="/experiments/EXP-1#zone-raw"' in page and "raw_files_match_landing_checksums" in page
    assert SCRIPT not in page and "&lt;script&gt;" in page
    assert "EXP-1" not in their_page and "EXP-3" not in their_page and "the index refused it" in their_page


def test_a_dataset_whose_new_revision_passed_needs_no_attention(lab: PortalLab) -> None:
    lab.catalog.record_checks("EXP-2", Zone.RAW, 1, [FAILED])
    raw = lab.catalog.get_dataset("EXP-2", Zone.RAW)
    assert raw is not None
    fixed = lab.catalog.upsert_dataset(Manifest.build("EXP-2", "raw", ()), raw.location).revision
    lab.catalog.record_checks("EXP-2", Zone.RAW, fixed, [PASSED])

    status = sign_in(lab, "bob").get("/api/status").json()

    assert status["failing_checks"] == [] and status["unchecked"] == []
