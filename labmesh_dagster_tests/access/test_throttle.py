"""Failed sign-ins slow guessing: per user name and per address, in a sliding window, with a clear wait.

Contract: `retry_after` allows a try while fewer than ``limit`` failures lie
within the window, and otherwise says how long until enough have left it; the
throttle refuses a name after its limit of failures from any address, and an
address after its limit across names, saying "try again in N s"; a success
clears its user's failures but not its address's; two throttles on one store
(two processes) count the same failures. Pinned on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import pytest

from labmesh_dagster.access.throttle import LoginLimits, LoginThrottle, retry_after
from labmesh_dagster_tests.access.conftest import Backend, ManualClock


@pytest.mark.parametrize(
    ("failures", "now", "expected"),
    [
        ([], 100.0, None),
        ([10.0, 20.0], 30.0, None),  # below the limit of 3
        ([10.0, 20.0, 30.0], 30.0, 40.0),  # at the limit: until 10 + 60 leaves the window
        ([30.0, 10.0, 20.0], 30.0, 40.0),  # order does not matter
        ([10.0, 20.0, 30.0], 70.0, None),  # 10 is out of the window (60 s): two are left
        ([10.0, 20.0, 30.0, 40.0], 45.0, 35.0),  # four: 10 and 20 must leave, so until 20 + 60
        ([10.0, 20.0, 99.0], 45.0, None),  # a moment after "now" is not counted
    ],
)
def test_retry_after_is_the_time_until_enough_failures_leave_the_window(
    failures: list[float], now: float, expected: float | None
) -> None:
    assert retry_after(failures, limit=3, window_seconds=60, now=now) == expected


def test_a_name_is_refused_after_its_failures_from_any_address(throttle: LoginThrottle, clock: ManualClock) -> None:
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        assert throttle.check("ada", address) is None
        throttle.record_failure("ada", address)
        clock.advance(10)

    refusal = throttle.check("Ada", "10.0.0.9")

    assert refusal is not None and refusal.retry_after_seconds == 30
    assert refusal.message == "too many failed sign-ins; try again in 30 s"
    assert throttle.check("grace", "10.0.0.9") is None
    clock.advance(30)
    assert throttle.check("ada", "10.0.0.9") is None


def test_an_address_is_refused_after_failing_across_many_names(throttle: LoginThrottle, clock: ManualClock) -> None:
    for name in ("ada", "grace", "barbara", "rosalind", "dorothy"):
        throttle.record_failure(name, "10.0.0.1")

    assert throttle.check("katherine", "10.0.0.1") is not None
    assert throttle.check("katherine", "10.0.0.2") is None


def test_a_success_clears_the_names_failures_but_not_the_addresss(throttle: LoginThrottle) -> None:
    for _ in range(2):
        throttle.record_failure("ada", "10.0.0.1")
    for name in ("grace", "barbara", "rosalind"):
        throttle.record_failure(name, "10.0.0.1")
    throttle.record_success("ada")

    throttle.record_failure("ada", "10.0.0.2")
    throttle.record_failure("ada", "10.0.0.2")
    assert throttle.check("ada", None) is None, "only the two failures since the success count"
    assert throttle.check("someone", "10.0.0.1") is not None, "the address's five failures still count"


def test_two_throttles_on_one_store_count_the_same_failures(backend: Backend, clock: ManualClock) -> None:
    limits = LoginLimits(per_user=2, per_address=10, window_seconds=60)
    portal, cli = backend.throttle(limits, clock=clock), backend.throttle(limits, clock=clock)

    portal.record_failure("ada", "10.0.0.1")
    cli.record_failure("ada", "10.0.0.2")

    assert portal.check("ada", None) is not None and cli.check("ada", None) is not None


def test_failures_out_of_the_window_are_forgotten(
    throttle: LoginThrottle, backend: Backend, clock: ManualClock
) -> None:
    throttle.record_failure("ada", "10.0.0.1")
    clock.advance(61)
    throttle.record_failure("grace", None)

    assert backend.rows("login_failures", "subject") == [("user:grace",)]
