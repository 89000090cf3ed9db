"""Who is asking and what they saw, for route modules beside `portal.app`.

Every route module (`portal.app`, `portal.lineage`) takes the same rules from
here: a session cookie or a Bearer token names the viewer, a page without one
sends the browser to sign in while the API answers 401, and every view is audited.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from labmesh_dagster.access.audit import AuditEvent, AuditKind
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.portal.context import HERE, PortalContext
from labmesh_dagster.portal.sessions import COOKIE, Session


class Viewing:
    """The portal's request helpers over one `PortalContext`."""

    def __init__(self, context: PortalContext) -> None:
        self.context = context
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))

    def session_of(self, request: Request) -> Session | None:
        return self.context.signer.loads(request.cookies.get(COOKIE))

    def viewer_of(self, request: Request) -> Viewer | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return self.context.access.viewer_for_token(header[7:].strip())
        session = self.session_of(request)
        return session.viewer if session else None

    def required_viewer(self, request: Request, *, api: bool) -> Viewer:
        """The viewer, or 401 for the API and a redirect to sign in for a page (handled by `mount_portal`)."""
        viewer = self.viewer_of(request)
        if viewer is None:
            if api:
                raise HTTPException(401, "sign in, or send an API token as Authorization: Bearer <token>")
            raise HTTPException(303, headers={"Location": f"/login?{urlencode({'next': str(request.url.path)})}"})
        return viewer

    def set_session(self, response: Response, viewer: Viewer) -> Session:
        """Sign ``viewer`` in: a new session, with its own CSRF token, in the signed cookie (password or OIDC alike)."""
        signer = self.context.signer
        session = signer.new(viewer)
        response.set_cookie(
            COOKIE,
            signer.dumps(session),
            max_age=signer.max_age_seconds,
            httponly=True,
            samesite="lax",
            secure=self.context.secure_cookies,
        )
        return session

    def audit(self, request: Request, viewer: Viewer, kind: AuditKind, **what: Any) -> None:
        address = request.client.host if request.client else None
        self.context.access.audit.record(AuditEvent(kind, viewer.name, address=address, **what))

    def page(self, request: Request, name: str, **values: Any) -> HTMLResponse:
        session = self.session_of(request)
        values |= {"viewer": session.viewer if session else None, "csrf": session.csrf if session else ""}
        return self.templates.TemplateResponse(request, name, values)
