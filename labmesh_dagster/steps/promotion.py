"""Step 4 of the flow: promoting landing files to the raw zone, verified.

The rules that matter:
- nothing leaves landing until its copy in raw has the landing object's
  checksum (the store's own full-object checksum where it keeps one, so S3
  verifies by HEAD; otherwise SHA-256 of both, read); a mismatch keeps the
  landing object, removes the unverified copy and is reported for that file alone;
- raw is never overwritten, and the store enforces it (the copy is conditional
  on the raw key being absent): a file delivered again with the same content is
  simply verified and cleared from landing, while a different file under a name
  raw already holds is a conflict for a person to resolve, quarantined with a
  reason (the raw file stays as it was);
- the landing checksum is journaled beside raw before the landing copy goes,
  so a run stopped before its manifest is written loses no evidence;
- only settled files are taken, so a file an instrument is still writing is
  left for a later run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from labmesh_dagster.connectors.store.base import ObjectInfo, ObjectStore
from labmesh_dagster.core.checksums import Checksum
from labmesh_dagster.core.errors import ChecksumMismatch, LabmeshError, ObjectExists, ObjectNotFound, RawConflict
from labmesh_dagster.core.keys import ObjectKey, Zone, experiment_prefix
from labmesh_dagster.steps.promotion_journal import record_promotion


@dataclass(frozen=True)
class Promotion:
    source: ObjectKey
    destination: ObjectKey
    checksum: Checksum
    already_in_raw: bool = False


@dataclass(frozen=True)
class PromotionFailure:
    source: ObjectKey
    reason: str


@dataclass
class PromotionReport:
    promoted: list[Promotion] = field(default_factory=list)
    failed: list[PromotionFailure] = field(default_factory=list)
    conflicts: list[tuple[ObjectInfo, str]] = field(default_factory=list)
    not_settled: list[ObjectKey] = field(default_factory=list)

    def source_checksums(self) -> dict[str, str]:
        """Raw key -> the landing checksum (``algorithm:hex``) it was verified against."""
        return {str(item.destination): str(item.checksum) for item in self.promoted}


def _delete_if_unchanged(store: ObjectStore, source: ObjectKey, before: ObjectInfo) -> None:
    """Rewritten while we worked: keep it; the sensor sees it again and it is promoted then."""
    try:
        store.delete_if_unchanged(source, before.etag)
    except ChecksumMismatch as exc:
        raise ChecksumMismatch(str(source), "(as copied)", "landing object changed during promotion") from exc


def promote_file(store: ObjectStore, source: ObjectKey) -> Promotion | None:
    """Copy, verify, then delete one landing file; None if another run already took it.

    Raises `ChecksumMismatch` (landing kept, no raw copy left) or `RawConflict`.
    """
    destination = source.in_zone(Zone.RAW)
    try:
        before = store.stat(source)
        expected = store.checksum(source)
        if store.exists(destination):
            return _already_in_raw(store, source, destination, before, expected)
        try:
            # Conditional as well: a writer racing us between the check and the copy loses, raw is kept.
            store.copy(source, destination, if_absent=True)
        except ObjectExists:
            return _already_in_raw(store, source, destination, before, expected)
    except ObjectNotFound:
        return None
    actual = store.checksum(destination, expected.algorithm)
    if actual != expected:
        # An unverified copy is not data: remove it so it is never cataloged; landing keeps the original.
        store.delete(destination)
        raise ChecksumMismatch(str(source), str(expected), str(actual))
    record_promotion(store, source, destination, expected)
    _delete_if_unchanged(store, source, before)
    return Promotion(source, destination, expected)


def _already_in_raw(
    store: ObjectStore, source: ObjectKey, destination: ObjectKey, before: ObjectInfo, expected: Checksum
) -> Promotion:
    """A delivery raw already holds: the same bytes are cleared from landing, different bytes are a conflict."""
    if store.checksum(destination, expected.algorithm) != expected:
        raise RawConflict(f"raw already holds a different file named {destination}; raw is never overwritten")
    record_promotion(store, source, destination, expected)
    _delete_if_unchanged(store, source, before)
    return Promotion(source, destination, expected, already_in_raw=True)


def promote_experiment(store: ObjectStore, experiment_id: str, *, settled_before: datetime) -> PromotionReport:
    """Promote every settled file in the experiment's landing folder; one bad file never stops the others."""
    report = PromotionReport()
    for info in list(store.list(Zone.LANDING, experiment_prefix(experiment_id))):
        if info.key.is_labmesh_internal:
            continue  # the landing sensor quarantines these
        if info.modified > settled_before:
            report.not_settled.append(info.key)
            continue
        try:
            promotion = promote_file(store, info.key)
        except RawConflict as exc:
            report.conflicts.append((info, str(exc)))
            continue
        except (LabmeshError, OSError) as exc:
            report.failed.append(PromotionFailure(info.key, str(exc)))
            continue
        if promotion:
            report.promoted.append(promotion)
    return report
