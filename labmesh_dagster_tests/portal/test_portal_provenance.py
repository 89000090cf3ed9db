"""The portal shows what made a processed file, and opens the experiment's MultiQC report, sandboxed.

Pinned here, on EXP-1 with fastp's JSON and a MultiQC report published as the
pipelines publish them (`provenance_lab`): a processed file's page and its
JSON twin show "Made by" (pipeline and version, engine and its run, the
Dagster run, the command line, the tool versions) and each input with its
sha256, linked to the input's own page, an input whose bytes changed since
marked as such, markup in a command line escaped; a raw file shows none. The
experiment page links "QC report (MultiQC)" through the download route with
``view=1``, which serves the report inline as HTML under a sandboxing
Content-Security-Policy (no ``allow-same-origin``, no network), with the
storage shim inserted after its ``<head>`` (else its doctype, else first,
however the bytes are chunked), audited as a download with detail ``view``;
without ``view``, or for a file that is not HTML, the route still downloads
the exact bytes as an attachment; the other group's viewer
gets 404 for all of it; an experiment without a report links none; the
built-in QC page still reads its documents beside the new outputs.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from labmesh_dagster.access.audit import AuditFilter
from labmesh_dagster.portal.reports import SANDBOX_SHIM, with_sandbox_shim
from labmesh_dagster_tests.portal.lab import SCRIPT, PortalLab, build_lab
from labmesh_dagster_tests.portal.provenance_lab import (
    FASTP_JSON,
    FASTQ_KEY,
    REPORT,
    REPORT_HTML,
    STALE_INPUT,
    STALE_SHA256,
    add_pipeline_outputs,
)
from labmesh_dagster_tests.portal.test_portal_pages import sign_in


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> PortalLab:
    lab = build_lab(tmp_path_factory.mktemp("provenance") / "home")
    add_pipeline_outputs(lab)
    return lab


@pytest.fixture(scope="module")
def ada(lab: PortalLab) -> TestClient:
    return sign_in(lab, "ada")


def test_a_processed_files_page_says_what_made_it_from_which_inputs(lab: PortalLab, ada: TestClient) -> None:
    fastq = ada.get(f"/api/files/{FASTQ_KEY}").json()["file"]

    made = ada.get(f"/api/files/{FASTP_JSON}").json()["made_by"]
    page = ada.get(f"/files/{FASTP_JSON}").text

    assert {name: made[name] for name in ("pipeline", "version", "engine", "engine_run_id", "run_id")} == {
        "pipeline": "fastp",
        "version": "1",
        "engine": "local",
        "engine_run_id": "pid 4242",
        "run_id": "6c1f0b2e-run",
    }
    assert made["dagster_run"].endswith("/runs/6c1f0b2e-run")
    assert made["tool_versions"] == [{"tool": "fastp", "version": "0.23.2"}]
    assert [(item["key"], item["sha256"], item["href"], item["changed"]) for item in made["inputs"]] == [
        (FASTQ_KEY, fastq["sha256"], f"/files/{FASTQ_KEY}", False)
    ]
    assert "Made by" in page and "fastp, version 1" in page and "fastp 0.23.2" in page
    assert f'href="/files/{FASTQ_KEY}"' in page and fastq["sha256"] in page
    assert f'href="{made["dagster_run"]}"' in page
    assert SCRIPT not in page and "fastp --in1 /tmp/in/&lt;script&gt;" in page
    assert ada.get(f"/files/{FASTQ_KEY}").status_code == 200


def test_an_input_whose_bytes_changed_since_is_marked(ada: TestClient) -> None:
    made = ada.get(f"/api/files/{REPORT}").json()["made_by"]
    page = ada.get(f"/files/{REPORT}").text

    assert [(item["key"], item["changed"]) for item in made["inputs"]] == [(FASTP_JSON, False), (STALE_INPUT, True)]
    assert STALE_SHA256 in page and "changed since" in page


def test_a_raw_file_was_made_by_no_pipeline(ada: TestClient) -> None:
    assert ada.get(f"/api/files/{FASTQ_KEY}").json()["made_by"] is None
    assert "Made by" not in ada.get(f"/files/{FASTQ_KEY}").text


def test_the_experiment_page_opens_its_multiqc_report_sandboxed(lab: PortalLab, ada: TestClient) -> None:
    report = ada.get("/api/experiments/EXP-1").json()["qc_report"]
    page = ada.get("/experiments/EXP-1").text

    shown = ada.get(report["href"])

    assert report["href"] == f"/download/{REPORT}?view=1" and report["label"] == "QC report (MultiQC)"
    assert f'href="/download/{REPORT}?view=1">QC report (MultiQC)</a>' in page
    assert shown.status_code == 200
    assert shown.content == REPORT_HTML.replace(b"<head>", b"<head>" + SANDBOX_SHIM, 1)
    assert shown.headers["content-type"] == "text/html; charset=utf-8"
    assert shown.headers["content-disposition"].startswith("inline;")
    assert shown.headers["x-content-type-options"] == "nosniff"
    policy = [part.strip() for part in shown.headers["content-security-policy"].split(";")]
    assert "sandbox allow-scripts allow-popups" in policy and "allow-same-origin" not in policy[0]
    assert {"default-src 'none'", "connect-src 'none'", "form-action 'none'"} <= set(policy)
    [latest, *_] = lab.access.audit.read(AuditFilter(user="ada"))
    assert (latest.event.kind.value, latest.event.file_key, latest.event.detail) == ("download", REPORT, "view")


@pytest.mark.parametrize("path", [f"/download/{REPORT}", f"/download/{FASTP_JSON}?view=1"])
def test_anything_else_is_still_a_download(ada: TestClient, path: str) -> None:
    answer = ada.get(path)

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert SANDBOX_SHIM not in answer.content


@pytest.mark.parametrize(
    ("report", "shown"),
    [
        (b"<!DOCTYPE html><html><HEAD lang='en'><title>r", b"<!DOCTYPE html><html><HEAD lang='en'>{shim}<title>r"),
        (b"<!doctype html><p>no head", b"<!doctype html>{shim}<p>no head"),
        (b"<p>neither", b"{shim}<p>neither"),
        (b"<html><header>not a head</header><head>", b"<html><header>not a head</header><head>{shim}"),
    ],
)
def test_the_shim_goes_after_the_head_tag_however_the_bytes_are_chunked(report: bytes, shown: bytes) -> None:
    expected = shown.replace(b"{shim}", SANDBOX_SHIM)

    assert b"".join(with_sandbox_shim([report])) == expected
    assert b"".join(with_sandbox_shim([report[i : i + 3] for i in range(0, len(report), 3)])) == expected


def test_the_other_groups_viewer_finds_none_of_it(lab: PortalLab) -> None:
    bob = sign_in(lab, "bob")

    for path in (
        f"/download/{REPORT}?view=1",
        f"/files/{REPORT}",
        f"/api/files/{FASTP_JSON}",
        "/api/experiments/EXP-1",
    ):
        answer = bob.get(path)
        assert answer.status_code == 404, path
        assert "multiqc" not in answer.text.lower()
    assert bob.get("/api/experiments/EXP-2").json()["qc_report"] is None


def test_the_built_in_qc_page_still_reads_its_documents(ada: TestClient) -> None:
    rows = ada.get("/api/experiments/EXP-1/qc").json()["files"]

    assert [row["input"] for row in rows] == [FASTQ_KEY]
    assert rows[0]["reads"] == 20
    assert ada.get("/experiments/EXP-1/qc").status_code == 200
