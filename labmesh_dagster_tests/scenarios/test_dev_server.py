"""`labmesh dev` on a fresh home: the platform a person starts with `make dev`.

Contract: it serves Dagster's UI and GraphQL API on the chosen port, seeds the
demo lab (records, then instrument files over the first minute), and within two
minutes every demo experiment has materialized raw and processed partitions,
driven only by the sensors and declarative automation. Ctrl-C (SIGINT) stops
it cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from labmesh_dagster.demo import LIMS_EXPORT, RECORDS

REPOSITORY = Path(__file__).resolve().parents[2]
DEMO_IDS = sorted([record["id"] for record in RECORDS] + [e["experiment_id"] for e in LIMS_EXPORT["experiments"]])
QUERY = "{ assetNodes { assetKey { path } assetMaterializations(limit: 100) { partition } } }"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _materialized(port: int) -> dict[str, set[str]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        nodes = json.load(response)["data"]["assetNodes"]
    return {"/".join(n["assetKey"]["path"]): {m["partition"] for m in n["assetMaterializations"]} for n in nodes}


def test_make_dev_serves_the_ui_and_the_demo_fills_raw_and_processed_within_two_minutes(tmp_path: Path) -> None:
    labmesh = Path(sys.executable).parent / "labmesh"
    if not labmesh.exists():
        pytest.fail("the `labmesh` command is not installed; run the tests through `make test`")
    port = _free_port()
    env = {**os.environ, "LABMESH_HOME": str(tmp_path / "home"), "LABMESH_DEMO": "1"}
    env.pop("DAGSTER_HOME", None)
    log = (tmp_path / "dev.log").open("wb")
    process = subprocess.Popen(
        [str(labmesh), "dev", "--port", str(port)], cwd=REPOSITORY, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    started = time.monotonic()
    seen: dict[str, set[str]] = {}
    try:
        while time.monotonic() - started < 150:
            assert process.poll() is None, (tmp_path / "dev.log").read_text(errors="replace")[-4000:]
            try:
                seen = _materialized(port)
            except (urllib.error.URLError, ConnectionError, TimeoutError, KeyError):
                seen = {}
            if all(set(DEMO_IDS) <= seen.get(asset, set()) for asset in ("raw_dataset", "processed_dataset")):
                break
            time.sleep(3)
        elapsed = time.monotonic() - started
        assert set(DEMO_IDS) <= seen.get("raw_dataset", set()), (seen, (tmp_path / "dev.log").read_text()[-4000:])
        assert set(DEMO_IDS) <= seen.get("processed_dataset", set()), seen
        assert elapsed < 120, f"demo took {elapsed:.0f} s"
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()  # the UI itself
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        log.close()
    assert code == 0, (tmp_path / "dev.log").read_text(errors="replace")[-3000:]
