"""Step 3 of the flow: sorting what sits in the landing zone.

Every object in landing is pending by definition, because promotion removes
it. So the landing sensor needs no memory of its own: it sorts the current
listing into files ready to promote (grouped by experiment), files still
being written or waiting for their experiment to be registered, and files that
can never be attributed, which are quarantined with a reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from labmesh_dagster.connectors.store.base import ObjectInfo, ObjectStore
from labmesh_dagster.core.errors import ChecksumMismatch, InvalidExperimentId, ObjectNotFound
from labmesh_dagster.core.keys import QUARANTINE_PREFIX, ObjectKey, Zone

REASON_SUFFIX = ".labmesh-reason.json"


@dataclass
class LandingPlan:
    ready: dict[str, list[ObjectInfo]] = field(default_factory=dict)
    waiting: list[tuple[ObjectInfo, str]] = field(default_factory=list)
    quarantine: list[tuple[ObjectInfo, str]] = field(default_factory=list)


def plan_landing(
    objects: Iterable[ObjectInfo],
    is_registered: Callable[[str], bool],
    *,
    now: datetime,
    settle_seconds: float,
    unknown_grace_seconds: float,
) -> LandingPlan:
    """Sort landing objects.

    A file is ready once it has not changed for ``settle_seconds`` (instruments
    write for a while). A file for an experiment the catalog does not know yet
    waits ``unknown_grace_seconds``, since data often arrives before the ELN
    entry is processed, and is quarantined after that.
    """
    plan = LandingPlan()
    for info in objects:
        if info.key.first_segment == QUARANTINE_PREFIX:
            continue
        age = (now - info.modified).total_seconds()
        try:
            experiment_id = info.key.experiment_id
        except InvalidExperimentId as exc:
            plan.quarantine.append((info, str(exc)))
            continue
        if age < settle_seconds:
            plan.waiting.append((info, "still being written"))
        elif is_registered(experiment_id):
            plan.ready.setdefault(experiment_id, []).append(info)
        elif age < unknown_grace_seconds:
            plan.waiting.append((info, f"experiment {experiment_id} is not registered yet"))
        else:
            plan.quarantine.append(
                (
                    info,
                    f"experiment {experiment_id} is not registered (no ELN record after {unknown_grace_seconds:g} s)",
                )
            )
    return plan


def batch_fingerprint(objects: Iterable[ObjectInfo]) -> str:
    """Identifies a set of landing files: the same files give the same run key."""
    digest = hashlib.sha256()
    for info in sorted(objects, key=lambda item: item.key):
        digest.update(f"{info.key}\0{info.etag}\n".encode())
    return digest.hexdigest()[:16]


def quarantine_key(key: ObjectKey) -> ObjectKey:
    return ObjectKey(Zone.LANDING, f"{QUARANTINE_PREFIX}/{key.key}")


def quarantine_object(
    store: ObjectStore, info: ObjectInfo, reason: str, *, now: datetime | None = None
) -> ObjectKey | None:
    """Move a landing object aside with a note saying why; nothing is ever deleted.

    The note is written before the move, so a crash in between leaves the object
    where it was (and the next tick moves it), never nowhere. Returns None when
    the object is being rewritten: it stays in landing for the next tick.
    """
    target = quarantine_key(info.key)
    copy_number = 1
    while store.exists(target):  # an earlier file of the same name is in quarantine: keep both
        copy_number += 1
        target = ObjectKey(Zone.LANDING, f"{quarantine_key(info.key).key}~{copy_number}")
    note = {
        "original_key": str(info.key),
        "reason": reason,
        "size": info.size,
        "quarantined_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
    }
    store.put(ObjectKey(Zone.LANDING, target.key + REASON_SUFFIX), json.dumps(note, indent=2).encode("utf-8"))
    try:
        store.move(info.key, target)
    except ObjectNotFound:
        return target  # already moved by an earlier tick
    except ChecksumMismatch:
        return None
    return target


@dataclass(frozen=True)
class QuarantinedObject:
    key: ObjectKey
    original_key: str
    reason: str
    quarantined_at: str
    size: int


def list_quarantine(store: ObjectStore) -> list[QuarantinedObject]:
    """Everything in quarantine, with its reason, for `labmesh status`."""
    objects = list(store.list(Zone.LANDING, QUARANTINE_PREFIX + "/"))
    notes = {info.key.key[: -len(REASON_SUFFIX)]: info for info in objects if info.key.key.endswith(REASON_SUFFIX)}
    found = []
    for info in objects:
        if info.key.key.endswith(REASON_SUFFIX):
            continue
        note: dict[str, str] = {}
        if info.key.key in notes:
            note = json.loads(store.read_bytes(notes[info.key.key].key))
        found.append(
            QuarantinedObject(
                key=info.key,
                original_key=note.get("original_key", "?"),
                reason=note.get("reason", "no reason recorded"),
                quarantined_at=note.get("quarantined_at", ""),
                size=info.size,
            )
        )
    return found
