"""Screenshots of the portal's main pages, on the demo lab, in Debian's Chromium driven by Playwright.

Starts `labmesh dev` on a fresh home (Dagster and the portal beside it, the
demo lab on), waits until the demo has filled raw and processed, signs in as
the demo user and takes the search page (a search for "demo"), the first
experiment found, and its first file with its preview. The pictures go to
``docs/images/portal-*.png``; the README shows them.

    .venv/bin/python scripts/screenshot_portal.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from labmesh_dagster.demo import DEMO_PASSWORD, DEMO_USER  # noqa: E402
from labmesh_dagster_tests.scenarios.dev_server import labmesh_command, start_dev, watch_demo  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CAP_SECONDS = 900


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPOSITORY / "docs" / "images")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    labmesh = labmesh_command()
    if labmesh is None or not Path(CHROMIUM).exists():
        print(f"screenshot: needs `make test` (the labmesh command, Playwright, {CHROMIUM})", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="labmesh-portal-shots-"))
    server = start_dev(workdir, labmesh)
    try:
        progress = watch_demo(server, CAP_SECONDS, report=lambda line: print(f"screenshot: {line}"))
        if not progress.done:
            print(f"screenshot: the demo did not finish: {progress.describe()}", file=sys.stderr)
            return 1
        base = f"http://127.0.0.1:{server.portal_port}"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(f"{base}/login")
            page.get_by_label("User name").fill(DEMO_USER)
            page.get_by_label("Password").fill(DEMO_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.goto(f"{base}/?q=demo")
            page.locator("details").first.evaluate("node => node.open = true")
            page.screenshot(path=str(args.out / "portal-search.png"), full_page=True)
            page.locator("ol.results h2 a").first.click()
            page.screenshot(path=str(args.out / "portal-experiment.png"), full_page=True)
            page.locator("section.dataset table a").first.click()
            page.screenshot(path=str(args.out / "portal-file.png"), full_page=True)
            browser.close()
        for name in ("portal-search.png", "portal-experiment.png", "portal-file.png"):
            print(f"screenshot: {args.out / name}")
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
