"""Step 4 of the flow: promoting landing files to the raw zone, verified.

The rule that matters: nothing leaves landing until its copy in raw has been
read back and its sha256 matches the landing object's. A mismatch keeps the
landing object and is reported for that file alone; the other files go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.errors import ChecksumMismatch, ObjectNotFound
from labmesh_dagster.core.keys import ObjectKey, Zone


@dataclass(frozen=True)
class Promotion:
    source: ObjectKey
    destination: ObjectKey
    sha256: str


@dataclass(frozen=True)
class PromotionFailure:
    source: ObjectKey
    reason: str


@dataclass
class PromotionReport:
    promoted: list[Promotion] = field(default_factory=list)
    failed: list[PromotionFailure] = field(default_factory=list)

    def source_checksums(self) -> dict[str, str]:
        """Raw key -> the landing sha256 it was verified against."""
        return {str(item.destination): item.sha256 for item in self.promoted}


def promote_file(store: ObjectStore, source: ObjectKey) -> Promotion | None:
    """Copy, verify, then delete one landing file; None if another run already took it."""
    destination = source.in_zone(Zone.RAW)
    try:
        before = store.stat(source)
        expected = store.sha256(source)
        store.copy(source, destination)
    except ObjectNotFound:
        return None
    actual = store.sha256(destination)
    if actual != expected:
        # An unverified copy is not data: remove it so it is never cataloged; landing keeps the original.
        store.delete(destination)
        raise ChecksumMismatch(str(source), expected, actual)
    try:
        if store.stat(source).etag != before.etag:
            # Rewritten while we copied: keep it; the sensor sees it again and promotes the new version.
            raise ChecksumMismatch(str(source), expected, "landing object changed during promotion")
    except ObjectNotFound:
        return Promotion(source, destination, expected)
    store.delete(source)
    return Promotion(source, destination, expected)


def promote_experiment(store: ObjectStore, experiment_id: str) -> PromotionReport:
    """Promote every file currently in the experiment's landing folder."""
    report = PromotionReport()
    for info in list(store.list(Zone.LANDING, f"{experiment_id}/")):
        try:
            promotion = promote_file(store, info.key)
        except (ChecksumMismatch, OSError) as exc:
            report.failed.append(PromotionFailure(info.key, str(exc)))
            continue
        if promotion:
            report.promoted.append(promotion)
    return report
