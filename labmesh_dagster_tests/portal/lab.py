"""A small lab for the portal's tests: two groups' experiments with files, and a user in each group.

Genomics owns EXP-1 (a FASTQ pair and a run summary, whose title and file name
try script injection); Proteomics owns EXP-2 (a CSV); EXP-3 has no group and
belongs to ada alone. ``ada`` is in Genomics, ``bob`` in Proteomics, ``root``
is an admin. Passwords are hashed with cheap Argon2 parameters: the tests pin
behaviour, not the hash's cost.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from fastapi import FastAPI

from labmesh_dagster.access.stores import AccessStores
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.rejections import RejectionStore, SqliteRejectionStore
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.experiment import ExperimentRecord, Sample
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.portal.app import PortalContext, mount_portal
from labmesh_dagster.portal.sessions import SessionSigner
from labmesh_dagster.settings import AccessSettings

PASSWORD = "a long enough password"
SCRIPT = "<script>window.pwned=1</script>"
FASTQ = b"".join(b"@read%d/1\nACGTACGTAC\n+\nIIIIIHHHGG\n" % n for n in range(20))


@dataclass
class PortalLab:
    app: FastAPI
    catalog: SqliteCatalog
    store: LocalObjectStore
    access: AccessStores
    rejections: RejectionStore


def _entry(
    store: LocalObjectStore,
    zone: Zone,
    experiment: str,
    path: str,
    data: bytes,
    fmt: str,
    samples: tuple[str, ...] = (),
) -> ManifestEntry:
    key = ObjectKey.for_experiment(zone, experiment, path)
    store.put(key, data)
    return ManifestEntry(
        key=str(key),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        created="2024-03-02T10:00:00+00:00",
        sample_ids=samples,
        source_checksum="sha256:" + hashlib.sha256(data).hexdigest(),
    )


def build_lab(home: Path) -> PortalLab:
    store = LocalObjectStore(home / "store")
    catalog = SqliteCatalog(home / "catalog.sqlite")
    records = [
        ExperimentRecord(
            id="EXP-1",
            title=f"Liver RNA-seq {SCRIPT}",
            owner="ada",
            group="Genomics",
            samples=(Sample("LIV-01"),),
            platform="MiSeq",
            description="fibrosis in mouse liver",
        ),
        ExperimentRecord(
            id="EXP-2",
            title="Kidney proteomics",
            owner="bob",
            group="Proteomics",
            samples=(Sample("KID-01"),),
            platform="Orbitrap",
            description="fibrosis in kidney",
        ),
        ExperimentRecord(id="EXP-3", title="Private pilot", owner="ada", description="fibrosis pilot"),
    ]
    for record in records:
        catalog.upsert_experiment(record, {"raw": str(home / "store" / "raw" / record.id)})
    liver = [
        _entry(store, Zone.RAW, "EXP-1", "run1/LIV-01_R1.fastq.gz", gzip.compress(FASTQ), "fastq.gz", ("LIV-01",)),
        _entry(store, Zone.RAW, "EXP-1", f"run1/{SCRIPT}.txt", b"fibrosis run summary\n", "txt"),
    ]
    kidney = [_entry(store, Zone.RAW, "EXP-2", "KID-01.csv", b"protein,abundance\nALB,12\n", "csv", ("KID-01",))]
    pilot = [_entry(store, Zone.RAW, "EXP-3", "pilot.txt", b"fibrosis pilot notes\n", "txt")]
    for experiment, entries in (("EXP-1", liver), ("EXP-2", kidney), ("EXP-3", pilot)):
        catalog.upsert_dataset(Manifest.build(experiment, "raw", entries), str(home / "store" / "raw" / experiment))
    access = AccessStores.open(
        AccessSettings.from_env({}, home), hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    access.users.add("ada", PASSWORD, groups=["Genomics"])
    access.users.add("bob", PASSWORD, groups=["Proteomics"])
    access.users.add("root", PASSWORD, admin=True)
    rejections = SqliteRejectionStore(home / "catalog.sqlite")  # beside the catalog, as `labmesh` keeps it
    app = FastAPI()
    context = PortalContext(
        catalog=lambda: catalog,
        store=lambda: store,
        access=access,
        signer=SessionSigner("test-secret"),
        secure_cookies=False,
        rejections=lambda: rejections,
    )
    mount_portal(app, context)
    return PortalLab(app, catalog, store, access, rejections)


def add_qc(lab: PortalLab) -> None:
    """Run the real FASTQ QC pipeline on EXP-1's raw FASTQ and publish its outputs as EXP-1's processed dataset."""
    from labmesh_dagster.pipelines.fastq_qc import run_qc

    raw = lab.catalog.get_dataset("EXP-1", Zone.RAW)
    assert raw is not None
    inputs = [{"key": entry.key, "sha256": entry.sha256} for entry in raw.files if entry.format.startswith("fastq")]
    entries = []
    for output in run_qc(lab.store, "EXP-1", inputs):
        key = ObjectKey.parse(output["key"])
        data = lab.store.read_bytes(key)
        entries.append(
            ManifestEntry(
                key=str(key),
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                format="json",
                created="2024-03-03T10:00:00+00:00",
                derived_from=tuple(output["derived_from"]),
            )
        )
    lab.catalog.upsert_dataset(Manifest.build("EXP-1", "processed", entries), "processed/EXP-1")
