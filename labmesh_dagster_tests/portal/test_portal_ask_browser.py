"""The chat in a real headless browser (Debian's Chromium, driven by Playwright): ask, watch it stream, open a source.

ada signs in, opens the chat, asks a question her liver summary answers, and
sees the answer arrive with its numbered mark and its source listed; clicking
the mark lands on the file's page at the cited passage, shown highlighted with
its place in the file. The page passes axe-core's rules with no serious or
critical violation once the answer is in.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster_tests.ask.ask_lab import AskLab, build_ask_lab
from labmesh_dagster_tests.portal.test_portal_browser import browser, serious_violations, served, signed_in

pytestmark = pytest.mark.slow
__all__ = ["browser"]  # the fixture, shared with the other browser tests


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[tuple[str, AskLab]]:
    lab = build_ask_lab(tmp_path / "home")
    with served(lab.app) as base:
        yield base, lab


def test_ask_see_the_streamed_answer_and_open_its_source(portal: tuple[str, AskLab], browser: Any) -> None:
    base, _ = portal
    page = signed_in(browser, base, "ada")
    page.get_by_role("link", name="Ask").click()
    page.wait_for_url(f"{base}/ask")

    page.get_by_label("Question").fill("What stage was the fibrosis scored at?")
    page.get_by_role("button", name="Ask").click()

    answer = page.locator("#answer")
    answer.get_by_text("Fibrosis was scored at stage 3 in every liver.").wait_for()
    sources = page.locator("#sources li")
    sources.first.wait_for()
    assert sources.count() == 1 and "whole file" in sources.first.inner_text()
    assert serious_violations(page) == []

    answer.get_by_role("link", name="[1]").click()
    page.wait_for_url("**/files/raw/EXP-1/**?passage=0#passage-0")
    cited = page.locator("#passage-0")
    assert cited.is_visible()
    assert "Cited passage: whole file" in cited.inner_text()
    assert cited.locator("mark").inner_text().startswith("Run summary for the liver cohort.")
