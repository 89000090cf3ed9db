"""Signed session cookies and the CSRF token every form carries.

The session is a cookie holding the user's name, groups and admin flag,
signed with the portal's secret (itsdangerous) and dated, so it cannot be
forged or kept past its age. It is ``HttpOnly`` (scripts cannot read it),
``SameSite=Lax`` (another site's form cannot post with it) and ``Secure``
unless the portal is told it is served over plain HTTP on the lab's own
machine. Each session carries a random CSRF token; every form posts it back
and a POST whose token does not match the session's is refused, so a page on
another site cannot act in a user's name even where SameSite is not honoured.

The signing secret comes from the settings; without one, a random secret is
made at start, which signs every session out when the portal restarts.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from labmesh_dagster.core.access import Viewer

COOKIE = "labmesh_session"
MAX_AGE_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Session:
    viewer: Viewer
    csrf: str


class SessionSigner:
    """Turns a session into a cookie value and back; a tampered or expired value is no session."""

    def __init__(self, secret: str, *, max_age_seconds: int = MAX_AGE_SECONDS) -> None:
        self._secret = secret
        self._serializer = URLSafeTimedSerializer(secret, salt="labmesh-portal-session")
        self.max_age_seconds = max_age_seconds

    def signed(self, purpose: str) -> URLSafeTimedSerializer:
        """A serializer for another cookie (an OIDC sign-in under way), salted so it never passes for a session."""
        return URLSafeTimedSerializer(self._secret, salt=f"labmesh-portal-{purpose}")

    def new(self, viewer: Viewer) -> Session:
        return Session(viewer, secrets.token_urlsafe(32))

    def dumps(self, session: Session) -> str:
        viewer = session.viewer
        return self._serializer.dumps(
            {"name": viewer.name, "groups": sorted(viewer.groups), "admin": viewer.admin, "csrf": session.csrf}
        )

    def loads(self, value: str | None) -> Session | None:
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=self.max_age_seconds)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return None
        viewer = Viewer(data["name"], frozenset(data.get("groups") or ()), bool(data.get("admin")))
        return Session(viewer, str(data.get("csrf") or ""))


def csrf_matches(session: Session | None, sent: str | None) -> bool:
    """The form's token is the session's (compared in constant time)."""
    return session is not None and bool(sent) and hmac.compare_digest(session.csrf, sent or "")
