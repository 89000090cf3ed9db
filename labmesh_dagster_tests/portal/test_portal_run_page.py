"""A sequencing run folder has a page of its own, named by its RunInfo.xml's key, and a JSON twin.

Pinned here, on the MiSeq run folder of `test_portal_file_links` (RunInfo.xml,
SampleSheet.csv and a FASTQ pair, described and linked by labmesh's own
extraction): the page shows what extraction read from RunInfo.xml (run id,
instrument, flowcell, read structure, the reads), links the sample sheet and
lists the folder's files, each to its file page; the list is bounded, with a
"more" link to the next page until the last; RunInfo.xml's own file page
links to it; the other group's viewer gets 404 for the page and its twin,
exactly as for the files, with nothing of the run in the answer; a key that
is no RunInfo.xml is no run; each view is audited with the RunInfo.xml's key;
the route is in the OpenAPI document.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from labmesh_dagster.access.audit import AuditFilter, AuditKind
from labmesh_dagster_tests.portal.lab import PortalLab, build_lab
from labmesh_dagster_tests.portal.test_portal_file_links import R1, R2, RUN, add_sequencing_run
from labmesh_dagster_tests.portal.test_portal_pages import sign_in

RUNINFO = f"{RUN}/RunInfo.xml"
SHEET = f"{RUN}/SampleSheet.csv"
RUN_ID = "160805_M04321_0123_000000000-AUVNA"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> PortalLab:
    """One lab for every test here: none of them changes what it holds (only the audit log grows)."""
    home = tmp_path_factory.mktemp("runs") / "home"
    lab = build_lab(home)
    add_sequencing_run(lab, home)
    return lab


def test_the_run_page_shows_the_run_its_sample_sheet_and_its_files(lab: PortalLab) -> None:
    ada = sign_in(lab, "ada")

    shown = ada.get(f"/api/runs/{RUNINFO}").json()
    page = ada.get(f"/runs/{RUNINFO}").text

    fields = shown["run"]["fields"]
    assert fields["run_id"] == RUN_ID and fields["instrument"] == "M04321"
    assert fields["flowcell"] == "000000000-AUVNA" and fields["read_structure"]
    assert [read["number"] for read in shown["run"]["reads"]] == list(range(1, len(shown["run"]["reads"]) + 1))
    assert shown["record"]["id"] == "EXP-4" and shown["run"]["folder"] == f"{RUN}/"
    assert [sheet["href"] for sheet in shown["sample_sheets"]] == [f"/files/{SHEET}"]
    assert [(file["path"], file["href"]) for file in shown["files"]] == [
        ("RunInfo.xml", f"/files/{RUNINFO}"),
        (R1.rsplit("/", 1)[1], f"/files/{R1}"),
        (R2.rsplit("/", 1)[1], f"/files/{R2}"),
        ("SampleSheet.csv", f"/files/{SHEET}"),
    ]
    assert shown["total"] == 4 and shown["more"] is None
    assert f"<h1>Run {RUN_ID}</h1>" in page and fields["read_structure"] in page
    for href in (f"/files/{R1}", f"/files/{R2}", f"/files/{SHEET}", f"/files/{RUNINFO}"):
        assert f'href="{href}"' in page
    assert "More files" not in page


def test_the_files_are_listed_a_bounded_page_at_a_time(lab: PortalLab) -> None:
    ada = sign_in(lab, "ada")

    first = ada.get(f"/api/runs/{RUNINFO}?limit=3").json()
    last = ada.get(first["more"]).json()
    page = ada.get(f"/runs/{RUNINFO}?limit=3").text

    assert [file["key"] for file in first["files"]] == [RUNINFO, R1, R2]
    assert first["more"] == f"/api/runs/{RUNINFO}?offset=3&limit=3"
    assert [file["key"] for file in last["files"]] == [SHEET] and last["more"] is None
    assert last["sample_sheets"] == first["sample_sheets"]  # the sample sheet is shown on every page
    assert f'href="/runs/{RUNINFO}?offset=3&amp;limit=3">More files</a>' in page
    assert "Files 1 to 3 of 4" in page
    assert ada.get(f"/api/runs/{RUNINFO}?limit=100000").status_code == 422  # never unbounded


def test_the_runinfo_file_page_links_its_run_page(lab: PortalLab) -> None:
    ada = sign_in(lab, "ada")

    assert ada.get(f"/api/files/{RUNINFO}").json()["run_page"] == f"/runs/{RUNINFO}"
    assert f'href="/runs/{RUNINFO}"' in ada.get(f"/files/{RUNINFO}").text
    assert ada.get(f"/api/files/{R1}").json()["run_page"] is None


def test_the_other_groups_viewer_gets_404_as_for_the_files(lab: PortalLab) -> None:
    bob = sign_in(lab, "bob")

    for path in (f"/runs/{RUNINFO}", f"/api/runs/{RUNINFO}", f"/api/files/{RUNINFO}"):
        answer = bob.get(path)
        assert answer.status_code == 404, path
        assert "AUVNA" not in answer.text and "S-001" not in answer.text and "M04321" not in answer.text
    assert bob.get(f"/api/runs/{RUNINFO}").json() == bob.get("/api/runs/raw/EXP-4/no_run/RunInfo.xml").json()


@pytest.mark.parametrize("key", [R1, SHEET, "raw/EXP-4/160805_run", "raw/../etc/RunInfo.xml"])
def test_a_key_that_is_no_catalogued_runinfo_is_no_run(lab: PortalLab, key: str) -> None:
    assert sign_in(lab, "ada").get(f"/api/runs/{key}").status_code == 404


def test_a_run_view_is_audited_with_its_runinfo_key(lab: PortalLab) -> None:
    root = sign_in(lab, "root")

    root.get(f"/runs/{RUNINFO}")

    [latest, *_] = lab.access.audit.read(AuditFilter(user="root", kinds=frozenset({AuditKind.VIEW})))
    assert (latest.event.experiment_id, latest.event.file_key, latest.event.detail) == ("EXP-4", RUNINFO, "run")


def test_the_route_is_in_the_openapi_document(lab: PortalLab) -> None:
    schema = sign_in(lab, "ada").get("/openapi.json").json()

    route = schema["paths"]["/api/runs/{key}"]["get"]
    assert {parameter["name"] for parameter in route["parameters"]} == {"key", "offset", "limit"}


def test_nothing_is_shown_before_sign_in(lab: PortalLab) -> None:
    anonymous = TestClient(lab.app)

    assert anonymous.get(f"/api/runs/{RUNINFO}").status_code == 401
    answer = anonymous.get(f"/runs/{RUNINFO}", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
