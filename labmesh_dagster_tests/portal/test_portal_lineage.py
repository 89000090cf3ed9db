"""The lineage API and page over HTTP: datasets and runs first, a dataset's files on request, others' nodes nameless.

Pinned here: the first answer holds datasets by zone and each run as a node
between them, with no files; expanding a dataset adds its files and the
file-level edges into them, back to the landing files; a node from an
experiment the viewer may not see (EXP-2's raw dataset, its CSV) is exactly
``{"id", "label": "restricted", "restricted": true}`` and nothing in the whole
answer names it; another group's experiment answers 404 as one that does not
exist; the page needs a sign-in; every answer is audited as a view.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from labmesh_dagster.access.audit import AuditFilter, AuditKind
from labmesh_dagster_tests.portal.lab import PortalLab, build_lab
from labmesh_dagster_tests.portal.lineage_lab import OTHER_FILE, add_lineage
from labmesh_dagster_tests.portal.test_portal_pages import sign_in


@pytest.fixture
def lab(tmp_path: Path) -> PortalLab:
    lab = build_lab(tmp_path / "home")
    add_lineage(lab, tmp_path / "lineage.sqlite")
    return lab


def by_label(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["label"]: node for node in answer["nodes"] if not node["restricted"]}


def test_the_first_answer_has_datasets_by_zone_and_runs_between_them_but_no_files(lab: PortalLab) -> None:
    answer = sign_in(lab, "ada").get("/api/lineage/EXP-1").json()

    nodes = by_label(answer)
    kinds = {node["kind"] for node in nodes.values()}
    flow = {(edge["source"], edge["target"]) for edge in answer["edges"]}

    assert kinds == {"dataset", "run"}
    assert {"landing · EXP-1", "raw · EXP-1", "processed · EXP-1", "final · EXP-1"} <= set(nodes)
    assert (nodes["raw · EXP-1"]["id"], nodes["processed_dataset · COMPLETE"]["id"]) in flow
    assert (nodes["processed_dataset · COMPLETE"]["id"], nodes["processed · EXP-1"]["id"]) in flow
    assert nodes["final · EXP-1"]["expandable"] and nodes["final · EXP-1"]["file_count"] == 1
    assert answer["expanded"] == []


def test_expanding_datasets_adds_their_files_and_leads_from_the_report_back_to_landing(lab: PortalLab) -> None:
    ada = sign_in(lab, "ada")
    first = by_label(ada.get("/api/lineage/EXP-1").json())
    datasets = [first[f"{zone} · EXP-1"]["id"] for zone in ("raw", "processed", "final")]

    only_final = ada.get("/api/lineage/EXP-1", params={"expand": datasets[2]}).json()
    answer = ada.get("/api/lineage/EXP-1", params={"expand": datasets}).json()

    files = {node["key"]: node["id"] for node in answer["nodes"] if node.get("kind") == "file"}
    sources = {(edge["source"], edge["target"]) for edge in answer["edges"] if edge["kind"] == "file"}
    path = [
        "final/EXP-1/report.pdf",
        "processed/EXP-1/qc/summary.json",
        "raw/EXP-1/S1_R1.fastq.gz",
        "landing/EXP-1/S1_R1.fastq.gz",
    ]
    assert only_final["expanded"] == [datasets[2]]
    assert {node["key"] for node in only_final["nodes"] if node.get("kind") == "file"} == set(path[:2])
    assert answer["expanded"] == datasets
    for target, source in zip(path, path[1:], strict=False):
        assert (files[source], files[target]) in sources


def test_what_the_viewer_may_not_see_is_restricted_and_named_nowhere(lab: PortalLab) -> None:
    ada = sign_in(lab, "ada")
    first = ada.get("/api/lineage/EXP-1").json()
    processed = by_label(first)["processed · EXP-1"]["id"]
    answer = ada.get("/api/lineage/EXP-1", params={"expand": processed}).json()

    restricted = [node for node in answer["nodes"] if node["restricted"]]
    text = json.dumps(answer)

    assert len(restricted) == 2  # EXP-2's raw dataset and its CSV
    assert all(node == {"id": node["id"], "label": "restricted", "restricted": True} for node in restricted)
    for secret in ("EXP-2", "Kidney", "KID-01", OTHER_FILE):
        assert secret not in text
    assert {edge["source"] for edge in answer["edges"]} >= {node["id"] for node in restricted}


def test_an_admin_sees_the_other_experiments_nodes_by_name(lab: PortalLab) -> None:
    root = sign_in(lab, "root")
    processed = by_label(root.get("/api/lineage/EXP-1").json())["processed · EXP-1"]["id"]
    answer = root.get("/api/lineage/EXP-1", params={"expand": processed}).json()

    assert not any(node["restricted"] for node in answer["nodes"])
    assert "raw · EXP-2" in by_label(answer)
    assert OTHER_FILE in {node.get("key") for node in answer["nodes"]}


def test_another_groups_experiment_answers_as_one_that_does_not_exist(lab: PortalLab) -> None:
    bob = sign_in(lab, "bob")

    hidden_api, missing_api = bob.get("/api/lineage/EXP-1"), bob.get("/api/lineage/EXP-404")
    hidden_page = bob.get("/lineage/EXP-1", headers={"accept": "text/html"})

    assert hidden_api.status_code == missing_api.status_code == hidden_page.status_code == 404
    assert hidden_api.json() == missing_api.json()
    assert "Liver" not in hidden_page.text


def test_nothing_is_shown_before_sign_in(lab: PortalLab) -> None:
    client = TestClient(lab.app)

    assert client.get("/api/lineage/EXP-1").status_code == 401
    assert client.get("/lineage/EXP-1", follow_redirects=False).headers["location"].startswith("/login")


def test_the_page_loads_the_vendored_graph_library_and_escapes_the_title(lab: PortalLab) -> None:
    ada = sign_in(lab, "ada")
    page = ada.get("/lineage/EXP-1")

    assert page.status_code == 200
    assert "<script>window.pwned" not in page.text
    for script in ("vendor/cytoscape-3.35.0.min.js", "vendor/dagre-0.8.5.min.js", "vendor/cytoscape-dagre-2.5.0.js"):
        assert f'src="/static/{script}"' in page.text
        assert ada.get(f"/static/{script}").status_code == 200
    assert ada.get("/static/lineage.js").status_code == 200


def test_each_lineage_view_is_audited_with_the_experiment(lab: PortalLab) -> None:
    ada = sign_in(lab, "ada")
    ada.get("/lineage/EXP-1")
    ada.get("/api/lineage/EXP-1")

    views = lab.access.audit.read(AuditFilter(user="ada", kinds=frozenset({AuditKind.VIEW})))

    assert [(entry.event.experiment_id, entry.event.detail) for entry in views] == [
        ("EXP-1", "lineage"),
        ("EXP-1", "lineage page"),
    ]
