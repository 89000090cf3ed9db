"""The lineage page in Debian's headless Chromium: the graph draws, a dataset opens on click and on Enter.

ada opens EXP-1's lineage: Cytoscape (exposed as ``window.cy``) holds the four
zones' datasets and the three runs, and the list beside it, for screen
readers, names the same nodes with EXP-2's input only as "restricted".
Clicking the final dataset adds the report, and the keyboard alone (the
list's "Show files" buttons) opens the rest until the report leads back to a
landing file. The page passes axe-core with no serious violation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster_tests.portal.lab import PortalLab
from labmesh_dagster_tests.portal.lineage_lab import add_lineage

# The browser fixtures are the portal's own: one Chromium and one served lab, set up one way.
from labmesh_dagster_tests.portal.test_portal_browser import (  # noqa: F401
    browser,
    portal,
    serious_violations,
    signed_in,
)

READY = "#lineage-graph[data-state='ready']"

# A real browser drawing a graph: with the slow tests (`make test` and CI run them).
pytestmark = pytest.mark.slow


def labels(page: Any, kind: str) -> set[str]:
    return set(page.evaluate(f"cy.nodes(\"[kind = '{kind}']\").map(node => node.data('label'))"))


def test_the_graph_draws_and_follows_the_report_back_to_landing(
    portal: tuple[str, PortalLab],  # noqa: F811
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    base, lab = portal
    add_lineage(lab, tmp_path / "lineage.sqlite")
    page = signed_in(browser, base, "ada")

    page.goto(f"{base}/lineage/EXP-1")
    page.wait_for_selector(READY)
    assert {"landing · EXP-1", "raw · EXP-1", "processed · EXP-1", "final · EXP-1"} <= labels(page, "dataset")
    assert len(labels(page, "run")) == 3
    assert page.evaluate("cy.nodes('[?restricted]').length") == 1
    listed = page.locator("#lineage-nodes").inner_text()
    assert "restricted" in listed and "EXP-2" not in listed
    assert serious_violations(page) == []

    final = page.evaluate("cy.nodes().filter(node => node.data('label') === 'final · EXP-1').id()")
    page.evaluate(f"cy.getElementById('{final}').emit('tap')")
    page.wait_for_function("cy.nodes(\"[kind = 'file']\").length > 0")
    page.wait_for_selector(READY)
    assert "report.pdf" in labels(page, "file")

    for zone in ("processed", "raw"):
        page.get_by_role("button", name=f"Show files of {zone} · EXP-1").focus()
        page.keyboard.press("Enter")
        page.get_by_role("button", name=f"Show files of {zone} · EXP-1").wait_for(state="detached")
    page.wait_for_selector(READY)
    keys = set(page.evaluate("cy.nodes(\"[kind = 'file']\").map(node => node.data('key'))"))
    assert {"final/EXP-1/report.pdf", "processed/EXP-1/qc/summary.json", "landing/EXP-1/S1_R1.fastq.gz"} <= keys
    assert "was derived into" in page.locator("#lineage-edges").inner_text()
    assert serious_violations(page) == []
