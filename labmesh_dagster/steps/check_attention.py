"""Which datasets' checks need a person: those whose current revision failed a check, and those not known.

The portal's status page and `labmesh status` show the same list, so the
rule that splits it lives here once: a revision with check outcomes and at
least one that did not pass is *failing*; a revision with none recorded
(published before the catalog kept them, or its run still going) is
*unchecked*, which is never read as passed. The catalog forms the list under
the viewer's access (`Catalog.checks_needing_attention`), so it holds only
experiments they may see; the CLI passes `LOCAL_ADMIN` and sees them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from labmesh_dagster.connectors.catalog.base import Catalog, DatasetRevision
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.checks import CheckOutcome, failed


@dataclass(frozen=True)
class FailingDataset:
    """A dataset whose current revision failed at least one check, with the checks that failed."""

    revision: DatasetRevision
    failed: tuple[CheckOutcome, ...]


@dataclass(frozen=True)
class ChecksAttention:
    """The viewer's datasets needing attention, ordered by experiment and zone, as the catalog lists them."""

    failing: tuple[FailingDataset, ...]
    unchecked: tuple[DatasetRevision, ...]


def checks_attention(catalog: Catalog, viewer: Viewer) -> ChecksAttention:
    """The datasets ``viewer`` may see whose current checks failed, and apart those whose checks are unknown."""
    failing: list[FailingDataset] = []
    unchecked: list[DatasetRevision] = []
    for revision in catalog.checks_needing_attention(viewer=viewer):
        if revision.checks is None:
            unchecked.append(revision)
        else:
            failing.append(FailingDataset(revision, tuple(failed(revision.checks))))
    return ChecksAttention(failing=tuple(failing), unchecked=tuple(unchecked))
