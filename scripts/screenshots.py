"""The README's screenshots: what a new user sees first, and the portal's main pages, in a real browser.

Starts `labmesh dev` exactly as `make dev` does (a fresh home, the demo lab
on, the portal beside Dagster), waits until the demo has filled raw and
processed, then opens the pages in Debian's Chromium, headless, driven by
Playwright:

- ``first-page.png``: Dagster's global lineage, where `labmesh dev` points a
  new user (it fails if a dialog covers it or the four assets are missing);
- ``dagster-home.png``: Dagster's own landing page;
- ``portal-search.png``, ``portal-experiment.png``, ``portal-file.png``: the
  portal signed in as the demo user, a search for "demo", the first
  experiment found, and its first file with its preview.

    .venv/bin/pip install playwright   # the driver only (make test installs it): the browser is Debian's
    apt-get install chromium
    .venv/bin/python scripts/screenshots.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from labmesh_dagster.demo import DEMO_PASSWORD, DEMO_USER  # noqa: E402
from labmesh_dagster_tests.scenarios.dev_server import labmesh_command, start_dev, watch_demo  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ASSETS = ("experiment", "raw_dataset", "processed_dataset", "final_dataset")
CAP_SECONDS = 900


class Refused(Exception):
    """A page is not what a new user should see."""


def dagster_pages(page: Any, base: str, out: Path) -> None:
    for name, path in (("first-page.png", "/asset-groups"), ("dagster-home.png", "/")):
        page.goto(f"{base}{path}", wait_until="networkidle")
        page.wait_for_timeout(2000)  # the graph lays itself out after its data arrives
        if page.get_by_role("dialog").count():
            raise Refused(f"{path} opens with a dialog over it")
        if path == "/asset-groups":
            missing = [asset for asset in ASSETS if asset not in page.inner_text("body")]
            if missing:
                raise Refused(f"the lineage does not show {missing}")
        page.screenshot(path=str(out / name))


def portal_pages(page: Any, base: str, out: Path) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("User name").fill(DEMO_USER)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{base}/?q=demo")
    page.locator("details").first.evaluate("node => node.open = true")
    page.screenshot(path=str(out / "portal-search.png"), full_page=True)
    page.locator("ol.results h2 a").first.click()
    page.screenshot(path=str(out / "portal-experiment.png"), full_page=True)
    page.locator("section.dataset table a").first.click()
    page.screenshot(path=str(out / "portal-file.png"), full_page=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPOSITORY / "docs" / "images")
    args = parser.parse_args()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("screenshots: install the Playwright driver first: .venv/bin/pip install playwright", file=sys.stderr)
        return 2
    labmesh = labmesh_command()
    if labmesh is None or not Path(CHROMIUM).exists():
        print(f"screenshots: needs the labmesh command (make dev) and Debian's chromium at {CHROMIUM}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="labmesh-screenshots-"))
    server = start_dev(workdir, labmesh)
    try:
        progress = watch_demo(server, CAP_SECONDS, report=lambda line: print(f"screenshots: {line}"))
        if not progress.done:
            print(f"screenshots: the demo did not finish: {progress.describe()}\n{server.log_tail()}", file=sys.stderr)
            return 1
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                dagster_pages(
                    browser.new_page(viewport={"width": 1440, "height": 900}),
                    f"http://127.0.0.1:{server.port}",
                    args.out,
                )
                portal_pages(
                    browser.new_page(viewport={"width": 1280, "height": 860}),
                    f"http://127.0.0.1:{server.portal_port}",
                    args.out,
                )
            except Refused as refused:
                print(f"screenshots: {refused}", file=sys.stderr)
                return 1
            finally:
                browser.close()
        print(f"screenshots: written to {args.out}")
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
