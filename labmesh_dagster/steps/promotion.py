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
  so a run stopped before its manifest is written loses no evidence (a batch
  of checksums at a time, each batch written durably);
- only settled files are taken, so a file an instrument is still writing is
  left for a later run.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from labmesh_dagster.connectors.store.base import ObjectInfo, ObjectStore
from labmesh_dagster.core.checksums import Checksum
from labmesh_dagster.core.errors import ChecksumMismatch, LabmeshError, ObjectExists, ObjectNotFound, RawConflict
from labmesh_dagster.core.keys import ObjectKey, Zone, experiment_prefix
from labmesh_dagster.steps.promotion_journal import JournaledPromotion, record_promotions

JOURNAL_BATCH = 128
"""Promotions journaled in one durable write: on a local disk each write is an fsync, as costly as a small copy."""

PROMOTE_WORKERS = 2
"""Files copied and verified at once. Much of a copy is waiting (the fsync that makes it durable on a disk,
the round trip of a server-side copy on S3), which a second copy in flight fills; four were no faster than
two on two cores, and put more load on the store."""


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
    verified = _copy_verified(store, source)
    if verified is None:
        return None
    [(promotion, failure)] = _finish(store, [verified])
    if failure is not None:
        raise failure
    return promotion


def _copy_verified(store: ObjectStore, source: ObjectKey) -> tuple[Promotion, ObjectInfo] | None:
    """Copy one landing file to raw and verify the copy; the promotion and what landing was. Landing is kept."""
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
    return Promotion(source, destination, expected), before


def _finish(
    store: ObjectStore, verified: Sequence[tuple[Promotion, ObjectInfo]]
) -> list[tuple[Promotion, LabmeshError | OSError | None]]:
    """Journal the verified copies' landing checksums at once, then delete their landing files one by one."""
    record_promotions(store, [JournaledPromotion(p.source, p.destination, p.checksum) for p, _ in verified])
    finished: list[tuple[Promotion, LabmeshError | OSError | None]] = []
    for promotion, before in verified:
        try:
            _delete_if_unchanged(store, promotion.source, before)
        except (LabmeshError, OSError) as exc:
            finished.append((promotion, exc))
        else:
            finished.append((promotion, None))
    return finished


def _already_in_raw(
    store: ObjectStore, source: ObjectKey, destination: ObjectKey, before: ObjectInfo, expected: Checksum
) -> tuple[Promotion, ObjectInfo]:
    """A delivery raw already holds: the same bytes are cleared from landing, different bytes are a conflict."""
    if store.checksum(destination, expected.algorithm) != expected:
        raise RawConflict(f"raw already holds a different file named {destination}; raw is never overwritten")
    return Promotion(source, destination, expected, already_in_raw=True), before


def promote_experiment(store: ObjectStore, experiment_id: str, *, settled_before: datetime) -> PromotionReport:
    """Promote every settled file in the experiment's landing folder; one bad file never stops the others.

    Files are copied and verified `PROMOTE_WORKERS` at a time, and journaled and deleted from landing in
    batches of `JOURNAL_BATCH`: a crash in between leaves files in both zones, which the next run verifies
    and finishes."""
    report = PromotionReport()
    settled: list[ObjectInfo] = []
    for info in store.list(Zone.LANDING, experiment_prefix(experiment_id)):
        if info.key.is_labmesh_internal:
            continue  # the landing sensor quarantines these
        if info.modified > settled_before:
            report.not_settled.append(info.key)
        else:
            settled.append(info)
    with ThreadPoolExecutor(PROMOTE_WORKERS, thread_name_prefix="labmesh-promote") as pool:
        for start in range(0, len(settled), JOURNAL_BATCH):
            chunk = settled[start : start + JOURNAL_BATCH]
            batch: list[tuple[Promotion, ObjectInfo]] = []
            outcomes = [
                _copy_or_error(store, info.key)
                if info.size < store.inline_below_bytes
                else pool.submit(_copy_or_error, store, info.key)
                for info in chunk
            ]
            for info, pending in zip(chunk, outcomes, strict=True):
                outcome = pending.result() if isinstance(pending, Future) else pending
                if isinstance(outcome, RawConflict):
                    report.conflicts.append((info, str(outcome)))
                elif isinstance(outcome, (LabmeshError, OSError)):
                    report.failed.append(PromotionFailure(info.key, str(outcome)))
                elif outcome is not None:
                    batch.append(outcome)
            _finish_batch(store, batch, report)
    return report


def _copy_or_error(
    store: ObjectStore, source: ObjectKey
) -> tuple[Promotion, ObjectInfo] | LabmeshError | OSError | None:
    """`_copy_verified`, with the errors that concern this file alone returned, so its neighbours go on."""
    try:
        return _copy_verified(store, source)
    except (LabmeshError, OSError) as exc:
        return exc


def _finish_batch(store: ObjectStore, batch: Sequence[tuple[Promotion, ObjectInfo]], report: PromotionReport) -> None:
    """Journal and clear landing for one batch of verified copies, recording each file's outcome in ``report``."""
    if not batch:
        return
    try:
        finished = _finish(store, batch)
    except (LabmeshError, OSError) as exc:  # the journal could not be written: every landing file is kept
        report.failed.extend(PromotionFailure(promotion.source, str(exc)) for promotion, _ in batch)
        return
    for promotion, failure in finished:
        if failure is None:
            report.promoted.append(promotion)
        else:
            report.failed.append(PromotionFailure(promotion.source, str(failure)))
