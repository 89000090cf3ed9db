"""What the asset checks verify: raw files against their landing checksums, the catalog against the manifest.

Pinned here: a clean raw dataset has no problems; a file gone from raw, a file
whose size changed, a file whose sha256 differs from its landing checksum and a
file with no landing checksum are each named; a catalog entry missing, lacking
a file, holding an extra file or published from another manifest is named.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.checksums import CRC64NVME, stream_checksums
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.steps.manifests import build_manifest, describe_object
from labmesh_dagster.steps.verification import catalog_problems, raw_checksum_problems


def _raw_manifest(store: LocalObjectStore) -> Manifest:
    for name, content in (("a.txt", b"alpha"), ("b.txt", b"beta")):
        store.put(ObjectKey.for_experiment(Zone.RAW, "EXP-1", name), content)
    manifest = build_manifest(store, Zone.RAW, "EXP-1", [])
    return Manifest.build("EXP-1", "raw", [replace(e, source_checksum=f"sha256:{e.sha256}") for e in manifest.entries])


def test_a_faithful_raw_dataset_has_no_problems(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    assert raw_checksum_problems(store, _raw_manifest(store)) == []


def test_missing_resized_mismatched_and_unpromoted_raw_files_are_each_named(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    manifest = _raw_manifest(store)
    a, b = manifest.entries
    store.delete(ObjectKey.parse(a.key))
    store.put(ObjectKey.parse(b.key), b"beta, grown")
    extra = replace(b, key="raw/EXP-1/c.txt", source_checksum="sha256:" + "0" * 64)
    store.put(ObjectKey.parse(extra.key), b"beta")
    unpromoted = replace(b, key="raw/EXP-1/d.txt", source_checksum=None)

    problems = raw_checksum_problems(store, Manifest.build("EXP-1", "raw", [a, b, extra, unpromoted]))

    assert problems == [
        "raw/EXP-1/a.txt: missing from the raw zone",
        "raw/EXP-1/b.txt: 11 bytes in raw, 4 in the manifest",
        f"raw/EXP-1/c.txt: sha256 {b.sha256} in raw differs from landing {'0' * 64}",
        "raw/EXP-1/d.txt: no landing checksum recorded (not promoted by labmesh)",
    ]


def test_raw_files_promoted_by_a_crc_are_checked_in_that_crc(tmp_path: Path) -> None:
    """S3 verifies multipart promotions by CRC64NVME; the manifest keeps the raw file's, read with its sha256."""
    store = LocalObjectStore(tmp_path)
    info = store.put(ObjectKey.for_experiment(Zone.RAW, "EXP-1", "run.bam"), b"reads")
    crc = stream_checksums(io.BytesIO(b"reads"), (CRC64NVME,))[CRC64NVME]
    good = describe_object(store, info, [], source_checksum=str(crc))
    corrupt = replace(good, source_checksum=f"{CRC64NVME}:{'0' * 16}")
    unrecorded = replace(good, checksums={})

    assert good.checksums == {CRC64NVME: crc.value}
    assert raw_checksum_problems(store, Manifest.build("EXP-1", "raw", [good])) == []
    assert raw_checksum_problems(store, Manifest.build("EXP-1", "raw", [corrupt])) == [
        f"raw/EXP-1/run.bam: crc64nvme {crc.value} in raw differs from landing {'0' * 16}"
    ]
    assert raw_checksum_problems(store, Manifest.build("EXP-1", "raw", [unrecorded])) == [
        "raw/EXP-1/run.bam: no crc64nvme of the raw file recorded to compare with landing"
    ]


def test_catalog_entries_that_drift_from_their_manifest_are_named(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    catalog = SqliteCatalog(tmp_path / "catalog.sqlite")
    catalog.upsert_experiment(ExperimentRecord(id="EXP-1", title="T"), {})
    manifest = _raw_manifest(store)
    assert catalog_problems(None, manifest) == ["no catalog entry for raw/EXP-1"]

    catalog.upsert_dataset(manifest, "loc")
    assert catalog_problems(catalog.get_dataset("EXP-1", "raw"), manifest) == []

    a, b = manifest.entries
    drifted = Manifest.build("EXP-1", "raw", [b, replace(a, key="raw/EXP-1/z.txt")])
    assert catalog_problems(catalog.get_dataset("EXP-1", "raw"), drifted) == [
        "catalog entry was published from a different manifest",
        "raw/EXP-1/z.txt: in the manifest but not in the catalog",
        "raw/EXP-1/a.txt: in the catalog but not in the manifest",
    ]
