"""The QC page and a FASTQ's file page read fastp's reports, and labmesh's own QC documents where fastp was missing.

Pinned here, with real fastp 0.23.2 reports (``fastp/``, see its README) in hand-made processed manifests:
- a fastp report is a row per FASTQ it measured, mapped to the raw file through ``derived_from``: reads,
  % ≥ Q30 and the per-position curve from ``readN_before_filtering``, the mean quality the curve's mean;
  a pair's two mates are two rows, each on its own file's page, in ``derived_from``'s order (read 1, read 2);
- a fastp report with no reads shows as failed, saying why, on both pages;
- the fallback's ``*.qc.json`` is read in any folder (its input named by the manifest, not the document),
  and so is the old ``qc/`` layout's; when fastp and the fallback both measured a file, fastp's row is shown;
- JSON that is neither (another tool's ``*.qc.json``, a fastp report without ``summary.before_filtering``)
  is skipped;
- the installed fastp still writes reports the page reads as it reads the committed ones (slow).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from labmesh_dagster.core.keys import ObjectKey
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.portal.qc_view import experiment_qc
from labmesh_dagster.portal.reports import view_href
from labmesh_dagster_tests.portal.lab import (
    FASTP_REPORTS,
    PortalLab,
    add_fastp_qc,
    add_qc,
    build_lab,
    run_fastp,
)
from labmesh_dagster_tests.portal.test_portal_pages import sign_in

R1 = "raw/EXP-1/run1/LIV-01_R1.fastq.gz"
R2 = "raw/EXP-1/run1/LIV-01_R2.fastq.gz"
R1_CURVE = [40.0] * 5 + [39.0] * 3 + [38.0] * 2  # 'IIIIIHHHGG'
R2_CURVE = [40.0] * 5 + [20.0] * 5  # 'IIIII55555'


@pytest.fixture
def lab(tmp_path: Path) -> PortalLab:
    return build_lab(tmp_path / "home")


def _fastp(name: str) -> dict:
    return json.loads((FASTP_REPORTS / name).read_text(encoding="utf-8"))


def _measured(rows: list[dict]) -> list[tuple]:
    return [
        (row["input"], row["status"], row["reads"], row["mean_quality"], row["q30_percent"], row["measured_by"])
        for row in rows
    ]


def test_a_fastp_report_is_the_qc_of_the_file_it_was_derived_from(lab: PortalLab) -> None:
    add_fastp_qc(lab)
    ada = sign_in(lab, "ada")

    rows = ada.get("/api/experiments/EXP-1/qc").json()["files"]
    page = ada.get("/experiments/EXP-1/qc").text

    summary = _fastp("LIV-01_R1.fastp.json")["summary"]["before_filtering"]
    assert _measured(rows) == [(R1, "ok", summary["total_reads"], 39.3, 100 * summary["q30_rate"], "fastp")]
    assert rows[0]["name"] == "LIV-01_R1.fastq.gz" and rows[0]["pipeline"] == "fastp"
    assert rows[0]["per_position_mean_quality"] == R1_CURVE
    assert rows[0]["document"] == "processed/EXP-1/fastp/run1/LIV-01_R1.fastp.json"
    assert rows[0]["report"] == view_href("processed/EXP-1/fastp/run1/LIV-01_R1.fastp.html")
    assert page.count("<svg") == 3 and "<polyline" in page and "No QC yet" not in page
    assert f'<a href="{rows[0]["report"]}">fastp</a>' in page

    shown = ada.get(f"/api/files/{R1}").json()["qc"]
    file_page = ada.get(f"/files/{R1}").text
    assert shown == rows[0]
    assert file_page.count("<svg") == 1 and "as fastp measured the whole file: 20 reads" in file_page
    assert sign_in(lab, "bob").get("/api/experiments/EXP-1/qc").status_code == 404


def test_a_pairs_report_shows_both_mates_each_on_its_own_files_page(lab: PortalLab) -> None:
    add_fastp_qc(lab, report="LIV-01.fastp.json")
    ada = sign_in(lab, "ada")

    rows = ada.get("/api/experiments/EXP-1/qc").json()["files"]

    assert _measured(rows) == [(R1, "ok", 20, 39.3, 100.0, "fastp"), (R2, "ok", 20, 30.0, 50.0, "fastp")]
    assert [row["per_position_mean_quality"] for row in rows] == [R1_CURVE, R2_CURVE]
    assert {row["document"] for row in rows} == {"processed/EXP-1/fastp/run1/LIV-01.fastp.json"}
    page = ada.get("/experiments/EXP-1/qc").text
    assert page.count("<polyline") == 2 and "LIV-01_R2.fastq.gz" in page  # one quality line per mate
    assert ada.get(f"/api/files/{R2}").json()["qc"] == rows[1]
    assert ada.get(f"/api/files/{R1}").json()["qc"] == rows[0]


def test_a_fastp_report_without_reads_is_a_failed_qc(lab: PortalLab) -> None:
    add_fastp_qc(lab, report="EMPTY_R1.fastp.json")
    ada = sign_in(lab, "ada")

    (row,) = ada.get("/api/experiments/EXP-1/qc").json()["files"]

    assert (row["status"], row["reads"], row["mean_quality"], row["per_position_mean_quality"]) == (
        "failed",
        0,
        None,
        [],
    )
    assert row["reason"].startswith("fastp read no reads from it")
    assert "failed (fastp read no reads from it" in ada.get("/experiments/EXP-1/qc").text
    assert "QC failed: fastp read no reads from it" in ada.get(f"/files/{R1}").text


def test_the_fallbacks_document_is_read_where_the_fastq_qc_pipeline_writes_it(lab: PortalLab) -> None:
    add_qc(lab)
    ada = sign_in(lab, "ada")

    (row,) = ada.get("/api/experiments/EXP-1/qc").json()["files"]

    assert row["document"] == "processed/EXP-1/fastq-qc/run1/LIV-01_R1.qc.json" and row["pipeline"] == "fastq-qc"
    assert _measured([row]) == [(R1, "ok", 20, 39.3, None, "labmesh's FASTQ QC (fastp's fallback)")]  # no Q30 in it
    assert row["per_position_mean_quality"] == R1_CURVE and row["report"] is None
    assert "as labmesh&#39;s FASTQ QC (fastp&#39;s fallback) measured" in ada.get(f"/files/{R1}").text


def test_fastps_row_is_shown_when_the_fallback_measured_the_file_too(lab: PortalLab) -> None:
    add_qc(lab)
    add_fastp_qc(lab)

    rows = experiment_qc(lab.catalog, lab.store, "EXP-1")

    assert [(row["input"], row["measured_by"]) for row in rows] == [(R1, "fastp")]
    assert sign_in(lab, "ada").get(f"/api/files/{R1}").json()["qc"]["measured_by"] == "fastp"


def _processed(lab: PortalLab, files: dict[str, bytes], derived_from: tuple[str, ...] = ()) -> None:
    """A hand-made processed manifest without provenance, as datasets published before pipelines had it."""
    entries = []
    for key, data in files.items():
        lab.store.put(ObjectKey.parse(key), data)
        entries.append(
            ManifestEntry(
                key=key,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                format="json",
                created="2024-03-03T10:00:00+00:00",
                derived_from=derived_from,
            )
        )
    lab.catalog.upsert_dataset(Manifest.build("EXP-1", "processed", entries), "processed/EXP-1")


def test_the_old_layouts_documents_are_still_read_and_other_json_is_skipped(lab: PortalLab) -> None:
    old = {
        "pipeline": "labmesh.fastq_qc",
        "pipeline_version": "2",
        "input": R1,
        "status": "ok",
        "stats": {"reads": 20, "mean_quality": 39.3, "q30_percent": 100.0},
        "per_position_mean_quality": R1_CURVE,
    }
    _processed(
        lab,
        {
            "processed/EXP-1/qc/run1/LIV-01_R1.fastq.gz.qc.json": json.dumps(old).encode(),
            "processed/EXP-1/other/LIV-01_R1.qc.json": b'{"tool": "someone else", "reads": 3}',
            "processed/EXP-1/fastp/LIV-01_R1.fastp.json": b'{"summary": {"fastp_version": "0.23.2"}}',
            "processed/EXP-1/qc/summary.json": b'{"files": []}',
        },
        derived_from=(R1,),
    )

    rows = experiment_qc(lab.catalog, lab.store, "EXP-1")

    assert _measured(rows) == [(R1, "ok", 20, 39.3, 100.0, "labmesh's FASTQ QC (fastp's fallback)")]
    assert rows[0]["document"] == "processed/EXP-1/qc/run1/LIV-01_R1.fastq.gz.qc.json"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("fastp") is None, reason="fastp is not installed (Debian's fastp package)")
def test_the_installed_fastp_writes_reports_read_as_the_committed_ones(lab: PortalLab, tmp_path: Path) -> None:
    fresh = run_fastp(tmp_path / "fastp")

    for name, path in fresh.items():
        committed, made = _fastp(name), json.loads(path.read_text(encoding="utf-8"))
        for part in ("summary", "read1_before_filtering", "read2_before_filtering"):
            assert made.get(part) == committed.get(part), (name, part)
