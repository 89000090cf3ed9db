"""What the status page shows beyond counts and quarantine: rejected ELN records and checks needing attention.

Rejected ELN records are shown to admins only. A record the ELN sensor could
not read never became an experiment, so it has no access list to apply: its
source (a file path, an entry URL) and its reason (which may quote a title or
a duplicated experiment id) could tell anyone about an experiment they may not
see. Everyone else is told that such records are an admin's to see, never
how many there are.

Checks needing attention are the datasets whose current revision failed a
check, or has none recorded (published before the catalog kept them, or its
run still going): the catalog forms that list under the viewer's access
(`Catalog.checks_needing_attention`), so it holds only experiments they may see.
"""

from __future__ import annotations

from typing import Any

from labmesh_dagster.connectors.catalog.base import Catalog, DatasetRevision
from labmesh_dagster.connectors.rejections import RejectionStore
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.steps.check_attention import checks_attention as datasets_needing_attention

LISTED_AT_MOST = 200
"""Rows of each list shown; the counts are always whole."""


def rejected_records(rejections: RejectionStore | None, viewer: Viewer) -> list[dict[str, Any]] | None:
    """The standing rejections (what `labmesh status` lists) for an admin; None (not shown) for anyone else."""
    if not viewer.admin:
        return None
    return [
        {
            "source": rejection.source,
            "reason": rejection.reason,
            "first_seen": rejection.first_seen.isoformat(),
            "last_seen": rejection.last_seen.isoformat(),
        }
        for rejection in (rejections.standing() if rejections else [])
    ]


def checks_attention(catalog: Catalog, viewer: Viewer) -> dict[str, Any]:
    """The viewer's datasets whose current checks failed, and those whose checks are unknown, each at most
    `LISTED_AT_MOST` long with its whole count: `labmesh status`'s list, as the page shows it."""
    attention = datasets_needing_attention(catalog, viewer)
    failing = [
        {**_revision_row(dataset.revision), "failed": [outcome.to_dict() for outcome in dataset.failed]}
        for dataset in attention.failing
    ]
    unchecked = [_revision_row(revision) for revision in attention.unchecked]
    return {
        "failing_checks": failing[:LISTED_AT_MOST],
        "failing_checks_count": len(failing),
        "unchecked": unchecked[:LISTED_AT_MOST],
        "unchecked_count": len(unchecked),
    }


def _revision_row(revision: DatasetRevision) -> dict[str, Any]:
    return {
        "experiment_id": revision.experiment_id,
        "zone": revision.zone.value,
        "revision": revision.revision,
        "published_at": revision.published_at,
    }
