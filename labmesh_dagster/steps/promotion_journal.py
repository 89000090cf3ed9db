"""The landing checksum of each promoted file, kept durably beside raw until a manifest holds it.

Promotion deletes the landing copy once raw verifies against it, and the
landing checksum is the evidence that it did. Until the raw manifest is
written that evidence would live only in the run's memory, so a run stopped
in between would leave ``raw_files_match_landing_checksums`` failing for good.
A small journal object, written before the landing copies are deleted,
closes that window: the next run reads the journal, and once the manifest
carries every landing checksum an object holds, the object is removed.

One object holds a batch of promotions (`record_promotions`): each object is
written durably (fsync), and a thousand files' evidence in one object each
would double what promoting them costs on a local disk. Objects written
before batches (one promotion each) are read the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.checksums import Checksum
from labmesh_dagster.core.errors import InvalidObjectKey, ObjectNotFound
from labmesh_dagster.core.keys import LABMESH_DIR, ObjectKey, Zone, experiment_prefix
from labmesh_dagster.core.manifest import Manifest

JOURNAL_DIR = f"{LABMESH_DIR}/promoted"


@dataclass(frozen=True)
class JournaledPromotion:
    source: ObjectKey
    destination: ObjectKey
    checksum: Checksum


def journal_key(destinations: Sequence[ObjectKey]) -> ObjectKey:
    """One object per batch, named by a digest of its raw keys: raw paths may be as long as the store allows."""
    names = "\n".join(sorted(destination.relative_path for destination in destinations))
    digest = hashlib.sha256(names.encode("utf-8")).hexdigest()
    first = destinations[0]
    return ObjectKey.for_experiment(first.zone, first.experiment_id, f"{JOURNAL_DIR}/{digest}.json")


def record_promotions(store: ObjectStore, promotions: Sequence[JournaledPromotion]) -> None:
    """Make the landing checksums durable; called after raw is verified and before landing is deleted."""
    if not promotions:
        return
    entries = [
        {"raw": str(item.destination), "landing": str(item.source), "checksum": str(item.checksum)}
        for item in promotions
    ]
    body = {"entries": sorted(entries, key=lambda entry: entry["raw"])}
    store.put(journal_key([item.destination for item in promotions]), json.dumps(body, sort_keys=True).encode())


def _journal(store: ObjectStore, experiment_id: str) -> Iterator[tuple[ObjectKey, dict[str, str]]]:
    """Each journal object's key with its raw key -> landing checksum (an object that cannot be read: none)."""
    for info in store.list(Zone.RAW, experiment_prefix(experiment_id) + JOURNAL_DIR + "/"):
        try:
            body = json.loads(store.read_bytes(info.key))
            entries = body.get("entries", [body])  # one promotion per object, before batches
            checksums = {}
            for entry in entries:
                raw = str(entry["raw"])
                ObjectKey.parse(raw)
                checksums[raw] = str(Checksum.parse(entry["checksum"]))
        except ObjectNotFound:
            continue  # cleared by a run that finished meanwhile
        except (ValueError, KeyError, TypeError, InvalidObjectKey):
            continue  # not ours to read; `raw_files_match_landing_checksums` names a file left without evidence
        yield info.key, checksums


def journaled_checksums(store: ObjectStore, experiment_id: str) -> dict[str, str]:
    """Raw key -> landing checksum of every promotion whose evidence no manifest holds yet."""
    return {raw: checksum for _, checksums in _journal(store, experiment_id) for raw, checksum in checksums.items()}


def forget_recorded(store: ObjectStore, manifest: Manifest, journaled: Mapping[str, str]) -> int:
    """Remove the journal objects whose every landing checksum the written manifest now carries.

    ``journaled`` is what the run read and promoted (`journaled_checksums` and its own promotions): an object
    holding evidence of anything else (a promotion of a run still going) is kept."""
    carried = {entry.key: entry.source_checksum for entry in manifest.entries}
    forgotten = 0
    for key, checksums in _journal(store, manifest.experiment_id):
        if all(carried.get(raw) == checksum == journaled.get(raw) for raw, checksum in checksums.items()):
            store.delete(key)
            forgotten += 1
    return forgotten
