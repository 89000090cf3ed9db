"""What the experiment page shows of each dataset beyond its files: its checks and its revision history.

Both come from the catalog (`Catalog.dataset_revisions`), which keeps each
published revision with the outcomes its asset's checks found, so the page
needs no Dagster instance. Checks that were never recorded for a revision (it
was published before the catalog kept them, or its run is still going) are
shown as unknown, never as passed. Callers have checked the viewer may see
the experiment: nothing here applies access.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from labmesh_dagster.connectors.catalog.base import Catalog, DatasetRevision
from labmesh_dagster.core.checks import CheckOutcome
from labmesh_dagster.core.keys import Zone

REVISIONS_SHOWN = 20


def checks_shown(checks: Sequence[CheckOutcome] | None) -> dict[str, Any]:
    """A revision's check outcomes as the page and the API show them; ``known`` False when none were recorded."""
    if checks is None:
        return {"known": False, "passed": None, "failed": 0, "outcomes": []}
    outcomes = [outcome.to_dict() for outcome in checks]
    failed = sum(not outcome.passed for outcome in checks)
    return {"known": True, "passed": failed == 0, "failed": failed, "outcomes": outcomes}


def revision_shown(revision: DatasetRevision, dagster_url: str) -> dict[str, Any]:
    return {
        "revision": revision.revision,
        "published_at": revision.published_at,
        "manifest_digest": revision.manifest_digest,
        "files": revision.file_count,
        "bytes": revision.total_bytes,
        "run_id": revision.run_id,
        "dagster_run": f"{dagster_url}/runs/{revision.run_id}" if revision.run_id else None,
        "checks": checks_shown(revision.checks),
    }


def dataset_history(catalog: Catalog, experiment_id: str, zone: Zone, current: int, dagster_url: str) -> dict[str, Any]:
    """The current revision's checks and the dataset's revisions, newest first (at most `REVISIONS_SHOWN`).

    ``current`` is the revision the page lists the files of; its checks are the
    ones shown as the dataset's, unknown if the history does not hold it.
    """
    revisions = catalog.dataset_revisions(experiment_id, zone, limit=REVISIONS_SHOWN)
    latest = next((revision for revision in revisions if revision.revision == current), None)
    return {
        "checks": checks_shown(latest.checks if latest else None),
        "revisions": [revision_shown(revision, dagster_url) for revision in revisions],
    }
