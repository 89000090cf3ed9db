"""The landing checksum of each promoted file, kept durably beside raw until a manifest holds it.

Promotion deletes the landing copy once raw verifies against it, and the
landing checksum is the evidence that it did. Until the raw manifest is
written that evidence would live only in the run's memory, so a run stopped
in between would leave ``raw_files_match_landing_checksums`` failing for good.
A small journal object per file, written before the landing copy is deleted,
closes that window: the next run reads the journal, and once the manifest
carries a file's landing checksum its journal object is removed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.checksums import Checksum
from labmesh_dagster.core.errors import InvalidObjectKey, ObjectNotFound
from labmesh_dagster.core.keys import LABMESH_DIR, ObjectKey, Zone, experiment_prefix
from labmesh_dagster.core.manifest import Manifest

JOURNAL_DIR = f"{LABMESH_DIR}/promoted"


def journal_key(destination: ObjectKey) -> ObjectKey:
    """One object per raw file, named by a digest: raw paths may be as long as the store allows."""
    digest = hashlib.sha256(destination.relative_path.encode("utf-8")).hexdigest()
    return ObjectKey.for_experiment(destination.zone, destination.experiment_id, f"{JOURNAL_DIR}/{digest}.json")


def record_promotion(store: ObjectStore, source: ObjectKey, destination: ObjectKey, checksum: Checksum) -> None:
    """Make the landing checksum durable; called after raw is verified and before landing is deleted."""
    entry = {"raw": str(destination), "landing": str(source), "checksum": str(checksum)}
    store.put(journal_key(destination), json.dumps(entry, sort_keys=True).encode("utf-8"))


def journaled_checksums(store: ObjectStore, experiment_id: str) -> dict[str, str]:
    """Raw key -> landing checksum of every promotion whose evidence no manifest holds yet."""
    checksums: dict[str, str] = {}
    for info in store.list(Zone.RAW, experiment_prefix(experiment_id) + JOURNAL_DIR + "/"):
        try:
            entry = json.loads(store.read_bytes(info.key))
            raw, checksum = str(entry["raw"]), str(Checksum.parse(entry["checksum"]))
            ObjectKey.parse(raw)
        except ObjectNotFound:
            continue  # cleared by a run that finished meanwhile
        except (ValueError, KeyError, TypeError, InvalidObjectKey):
            continue  # not ours to read; `raw_files_match_landing_checksums` names a file left without evidence
        checksums[raw] = checksum
    return checksums


def forget_recorded(store: ObjectStore, manifest: Manifest, journaled: Mapping[str, str]) -> int:
    """Remove the journal objects of files whose landing checksum the written manifest now carries."""
    carried = {entry.key: entry.source_checksum for entry in manifest.entries}
    forgotten = 0
    for raw, checksum in journaled.items():
        if carried.get(raw) == checksum:
            store.delete(journal_key(ObjectKey.parse(raw)))
            forgotten += 1
    return forgotten
