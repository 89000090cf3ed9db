"""Step 6 of the flow: noticing what people changed in the final zone.

People add, replace and remove files under ``final/<experiment_id>/`` by
hand (a mount, a gateway, any client). Whatever says where to look (the
zone's whole listing, or S3 events naming the folders that changed), the
rule is one: an experiment's listed final files are compared with what the
catalog holds for its final dataset, and an experiment whose files differ,
and have stopped changing, needs `final_dataset` again. Its run key names the
files and the catalog revision they would replace, so the same change is
published once, and a return to an earlier state is a change like any other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from labmesh_dagster.connectors.catalog.base import DatasetRecord
from labmesh_dagster.connectors.store.base import ObjectInfo
from labmesh_dagster.core.errors import InvalidExperimentId
from labmesh_dagster.core.manifest import ManifestEntry
from labmesh_dagster.steps.landing import batch_fingerprint, retry_period

FileState = tuple[str, int, str]


def file_state(info: ObjectInfo) -> FileState:
    """What identifies a file's version in a listing, in the manifest's own terms (key, size, created)."""
    return (str(info.key), info.size, info.modified.isoformat())


def entry_state(entry: ManifestEntry) -> FileState:
    return (entry.key, entry.size, entry.created)


@dataclass
class FinalPlan:
    changed: dict[str, list[ObjectInfo]] = field(default_factory=dict)
    # The revision of each changed experiment's cataloged final dataset (0: none yet).
    revisions: dict[str, int] = field(default_factory=dict)
    settling: set[str] = field(default_factory=set)
    unregistered: set[str] = field(default_factory=set)
    outside_experiments: list[ObjectInfo] = field(default_factory=list)


def plan_final(
    objects: Iterable[ObjectInfo],
    *,
    registered: Iterable[str],
    also_check: Iterable[str],
    cataloged: Callable[[str], DatasetRecord | None],
    now: datetime,
    settle_seconds: float,
) -> FinalPlan:
    """Experiments whose final files differ from their catalog entry.

    ``objects`` is a listing of the experiments' final folders; ``also_check``
    names experiments to compare even where it found nothing (those whose
    cataloged final dataset has files, or whose folder an event said changed),
    so that one whose files were all removed is noticed too, while experiments
    with nothing anywhere cost nothing.
    """
    plan = FinalPlan()
    listed: dict[str, list[ObjectInfo]] = defaultdict(list)
    for info in objects:
        if info.key.is_labmesh_internal:
            continue
        try:
            experiment_id = info.key.experiment_id
        except InvalidExperimentId:
            plan.outside_experiments.append(info)
            continue
        if (now - info.modified).total_seconds() < settle_seconds:
            plan.settling.add(experiment_id)
        listed[experiment_id].append(info)
    known = set(registered)
    for experiment_id in sorted((set(listed) | set(also_check)) - plan.settling):
        if experiment_id not in known:
            plan.unregistered.add(experiment_id)
            continue
        files = listed.get(experiment_id, [])
        record = cataloged(experiment_id)
        if {file_state(info) for info in files} != {entry_state(entry) for entry in (record.files if record else ())}:
            plan.changed[experiment_id] = files
            plan.revisions[experiment_id] = record.revision if record else 0
    return plan


def final_run_key(
    experiment_id: str, files: Sequence[ObjectInfo], *, revision: int, now: datetime, retry_seconds: float
) -> str:
    """The files' fingerprint and the catalog revision they would replace, plus the retry period for old files.

    The revision makes a return to an earlier state (a file put back after it
    was removed) a new run; the retry period gives a failed run another go,
    as in landing.
    """
    fingerprint = batch_fingerprint(files)
    return f"final:{experiment_id}:{fingerprint}:r{revision}" + retry_period(
        files, now=now, retry_seconds=retry_seconds
    )
