"""Signing in: the throttle, then the password, and every attempt in the audit log.

Contract: a right password gives the user's viewer and a ``login`` entry with
the address; a wrong password or an unknown name gives the same message and a
``login_failed`` entry; after the per-user limit, even the right password is
refused with "try again in N s" without being checked, and logged as a failure
saying so; once the window has passed, the right password works and clears
the count.
"""

from __future__ import annotations

from labmesh_dagster.access.audit import AuditKind, AuditLog
from labmesh_dagster.access.login import WRONG_CREDENTIALS, SignIn, sign_in
from labmesh_dagster.access.throttle import LoginThrottle
from labmesh_dagster.access.users import UserStore
from labmesh_dagster_tests.access.conftest import ManualClock


def test_signing_in_is_throttled_and_every_attempt_is_audited(
    users: UserStore, throttle: LoginThrottle, audit: AuditLog, clock: ManualClock
) -> None:
    users.add("ada", "correct horse", groups=["genomics"])

    def attempt(name: str, password: str) -> SignIn:
        result = sign_in(name, password, address="10.0.0.1", users=users, throttle=throttle, audit=audit)
        clock.advance(5)
        return result

    welcome = attempt("ada", "correct horse")
    assert welcome.ok and welcome.viewer is not None and welcome.viewer.groups == {"genomics"}

    wrong, unknown = attempt("ada", "guess 1"), attempt("nobody", "guess 1")
    assert (wrong.ok, wrong.message) == (unknown.ok, unknown.message) == (False, WRONG_CREDENTIALS)

    attempt("ada", "guess 2")
    attempt("ada", "guess 3")  # ada's third failure within 60 s (at 5, 15 and 20 s): the limit
    refused = attempt("ada", "correct horse")
    assert not refused.ok  # at 25 s: the failure at 5 s leaves the window at 65 s
    assert refused.message == "too many failed sign-ins; try again in 40 s" and refused.retry_after_seconds == 40

    clock.advance(40)
    assert attempt("ada", "correct horse").ok
    assert throttle.check("ada", None) is None, "a success clears the user's failures"

    logged = [(entry.event.kind, entry.event.user, entry.event.detail) for entry in reversed(audit.read())]
    assert logged == [
        (AuditKind.LOGIN, "ada", "password"),
        (AuditKind.LOGIN_FAILED, "ada", WRONG_CREDENTIALS),
        (AuditKind.LOGIN_FAILED, "nobody", WRONG_CREDENTIALS),
        (AuditKind.LOGIN_FAILED, "ada", WRONG_CREDENTIALS),
        (AuditKind.LOGIN_FAILED, "ada", WRONG_CREDENTIALS),
        (AuditKind.LOGIN_FAILED, "ada", "too many failed sign-ins; try again in 40 s"),
        (AuditKind.LOGIN, "ada", "password"),
    ]
    assert {entry.event.address for entry in audit.read()} == {"10.0.0.1"}
