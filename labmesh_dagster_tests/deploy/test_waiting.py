"""The deployment tests' waits give up when the lab stops moving, not when the machine is slow.

Pinned here: a wait whose progress keeps changing outlasts its patience; one
whose progress stands still for longer than its patience fails, naming what
it waited for.
"""

from __future__ import annotations

import itertools

import pytest

from labmesh_dagster_tests.deploy.harness import wait_for


def test_a_wait_that_keeps_moving_outlasts_its_patience() -> None:
    steps = itertools.count()
    # Each poll sleeps 0.02 s and takes two steps: reaching 20 takes ten polls, four times the patience.
    wait_for("twenty steps", lambda: next(steps) >= 20, progress=lambda: next(steps), patience=0.05, poll=0.02)
    assert next(steps) > 20


def test_a_wait_that_stands_still_fails_naming_what_it_waited_for() -> None:
    with pytest.raises(pytest.fail.Exception, match="the lab to converge: nothing moved"):
        wait_for("the lab to converge", lambda: False, progress=lambda: "the same", patience=0.05, poll=0.01)
