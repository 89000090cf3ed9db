"""The Kubernetes deployment (``deploy/helm/``) runs labmesh's code location and portal the way the image does.

The values for Dagster's chart must launch runs as Kubernetes Jobs, serve the
same module and location name as ``workspace.yaml``, keep the one-run-per-
experiment limit, store in an external PostgreSQL and run as the image's
unprivileged uid; the portal must run ``labmesh api`` from the same image.
These are checked against the files as written. The chart's own
``values.schema.json`` is not in this repository (see infra/README.md), so the
values are not validated against it here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "deploy" / "helm" / "values.yaml"
PORTAL = ROOT / "deploy" / "helm" / "portal.yaml"


def values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text(encoding="utf-8"))


def image_uid() -> int:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    found = re.search(r"^ARG LABMESH_UID=(\d+)$", dockerfile, re.MULTILINE)
    assert found, "the Dockerfile names its uid"
    return int(found.group(1))


def code_location() -> dict[str, Any]:
    (deployment,) = values()["dagster-user-deployments"]["deployments"]
    return deployment


def test_runs_are_kubernetes_jobs() -> None:
    assert values()["runLauncher"]["type"] == "K8sRunLauncher"


def test_the_code_location_serves_what_the_workspace_names() -> None:
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text(encoding="utf-8"))
    module = workspace["load_from"][0]["python_module"]
    args = code_location()["dagsterApiGrpcArgs"]
    assert args[args.index("--module-name") + 1] == module["module_name"]
    assert args[args.index("--location-name") + 1] == module["location_name"]


def test_one_run_at_a_time_per_experiment() -> None:
    coordinator = values()["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    limits = coordinator["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits


def test_storage_is_the_labs_postgres_not_the_bundled_one() -> None:
    assert values()["postgresql"]["enabled"] is False
    assert values()["generatePostgresqlPasswordSecret"] is False


def test_pods_run_as_the_images_unprivileged_user() -> None:
    uid = image_uid()
    assert code_location()["podSecurityContext"]["runAsUser"] == uid
    run_pod = values()["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["podSpecConfig"]
    assert run_pod["securityContext"]["runAsUser"] == uid
    portal = next(doc for doc in yaml.safe_load_all(PORTAL.read_text(encoding="utf-8")) if doc["kind"] == "Deployment")
    assert portal["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid


def test_the_portal_uses_the_charts_service_account() -> None:
    portal = next(doc for doc in yaml.safe_load_all(PORTAL.read_text(encoding="utf-8")) if doc["kind"] == "Deployment")
    assert portal["spec"]["template"]["spec"]["serviceAccountName"] == values()["serviceAccount"]["name"]
    assert values()["global"]["serviceAccountName"] == values()["serviceAccount"]["name"]


def test_the_portal_runs_labmesh_api_from_the_code_locations_image() -> None:
    portal = next(doc for doc in yaml.safe_load_all(PORTAL.read_text(encoding="utf-8")) if doc["kind"] == "Deployment")
    (container,) = portal["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["labmesh", "api"]
    image = code_location()["image"]
    assert container["image"] == f"{image['repository']}:{image['tag']}"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
