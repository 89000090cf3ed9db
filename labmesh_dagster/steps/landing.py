"""Step 3 of the flow: sorting what sits in the landing zone.

Every object in landing is pending by definition, because promotion removes
it. So the landing sensor needs little memory of its own: it sorts what it
sees (the whole listing, or the objects S3 announced plus the folders it
remembered) into files ready to promote (grouped by experiment), files still
being written or waiting for their experiment to be registered, and files
that can never be attributed, which are quarantined with a reason. What it
remembers is the folders it left files in and when it first saw each, since
file times cannot say that (copies often keep the instrument's times).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from labmesh_dagster.connectors.store.base import ObjectInfo, ObjectStore
from labmesh_dagster.core.errors import ChecksumMismatch, InvalidExperimentId, ObjectNotFound
from labmesh_dagster.core.keys import QUARANTINE_NOTES_PREFIX, QUARANTINE_PREFIX, RESERVED_PREFIXES, ObjectKey, Zone
from labmesh_dagster.core.text import clean_text, is_clean_text

# Moving a file into quarantine writes (and syncs) a note; a tick does at most this many
# so that a folder of thousands of misnamed files cannot push it past the sensor timeout.
QUARANTINE_PER_TICK = 200
# Keys the retry sweep lists per tick (5 LIST pages): seconds on S3, whatever the bucket holds.
SWEEP_OBJECTS_PER_TICK = 5000


@dataclass
class LandingPlan:
    ready: dict[str, list[ObjectInfo]] = field(default_factory=dict)
    waiting: list[tuple[ObjectInfo, str]] = field(default_factory=list)
    quarantine: list[tuple[ObjectInfo, str]] = field(default_factory=list)
    # Unregistered experiments with files waiting, and when they were first seen.
    unknown_first_seen: dict[str, datetime] = field(default_factory=dict)


def plan_landing(
    objects: Iterable[ObjectInfo],
    is_registered: Callable[[str], bool],
    *,
    now: datetime,
    settle_seconds: float,
    unknown_grace_seconds: float,
    unknown_first_seen: Mapping[str, datetime] | None = None,
) -> LandingPlan:
    """Sort landing objects.

    A file is ready once it has not changed for ``settle_seconds`` (instruments
    write for a while). Files of an experiment the catalog does not know yet
    wait ``unknown_grace_seconds`` from when that experiment was first seen in
    landing, since data often arrives before the ELN entry is processed, and
    are quarantined after that.
    """
    seen_before = unknown_first_seen or {}
    plan = LandingPlan()
    for info in objects:
        if info.key.first_segment in RESERVED_PREFIXES:
            continue
        if not is_clean_text(info.key.path):
            plan.quarantine.append((info, "the file name is not valid UTF-8"))
            continue
        try:
            experiment_id = info.key.experiment_id
        except InvalidExperimentId as exc:
            plan.quarantine.append((info, str(exc)))
            continue
        if info.key.is_labmesh_internal:
            plan.quarantine.append((info, f"'{info.key.relative_path}' is reserved for labmesh's own files"))
        elif (now - info.modified).total_seconds() < settle_seconds:
            plan.waiting.append((info, "still being written"))
        elif is_registered(experiment_id):
            plan.ready.setdefault(experiment_id, []).append(info)
        else:
            first_seen = plan.unknown_first_seen.setdefault(experiment_id, seen_before.get(experiment_id, now))
            if (now - first_seen).total_seconds() < unknown_grace_seconds:
                plan.waiting.append((info, f"experiment {experiment_id} is not registered yet"))
            else:
                waited = f"no ELN record after {unknown_grace_seconds:g} s"
                plan.quarantine.append((info, f"experiment {experiment_id} is not registered ({waited})"))
    return plan


def due_folders(
    pending: Mapping[str, datetime], is_registered: Callable[[str], bool], *, now: datetime, grace_seconds: float
) -> list[str]:
    """Folders of unregistered experiments worth listing again: those now registered, and those past their grace.

    The files can flow once the experiment is registered; after the grace
    period they go to quarantine. Until then they wait without being listed.
    """
    return sorted(
        folder
        for folder, first_seen in pending.items()
        if is_registered(folder) or (now - first_seen).total_seconds() >= grace_seconds
    )


def list_folder(store: ObjectStore, zone: Zone, folder: str) -> list[ObjectInfo]:
    """Everything in one first-level folder of a zone, and the one file of that name at the zone's top, if any.

    Listed under ``folder/``, so that ``EXP-1`` costs what ``EXP-1`` holds,
    whatever ``EXP-10`` and its other namesakes hold.
    """
    listed = list(store.list(zone, f"{folder}/"))
    try:
        return [*listed, store.stat(ObjectKey(zone, folder))]
    except ObjectNotFound:
        return listed


def folders_to_look_at_again(plan: LandingPlan, not_quarantined: Iterable[ObjectInfo]) -> set[str]:
    """Folders a tick leaves files in that are not waiting for a registration: listed again on the next tick."""
    left = [info for info, _ in plan.waiting] + list(not_quarantined)
    return {info.key.first_segment for info in left} - set(plan.unknown_first_seen)


def batch_fingerprint(objects: Iterable[ObjectInfo]) -> str:
    """Identifies a set of files: the same files, unchanged, give the same run key."""
    digest = hashlib.sha256()
    for info in sorted(objects, key=lambda item: item.key):
        digest.update(f"{info.key}\0{info.size}\0{info.etag}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]


def retry_period(files: Sequence[ObjectInfo], *, now: datetime, retry_seconds: float) -> str:
    """``:retry-<period>`` for files written more than ``retry_seconds`` ago, else nothing.

    Dagster never reuses a run key, even when that run failed, so files whose
    run failed would wait for good. Files that old should long have been dealt
    with: naming the current retry period in their run key gives them one new
    run per period (the runs are idempotent, so one that finds nothing to do
    costs nothing).
    """
    if retry_seconds > 0 and files and max(info.modified for info in files) <= now - timedelta(seconds=retry_seconds):
        return f":retry-{int(now.timestamp() // retry_seconds)}"
    return ""


def landing_run_key(experiment_id: str, files: Sequence[ObjectInfo], *, now: datetime, retry_seconds: float) -> str:
    """The run key of a batch: a digest of its files, so a repeated tick or a redelivered event starts nothing."""
    return f"raw:{experiment_id}:{batch_fingerprint(files)}" + retry_period(files, now=now, retry_seconds=retry_seconds)


def retry_sweep_due(last_sweep: str | None, *, now: datetime, retry_seconds: float) -> bool:
    """Whether the event-driven sensor should list landing once, to find files whose run failed."""
    if retry_seconds <= 0:
        return False
    if not last_sweep:
        return True
    try:
        return now - datetime.fromisoformat(last_sweep) >= timedelta(seconds=retry_seconds)
    except ValueError:
        return True


@dataclass
class SweepCursor:
    """Where the retry sweep is: when it last reached the end of landing, and where it resumes (None: not running)."""

    last_sweep: str | None = None
    sweep_after: str | None = None

    @classmethod
    def from_json(cls, text: str | None) -> SweepCursor:
        try:
            data = json.loads(text) if text else {}
            return cls(last_sweep=data.get("last_sweep"), sweep_after=data.get("sweep_after"))
        except (ValueError, AttributeError):
            return cls()  # unreadable: the sweep simply starts over

    def to_json(self) -> str:
        return json.dumps({"last_sweep": self.last_sweep, "sweep_after": self.sweep_after}, sort_keys=True)


def stale_batches(
    listed: Iterable[ObjectInfo], is_registered: Callable[[str], bool], *, now: datetime, retry_seconds: float
) -> dict[str, list[ObjectInfo]]:
    """Files of registered experiments still in landing a whole retry period after they were written, by experiment.

    Only those: the sweep retries failed runs, it is not a second intake (new
    files and unknown experiments are the landing sensor's).
    """
    cutoff = now - timedelta(seconds=retry_seconds)
    batches: dict[str, list[ObjectInfo]] = {}
    for info in listed:
        if info.key.is_labmesh_internal or info.modified > cutoff:
            continue
        experiment_id = info.key.first_segment
        if "/" in info.key.path and is_registered(experiment_id):
            batches.setdefault(experiment_id, []).append(info)
    return batches


def retry_sweep(
    store: ObjectStore,
    *,
    last_sweep: str | None,
    sweep_after: str | None,
    now: datetime,
    retry_seconds: float,
    limit: int = SWEEP_OBJECTS_PER_TICK,
) -> tuple[list[ObjectInfo], str | None, str | None]:
    """One slice of the once-per-period listing of landing: (objects listed, last sweep, resume after).

    A bucket can hold far more than one sensor tick can list within Dagster's
    60 s limit, so the sweep takes at most ``limit`` keys a tick and resumes
    after the last key on the next; the period restarts once it reaches the end.
    """
    if sweep_after is None and not retry_sweep_due(last_sweep, now=now, retry_seconds=retry_seconds):
        return [], last_sweep, None
    listed = list(itertools.islice(store.list(Zone.LANDING, start_after=sweep_after or ""), limit))
    if len(listed) < limit:
        return listed, now.isoformat(), None
    return listed, last_sweep, listed[-1].key.path


def quarantine_key(key: ObjectKey) -> ObjectKey:
    return ObjectKey(Zone.LANDING, f"{QUARANTINE_PREFIX}/{key.path}")


def note_key(quarantined: ObjectKey) -> ObjectKey:
    """Where the note about a quarantined object is kept: a separate tree, so no data file can collide with it."""
    relative = quarantined.path.split("/", 1)[1]
    return ObjectKey(Zone.LANDING, f"{QUARANTINE_NOTES_PREFIX}/{relative}.json")


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
        target = ObjectKey(Zone.LANDING, f"{quarantine_key(info.key).path}~{copy_number}")
    note = {
        "original_key": str(info.key),
        "reason": reason,
        "size": info.size,
        "quarantined_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
    }
    # ensure_ascii keeps names that are not valid UTF-8 (lone surrogates) writable.
    store.put(note_key(target), json.dumps(note, indent=2, ensure_ascii=True).encode("ascii"))
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
    found = []
    for info in store.list(Zone.LANDING, QUARANTINE_PREFIX + "/"):
        note: dict[str, str] = {}
        with contextlib.suppress(ObjectNotFound, ValueError):  # a lost note must not hide the file
            note = json.loads(store.read_bytes(note_key(info.key)))
        found.append(
            QuarantinedObject(
                key=info.key,
                original_key=clean_text(note.get("original_key", "?")),
                reason=clean_text(note.get("reason", "no reason recorded")),
                quarantined_at=note.get("quarantined_at", ""),
                size=info.size,
            )
        )
    return found
