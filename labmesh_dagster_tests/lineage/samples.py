"""One experiment's data as the lineage tests see it: landing -> raw -> processed -> final, on S3 or on disk.

The keys and lineage are the ones the real assets write (raw files derived
from their landing objects, QC outputs from raw files, a summary from all of
them, a report from the summary), so events built here look like production's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath

from openlineage.client.event_v2 import RunEvent

from labmesh_dagster.core.experiment import ExperimentRecord, Sample
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.lineage.events import DatasetRef, materialization_events

EXPERIMENT = ExperimentRecord(
    id="EXP-1",
    title="Liver RNA-seq",
    description="Bulk RNA-seq of liver biopsies, two samples.",
    owner="Ada Lovelace",
    group="Genomics",
    project="Atlas",
    samples=(Sample("S1"), Sample("S2")),
    platform="NovaSeq 6000",
    protocol="TruSeq stranded mRNA",
)
T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
OWNERS = ("team:lab-informatics",)
BUCKETS = {zone: f"lm-{zone.value}" for zone in Zone}
# A root with a space and a non-ASCII letter: file URIs percent-encode both.
LOCAL_ROOT = PurePosixPath("/srv/lab data/zürich")


def entry(key: str, size: int, fmt: str, *derived_from: str, sha: str = "ab") -> ManifestEntry:
    return ManifestEntry(
        key=key,
        size=size,
        sha256=sha * 32,
        format=fmt,
        created="2026-11-29T09:00:00+00:00",
        derived_from=derived_from,
    )


RAW = Manifest.build(
    "EXP-1",
    "raw",
    [
        entry("raw/EXP-1/S1_R1.fastq.gz", 1_200_000, "fastq", "landing/EXP-1/S1_R1.fastq.gz", sha="01"),
        entry("raw/EXP-1/S2_R1.fastq.gz", 1_300_000, "fastq", "landing/EXP-1/S2_R1.fastq.gz", sha="02"),
    ],
)
PROCESSED = Manifest.build(
    "EXP-1",
    "processed",
    [
        entry("processed/EXP-1/qc/S1_R1.fastq.gz.qc.json", 2_000, "json", "raw/EXP-1/S1_R1.fastq.gz", sha="03"),
        entry("processed/EXP-1/qc/S2_R1.fastq.gz.qc.json", 2_100, "json", "raw/EXP-1/S2_R1.fastq.gz", sha="04"),
        entry(
            "processed/EXP-1/qc/summary.json",
            900,
            "json",
            "raw/EXP-1/S1_R1.fastq.gz",
            "raw/EXP-1/S2_R1.fastq.gz",
            sha="05",
        ),
    ],
)
FINAL = Manifest.build(
    "EXP-1", "final", [entry("final/EXP-1/report.pdf", 50_000, "pdf", "processed/EXP-1/qc/summary.json", sha="06")]
)
MANIFESTS = {Zone.RAW: RAW, Zone.PROCESSED: PROCESSED, Zone.FINAL: FINAL}


def location(zone: Zone, store: str = "s3", experiment_id: str = "EXP-1") -> str:
    """What the S3 and local stores' `location` return for an experiment's folder in a zone."""
    if store == "s3":
        return f"s3://{BUCKETS[zone]}/{experiment_id}/"
    return (LOCAL_ROOT / zone.value / experiment_id).as_uri() + "/"


def ref(zone: Zone, store: str = "s3", *, with_manifest: bool = True, experiment_id: str = "EXP-1") -> DatasetRef:
    """An experiment's folder; only EXP-1 has manifests."""
    manifest = MANIFESTS.get(zone) if with_manifest and experiment_id == "EXP-1" else None
    return DatasetRef(location(zone, store, experiment_id), zone, manifest)


# Each asset's inputs and outputs, as the Dagster layer will pass them.
ASSET_ZONES: dict[str, tuple[tuple[Zone, ...], tuple[Zone, ...]]] = {
    "experiment": ((), (Zone.LANDING, Zone.RAW, Zone.PROCESSED, Zone.FINAL)),
    "raw_dataset": ((Zone.LANDING,), (Zone.RAW,)),
    "processed_dataset": ((Zone.RAW,), (Zone.PROCESSED,)),
    "final_dataset": ((Zone.PROCESSED,), (Zone.FINAL,)),
}


def events_for(
    asset: str,
    *,
    store: str = "s3",
    run_id: str = "dagster-run-1",
    started: datetime = T0,
    minutes: int = 3,
    error: str | None = None,
    experiment: ExperimentRecord = EXPERIMENT,
) -> tuple[RunEvent, RunEvent]:
    inputs, outputs = ASSET_ZONES[asset]
    # The experiment asset provisions empty folders: none of them has a manifest yet.
    manifests = asset != "experiment"
    return materialization_events(
        asset=asset,
        run_id=run_id,
        experiment=experiment,
        inputs=[ref(zone, store, with_manifest=manifests, experiment_id=experiment.id) for zone in inputs],
        outputs=[ref(zone, store, with_manifest=manifests, experiment_id=experiment.id) for zone in outputs],
        started=started,
        ended=started + timedelta(minutes=minutes),
        error=error,
        stack_trace="Traceback (most recent call last):\n  ...\n" + error if error else None,
        job_owners=OWNERS,
    )


def chain(*, store: str = "s3", final_error: str | None = None) -> list[RunEvent]:
    """raw -> processed -> final for EXP-1, in the order the assets run, each START before its end."""
    events: list[RunEvent] = []
    events += events_for("raw_dataset", store=store, run_id="run-raw", started=T0)
    events += events_for("processed_dataset", store=store, run_id="run-processed", started=T0 + timedelta(minutes=5))
    events += events_for(
        "final_dataset", store=store, run_id="run-final", started=T0 + timedelta(hours=1), error=final_error
    )
    return events
