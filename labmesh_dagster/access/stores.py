"""Everything about who is asking, opened once from the settings: the one object the portal and the CLI hold.

The portal opens it at startup and calls it from every route: `sign_in` on
the login form, `viewer_for_token` for an ``Authorization: Bearer`` header,
`audit.record` on each search, page, preview and download.

The settings pick where it all is kept: with ``LABMESH_DATABASE_URL`` the
PostgreSQL twins (`postgres_users` and its siblings), which every process of
a deployment shares; otherwise the SQLite access file and audit file under
the lab's home. Callers hold the protocols (`Users`, `TokenStore`,
`LoginThrottle`, `AuditLog`) and never learn which.
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher

from labmesh_dagster.access.audit import AuditLog, SqliteAuditLog
from labmesh_dagster.access.login import SignIn, sign_in
from labmesh_dagster.access.throttle import LoginLimits, LoginThrottle, SqliteLoginThrottle
from labmesh_dagster.access.tokens import SqliteTokenStore, TokenStore
from labmesh_dagster.access.users import Users, UserStore
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.clock import Clock, utc_now
from labmesh_dagster.settings import AccessSettings, OidcSettings


def open_users(settings: AccessSettings, *, clock: Clock = utc_now, hasher: PasswordHasher | None = None) -> Users:
    if settings.database_url:
        from labmesh_dagster.access.postgres_users import PostgresUserStore

        return PostgresUserStore(settings.database_url, hasher=hasher, clock=clock)
    return UserStore(settings.access_path, hasher=hasher, clock=clock)


def open_tokens(settings: AccessSettings, *, clock: Clock = utc_now) -> TokenStore:
    if settings.database_url:
        from labmesh_dagster.access.postgres_tokens import PostgresTokenStore

        return PostgresTokenStore(settings.database_url, clock=clock)
    return SqliteTokenStore(settings.access_path, clock=clock)


def open_throttle(settings: AccessSettings, *, clock: Clock = utc_now) -> LoginThrottle:
    limits = LoginLimits(
        per_user=settings.login_failures_per_user,
        per_address=settings.login_failures_per_address,
        window_seconds=settings.login_window_seconds,
    )
    if settings.database_url:
        from labmesh_dagster.access.postgres_throttle import PostgresLoginThrottle

        return PostgresLoginThrottle(settings.database_url, limits, clock=clock)
    return SqliteLoginThrottle(settings.access_path, limits, clock=clock)


def open_audit(settings: AccessSettings, *, clock: Clock = utc_now) -> AuditLog:
    if settings.database_url:
        from labmesh_dagster.access.postgres_audit import PostgresAuditLog

        return PostgresAuditLog(settings.database_url, clock=clock)
    return SqliteAuditLog(settings.audit_path, clock=clock)


def accounts_exist(settings: AccessSettings) -> bool:
    """Whether there may be accounts to show: looking at a new home is no reason to create its access file."""
    return bool(settings.database_url) or settings.access_path.exists()


def audit_exists(settings: AccessSettings) -> bool:
    return bool(settings.database_url) or settings.audit_path.exists()


@dataclass(frozen=True)
class AccessStores:
    users: Users
    tokens: TokenStore
    throttle: LoginThrottle
    audit: AuditLog
    oidc: OidcSettings | None

    @classmethod
    def open(
        cls, settings: AccessSettings, *, clock: Clock = utc_now, hasher: PasswordHasher | None = None
    ) -> AccessStores:
        """Open (and on first use create) the accounts and the audit log where the settings keep them."""
        return cls(
            users=open_users(settings, clock=clock, hasher=hasher),
            tokens=open_tokens(settings, clock=clock),
            throttle=open_throttle(settings, clock=clock),
            audit=open_audit(settings, clock=clock),
            oidc=settings.oidc,
        )

    def sign_in(self, name: str, password: str, *, address: str | None) -> SignIn:
        """A password sign-in, throttled and audited (`labmesh_dagster.access.login.sign_in`)."""
        return sign_in(name, password, address=address, users=self.users, throttle=self.throttle, audit=self.audit)

    def viewer_for_token(self, token: str) -> Viewer | None:
        return self.tokens.viewer_for_token(token)
