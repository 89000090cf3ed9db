"""The discovery portal: search, experiment and file pages, and the JSON API behind them, for signed-in people.

Every route starts from who is asking (`Viewer`): a signed session cookie from
the login form, or an ``Authorization: Bearer`` API token for scripts. Access is
applied before a result is formed: the catalog's search takes the viewer, and an
experiment, a file, a preview or a download is looked up through
`visible_experiment`, which answers the same "not found" for an experiment that
does not exist and one the viewer may not see, so a page never tells which.
Every search, experiment page, preview and download goes to the audit log.

Pages are server-rendered Jinja2 templates (autoescaped: nothing an ELN or a
file name holds can become markup) with htmx vendored as a static file, so the
portal works offline. The JSON API (``/api/...``) answers with exactly what the
pages show.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from labmesh_dagster.access.audit import AuditKind
from labmesh_dagster.connectors.catalog.base import FacetCounts, SearchQuery
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.errors import InvalidObjectKey, ObjectNotFound
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import ManifestEntry
from labmesh_dagster.portal.ask import create_ask_router
from labmesh_dagster.portal.charts import bar_chart
from labmesh_dagster.portal.content_search import search_contents
from labmesh_dagster.portal.context import HERE, NotVisible, PortalContext, visible_experiment
from labmesh_dagster.portal.experiment_view import dataset_history
from labmesh_dagster.portal.facets import active_filters, facet_links
from labmesh_dagster.portal.file_view import file_links, has_thumbnail, made_by, run_href, thumbnail_href
from labmesh_dagster.portal.matches import with_matches
from labmesh_dagster.portal.passage_view import cited_passage
from labmesh_dagster.portal.qc_view import experiment_qc, file_qc, quality_chart
from labmesh_dagster.portal.reports import is_html, multiqc_report, report_headers, view_href, with_sandbox_shim
from labmesh_dagster.portal.run_view import FILES_SHOWN as RUN_FILES_SHOWN
from labmesh_dagster.portal.run_view import MAX_FILES_SHOWN as MAX_RUN_FILES_SHOWN
from labmesh_dagster.portal.run_view import RUNINFO_FORMAT, run_folder
from labmesh_dagster.portal.sessions import COOKIE, Session, csrf_matches
from labmesh_dagster.portal.status_view import checks_attention, rejected_records
from labmesh_dagster.portal.viewing import Viewing
from labmesh_dagster.steps.landing import list_quarantine
from labmesh_dagster.steps.manifests import LINKS
from labmesh_dagster.steps.previews import preview_object
from labmesh_dagster.steps.thumbnails import tiff_thumbnail

if TYPE_CHECKING:
    from labmesh_dagster.access.oidc_provider import OidcProvider
    from labmesh_dagster.portal.oidc_login import ProviderSignOut

LOGIN_CSRF = "labmesh_login_csrf"
DOWNLOAD_CHUNK = 1024 * 1024
FACET_PARAMS = (
    "experiment",
    "sample",
    "group",
    "owner",
    "platform",
    "protocol",
    "format",
    "zone",
    "file_name",
    "since",
    "until",
)


PAGE_SIZE = 20
"""Datasets a search shows unless asked for more (``limit``): the best ones, the facet counts telling of all."""
MAX_PAGE_SIZE = 200
FILES_SHOWN = 20
"""Files a hit lists when unfolded; the rest are a click away on the experiment page (the JSON API has them all)."""
RunOffset = Annotated[int, Query(ge=0, description="how many of the run folder's files (in key order) to skip")]
RunLimit = Annotated[
    int, Query(ge=1, le=MAX_RUN_FILES_SHOWN, description="how many of the run folder's files to list at most")
]


def _limit(params: dict[str, str]) -> int:
    """The ``limit`` parameter, or the page size; a clear 400 for one that is not a whole number in range."""
    text = params.get("limit") or str(PAGE_SIZE)
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise HTTPException(400, f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(text)


def _query_from(params: dict[str, str], viewer: Viewer) -> SearchQuery:
    fields: dict[str, Any] = {name: params.get(name) or None for name in FACET_PARAMS}
    return SearchQuery(text=params.get("q", ""), viewer=viewer, limit=_limit(params), **fields)


def create_portal(context: PortalContext, *, provider_sign_out: ProviderSignOut | None = None) -> APIRouter:
    """The portal's routes; `mount_portal` adds them and the static files to an app.

    ``provider_sign_out`` (LABMESH_LOGIN=oidc) ends the provider's session after ``/logout`` ends the portal's.

    `PortalContext`, `NotVisible` and `visible_experiment` live in `portal.context`, and are importable from here.
    """
    router = APIRouter()
    viewing = Viewing(context)
    session_of, required_viewer, audit, page = (
        viewing.session_of,
        viewing.required_viewer,
        viewing.audit,
        viewing.page,
    )

    def login_page(
        request: Request, next: str, message: str, status: int = 200, *, signed_out_here: bool = False
    ) -> HTMLResponse:
        # The one form posted before a session exists: its CSRF token sits in a cookie of its own.
        token = request.cookies.get(LOGIN_CSRF) or secrets.token_urlsafe(32)
        provider = context.access.oidc.display_name if context.access.oidc else None
        response = page(
            request,
            "login.html",
            next=_local(next),
            message=message,
            login_csrf=token,
            provider=provider,
            provider_session_remains=signed_out_here and provider is not None,
        )
        response.status_code = status
        response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", secure=context.secure_cookies)
        return response

    @router.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str = "/", signed_out: str | None = None) -> HTMLResponse:
        return login_page(request, next, "", signed_out_here=signed_out == "here")

    @router.post("/login")
    async def login(request: Request) -> Response:
        if context.access.oidc is not None:  # LABMESH_LOGIN=oidc: the provider is the one way in
            raise HTTPException(404, "this portal signs in through its identity provider: use the button on /login")
        form = await _form(request)
        token = request.cookies.get(LOGIN_CSRF)
        if not token or not csrf_matches(Session(Viewer(""), token), form.get("csrf")):
            raise HTTPException(403, "the form is stale: reload the page and sign in again")
        address = request.client.host if request.client else None
        outcome = await run_in_threadpool(
            context.access.sign_in, form.get("name", ""), form.get("password", ""), address=address
        )
        if outcome.viewer is None:
            status = 429 if outcome.retry_after_seconds else 401
            return login_page(request, form.get("next", "/"), outcome.message, status)
        response = RedirectResponse(_local(form.get("next", "/")), status_code=303)
        viewing.set_session(response, outcome.viewer)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        form = await _form(request)
        session = session_of(request)
        if session is None or not csrf_matches(session, form.get("csrf")):
            raise HTTPException(403, "the form is stale: reload the page")
        audit(request, session.viewer, AuditKind.LOGOUT)
        if provider_sign_out is not None:
            response = await provider_sign_out(request, session)
        else:
            response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @router.get("/", response_class=HTMLResponse)
    async def search_page(request: Request) -> HTMLResponse:
        viewer = required_viewer(request, api=False)
        params = dict(request.query_params)
        results, counts, contents = await _searched(request, params, viewer)
        limit = _limit(params)
        full = len(results) == limit < MAX_PAGE_SIZE  # there may be more than the page shows
        more = {**params, "limit": str(min(limit * 5, MAX_PAGE_SIZE))} if full else None
        return page(
            request,
            "search.html",
            params=params,
            results=results,
            contents=contents,
            facets=facet_links(params, counts),
            filters=active_filters(params),
            more_href=f"/?{urlencode(more)}" if more else None,
            files_shown=FILES_SHOWN,
        )

    @router.get("/api/search")
    async def search_api(request: Request) -> JSONResponse:
        viewer = required_viewer(request, api=True)
        params = dict(request.query_params)
        results, counts, contents = await _searched(request, params, viewer)
        return JSONResponse({"results": results, "facets": counts, "contents": contents})

    async def _searched(
        request: Request, params: dict[str, str], viewer: Viewer
    ) -> tuple[list[dict[str, Any]], FacetCounts, dict[str, Any]]:
        """The catalog's hits and counts, and the file contents' hits, asked at once, while the search is written
        to the audit log: the page waits for the slowest of the three, not for each in turn (SQLite and Kendra
        calls release the GIL). A search that fails is still in the log, as asked."""
        _limit(params)  # a bad limit is refused before anything is searched or logged
        index = context.content_index() if context.content_index else None
        (results, counts), contents, _ = await asyncio.gather(
            run_in_threadpool(_search, params, viewer),
            run_in_threadpool(search_contents, index, params, viewer),
            run_in_threadpool(audit, request, viewer, AuditKind.SEARCH, query=params.get("q") or urlencode(params)),
        )
        return results, counts, contents

    def _search(params: dict[str, str], viewer: Viewer) -> tuple[list[dict[str, Any]], FacetCounts]:
        """The hits with the fields they matched and the facet counts, formed by the catalog under the viewer's
        access; the file contents' hits come from the content index, which applies it too (`search_contents`)."""
        catalog = context.catalog()
        query = _query_from(params, viewer)
        results = [
            {
                "experiment_id": hit.experiment_id,
                "title": hit.title,
                "dataset": hit.dataset,
                "files": [asdict(file) for file in hit.files],
                **{name: getattr(hit, name) for name in ("group", "owner", "platform", "protocol")},
            }
            for hit in catalog.search(query)
        ]
        return with_matches(results, query.text), catalog.facet_counts(query)

    @router.get("/status", response_class=HTMLResponse)
    async def status_page(request: Request) -> HTMLResponse:
        viewer = required_viewer(request, api=False)
        return page(request, "status.html", **await run_in_threadpool(_status, viewer))

    @router.get("/api/status")
    async def status_api(request: Request) -> JSONResponse:
        viewer = required_viewer(request, api=True)
        return JSONResponse(await run_in_threadpool(_status, viewer))

    def _status(viewer: Viewer) -> dict[str, Any]:
        """Per-zone file counts of the experiments the viewer may see, and their quarantined files with reasons.

        A quarantined file whose path names no experiment (it landed outside any) is shown to admins only.
        """
        catalog = context.catalog()
        summaries = catalog.summaries(viewer=viewer)
        rows = [
            {"experiment_id": s.experiment_id, "title": s.title, "revision": s.revision, "datasets": s.datasets}
            for s in summaries
        ]
        visible = {s.experiment_id for s in summaries}
        quarantined = []
        for item in list_quarantine(context.store()):
            try:
                experiment_id: str | None = ObjectKey.parse(item.original_key).experiment_id
            except (InvalidObjectKey, ValueError):
                experiment_id = None
            if viewer.admin or experiment_id in visible:
                quarantined.append(
                    {
                        "experiment_id": experiment_id,
                        "file": item.original_key,
                        "reason": item.reason,
                        "bytes": item.size,
                        "when": item.quarantined_at,
                    }
                )
        totals = {zone: sum(s.datasets.get(zone, 0) for s in summaries) for zone in ("raw", "processed", "final")}
        return {
            "experiments": rows,
            "totals": totals,
            "quarantined": quarantined,
            "rejected": rejected_records(context.rejections() if context.rejections else None, viewer),
            **checks_attention(catalog, viewer),
        }

    @router.get("/experiments/{experiment_id}", response_class=HTMLResponse)
    async def experiment_page(request: Request, experiment_id: str) -> HTMLResponse:
        viewer = required_viewer(request, api=False)
        shown = await run_in_threadpool(_experiment, viewer, experiment_id)
        audit(request, viewer, AuditKind.VIEW, experiment_id=experiment_id)
        return page(request, "experiment.html", **shown)

    @router.get("/api/experiments/{experiment_id}")
    async def experiment_api(request: Request, experiment_id: str) -> JSONResponse:
        viewer = required_viewer(request, api=True)
        shown = await run_in_threadpool(_experiment, viewer, experiment_id)
        audit(request, viewer, AuditKind.VIEW, experiment_id=experiment_id)
        return JSONResponse(
            {
                "experiment": shown["record"],
                "datasets": shown["datasets"],
                "quarantined": shown["quarantined"],
                "dagster": shown["dagster"],
                "qc_report": shown["qc_report"],
            }
        )

    def _experiment(viewer: Viewer, experiment_id: str) -> dict[str, Any]:
        catalog = context.catalog()
        record = visible_experiment(catalog, viewer, experiment_id)
        datasets = []
        qc_report = None
        for zone in (Zone.RAW, Zone.PROCESSED, Zone.FINAL):
            dataset = catalog.get_dataset(experiment_id, zone)
            if dataset is None:
                continue
            if zone is Zone.PROCESSED:
                qc_report = multiqc_report(dataset.files)
            datasets.append(
                {
                    "zone": zone.value,
                    "dagster_run": f"{context.dagster_url}/runs/{dataset.run_id}" if dataset.run_id else None,
                    "revision": dataset.revision,
                    "manifest_digest": dataset.manifest_digest,
                    "files": [_file_row(entry) for entry in dataset.files],
                    "bytes": sum(entry.size for entry in dataset.files),
                    **dataset_history(catalog, experiment_id, zone, dataset.revision, context.dagster_url),
                }
            )
        quarantined = [
            {"file": item.original_key, "reason": item.reason, "bytes": item.size, "when": item.quarantined_at}
            for item in list_quarantine(context.store())
            if item.original_key.startswith(f"{Zone.LANDING.value}/{experiment_id}/")
        ]
        partitions = {
            asset: f"{context.dagster_url}/assets/{asset}?{urlencode({'partition': experiment_id})}"
            for asset in ("experiment", "raw_dataset", "processed_dataset", "final_dataset")
        }
        return {
            "record": record.to_dict(),
            "datasets": datasets,
            "quarantined": quarantined,
            "dagster": partitions,
            "qc_report": qc_report,
        }

    @router.get("/experiments/{experiment_id}/qc", response_class=HTMLResponse)
    async def qc_page(request: Request, experiment_id: str) -> HTMLResponse:
        viewer = required_viewer(request, api=False)
        shown = await run_in_threadpool(_qc, viewer, experiment_id)
        audit(request, viewer, AuditKind.VIEW, experiment_id=experiment_id, detail="qc")
        files = shown["files"]
        charts = {
            "reads": bar_chart(
                "Reads per file", [(row["name"], row["reads"] or 0) for row in files], x_label="file", y_label="reads"
            ),
            "quality": quality_chart(files),
            "q30": bar_chart(
                "Bases at Q30 or better (%)",
                [(row["name"], row["q30_percent"] or 0) for row in files],
                x_label="file",
                y_label="% bases ≥ Q30",
            ),
        }
        return page(request, "qc.html", charts=charts, **shown)

    @router.get("/api/experiments/{experiment_id}/qc")
    async def qc_api(request: Request, experiment_id: str) -> JSONResponse:
        viewer = required_viewer(request, api=True)
        shown = await run_in_threadpool(_qc, viewer, experiment_id)
        audit(request, viewer, AuditKind.VIEW, experiment_id=experiment_id, detail="qc")
        return JSONResponse(shown)

    def _qc(viewer: Viewer, experiment_id: str) -> dict[str, Any]:
        """The processed dataset's QC reports (fastp's JSON, or labmesh's fallback QC documents), one row per
        FASTQ file, each mapped to its raw file through the manifest (`labmesh_dagster.portal.qc_view`)."""
        catalog = context.catalog()
        record = visible_experiment(catalog, viewer, experiment_id)
        return {"record": record.to_dict(), "files": experiment_qc(catalog, context.store(), experiment_id)}

    @router.get("/files/{key:path}", response_class=HTMLResponse)
    async def file_page(request: Request, key: str, passage: str | None = None) -> HTMLResponse:
        viewer = required_viewer(request, api=False)
        shown = await run_in_threadpool(_file_shown, viewer, key, passage)
        audit(request, viewer, AuditKind.PREVIEW, experiment_id=shown["record"]["id"], file_key=shown["file"]["key"])
        quality = quality_chart([shown["qc"]]) if shown["qc"] and shown["qc"]["per_position_mean_quality"] else None
        return page(request, "file.html", quality=quality, **shown)

    @router.get("/api/files/{key:path}")
    async def file_api(request: Request, key: str, passage: str | None = None) -> JSONResponse:
        viewer = required_viewer(request, api=True)
        shown = await run_in_threadpool(_file_shown, viewer, key, passage)
        audit(request, viewer, AuditKind.PREVIEW, experiment_id=shown["record"]["id"], file_key=shown["file"]["key"])
        return JSONResponse(shown)

    def _file_shown(viewer: Viewer, key: str, passage: str | None = None) -> dict[str, Any]:
        """The file page's content: the file, its bounded preview, its links and its thumbnail's address;
        with ``passage``, the passage a chat citation opens (`cited_passage`)."""
        record, entry = _file(viewer, key)
        preview = preview_object(context.store(), ObjectKey.parse(entry.key), entry.format, entry.size)
        shown = _file_row(entry)
        # The links are shown on their own, each under access: the metadata shown is the rest of it.
        shown["metadata"] = {name: value for name, value in shown["metadata"].items() if name != LINKS}
        return {
            "record": record.to_dict(),
            "file": shown,
            "preview": asdict(preview),
            "links": file_links(context.catalog(), viewer, entry),
            "thumbnail": thumbnail_href(entry.key) if has_thumbnail(entry) else None,
            "run_page": run_href(entry.key) if entry.format == RUNINFO_FORMAT else None,
            "passage": cited_passage(entry, passage),
            "made_by": made_by(context.catalog(), viewer, entry, context.dagster_url),
            "view": view_href(entry.key) if is_html(entry) else None,
            "qc": file_qc(context.catalog(), context.store(), record.id, entry.key)
            if entry.format.startswith("fastq")
            else None,
        }

    @router.get("/runs/{key:path}", response_class=HTMLResponse)
    async def run_page(
        request: Request, key: str, offset: RunOffset = 0, limit: RunLimit = RUN_FILES_SHOWN
    ) -> HTMLResponse:
        viewer = required_viewer(request, api=False)
        shown = await _run_shown(request, viewer, key, offset, limit)
        return page(request, "run.html", more_href=_more_href(shown["run"]["href"], shown, limit), **shown)

    @router.get("/api/runs/{key:path}")
    async def run_api(
        request: Request, key: str, offset: RunOffset = 0, limit: RunLimit = RUN_FILES_SHOWN
    ) -> JSONResponse:
        """An Illumina run folder, named by its RunInfo.xml's key: the run's metadata, its sample sheets and one
        page of the folder's files (``more`` is the next page's address, null on the last)."""
        viewer = required_viewer(request, api=True)
        shown = await _run_shown(request, viewer, key, offset, limit)
        return JSONResponse({**shown, "more": _more_href("/api" + shown["run"]["href"], shown, limit)})

    async def _run_shown(request: Request, viewer: Viewer, key: str, offset: int, limit: int) -> dict[str, Any]:
        """The run page's content (`run_folder`), in the audit log as a view of its RunInfo.xml, detail ``run``."""
        shown = await run_in_threadpool(run_folder, context.catalog(), viewer, key, offset=offset, limit=limit)
        run = shown["run"]
        audit(request, viewer, AuditKind.VIEW, experiment_id=shown["record"]["id"], file_key=run["key"], detail="run")
        return shown

    @router.get("/thumbnail/{key:path}")
    async def thumbnail(request: Request, key: str) -> Response:
        """A TIFF's thumbnail as PNG, drawn from a bounded head of the file (`steps.thumbnails`)."""
        viewer = required_viewer(request, api=False)
        record, entry = await run_in_threadpool(_file, viewer, key)
        if not has_thumbnail(entry):
            raise HTTPException(404, "no thumbnail: only TIFF images have one")
        try:
            drawn = await run_in_threadpool(tiff_thumbnail, context.store(), ObjectKey.parse(entry.key))
        except ObjectNotFound as exc:
            raise NotVisible("file") from exc
        audit(request, viewer, AuditKind.PREVIEW, experiment_id=record.id, file_key=entry.key, detail="thumbnail")
        if drawn.png is None:
            raise HTTPException(404, drawn.note)
        return Response(drawn.png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})

    @router.get("/download/{key:path}")
    async def download(request: Request, key: str, view: bool = False) -> StreamingResponse:
        """The file's bytes as a download; with ``view``, an HTML report shown in the browser, sandboxed
        (`portal.reports`). Either way the viewer must be able to see the experiment, and it is audited."""
        viewer = required_viewer(request, api=False)
        record, entry = await run_in_threadpool(_file, viewer, key)
        shown = view and is_html(entry)
        detail = "view" if shown else None
        audit(request, viewer, AuditKind.DOWNLOAD, experiment_id=record.id, file_key=entry.key, detail=detail)
        store = context.store()

        def chunks() -> Iterator[bytes]:
            with store.open(ObjectKey.parse(entry.key)) as stream:
                while chunk := stream.read(DOWNLOAD_CHUNK):
                    yield chunk

        name = ObjectKey.parse(entry.key).name
        if shown:
            return StreamingResponse(
                with_sandbox_shim(chunks()), media_type="text/html; charset=utf-8", headers=dict(report_headers(name))
            )
        headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{_quoted(name)}"}
        return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)

    def _file(viewer: Viewer, text: str) -> tuple[ExperimentRecord, ManifestEntry]:
        try:
            key = ObjectKey.parse(text)
            experiment_id = key.experiment_id
        except (InvalidObjectKey, ValueError) as exc:
            raise NotVisible("file") from exc
        catalog = context.catalog()
        record = visible_experiment(catalog, viewer, experiment_id)
        dataset = catalog.get_dataset(experiment_id, key.zone)
        entry = next((item for item in dataset.files if item.key == str(key)), None) if dataset else None
        if entry is None:
            raise NotVisible("file")
        return record, entry

    return router


def _file_row(entry: ManifestEntry) -> dict[str, Any]:
    key = ObjectKey.parse(entry.key)
    return {
        "key": entry.key,
        "name": key.name,
        "path": key.relative_path,
        "format": entry.format,
        "size": entry.size,
        "sha256": entry.sha256,
        "samples": list(entry.sample_ids),
        "verified": bool(entry.source_checksum),
        "metadata": dict(entry.metadata),
        "error": dict(entry.error) if entry.error else None,
    }


def _more_href(href: str, shown: dict[str, Any], limit: int) -> str | None:
    """The address of a run folder's next page of files, or None on the last."""
    if shown["more"] is None:
        return None
    return f"{href}?{urlencode({'offset': shown['more'], 'limit': limit})}"


def _local(target: str) -> str:
    """Only a path on this site: a login's ``next`` must not send anyone elsewhere."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _quoted(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the first value of each)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {name: values[0] for name, values in parse_qs(body, keep_blank_values=True).items()}


def mount_portal(app: FastAPI, context: PortalContext, *, oidc_provider: OidcProvider | None = None) -> None:
    """Add the portal's pages, API and static files to ``app`` (the one `labmesh api` serves).

    With LABMESH_LOGIN=oidc, also the sign-in through the provider (``oidc_provider``, or one from the settings).
    """
    if context.access.oidc is not None:
        # Authlib is loaded only by a portal that signs in through a provider.
        from labmesh_dagster.access.oidc_provider import OidcProvider
        from labmesh_dagster.portal.oidc_login import create_oidc_router, provider_sign_out

        provider = oidc_provider or OidcProvider(context.access.oidc)
        app.include_router(create_portal(context, provider_sign_out=provider_sign_out(context, provider)))
        app.include_router(create_oidc_router(context, provider))
    else:
        app.include_router(create_portal(context))
    app.include_router(create_ask_router(context))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(HTTPException)
    async def http_errors(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 303 and exc.headers:
            return RedirectResponse(exc.headers["Location"], status_code=303)
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        templates = Jinja2Templates(directory=str(HERE / "templates"))
        return templates.TemplateResponse(
            request,
            "error.html",
            {"status": exc.status_code, "detail": exc.detail, "viewer": None, "csrf": ""},
            status_code=exc.status_code,
        )
