"""What the asset checks verify, as plain functions returning the problems they find."""

from __future__ import annotations

from labmesh_dagster.connectors.catalog.base import DatasetRecord
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.checksums import Checksum
from labmesh_dagster.core.errors import ObjectNotFound
from labmesh_dagster.core.keys import ObjectKey
from labmesh_dagster.core.manifest import Manifest


def raw_checksum_problems(store: ObjectStore, manifest: Manifest) -> list[str]:
    """Raw files must match the landing checksums they were promoted with.

    A manifest entry's checksums were computed by reading the raw object (when
    it was described), in SHA-256 and in the algorithm of the landing checksum
    recorded at promotion, so comparing them needs no third read of the data;
    a stat confirms the object is still there, unchanged in size.
    """
    problems = []
    for entry in manifest.entries:
        if not entry.source_checksum:
            problems.append(f"{entry.key}: no landing checksum recorded (not promoted by labmesh)")
            continue
        try:
            info = store.stat(ObjectKey.parse(entry.key))
        except ObjectNotFound:
            problems.append(f"{entry.key}: missing from the raw zone")
            continue
        landing = Checksum.parse(entry.source_checksum)
        raw = entry.checksum(landing.algorithm)
        if info.size != entry.size:
            problems.append(f"{entry.key}: {info.size} bytes in raw, {entry.size} in the manifest")
        elif raw is None:
            problems.append(f"{entry.key}: no {landing.algorithm} of the raw file recorded to compare with landing")
        elif raw != landing.value:
            problems.append(f"{entry.key}: {landing.algorithm} {raw} in raw differs from landing {landing.value}")
    return problems


def catalog_problems(record: DatasetRecord | None, manifest: Manifest) -> list[str]:
    """The catalog entry must list exactly the manifest's files with the same sizes and checksums."""
    if record is None:
        return [f"no catalog entry for {manifest.zone}/{manifest.experiment_id}"]
    problems = []
    if record.manifest_digest != manifest.digest:
        problems.append("catalog entry was published from a different manifest")
    cataloged = {entry.key: (entry.size, entry.sha256) for entry in record.files}
    listed = {entry.key: (entry.size, entry.sha256) for entry in manifest.entries}
    for key in sorted(listed.keys() - cataloged.keys()):
        problems.append(f"{key}: in the manifest but not in the catalog")
    for key in sorted(cataloged.keys() - listed.keys()):
        problems.append(f"{key}: in the catalog but not in the manifest")
    for key in sorted(listed.keys() & cataloged.keys()):
        if listed[key] != cataloged[key]:
            problems.append(f"{key}: catalog has size/sha256 {cataloged[key]}, manifest {listed[key]}")
    return problems
