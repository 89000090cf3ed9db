"""DataZone and Kendra calls are paced under their quota, retried on throttling, then fail with the service's error."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from labmesh_dagster.connectors.aws import PacedCaller


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def throttling(code: str = "ThrottlingException", status: int = 429) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "Rate exceeded"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


class Service:
    def __init__(self, failures: list[ClientError]) -> None:
        self.failures = failures
        self.calls: list[float] = []
        self.clock: Clock | None = None

    def get_thing(self, **params: Any) -> dict:
        self.calls.append(self.clock.now if self.clock else 0.0)
        if self.failures:
            raise self.failures.pop(0)
        return {"params": params}


def test_calls_are_spaced_to_stay_under_the_rate() -> None:
    clock, service = Clock(), Service([])
    service.clock = clock
    call = PacedCaller(service, max_per_second=10, clock=clock, sleep=clock.sleep)

    for _ in range(25):
        call("get_thing", id="x")

    times = [round(t, 9) for t in service.calls]
    assert max(sum(1 for t in times if start <= t < start + 1) for start in times) == 10


def test_throttling_and_server_errors_are_retried_then_succeed() -> None:
    clock = Clock()
    service = Service([throttling(), throttling("InternalServerException", 500), throttling("Anything", 503)])
    call = PacedCaller(service, max_per_second=100, clock=clock, sleep=clock.sleep)

    assert call("get_thing", id="x") == {"params": {"id": "x"}}
    assert call.retries == 3 and len(service.calls) == 4


def test_throttling_that_does_not_stop_raises_the_services_error() -> None:
    clock = Clock()
    call = PacedCaller(Service([throttling()] * 10), max_per_second=100, attempts=4, clock=clock, sleep=clock.sleep)

    with pytest.raises(ClientError, match="ThrottlingException"):
        call("get_thing")


def test_other_errors_are_not_retried() -> None:
    clock = Clock()
    service = Service([throttling("ValidationException", 400)])
    call = PacedCaller(service, max_per_second=100, clock=clock, sleep=clock.sleep)

    with pytest.raises(ClientError, match="ValidationException"):
        call("get_thing")
    assert len(service.calls) == 1
