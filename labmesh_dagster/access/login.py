"""Signing in with a name and password: the throttle first, then the password, and the audit log either way.

One function, so that every way in (the portal's form, a JSON login) applies
the same rules in the same order. A refused attempt checks no password: a
throttled guesser learns nothing and costs no Argon2 hash. The answer to a
wrong name and to a wrong password is the same, and takes as long.
"""

from __future__ import annotations

from dataclasses import dataclass

from labmesh_dagster.access.audit import AuditEvent, AuditKind, AuditLog
from labmesh_dagster.access.throttle import LoginThrottle
from labmesh_dagster.access.users import Users
from labmesh_dagster.core.access import Viewer

WRONG_CREDENTIALS = "wrong user name or password"


@dataclass(frozen=True)
class SignIn:
    """The outcome: a viewer, or a message to show and, when throttled, the seconds to wait."""

    viewer: Viewer | None
    message: str = ""
    retry_after_seconds: int | None = None

    @property
    def ok(self) -> bool:
        return self.viewer is not None


def sign_in(
    name: str, password: str, *, address: str | None, users: Users, throttle: LoginThrottle, audit: AuditLog
) -> SignIn:
    """Check ``name`` and ``password`` from ``address`` (the client's IP), and record the attempt."""
    refusal = throttle.check(name, address)
    if refusal is not None:
        audit.record(AuditEvent(AuditKind.LOGIN_FAILED, name, address=address, detail=refusal.message))
        return SignIn(None, refusal.message, refusal.retry_after_seconds)
    user = users.authenticate(name, password)
    if user is None:
        throttle.record_failure(name, address)
        audit.record(AuditEvent(AuditKind.LOGIN_FAILED, name, address=address, detail=WRONG_CREDENTIALS))
        return SignIn(None, WRONG_CREDENTIALS)
    throttle.record_success(user.name)
    audit.record(AuditEvent(AuditKind.LOGIN, user.name, address=address, detail="password"))
    return SignIn(user.viewer)
