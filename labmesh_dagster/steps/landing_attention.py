"""What sits in landing that the flow will not take as it is, for `labmesh status` to list until it is fixed.

Two kinds of file wait there without a run ever being requested for them:

- entries that are not regular files (symlinks, FIFOs, sockets, devices).
  The local store lists only regular files (a link may point anywhere, a
  FIFO would block its reader), so the sensors never see them and nothing
  ever reports them; only a walk of the zone's folder finds them. S3 holds
  objects only, so there they cannot occur.
- files of an experiment no ELN record announced. The landing sensor lets
  them wait ``unknown_experiment_grace_seconds`` from when it first saw them
  settled, then quarantines them. When it first saw them is in its cursor,
  which the command does not read (it imports no Dagster), so the date is
  computed by the sensor's own rule from the files' times: the earliest file
  settles at its modification time plus ``settle_seconds``, and the grace
  runs from then. A sensor that first saw them later (it was not running,
  or the copy kept the instrument's older times) quarantines them later,
  never earlier, so the date printed is the earliest they can go.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from labmesh_dagster.connectors.store.base import ObjectInfo
from labmesh_dagster.core.errors import InvalidExperimentId
from labmesh_dagster.core.file_kinds import file_kind
from labmesh_dagster.core.keys import RESERVED_PREFIXES
from labmesh_dagster.core.text import clean_text, is_clean_text


@dataclass(frozen=True)
class IrregularEntry:
    """A landing entry that is not a regular file: its path inside the zone, what it is, and where a link points."""

    path: str
    kind: str
    target: str | None = None


def irregular_entries(zone_root: Path) -> list[IrregularEntry]:
    """Every entry under ``zone_root`` that is not a regular file or a plain folder, sorted; links are not followed."""
    found: list[IrregularEntry] = []
    if not zone_root.is_dir():
        return found
    for folder, subfolders, files in os.walk(zone_root):  # never descends into symlinked folders
        subfolders.sort()
        for name in [*subfolders, *files]:
            path = Path(folder, name)
            try:
                mode = path.lstat().st_mode
            except FileNotFoundError:  # removed while we walked
                continue
            if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
                continue
            target = clean_text(os.readlink(path)) if stat.S_ISLNK(mode) else None
            found.append(IrregularEntry(clean_text(path.relative_to(zone_root).as_posix()), file_kind(mode), target))
    return sorted(found, key=lambda entry: entry.path)


@dataclass(frozen=True)
class UnannouncedExperiment:
    """Files waiting in landing for an ELN record, and the earliest moment the landing sensor may quarantine them."""

    experiment_id: str
    files: int
    size: int
    quarantine_from: datetime


def unannounced_experiments(
    landing: Iterable[ObjectInfo],
    is_registered: Callable[[str], bool],
    *,
    settle_seconds: float,
    grace_seconds: float,
) -> list[UnannouncedExperiment]:
    """Experiments with files in landing that no ELN record announced, by id.

    Files the sensor quarantines at once whatever the ELN says (an invalid
    experiment id, a name that is not UTF-8, labmesh's own folder) are left
    out: they are in the quarantine listing after the next tick.
    """
    first_settled: dict[str, datetime] = {}
    counts: dict[str, tuple[int, int]] = {}
    for info in landing:
        if info.key.first_segment in RESERVED_PREFIXES or not is_clean_text(info.key.path):
            continue
        try:
            experiment_id = info.key.experiment_id
        except InvalidExperimentId:
            continue
        if info.key.is_labmesh_internal or is_registered(experiment_id):
            continue
        settled = info.modified + timedelta(seconds=settle_seconds)
        first_settled[experiment_id] = min(settled, first_settled.get(experiment_id, settled))
        files, size = counts.get(experiment_id, (0, 0))
        counts[experiment_id] = (files + 1, size + info.size)
    return [
        UnannouncedExperiment(
            experiment_id=experiment_id,
            files=counts[experiment_id][0],
            size=counts[experiment_id][1],
            quarantine_from=first_settled[experiment_id] + timedelta(seconds=grace_seconds),
        )
        for experiment_id in sorted(first_settled)
    ]
