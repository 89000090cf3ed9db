"""Everything about who is asking, opened once from the settings: the one object the portal and the CLI hold.

The portal opens it at startup and calls it from every route: `sign_in` on
the login form, `viewer_for_token` for an ``Authorization: Bearer`` header,
`audit.record` on each search, page, preview and download.
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher

from labmesh_dagster.access.audit import AuditLog
from labmesh_dagster.access.login import SignIn, sign_in
from labmesh_dagster.access.throttle import LoginLimits, LoginThrottle
from labmesh_dagster.access.tokens import TokenStore
from labmesh_dagster.access.users import UserStore
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.clock import Clock, utc_now
from labmesh_dagster.settings import AccessSettings, OidcSettings


@dataclass(frozen=True)
class AccessStores:
    users: UserStore
    tokens: TokenStore
    throttle: LoginThrottle
    audit: AuditLog
    oidc: OidcSettings | None

    @classmethod
    def open(
        cls, settings: AccessSettings, *, clock: Clock = utc_now, hasher: PasswordHasher | None = None
    ) -> AccessStores:
        """Open (and on first use create) the access file and the audit log the settings name."""
        limits = LoginLimits(
            per_user=settings.login_failures_per_user,
            per_address=settings.login_failures_per_address,
            window_seconds=settings.login_window_seconds,
        )
        return cls(
            users=UserStore(settings.access_path, hasher=hasher, clock=clock),
            tokens=TokenStore(settings.access_path, clock=clock),
            throttle=LoginThrottle(settings.access_path, limits, clock=clock),
            audit=AuditLog(settings.audit_path, clock=clock),
            oidc=settings.oidc,
        )

    def sign_in(self, name: str, password: str, *, address: str | None) -> SignIn:
        """A password sign-in, throttled and audited (`labmesh_dagster.access.login.sign_in`)."""
        return sign_in(name, password, address=address, users=self.users, throttle=self.throttle, audit=self.audit)

    def viewer_for_token(self, token: str) -> Viewer | None:
        return self.tokens.viewer_for_token(token)
