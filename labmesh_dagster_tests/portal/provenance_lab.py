"""EXP-1's processed dataset as the pipelines publish it: fastp's report of its FASTQ and a MultiQC report.

Built by hand on the portal's lab (`lab.build_lab`), with the manifest
entries' ``produced_by`` as the processed asset records it (the pipelines
contract's section 5), beside the built-in QC's documents, so the QC page's
files stay in the dataset. The MultiQC report's script writes what it could
reach into the page, so a browser shows whether its sandbox held.
"""

from __future__ import annotations

import hashlib

from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest, ManifestEntry, Provenance, ProvenanceInput
from labmesh_dagster_tests.portal.lab import SCRIPT, PortalLab, add_qc

FASTQ_KEY = "raw/EXP-1/run1/LIV-01_R1.fastq.gz"
FASTP_JSON = "processed/EXP-1/fastp/fastq/LIV-01_R1.fastp.json"
REPORT = "processed/EXP-1/multiqc/multiqc_report.html"
STALE_INPUT = "raw/EXP-1/run1/<script>window.pwned=1</script>.txt"
STALE_SHA256 = "5e" * 32
REPORT_HTML = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>MultiQC report</title></head>
<body><h1>MultiQC report</h1><p id="reached">not run</p>
<script>
  const reached = ["origin: " + window.origin];
  try { reached.push("cookies: " + (document.cookie === "" ? "none" : document.cookie)); }
  catch (error) { reached.push("cookies: refused"); }
  try { localStorage.setItem("x", "1"); reached.push("storage: " + localStorage.length); }
  catch (error) { reached.push("storage: refused"); }
  document.getElementById("reached").textContent = reached.join("; ");
  fetch("/api/experiments/EXP-1", {credentials: "include"})
    .then((answer) => answer.text())
    .then((text) => { document.getElementById("reached").textContent += "; api: read " + text.length; })
    .catch(() => { document.getElementById("reached").textContent += "; api: refused"; });
</script></body></html>
"""


def made_by(pipeline: str, inputs: list[tuple[str, str]], command_line: str, tools: dict[str, str]) -> Provenance:
    return Provenance(
        pipeline=pipeline,
        version="1",
        invocation_id=f"{pipeline}-3f2a9c1e0b7d4a55",
        engine="local",
        engine_run_id="pid 4242",
        run_id="6c1f0b2e-run",
        command_line=command_line,
        tool_versions=tools,
        inputs=tuple(ProvenanceInput(key, sha256) for key, sha256 in inputs),
    )


def _output(lab: PortalLab, key: str, data: bytes, fmt: str, produced_by: Provenance) -> ManifestEntry:
    lab.store.put(ObjectKey.parse(key), data)
    return ManifestEntry(
        key=key,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        created="2024-03-03T11:00:00+00:00",
        derived_from=tuple(item.key for item in produced_by.inputs),
        produced_by=produced_by,
    )


def add_pipeline_outputs(lab: PortalLab) -> None:
    """fastp's JSON of EXP-1's FASTQ, and a MultiQC report over it and a file whose bytes have changed since."""
    add_qc(lab)
    raw = lab.catalog.get_dataset("EXP-1", Zone.RAW)
    qc = lab.catalog.get_dataset("EXP-1", Zone.PROCESSED)
    assert raw is not None and qc is not None
    fastq = next(entry for entry in raw.files if entry.key == FASTQ_KEY)
    fastp = _output(
        lab,
        FASTP_JSON,
        b'{"summary": {"fastp_version": "0.23.2"}}',
        "json",
        made_by(
            "fastp",
            [(fastq.key, fastq.sha256)],
            f"fastp --in1 /tmp/in/{SCRIPT}.fastq.gz --json /tmp/out/LIV-01_R1.fastp.json",
            {"fastp": "0.23.2"},
        ),
    )
    report = _output(
        lab,
        REPORT,
        REPORT_HTML,
        "html",
        made_by(
            "multiqc",
            [(fastp.key, fastp.sha256), (STALE_INPUT, STALE_SHA256)],
            "multiqc --force --outdir /tmp/out /tmp/in",
            {"multiqc": "1.25"},
        ),
    )
    lab.catalog.upsert_dataset(Manifest.build("EXP-1", "processed", [*qc.files, fastp, report]), "processed/EXP-1")
