"""A screenshot of what a new user sees first: `labmesh dev` on a fresh home, in a real browser.

Starts `labmesh dev` exactly as `make dev` does (a fresh home, the demo lab
on), waits until the demo has filled raw and processed, then opens the pages a
new user opens in Debian's Chromium, headless, driven by Playwright: the page
the README sends people to first (Dagster's global lineage) and Dagster's own
landing page. The pictures go to ``docs/images/``, and the script fails if a
page shows a dialog (the newsletter prompt) or the lineage does not show the
four assets.

    .venv/bin/pip install playwright   # the driver only: the browser is Debian's
    apt-get install chromium
    .venv/bin/python scripts/screenshot_first_page.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from labmesh_dagster_tests.scenarios.dev_server import labmesh_command, start_dev, watch_demo  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ASSETS = ("experiment", "raw_dataset", "processed_dataset", "final_dataset")
PAGES = {
    "first-page.png": "/asset-groups",  # the global lineage, where the README's quick start points
    "dagster-home.png": "/",
}
CAP_SECONDS = 900


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPOSITORY / "docs" / "images")
    args = parser.parse_args()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("screenshot: install the Playwright driver first: .venv/bin/pip install playwright", file=sys.stderr)
        return 2
    if not Path(CHROMIUM).exists():
        print(f"screenshot: Debian's Chromium is needed at {CHROMIUM}: apt-get install chromium", file=sys.stderr)
        return 2
    labmesh = labmesh_command()
    if labmesh is None:
        print("screenshot: the `labmesh` command is not installed in this environment (make dev)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="labmesh-screenshot-"))
    server = start_dev(workdir, labmesh)
    try:
        progress = watch_demo(server, CAP_SECONDS, report=lambda line: print(f"screenshot: {line}"))
        if not progress.done:
            print(f"screenshot: the demo did not finish: {progress.describe()}\n{server.log_tail()}", file=sys.stderr)
            return 1
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            for name, path in PAGES.items():
                page.goto(f"http://127.0.0.1:{server.port}{path}", wait_until="networkidle")
                page.wait_for_timeout(2000)  # the graph lays itself out after the data arrives
                if page.get_by_role("dialog").count():
                    print(f"screenshot: {path} opens with a dialog over it", file=sys.stderr)
                    return 1
                if path == "/asset-groups":
                    text = page.inner_text("body")
                    missing = [asset for asset in ASSETS if asset not in text]
                    if missing:
                        print(f"screenshot: the lineage does not show {missing}", file=sys.stderr)
                        return 1
                page.screenshot(path=str(args.out / name))
                print(f"screenshot: {args.out / name}")
            browser.close()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
