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

Signing out ends the provider's session too, when the provider says how
(`provider_sign_out`, RP-Initiated Logout 1.0): ``/logout`` sends the browser
to its ``end_session_endpoint`` with the sign-in's ID token as the hint. The
token is kept from the callback in a cookie of its own, signed, HttpOnly and
sent only to ``/logout`` (not with every page, as the session is), bound to
the session by its CSRF token so that it only ever ends the sign-in it came
with. A token too big for a cookie is not kept: the provider is then told the
client alone, and may ask the person to confirm.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from labmesh_dagster.access.audit import AuditEvent, AuditKind
from labmesh_dagster.access.errors import OidcClaimsError, OidcSignInRefused, OidcUnavailable
from labmesh_dagster.access.oidc import viewer_from_claims
from labmesh_dagster.access.oidc_provider import OidcProvider
from labmesh_dagster.portal.context import PortalContext
from labmesh_dagster.portal.sessions import Session
from labmesh_dagster.portal.viewing import Viewing

FLOW_COOKIE = "labmesh_oidc"
FLOW_PATH = "/auth"
FLOW_MAX_AGE_SECONDS = 600
STALE = "this sign-in was not started here, or took longer than 10 minutes: sign in again"
LOGOUT_COOKIE = "labmesh_oidc_logout"
LOGOUT_PATH = "/logout"
MAX_COOKIE_BYTES = 3800
"""Browsers keep cookies up to 4096 bytes, name and attributes included: a bigger ID token is not kept."""
SIGNED_OUT_HERE_ONLY = "/login?signed_out=here"
"""Where sign-out ends when the provider cannot be told: the login page says its session there remains."""

ProviderSignOut = Callable[[Request, Session], Awaitable[Response]]
"""Ends the provider's session after the portal's: the response ``/logout`` answers with."""


def create_oidc_router(context: PortalContext, provider: OidcProvider) -> APIRouter:
    """``/auth/login`` and ``/auth/callback`` for ``provider``; `mount_portal` adds them when LABMESH_LOGIN=oidc."""
    router = APIRouter()
    viewing = Viewing(context)
    flows = context.signer.signed("oidc-sign-in")
    signed_out = context.signer.signed("oidc-sign-out")
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
            signed = await run_in_threadpool(
                provider.sign_in,
                code=code,
                redirect_uri=callback_url(request),
                code_verifier=flow["verifier"],
                nonce=flow["nonce"],
            )
            viewer = viewer_from_claims(signed.claims, settings)
        except OidcUnavailable as exc:
            return failed(request, str(exc), 503, next=flow["next"])
        except (OidcSignInRefused, OidcClaimsError) as exc:
            return failed(request, str(exc), 401, next=flow["next"])
        context.access.audit.record(
            AuditEvent(AuditKind.LOGIN, viewer.name, address=address_of(request), detail="oidc")
        )
        response = RedirectResponse(flow["next"], status_code=303)
        session = viewing.set_session(response, viewer)
        response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
        hint = signed_out.dumps({"csrf": session.csrf, "id_token": signed.id_token})
        if len(LOGOUT_COOKIE) + len(hint) + 100 <= MAX_COOKIE_BYTES:
            response.set_cookie(
                LOGOUT_COOKIE,
                hint,
                max_age=context.signer.max_age_seconds,
                path=LOGOUT_PATH,
                httponly=True,
                samesite="lax",
                secure=context.secure_cookies,
            )
        else:
            response.delete_cookie(LOGOUT_COOKIE, path=LOGOUT_PATH)  # not the hint of an earlier sign-in
        return response

    return router


def provider_sign_out(context: PortalContext, provider: OidcProvider) -> ProviderSignOut:
    """What ``/logout`` answers once the portal's session is dropped: off to the provider's
    ``end_session_endpoint`` (303), or, for a provider that names none or cannot be reached now, to the login
    page saying the session at the provider remains."""
    settings = provider.settings
    signed_out = context.signer.signed("oidc-sign-out")

    async def sign_out(request: Request, session: Session) -> Response:
        back = settings.post_logout_url or str(request.url_for("login_form"))
        hint = _id_token_of(signed_out, request.cookies.get(LOGOUT_COOKIE), session, context.signer.max_age_seconds)
        try:
            target = await run_in_threadpool(
                provider.end_session_url, post_logout_redirect_uri=back, id_token_hint=hint
            )
        except OidcUnavailable:
            target = None  # a provider that cannot be reached keeps nobody signed in to the portal
        response = RedirectResponse(target or SIGNED_OUT_HERE_ONLY, status_code=303)
        response.delete_cookie(LOGOUT_COOKIE, path=LOGOUT_PATH)
        return response

    return sign_out


def _id_token_of(signed_out: URLSafeTimedSerializer, value: str | None, session: Session, max_age: int) -> str | None:
    """The ID token of ``session``'s sign-in, from its cookie; None when absent, forged, or of another session."""
    if not value:
        return None
    try:
        data = signed_out.loads(value, max_age=max_age)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id_token"), str):
        return None
    if not hmac.compare_digest(str(data.get("csrf", "")).encode(), session.csrf.encode()):
        return None
    return str(data["id_token"])


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
