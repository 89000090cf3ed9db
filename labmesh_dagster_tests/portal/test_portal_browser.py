"""The portal in a real headless browser: Debian's Chromium, driven by Playwright, never a downloaded build.

Two people of different groups sign in through the form and use the pages as
they would: ada (Genomics) searches, opens her experiment and its FASTQ file
and sees its first reads, and from a FASTQ of a sequencing run follows the
link to the run folder's page; bob (Proteomics) finds none of it, and the
direct address of ada's experiment answers "not found". The pages pass axe-core's
accessibility rules (vendored, run in the page) with no serious or critical
violation, and keyboard focus reaches the search box first after the skip link.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

# Never skipped: `make test` and CI install both, and a browser test that quietly does not run proves nothing.
from playwright import sync_api as playwright

from labmesh_dagster_tests.portal.lab import PASSWORD, PortalLab, add_fastp_qc, build_lab
from labmesh_dagster_tests.portal.test_portal_file_links import R1, RUN, add_sequencing_run

CHROMIUM = Path("/usr/bin/chromium")
# A real browser per test: whole pages in Chromium belong with the slow tests (`make test` and CI run them).
pytestmark = pytest.mark.slow
AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port for the block: its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[tuple[str, PortalLab]]:
    lab = build_lab(tmp_path / "home")
    with served(lab.app) as base:
        yield base, lab


@pytest.fixture
def browser() -> Iterator[Any]:
    assert CHROMIUM.exists(), f"Debian's chromium is needed at {CHROMIUM}: `make test` installs it"
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def signed_in(browser: Any, base: str, name: str) -> Any:
    page = browser.new_page()
    page.goto(f"{base}/")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")
    return page


def serious_violations(page: Any) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{violation['id']}: {violation['help']}"
        for violation in result["violations"]
        if violation["impact"] in {"serious", "critical"}
    ]


def test_a_scientist_finds_opens_and_previews_her_groups_data(portal: tuple[str, PortalLab], browser: Any) -> None:
    base, lab = portal
    page = signed_in(browser, base, "ada")

    page.get_by_label("Search experiments, samples, files").fill("fibrosis")
    page.get_by_role("button", name="Search").click()
    results, filters = page.locator("ol.results"), page.get_by_role("navigation", name="Filters")
    assert results.get_by_role("link", name="EXP-1").is_visible()
    assert page.get_by_role("link", name="EXP-2").count() == 0 and "Proteomics" not in filters.inner_text()
    assert serious_violations(page) == []

    filters.get_by_role("link", name="Genomics").click()  # a facet narrows the search; the URL keeps it
    assert "group=Genomics" in page.url and results.get_by_role("link", name="EXP-3").count() == 0

    results.get_by_role("link", name="EXP-1").click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("EXP-1: Liver RNA-seq")
    assert serious_violations(page) == []

    add_fastp_qc(lab)  # fastp has measured the file by the time she opens it
    page.get_by_role("link", name="run1/LIV-01_R1.fastq.gz").click()
    assert "@read0/1" in page.locator("ol.reads").inner_text()
    assert page.get_by_role("img", name="Mean quality by position").is_visible()  # QC's plot of this file
    assert serious_violations(page) == []


def test_another_group_sees_none_of_it(portal: tuple[str, PortalLab], browser: Any) -> None:
    base, _ = portal
    page = signed_in(browser, base, "bob")

    page.goto(f"{base}/?q=fibrosis")
    assert page.get_by_role("link", name="EXP-1").count() == 0
    assert page.locator("ol.results").get_by_role("link", name="EXP-2").is_visible()
    answer = page.goto(f"{base}/experiments/EXP-1")
    assert answer is not None and answer.status == 404 and "Liver" not in page.content()


def test_the_keyboard_reaches_the_skip_link_then_the_search_box(portal: tuple[str, PortalLab], browser: Any) -> None:
    base, _ = portal
    page = signed_in(browser, base, "ada")

    page.keyboard.press("Tab")
    first = page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")

    assert first == "Skip to the content"
    assert page.evaluate("document.activeElement.id") == "q"


def test_a_fastq_leads_to_its_run_folders_page(tmp_path: Path, browser: Any) -> None:
    home = tmp_path / "home"
    lab = build_lab(home)
    add_sequencing_run(lab, home)
    with served(lab.app) as base:
        page = signed_in(browser, base, "ada")
        page.goto(f"{base}/files/{R1}")

        page.get_by_role("link", name=f"the run folder {RUN}/").click()

        assert page.get_by_role("heading", level=1).inner_text() == "Run 160805_M04321_0123_000000000-AUVNA"
        assert page.get_by_role("table", name="Files of the run folder").get_by_role("link").count() == 4
        assert serious_violations(page) == []
