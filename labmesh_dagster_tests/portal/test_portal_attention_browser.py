"""The pages that show checks, revisions, links and thumbnails, in Debian's Chromium, pass axe-core.

A real browser opens what the TestClient tests cannot judge: ada's experiment
page with a failed check and two revisions (the history opens from the
keyboard), the status page listing it, and a TIFF's file page, whose
thumbnail the browser loads and decodes as an image. Each page has no serious
or critical axe-core violation.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import tifffile

from labmesh_dagster.core.checks import CheckOutcome
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.steps.manifests import build_manifest
from labmesh_dagster_tests.portal.lab import PortalLab

# The browser fixtures are the portal's own: one Chromium and one served lab, set up one way.
from labmesh_dagster_tests.portal.test_portal_browser import (  # noqa: F401
    browser,
    portal,
    serious_violations,
    signed_in,
)

pytestmark = pytest.mark.slow


def add_checks_and_an_image(lab: PortalLab) -> str:
    """EXP-1: a failed check on raw revision 1, a second revision holding a TIFF too, its checks passed."""
    lab.catalog.record_checks("EXP-1", Zone.RAW, 1, [CheckOutcome.of("content_indexed", ["a file was refused"])])
    image = io.BytesIO()
    tifffile.imwrite(image, np.tile(np.arange(80, dtype=np.uint16) * 50, (60, 1)))
    lab.store.put(ObjectKey.parse("raw/EXP-1/images/liver.tif"), image.getvalue())
    raw = lab.catalog.get_dataset("EXP-1", Zone.RAW)
    assert raw is not None
    added = build_manifest(lab.store, Zone.RAW, "EXP-1", ["LIV-01"]).entries
    entries = [*raw.files, *(entry for entry in added if entry.key.endswith(".tif"))]
    revision = lab.catalog.upsert_dataset(Manifest.build("EXP-1", "raw", entries), raw.location).revision
    lab.catalog.record_checks("EXP-1", Zone.RAW, revision, [CheckOutcome.of("catalog_matches_manifest", [])])
    return "raw/EXP-1/images/liver.tif"


def test_checks_history_status_and_a_thumbnail_read_well(
    portal: tuple[str, PortalLab],  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    base, lab = portal
    tiff = add_checks_and_an_image(lab)
    page = signed_in(browser, base, "ada")

    page.goto(f"{base}/experiments/EXP-1")
    history = page.locator("details.revisions summary")
    history.focus()
    page.keyboard.press("Enter")
    assert page.get_by_role("table", name="Revisions of the raw dataset, newest first").is_visible()
    assert "1 failed" in page.locator("details.revisions").inner_text()
    assert serious_violations(page) == []

    page.goto(f"{base}/status")
    page.locator("details.unchecked summary").click()
    assert "EXP-3 raw" in page.locator("details.unchecked").inner_text()
    assert "No dataset's latest checks failed" in page.content()  # EXP-1's new revision passed
    assert serious_violations(page) == []

    page.goto(f"{base}/files/{tiff}")
    thumbnail = page.get_by_role("img", name="Thumbnail of liver.tif")
    thumbnail.wait_for()
    page.wait_for_function("document.querySelector('.thumbnail img').complete")
    assert thumbnail.evaluate("image => image.naturalWidth") == 80
    assert serious_violations(page) == []
