"""After promotion: removing the landing folders promotion emptied.

Instruments write into run folders (``landing/EXP-1/run1/...``); once every
file of a run is promoted to raw, the folder is left empty, and a lab's
landing zone would fill with them. So after promotion the folders that held
the promoted files are removed, deepest first, if they are empty.

The rules that matter:
- only folders inside the experiment's landing folder, never that folder
  itself: it was provisioned, and the ELN was told the data goes there;
- only folders that held a file promotion took (this run's, or one an earlier
  run promoted and journaled but did not finish), so a folder an instrument
  has just made for its next run is left alone, and a run that stopped after
  promoting is tidied up by the next;
- never a folder that holds anything (a file that arrived meanwhile, one left
  for a later run, labmesh's own ``_labmesh`` entries): the store removes a
  folder only when it finds it empty at that moment, so a file landing at the
  same moment is never lost; quarantine lives outside experiment folders;
- a folder that cannot be removed (permissions) is reported, never a failure:
  the data is safe in raw whatever happens to an empty folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.errors import LabmeshError
from labmesh_dagster.core.keys import LABMESH_DIR, ObjectKey, Zone, experiment_prefix


@dataclass
class FolderCleanup:
    """Which emptied landing folders were removed (``EXP-1/run1``), and which could not be, with why."""

    removed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def emptied_folders(experiment_id: str, promoted: Iterable[ObjectKey]) -> list[str]:
    """The folders below the experiment's landing folder that held ``promoted`` files, deepest first."""
    prefix = experiment_prefix(experiment_id)
    folders: set[str] = set()
    for key in promoted:
        if key.zone is not Zone.LANDING or not key.path.startswith(prefix) or key.is_labmesh_internal:
            continue
        parts = key.path.split("/")
        # parts[0] is the experiment's own folder, parts[-1] the file: what lies between are its folders.
        folders.update("/".join(parts[:end]) for end in range(2, len(parts)))
    return sorted(
        (folder for folder in folders if folder.split("/")[1] != LABMESH_DIR),
        key=lambda folder: (-folder.count("/"), folder),
    )


def remove_emptied_folders(store: ObjectStore, experiment_id: str, promoted: Iterable[ObjectKey]) -> FolderCleanup:
    """Remove each emptied folder that still holds nothing; idempotent, and safe against files arriving meanwhile."""
    cleanup = FolderCleanup()
    for folder in emptied_folders(experiment_id, promoted):
        try:
            if store.remove_empty_folder(Zone.LANDING, folder):
                cleanup.removed.append(folder)
        except (LabmeshError, OSError) as exc:
            cleanup.problems.append(f"{Zone.LANDING.value}/{folder}: {exc}")
    return cleanup
