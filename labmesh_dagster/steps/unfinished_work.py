"""Work begun and not finished: a per-experiment "pending" record that a sensor turns into a run.

A materialization writes its record before its first side effect and
removes it after its last, so a record that outlives its run marks work left
half done (a crash, a killed worker, a service that stayed down). Records
live under one reserved prefix of the raw zone, which the recovery sensor
lists on every tick: it costs what the unfinished work costs, never what the
store holds. A run that fails again is retried with a growing pause, so a
fault that persists costs a run an hour, not a run a tick.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.errors import InvalidObjectKey, LabmeshError, ObjectNotFound
from labmesh_dagster.core.ids import validate_experiment_id
from labmesh_dagster.core.keys import LABMESH_DIR, ObjectKey, Zone

PENDING_PREFIX = f"{LABMESH_DIR}/pending/"

# The Dagster run tag naming the run whose unfinished work a run resumes.
RESUMES_TAG = "labmesh/resumes"

# The first resumption is immediate; then the pause doubles from a minute up to an hour.
FIRST_PAUSE = timedelta(minutes=1)
LONGEST_PAUSE = timedelta(hours=1)

# Dagster run states in which the run may still finish the work itself.
RUN_STILL_GOING = frozenset({"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING", "MANAGED"})


@dataclass(frozen=True)
class PendingWork:
    """One asset's unfinished work for one experiment, and the run that last took it on."""

    asset: str
    experiment_id: str
    run_id: str
    attempts: int
    updated: datetime

    @property
    def key(self) -> ObjectKey:
        return pending_key(self.asset, self.experiment_id)

    @property
    def resume_run_key(self) -> str:
        """One resumption per run that left the work unfinished: a replayed tick starts nothing twice."""
        return f"resume:{self.asset}:{self.experiment_id}:{self.run_id}"

    def pause(self) -> timedelta:
        """How long after the last attempt the next one is due."""
        if self.attempts <= 1:
            return timedelta(0)
        return min(LONGEST_PAUSE, FIRST_PAUSE * 2 ** (self.attempts - 2))

    def to_json(self) -> bytes:
        data = {
            "asset": self.asset,
            "experiment_id": self.experiment_id,
            "run_id": self.run_id,
            "attempts": self.attempts,
            "updated": self.updated.isoformat(),
        }
        return json.dumps(data, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, content: bytes) -> PendingWork:
        data = json.loads(content)
        return cls(
            asset=str(data["asset"]),
            experiment_id=validate_experiment_id(str(data["experiment_id"])),
            run_id=str(data["run_id"]),
            attempts=int(data["attempts"]),
            updated=datetime.fromisoformat(data["updated"]),
        )


def pending_key(asset: str, experiment_id: str) -> ObjectKey:
    return ObjectKey(Zone.RAW, f"{PENDING_PREFIX}{asset}/{validate_experiment_id(experiment_id)}.json")


def read_pending(store: ObjectStore, asset: str, experiment_id: str) -> PendingWork | None:
    try:
        return PendingWork.from_json(store.read_bytes(pending_key(asset, experiment_id)))
    except ObjectNotFound:
        return None
    except (ValueError, KeyError, TypeError, LabmeshError):
        return None  # unreadable: rewritten by the run that takes the work on


def begin(store: ObjectStore, asset: str, experiment_id: str, run_id: str, now: datetime) -> PendingWork:
    """Record that ``run_id`` takes the work on, counting the attempts since the work last finished."""
    earlier = read_pending(store, asset, experiment_id)
    attempts = 1
    if earlier is not None:
        attempts = earlier.attempts if earlier.run_id == run_id else earlier.attempts + 1
    work = PendingWork(asset, experiment_id, run_id, attempts, now)
    store.put(work.key, work.to_json())
    return work


def finish(store: ObjectStore, asset: str, experiment_id: str) -> None:
    """The work is done (or failed in a way only new input can fix): nothing is left to resume."""
    store.delete(pending_key(asset, experiment_id))


def list_pending(store: ObjectStore) -> Iterator[PendingWork]:
    """Every unfinished piece of work, readable or not (an unreadable record is skipped, never fatal)."""
    for info in store.list(Zone.RAW, PENDING_PREFIX):
        try:
            work = PendingWork.from_json(store.read_bytes(info.key))
        except ObjectNotFound:
            continue  # finished while we listed
        except (ValueError, KeyError, TypeError, LabmeshError, InvalidObjectKey):
            continue
        if work.key == info.key:
            yield work


def due(work: PendingWork, run_status: str | None, now: datetime) -> bool:
    """Whether to start a run for ``work``: its last run has ended without finishing, and the pause is over.

    ``run_status`` is the Dagster status of the run named in the record (None
    when the instance does not know it, e.g. after its storage was reset).
    """
    if run_status in RUN_STILL_GOING:
        return False
    return now >= work.updated + work.pause()
