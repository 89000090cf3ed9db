"""Signing in to the portal through an OpenID provider: ``/auth/login`` sends the browser there, ``/auth/callback``
brings it back signed in.

What the callback checks belongs to one sign-in: the state (it was started
here, by this browser), the nonce (the ID token was issued for it) and the
PKCE verifier (the code is redeemed by whoever asked for it). They travel in
a cookie signed with the portal's secret, good for ten minutes, HttpOnly and
``SameSite=Lax`` (the provider's redirect back is a navigation from another
site, which ``Strict`` would strip the cookie from), and removed by the
callback whatever its outcome, so no sign-in can be replayed.

A sign-in ends signed in or not at all: the session cookie, the same one a
password sign-in gets, is set only once every check has passed; a failure
shows the login page with what went wrong and the button to try again. Every
attempt goes to the audit log, ``login`` or ``login_failed``, as password
sign-ins do.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from labmesh_dagster.access.audit import AuditEvent, AuditKind
from labmesh_dagster.access.errors import OidcClaimsError, OidcSignInRefused, OidcUnavailable
from labmesh_dagster.access.oidc import viewer_from_claims
from labmesh_dagster.access.oidc_provider import OidcProvider
from labmesh_dagster.portal.context import PortalContext
from labmesh_dagster.portal.viewing import Viewing

FLOW_COOKIE = "labmesh_oidc"
FLOW_PATH = "/auth"
FLOW_MAX_AGE_SECONDS = 600
STALE = "this sign-in was not started here, or took longer than 10 minutes: sign in again"


def create_oidc_router(context: PortalContext, provider: OidcProvider) -> APIRouter:
    """``/auth/login`` and ``/auth/callback`` for ``provider``; `mount_portal` adds them when LABMESH_LOGIN=oidc."""
    router = APIRouter()
    viewing = Viewing(context)
    flows = context.signer.signed("oidc-sign-in")
    settings = provider.settings

    def callback_url(request: Request) -> str:
        return settings.redirect_url or str(request.url_for("oidc_callback"))

    def address_of(request: Request) -> str | None:
        return request.client.host if request.client else None

    def failed(request: Request, message: str, status: int, *, next: str = "/") -> HTMLResponse:
        context.access.audit.record(
            AuditEvent(AuditKind.LOGIN_FAILED, None, address=address_of(request), detail=f"oidc: {message}")
        )
        response = viewing.page(
            request, "login.html", next=next, message=message, login_csrf="", provider=settings.display_name
        )
        response.status_code = status
        response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
        return response

    @router.get("/auth/login")
    async def oidc_login(request: Request, next: str = "/") -> Response:
        try:
            authorization = await run_in_threadpool(provider.authorization, callback_url(request))
        except OidcUnavailable as exc:
            return failed(request, str(exc), 503, next=local_path(next))
        flow = {
            "state": authorization.state,
            "nonce": authorization.nonce,
            "verifier": authorization.code_verifier,
            "next": local_path(next),
        }
        response = RedirectResponse(authorization.url, status_code=303)
        response.set_cookie(
            FLOW_COOKIE,
            flows.dumps(flow),
            max_age=FLOW_MAX_AGE_SECONDS,
            path=FLOW_PATH,
            httponly=True,
            samesite="lax",
            secure=context.secure_cookies,
        )
        return response

    @router.get("/auth/callback", name="oidc_callback")
    async def oidc_callback(request: Request) -> Response:
        params = request.query_params
        flow = _flow(flows, request.cookies.get(FLOW_COOKIE))
        if flow is None:
            return failed(request, STALE, 400)
        if not hmac.compare_digest(params.get("state", "").encode(), flow["state"].encode()):
            return failed(request, "the answer does not belong to the sign-in started here (state): sign in again", 400)
        if params.get("error"):
            said = ": ".join(part for part in (params["error"], params.get("error_description", "")) if part)
            return failed(request, f"the identity provider did not sign you in ({said})", 401, next=flow["next"])
        code = params.get("code")
        if not code:
            return failed(request, "the identity provider sent no sign-in code: sign in again", 400)
        try:
            claims = await run_in_threadpool(
                provider.sign_in,
                code=code,
                redirect_uri=callback_url(request),
                code_verifier=flow["verifier"],
                nonce=flow["nonce"],
            )
            viewer = viewer_from_claims(claims, settings)
        except OidcUnavailable as exc:
            return failed(request, str(exc), 503, next=flow["next"])
        except (OidcSignInRefused, OidcClaimsError) as exc:
            return failed(request, str(exc), 401, next=flow["next"])
        context.access.audit.record(
            AuditEvent(AuditKind.LOGIN, viewer.name, address=address_of(request), detail="oidc")
        )
        response = RedirectResponse(flow["next"], status_code=303)
        viewing.set_session(response, viewer)
        response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
        return response

    return router


def _flow(flows: URLSafeTimedSerializer, value: str | None) -> dict[str, str] | None:
    """The sign-in under way, from its cookie; None when absent, forged or older than ten minutes."""
    if not value:
        return None
    try:
        data = flows.loads(value, max_age=FLOW_MAX_AGE_SECONDS)
    except BadSignature:
        return None
    keys = ("state", "nonce", "verifier", "next")
    if not isinstance(data, dict) or not all(isinstance(data.get(key), str) for key in keys):
        return None
    return {key: data[key] for key in keys}


def local_path(target: str) -> str:
    """Only a path on this site: where to go after signing in must not be another site."""
    # "//host" and "/\\host" are other sites to a browser.
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"
