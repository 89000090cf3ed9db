"""A MultiQC report opened from the experiment page runs in Chromium, but sandboxed away from the portal.

Pinned here, in Debian's Chromium driven by Playwright: ada opens EXP-1's
page, follows "QC report (MultiQC)", and the report's own script runs but
has an opaque origin, no cookies, only a storage of its own, and no way to
read the portal's API (it may not connect anywhere); a real report that MultiQC made
from a real fastp run renders under the same policy (its fastp section and
plots are drawn, and no script error is thrown); and the "Made by" of a
processed file, followed to its input's page, reaches the raw FASTQ. The
pages with the new parts pass axe-core with no serious or critical violation.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster_tests.portal.lab import FASTQ, PortalLab, build_lab
from labmesh_dagster_tests.portal.provenance_lab import FASTP_JSON, FASTQ_KEY, REPORT, add_pipeline_outputs
from labmesh_dagster_tests.portal.test_portal_browser import browser, serious_violations, served, signed_in

pytestmark = pytest.mark.slow
__all__ = ["browser"]  # the fixture, imported to be used here


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[tuple[str, PortalLab]]:
    lab = build_lab(tmp_path / "home")
    add_pipeline_outputs(lab)
    with served(lab.app) as base:
        yield base, lab


def test_the_report_runs_but_reaches_nothing_of_the_portal(portal: tuple[str, PortalLab], browser: Any) -> None:
    base, _ = portal
    page = signed_in(browser, base, "ada")
    page.goto(f"{base}/experiments/EXP-1")
    assert serious_violations(page) == []

    page.get_by_role("link", name="QC report (MultiQC)").click()
    page.wait_for_url(f"{base}/download/{REPORT}?view=1")
    reached = page.locator("#reached")
    reached.filter(has_text="api:").wait_for()

    assert page.get_by_role("heading", name="MultiQC report").is_visible()
    # An opaque origin: no cookie of ada's, storage that is the report's own (in memory), no answer from the API.
    assert reached.inner_text() == "origin: null; cookies: none; storage: 1; api: refused"


def test_a_processed_files_made_by_leads_to_its_input(portal: tuple[str, PortalLab], browser: Any) -> None:
    base, _ = portal
    page = signed_in(browser, base, "ada")
    page.goto(f"{base}/files/{FASTP_JSON}")

    made_by = page.get_by_role("region", name="Made by")
    assert "fastp, version 1" in made_by.inner_text()
    assert serious_violations(page) == []
    made_by.get_by_role("link", name=FASTQ_KEY).click()

    assert page.get_by_role("heading", level=1).inner_text() == "LIV-01_R1.fastq.gz"


def real_multiqc_report(work: Path) -> bytes:
    """MultiQC's report of a fastp run on the lab's FASTQ, both tools as installed for the built-in pipelines."""
    for tool in ("fastp", "multiqc"):
        assert shutil.which(tool) or (Path(".venv/bin") / tool).exists(), f"{tool} is installed by `make dev`"
    multiqc = shutil.which("multiqc") or str(Path(".venv/bin/multiqc").resolve())
    (work / "LIV-01_R1.fastq").write_bytes(FASTQ * 10)
    fastp = ["fastp", "-i", "LIV-01_R1.fastq", "-j", "LIV-01_R1.fastp.json", "-h", "LIV-01_R1.fastp.html"]
    subprocess.run(fastp, cwd=work, check=True, capture_output=True)
    subprocess.run([multiqc, "--quiet", "--force", "--outdir", "out", "."], cwd=work, check=True, capture_output=True)
    return (work / "out" / "multiqc_report.html").read_bytes()


def test_a_real_multiqc_report_renders_in_the_sandbox(
    portal: tuple[str, PortalLab], browser: Any, tmp_path: Path
) -> None:
    base, lab = portal
    data = real_multiqc_report(tmp_path)
    lab.store.put(ObjectKey.parse(REPORT), data)
    processed = lab.catalog.get_dataset("EXP-1", Zone.PROCESSED)
    assert processed is not None
    entries = [
        replace(entry, size=len(data), sha256=hashlib.sha256(data).hexdigest()) if entry.key == REPORT else entry
        for entry in processed.files
    ]
    lab.catalog.upsert_dataset(Manifest.build("EXP-1", "processed", entries), "processed/EXP-1")
    page = signed_in(browser, base, "ada")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{base}/download/{REPORT}?view=1")
    page.wait_for_load_state("load")
    page.locator(".js-plotly-plot").first.wait_for()

    assert "MultiQC" in page.title()
    assert page.locator("#fastp").count() == 1 and page.locator(".js-plotly-plot").count() >= 1
    assert errors == []
