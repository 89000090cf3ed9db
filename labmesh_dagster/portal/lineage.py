"""The portal's lineage page and its JSON: how an experiment's data was made, landing to final, run by run.

The page draws the graph with Cytoscape.js (vendored, laid out left to right
by dagre) from ``/api/lineage/<experiment>``, and asks the same address again
with ``?expand=<node id>`` when someone opens a dataset, so an experiment with
thousands of files costs nothing until they are wanted. The experiment itself
follows the experiment page's rule (not found, alike, when it does not exist
or may not be seen); nodes of other experiments in its lineage are checked one
by one and shown as "restricted" when the viewer may not see them
(`labmesh_dagster.lineage.view`). Every answer is audited as a view.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from labmesh_dagster.access.audit import AuditKind
from labmesh_dagster.connectors.lineage.base import LineageLog
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.lineage.graph import build_graph
from labmesh_dagster.lineage.view import lineage_json
from labmesh_dagster.portal.app import PortalContext, visible_experiment
from labmesh_dagster.portal.viewing import Viewing


def create_lineage_router(
    context: PortalContext, lineage_log: Callable[[], LineageLog], *, secret: bytes | None = None
) -> APIRouter:
    """The lineage page and API. ``secret`` keys the opaque node ids; a fresh one per process unless given."""
    viewing = Viewing(context)
    key = secret if secret is not None else secrets.token_bytes(32)
    router = APIRouter()

    def shaped(viewer: Viewer, experiment_id: str, expand: list[str]) -> dict[str, Any]:
        catalog = context.catalog()
        record = visible_experiment(catalog, viewer, experiment_id)

        def may_see(other: str) -> bool:
            return viewer.may_see(catalog.principals(other))

        graph = build_graph(lineage_log().events(record.id))
        return lineage_json(graph, record.id, may_see=may_see, secret=key, expand=expand)

    @router.get("/lineage/{experiment_id}", response_class=HTMLResponse)
    async def lineage_page(request: Request, experiment_id: str) -> HTMLResponse:
        viewer = viewing.required_viewer(request, api=False)
        catalog = context.catalog()
        record = await run_in_threadpool(visible_experiment, catalog, viewer, experiment_id)
        viewing.audit(request, viewer, AuditKind.VIEW, experiment_id=record.id, detail="lineage page")
        return viewing.page(request, "lineage.html", record=record.to_dict())

    @router.get("/api/lineage/{experiment_id}")
    async def lineage_api(
        request: Request,
        experiment_id: str,
        expand: list[str] = Query(default=[], description="ids of dataset nodes whose files to include"),
    ) -> JSONResponse:
        """Datasets and runs of an experiment's lineage; with ``expand``, those datasets' files and file edges too."""
        viewer = viewing.required_viewer(request, api=True)
        answer = await run_in_threadpool(shaped, viewer, experiment_id, expand)
        detail = "lineage expand" if expand else "lineage"
        viewing.audit(request, viewer, AuditKind.VIEW, experiment_id=answer["experiment_id"], detail=detail)
        return JSONResponse(answer)

    return router
