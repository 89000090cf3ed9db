"""`labmesh api` serves one app: the ELN webhook endpoint and every portal page, lineage included.

Pinned here: the app `labmesh api` builds from the settings answers the
portal's sign-in page, holds the search, experiment, QC, status, file and
lineage routes beside the webhook endpoint, and marks its session cookies
``Secure`` unless it listens on loopback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from labmesh_dagster.portal.serve import api_app, is_loopback
from labmesh_dagster.ports import Ports
from labmesh_dagster_tests.conftest import make_settings


def test_labmesh_api_serves_the_portal_beside_the_webhooks(tmp_path: Path) -> None:
    client = TestClient(api_app(Ports(make_settings(tmp_path / "home")), host="127.0.0.1"))

    assert client.get("/login").status_code == 200
    assert client.get("/healthz").status_code == 200
    for page in ("/", "/status", "/experiments/EXP-1", "/experiments/EXP-1/qc", "/lineage/EXP-1"):
        answer = client.get(page, follow_redirects=False)
        assert (answer.status_code, answer.headers["location"][:6]) == (303, "/login"), page
    for api in ("/api/search", "/api/status", "/api/experiments/EXP-1", "/api/lineage/EXP-1"):
        assert client.get(api).status_code == 401, api
    assert client.post("/eln/events/nosuchsource", content=b"{}").status_code == 404


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
        ("portal.lab", False),
    ],
)
def test_cookies_are_secure_unless_the_portal_listens_on_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
