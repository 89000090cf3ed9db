"""`labmesh sync`, the watched-folder agent, as an instrument PC runs it.

Contract: a file still changing is not uploaded until it has been quiet for the
quiet period; in marker mode nothing of a run folder is uploaded until its
completion marker appears, then all of it; a killed agent restarted with the
same ledger leaves each file exactly once in landing and uploads none twice
(even when it died between the upload and the ledger); files the layout cannot
place are reported, not uploaded; it works the same against S3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.connectors.aws import make_client
from labmesh_dagster.connectors.store.base import ObjectInfo
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.connectors.store.s3 import MIB, S3ObjectStore
from labmesh_dagster.core.checksums import CRC64NVME
from labmesh_dagster.core.errors import LayoutError
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.sync.agent import SyncAgent, SyncOptions, file_checksums
from labmesh_dagster.sync.layout import Layout
from labmesh_dagster.sync.ledger import Ledger
from labmesh_dagster_tests.connectors.test_store_contract import CountingClient


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore(LocalObjectStore):
    """A local store that counts puts and can die right after the n-th one."""

    def __init__(self, root: Path, die_after: int | None = None) -> None:
        super().__init__(root)
        self.puts: list[str] = []
        self.die_after = die_after

    def put(self, key: ObjectKey, data: Any) -> ObjectInfo:
        if self.die_after is not None and len(self.puts) >= self.die_after:
            raise KeyboardInterrupt("the agent is dead: nothing more reaches the store")
        info = super().put(key, data)
        self.puts.append(key.path)
        if self.die_after is not None and len(self.puts) >= self.die_after:
            raise KeyboardInterrupt("killed right after an upload, before the ledger")
        return info


def landing_keys(store: Any) -> list[str]:
    return [info.key.path for info in store.list(Zone.LANDING)]


def agent(
    watch: Path, store: Any, ledger: Path, clock: Clock, layout: Layout | None = None, **options: Any
) -> SyncAgent:
    layout = layout or Layout(experiment="EXP-1")
    return SyncAgent(watch, store, layout, Ledger(ledger), SyncOptions(**options), clock=clock, log=lambda _: None)


def test_a_file_still_being_written_waits_for_its_quiet_period(tmp_path: Path) -> None:
    watch, clock = tmp_path / "instrument", Clock()
    watch.mkdir()
    store = LocalObjectStore(tmp_path / "store")
    sync = agent(watch, store, tmp_path / "ledger.sqlite", clock, quiet_seconds=30)
    reads = watch / "S1_R1.fastq"
    reads.write_bytes(b"@r1\nACGT\n")

    assert sync.run_once().waiting == ["S1_R1.fastq"]
    clock.now += 20
    reads.write_bytes(b"@r1\nACGT\n+\nIIII\n")  # still growing
    clock.now += 20
    assert sync.run_once().uploaded == [] and landing_keys(store) == []
    clock.now += 31

    report = sync.run_once()

    assert [key.path for key in report.uploaded] == ["EXP-1/S1_R1.fastq"]
    assert store.read_bytes(report.uploaded[0]) == b"@r1\nACGT\n+\nIIII\n"
    assert sync.run_once().uploaded == []  # in the ledger now


def test_marker_mode_uploads_a_run_folder_only_once_its_marker_is_there(tmp_path: Path) -> None:
    watch, clock = tmp_path / "instrument", Clock()
    run = watch / "260101_M00001_0001" / "Data"
    run.mkdir(parents=True)
    (run / "S1_R1.fastq.gz").write_bytes(b"reads")
    (watch / "260101_M00001_0001" / "RunInfo.xml").write_text("<RunInfo/>")
    store = LocalObjectStore(tmp_path / "store")
    sync = agent(watch, store, tmp_path / "ledger.sqlite", clock, markers=("CopyComplete.txt",))
    clock.now += 3600

    assert sync.run_once().uploaded == [] and landing_keys(store) == []

    (watch / "260101_M00001_0001" / "CopyComplete.txt").write_text("")
    report = sync.run_once()

    assert sorted(key.path for key in report.uploaded) == [
        "EXP-1/260101_M00001_0001/CopyComplete.txt",
        "EXP-1/260101_M00001_0001/Data/S1_R1.fastq.gz",
        "EXP-1/260101_M00001_0001/RunInfo.xml",
    ]


def test_a_killed_agent_restarts_and_leaves_each_file_exactly_once(tmp_path: Path) -> None:
    watch, clock = tmp_path / "instrument", Clock()
    watch.mkdir()
    for number in range(6):
        (watch / f"S{number}.fastq").write_bytes(f"@r\n{'ACGT' * (number + 1)}\n".encode())
    dying = CountingStore(tmp_path / "store", die_after=3)
    with pytest.raises(KeyboardInterrupt):
        agent(watch, dying, tmp_path / "ledger.sqlite", clock, quiet_seconds=0, workers=1).run_once()
    assert len(dying.puts) == 3

    restarted = CountingStore(tmp_path / "store")
    report = agent(watch, restarted, tmp_path / "ledger.sqlite", clock, quiet_seconds=0, workers=2).run_once()

    assert landing_keys(restarted) == [f"EXP-1/S{number}.fastq" for number in range(6)]
    # The third file reached the store just before the kill: it is recognised, not sent again.
    assert sorted(restarted.puts) == sorted(
        f"EXP-1/S{n}.fastq" for n in range(6) if f"EXP-1/S{n}.fastq" not in dying.puts
    )
    assert [key.path for key in report.already_there] == [dying.puts[-1]]
    assert Ledger(tmp_path / "ledger.sqlite").count() == 6


def test_a_layout_places_files_by_experiment_and_reports_what_it_cannot(tmp_path: Path) -> None:
    watch, clock = tmp_path / "instrument", Clock()
    (watch / "EXP-7" / "run1").mkdir(parents=True)
    (watch / "EXP-7" / "run1" / "S1.fastq").write_bytes(b"x")
    (watch / "stray.txt").write_bytes(b"y")
    (watch / "bad id").mkdir()
    (watch / "bad id" / "z.txt").write_bytes(b"z")
    store = LocalObjectStore(tmp_path / "store")
    sync = agent(watch, store, tmp_path / "l.sqlite", clock, Layout(pattern="{experiment}/{path}"), quiet_seconds=0)

    report = sync.run_once()

    assert [key.path for key in report.uploaded] == ["EXP-7/run1/S1.fastq"]
    assert sorted(report.unplaced) == ["bad id/z.txt", "stray.txt"]
    with pytest.raises(LayoutError):
        Layout(pattern="{experiment}")


def test_the_agent_uploads_to_s3_and_verifies_by_checksum(
    tmp_path: Path, s3_buckets: dict[str, str], moto_endpoint: str
) -> None:
    watch, clock = tmp_path / "instrument", Clock()
    watch.mkdir()
    (watch / "S1 R1+%.fastq").write_bytes(b"@r\nACGT\n+\nIIII\n" * 1000)
    store = S3ObjectStore(make_client("s3", endpoint_url=moto_endpoint, region_name="us-east-1"), s3_buckets)

    report = agent(watch, store, tmp_path / "ledger.sqlite", clock, quiet_seconds=0).run_once()

    assert [key.path for key in report.uploaded] == ["EXP-1/S1 R1+%.fastq"]
    assert store.read_bytes(report.uploaded[0]) == (watch / "S1 R1+%.fastq").read_bytes()


def test_a_large_file_goes_up_in_parallel_parts_and_is_verified_without_reading_it_back(
    tmp_path: Path, s3_buckets: dict[str, str], moto_endpoint: str
) -> None:
    """Multipart with a full-object CRC64NVME: the HEAD after the upload verifies every byte of every part."""
    watch, clock = tmp_path / "instrument", Clock()
    watch.mkdir()
    data = bytes(range(256)) * (12 * MIB // 256)
    (watch / "run.bam").write_bytes(data)
    client = CountingClient(make_client("s3", endpoint_url=moto_endpoint, region_name="us-east-1"))
    store = S3ObjectStore(client, s3_buckets, upload_part_size=5 * MIB)

    report = agent(watch, store, tmp_path / "ledger.sqlite", clock, quiet_seconds=0).run_once()

    [key] = report.uploaded
    assert store.stat(key).etag.endswith("-3")
    assert store.checksum(key) == file_checksums(watch / "run.bam")[CRC64NVME]
    assert "get_object" not in client.calls
    assert store.read_bytes(key) == data


def test_files_a_layout_maps_to_one_key_are_refused_not_overwritten(tmp_path: Path) -> None:
    watch, clock = tmp_path / "instrument", Clock()
    for run in ("EXP-1_A", "EXP-1_B"):
        (watch / "runs" / run).mkdir(parents=True)
        (watch / "runs" / run / "x.fastq").write_bytes(run.encode())
    store = LocalObjectStore(tmp_path / "store")
    sync = agent(
        watch, store, tmp_path / "l.sqlite", clock, Layout(pattern="runs/{experiment}_{ignore}/{path}"), quiet_seconds=0
    )

    report = sync.run_once()

    assert report.uploaded == [] and landing_keys(store) == []
    assert sorted(path for path, _ in report.failed) == ["runs/EXP-1_A/x.fastq", "runs/EXP-1_B/x.fastq"]
    assert "refine the layout" in report.failed[0][1]
