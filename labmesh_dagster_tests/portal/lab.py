"""A small lab for the portal's tests: two groups' experiments with files, and a user in each group.

Genomics owns EXP-1 (a FASTQ pair and a run summary, whose title and file name
try script injection); Proteomics owns EXP-2 (a CSV); EXP-3 has no group and
belongs to ada alone. ``ada`` is in Genomics, ``bob`` in Proteomics, ``root``
is an admin. Passwords are hashed with cheap Argon2 parameters: the tests pin
behaviour, not the hash's cost. `add_qc` and `add_fastp_qc` publish EXP-1's
processed QC as the ``fastq-qc`` and ``fastp`` pipelines do.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import tempfile
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
from labmesh_dagster.core.manifest import Manifest, ManifestEntry, Provenance, ProvenanceInput
from labmesh_dagster.pipelines import fastq_qc_file
from labmesh_dagster.portal.app import PortalContext, mount_portal
from labmesh_dagster.portal.sessions import SessionSigner
from labmesh_dagster.settings import AccessSettings

PASSWORD = "a long enough password"
SCRIPT = "<script>window.pwned=1</script>"
FASTQ = b"".join(b"@read%d/1\nACGTACGTAC\n+\nIIIIIHHHGG\n" % n for n in range(20))
FASTQ_R2 = b"".join(b"@read%d/2\nGTACGTACGT\n+\nIIIII55555\n" % n for n in range(20))
"""Read 2 of EXP-1's pair, for fastp's paired report: five bases at Q40, five at Q20."""
FASTP_REPORTS = Path(__file__).parent / "fastp"
FASTP_VERSION = "0.23.2"


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


def _publish_qc(lab: PortalLab, outputs: list[tuple[str, bytes, Provenance]]) -> None:
    """Publish QC outputs as EXP-1's processed dataset, beside what it holds, as the processed asset records them."""
    processed = lab.catalog.get_dataset("EXP-1", Zone.PROCESSED)
    entries = {entry.key: entry for entry in (processed.files if processed else ())}
    for key, data, produced_by in outputs:
        lab.store.put(ObjectKey.parse(key), data)
        entries[key] = ManifestEntry(
            key=key,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            format="json" if key.endswith(".json") else "html",
            created="2024-03-03T10:00:00+00:00",
            derived_from=tuple(item.key for item in produced_by.inputs),
            produced_by=produced_by,
        )
    lab.catalog.upsert_dataset(Manifest.build("EXP-1", "processed", list(entries.values())), "processed/EXP-1")


def _made_by(pipeline: str, inputs: list[ManifestEntry], command_line: str) -> Provenance:
    return Provenance(
        pipeline=pipeline,
        version="2" if pipeline == "fastq-qc" else "1",
        invocation_id=f"{pipeline}-0123456789abcdef",
        engine="local",
        run_id="qc-run",
        command_line=command_line,
        tool_versions={"fastp": FASTP_VERSION} if pipeline == "fastp" else {},
        inputs=tuple(ProvenanceInput(entry.key, entry.sha256) for entry in inputs),
    )


def add_qc(lab: PortalLab) -> None:
    """Run labmesh's own FASTQ QC command (fastp's fallback) on EXP-1's raw FASTQ and publish its document
    where the ``fastq-qc`` pipeline does: ``processed/EXP-1/fastq-qc/run1/LIV-01_R1.qc.json``."""
    raw = lab.catalog.get_dataset("EXP-1", Zone.RAW)
    assert raw is not None
    outputs = []
    for entry in raw.files:
        if not entry.format.startswith("fastq"):
            continue
        key = ObjectKey.parse(entry.key)
        name = key.name.removesuffix(".gz").removesuffix(".fastq")
        with tempfile.TemporaryDirectory() as work:
            target = Path(work) / f"{name}.qc.json"
            fastq_qc_file.main([str(lab.store.path(key)), str(target)])
            data = target.read_bytes()
        folder = key.relative_path.rsplit("/", 1)[0]
        command = f"python -m labmesh_dagster.pipelines.fastq_qc_file {key.name} {name}.qc.json"
        outputs.append(
            (f"processed/EXP-1/fastq-qc/{folder}/{name}.qc.json", data, _made_by("fastq-qc", [entry], command))
        )
    _publish_qc(lab, outputs)


def add_fastp_qc(lab: PortalLab, *, report: str = "LIV-01_R1.fastp.json") -> None:
    """Publish a fastp report of EXP-1's FASTQ as the ``fastp`` pipeline does, with fastp's HTML beside it.

    ``report`` names one of the real fastp 0.23.2 reports in ``fastp/`` (see its README): ``LIV-01_R1``'s
    own, ``LIV-01.fastp.json`` of the pair (``LIV-01_R2.fastq.gz`` is then added to the raw dataset first) or
    ``EMPTY_R1.fastp.json`` of a FASTQ without reads (published as LIV-01_R1's). The HTML stands in for
    fastp's: the portal only links it.
    """
    raw = lab.catalog.get_dataset("EXP-1", Zone.RAW)
    assert raw is not None
    inputs = [entry for entry in raw.files if entry.format.startswith("fastq")]
    stem = "LIV-01_R1"
    if report == "LIV-01.fastp.json":
        data = gzip.compress(FASTQ_R2)
        mate = _entry(lab.store, Zone.RAW, "EXP-1", "run1/LIV-01_R2.fastq.gz", data, "fastq.gz", ("LIV-01",))
        inputs, stem = [*inputs, mate], "LIV-01"
        lab.catalog.upsert_dataset(Manifest.build("EXP-1", "raw", [*raw.files, mate]), raw.location)
    data = (FASTP_REPORTS / report).read_bytes()
    made = _made_by("fastp", inputs, json.loads(data)["command"])
    html = f"<!DOCTYPE html><html><head><title>fastp report: {stem}</title></head><body></body></html>".encode()
    _publish_qc(
        lab,
        [
            (f"processed/EXP-1/fastp/run1/{stem}.fastp.json", data, made),
            (f"processed/EXP-1/fastp/run1/{stem}.fastp.html", html, made),
        ],
    )


def run_fastp(work: Path) -> dict[str, Path]:
    """The fastp reports of ``fastp/``, made again by the installed fastp with the built-in pipelines'
    arguments: how they were made, and how a test checks they still are what fastp writes."""
    work.mkdir(parents=True, exist_ok=True)
    for name, data in (("LIV-01_R1", FASTQ), ("LIV-01_R2", FASTQ_R2), ("EMPTY_R1", b"")):
        (work / f"{name}.fastq.gz").write_bytes(gzip.compress(data, mtime=0))
    runs = {
        "LIV-01_R1": ["--in1", "LIV-01_R1.fastq.gz"],
        "LIV-01": ["--in1", "LIV-01_R1.fastq.gz", "--in2", "LIV-01_R2.fastq.gz", "--detect_adapter_for_pe"],
        "EMPTY_R1": ["--in1", "EMPTY_R1.fastq.gz"],
    }
    for name, args in runs.items():
        subprocess.run(
            ["fastp", *args, "--json", f"{name}.fastp.json", "--html", f"{name}.fastp.html"]
            + ["--report_title", f"fastp report: {name}", "--thread", "1"],
            cwd=work,
            check=True,
            capture_output=True,
        )
    return {f"{name}.fastp.json": work / f"{name}.fastp.json" for name in runs}
