"""What the asset checks verify, as plain functions returning the problems they find."""

from __future__ import annotations

from collections.abc import Mapping

from labmesh_dagster.connectors.catalog.base import DatasetRecord
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.errors import ObjectNotFound
from labmesh_dagster.core.keys import ObjectKey
from labmesh_dagster.core.manifest import Manifest


def raw_checksum_problems(store: ObjectStore, manifest: Manifest, *, reread: Mapping[str, str]) -> list[str]:
    """Raw files must match the landing checksums they were promoted with.

    Files in ``reread`` (promoted in this run, raw key -> landing sha256) are
    read back in full; every other file is checked for presence, size and a
    recorded landing checksum only, so that a new delivery does not re-read
    terabytes promoted earlier.
    """
    problems = []
    for entry in manifest.entries:
        if not entry.source_sha256:
            problems.append(f"{entry.key}: no landing checksum recorded (not promoted by labmesh)")
            continue
        key = ObjectKey.parse(entry.key)
        try:
            info = store.stat(key)
            actual = store.sha256(key) if entry.key in reread else entry.sha256
        except ObjectNotFound:
            problems.append(f"{entry.key}: missing from the raw zone")
            continue
        expected = reread.get(entry.key, entry.source_sha256)
        if info.size != entry.size:
            problems.append(f"{entry.key}: {info.size} bytes in raw, {entry.size} in the manifest")
        elif actual != expected:
            problems.append(f"{entry.key}: sha256 {actual} differs from landing {expected}")
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
