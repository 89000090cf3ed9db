"""Benchmark: ELN intake and experiment registration cost what changed, not how many experiments the lab holds.

Folder ELNs (the local profile) of 1,000, 10,000 and 100,000 experiments, one
YAML record file each, with a catalog holding every one of them. Side by side,
several rounds, each size in turn (the order alternating, so drift on a busy
machine falls on all), it times:

- an unchanged tick of `eln_sensor`;
- a tick after one new record file appears (one run request);
- registering that experiment: the `experiment` asset's step functions
  (catalog read, pending record, `register_experiment` with the folder ELN,
  the local store and the SQLite catalog, access follow-up), without Dagster;
- a tick after 10 record files are edited (10 run requests);
- fetching one record from a fresh folder ELN connector;
- the same unchanged and one-new-record ticks with the folder listed (the
  fallback when no watch vouches for the folder: ``LABMESH_ELN_WATCH=off``,
  a first poll in a process, a lost event queue, the reconciliation).

It prints medians and p95 per size, and the ratios 10k/1k and 100k/10k.
Goals (issue 17): registration at 10,000 <= 1.5x its cost at 1,000; every tick
O(changes). The ticks follow the kernel's change feed (`folder_watch`), so
they need not list the folder; the listing (a ``stat`` per file, nothing read)
grows with the folder, and is printed on its own lines for comparison. The
watched resource's reconciliation listing is put off past the run, so that
every watched tick is one.

Labs are generated once under ``--work-dir`` and reused by later runs (the
first tick after a reuse reads only what the last run left changed). The
catalog is filled through `SqliteCatalog.upsert_experiment` in one
transaction up to ``--indexed-max`` experiments; past it, the remaining rows go
straight into its experiments table (what the sensor and registration read),
without the search index, which would take minutes to fill and is not on
either path.

Run: .venv/bin/python benchmarks/eln_scale.py [--sizes 1000,10000,100000] [--rounds 5] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog  # noqa: E402
from labmesh_dagster.connectors.eln.folder import read_record_file  # noqa: E402
from labmesh_dagster.core.experiment import record_from_mapping  # noqa: E402
from labmesh_dagster.defs.resources import (  # noqa: E402
    FolderElnResource,
    RegistryCatalogResource,
    SqliteInboxResource,
)
from labmesh_dagster.defs.sensors.eln import eln_sensor  # noqa: E402
from labmesh_dagster.ports import Ports  # noqa: E402
from labmesh_dagster.settings import Settings  # noqa: E402
from labmesh_dagster.steps.content_access import follow_registration  # noqa: E402
from labmesh_dagster.steps.registration import register_experiment  # noqa: E402
from labmesh_dagster.steps.unfinished_work import begin, finish  # noqa: E402

RECORD = """id: {id}
title: Liver biopsy RNA-seq {n}{edit}
description: Bulk RNA sequencing of two liver biopsies to compare fibrosis markers, batch {batch}.
owner: Ada Example
group: Group {group}
project: Fibrosis atlas
samples:
- id: S{n}-1
  tissue: liver
- id: S{n}-2
  tissue: liver
platform: Illumina NovaSeq 6000
protocol: TruSeq stranded mRNA
created: '2026-11-02'
tags:
- rna-seq
custom_fields:
  read_length: 100
  paired_end: true
"""


def record_text(number: int, edit: str = "") -> str:
    return RECORD.format(id=experiment_id(number), n=number, edit=edit, batch=number // 100, group=number % 7)


def experiment_id(number: int) -> str:
    return f"EXP-{number:06}"


class Lab:
    """One local-profile home: a records folder, a catalog, an inbox, and the sensor's cursor."""

    def __init__(self, root: Path, size: int) -> None:
        self.root = root
        self.size = size
        self.settings = Settings.from_env({"LABMESH_HOME": str(root / "home")})
        self.ports = Ports(self.settings)
        self.eln_resource = FolderElnResource(
            records_dir=str(self.settings.eln_dir),
            outbox_dir=str(self.settings.eln_outbox_dir),
            reconcile_seconds=1e9,
        )
        # The same folder and index, listed each tick: the fallback's cost.
        self.listing_resource = FolderElnResource(
            records_dir=str(self.settings.eln_dir), outbox_dir=str(self.settings.eln_outbox_dir), watch="off"
        )
        self.catalog_resource = RegistryCatalogResource(path=str(self.settings.catalog_path))
        self.inbox_resource = SqliteInboxResource(path=str(root / "home" / "bench-inbox.sqlite"))
        self.cursor_file = root / "cursor.json"
        self.cursor: str | None = None
        self.added: list[Path] = []

    def build(self, indexed_max: int) -> None:
        """Records and catalog, once: a later run finds them built and reuses them."""
        built = self.root / "built"
        if built.exists():
            return
        folder = self.settings.eln_dir
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        for number in range(self.size):
            (folder / f"{experiment_id(number)}.yaml").write_text(record_text(number), encoding="utf-8")
        print(f"  {self.size:>7}: {self.size} record files in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        fill_catalog(self.settings.catalog_path, self.size, indexed_max)
        print(f"  {self.size:>7}: catalog filled in {time.perf_counter() - started:.1f} s", flush=True)
        built.write_text("built\n", encoding="utf-8")

    def tick(self, instance: dg.DagsterInstance, *, listed: bool = False) -> tuple[float, int]:
        elapsed, result = self.evaluate(instance, listed=listed)
        return elapsed, len(result.run_requests or [])

    def evaluate(self, instance: dg.DagsterInstance, *, listed: bool = False) -> tuple[float, dg.SensorResult]:
        context = dg.build_sensor_context(instance=instance, cursor=self.cursor)
        eln = self.listing_resource if listed else self.eln_resource
        started = time.perf_counter()
        result = eln_sensor(context, eln=eln, catalog=self.catalog_resource, eln_inbox=self.inbox_resource)
        elapsed = time.perf_counter() - started
        self.cursor = result.cursor
        return elapsed, result

    def save_cursor(self) -> None:
        """Kept for the next run only once this one finished: a run that failed part way leaves the catalog
        behind the folder, and the next run's first ticks, from the last good cursor, catch it up."""
        self.cursor_file.write_text(json.dumps({"cursor": self.cursor}), encoding="utf-8")

    def settle(self, instance: dg.DagsterInstance) -> list[float]:
        """Ticks until one finds nothing changed: a whole folder is read over several ticks when it is large."""
        ticks = []
        while True:
            elapsed, result = self.evaluate(instance)
            ticks.append(elapsed)
            self.catch_up(str(request.partition_key) for request in result.run_requests or [])
            if result.skip_reason and "no ELN record changed" in str(result.skip_reason):
                return ticks

    def load_cursor(self) -> None:
        if self.cursor_file.exists():
            self.cursor = json.loads(self.cursor_file.read_text(encoding="utf-8"))["cursor"]

    def add_record(self, tag: str) -> str:
        number = 10_000_000 + len(self.added)
        name = f"NEW-{tag}-{number}"
        path = self.settings.eln_dir / f"{name}.yaml"
        path.write_text(record_text(number).replace(experiment_id(number), name), encoding="utf-8")
        self.added.append(path)
        return name

    def edit_records(self, count: int, round_number: int) -> list[int]:
        step = max(1, self.size // count)
        numbers = []
        for index in range(count):
            number = (index * step + round_number) % self.size
            path = self.settings.eln_dir / f"{experiment_id(number)}.yaml"
            before = path.stat().st_mtime_ns
            path.write_text(record_text(number, edit=f" (edit {round_number}-{time.time_ns()})"), encoding="utf-8")
            # A later save on a filesystem clock coarser than this loop still moves the time.
            os.utime(path, ns=(before, max(path.stat().st_mtime_ns, before + 1_000)))
            numbers.append(number)
        return numbers

    def catch_up(self, experiment_ids: Iterable[str]) -> None:
        """What the requested runs do to the catalog (untimed), so the next round starts level."""
        registry = self.ports.registry()
        for name in experiment_ids:
            path = self.settings.eln_dir / f"{name}.yaml"
            if path.exists():
                registry.upsert_experiment(read_record_file(path)[0][0], registry.experiment_locations(name))

    def register(self, name: str) -> float:
        """The `experiment` asset's work for one partition, as its step functions do it (no Dagster around it)."""
        objects, registry, index = self.ports.store(), self.ports.registry(), self.ports.content_index()
        eln = self.ports.eln()
        started = time.perf_counter()
        registry.get_experiment(name)  # what the lineage START names
        begin(objects, "experiment", name, "bench-run", self.ports.clock())
        before = registry.principals(name)
        register_experiment(eln, objects, registry, name, run_id="bench-run")
        follow_registration(registry, index, objects, name, before)
        finish(objects, "experiment", name)
        return time.perf_counter() - started

    def fetch(self, round_number: int) -> float:
        eln = self.ports.eln()
        number = (round_number * 7919) % self.size
        started = time.perf_counter()
        record = eln.fetch(experiment_id(number))
        elapsed = time.perf_counter() - started
        assert record.id == experiment_id(number)
        return elapsed

    def listing(self) -> float:
        """A walk of the records folder with a ``stat`` per file: what any tick of a folder ELN pays."""
        started = time.perf_counter()
        count = 0
        for _, _, files in os.walk(self.settings.eln_dir):
            for name in files:
                os.stat(os.path.join(self.settings.eln_dir, name))
                count += 1
        return time.perf_counter() - started

    def clean(self) -> None:
        """Take away this run's new record files, so the next run's lab has the same size."""
        for path in self.added:
            path.unlink(missing_ok=True)


def fill_catalog(path: Path, size: int, indexed_max: int) -> None:
    """``size`` experiments in the catalog: through `upsert_experiment` (one transaction) up to ``indexed_max``."""
    db = sqlite3.connect(path, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA foreign_keys=ON")

    class OneTransaction(SqliteCatalog):
        @contextmanager
        def _transaction(self) -> Iterator[sqlite3.Connection]:
            yield db

        @contextmanager
        def _connect(self) -> Iterator[sqlite3.Connection]:
            yield db

    catalog = OneTransaction(path)
    db.execute("BEGIN")
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for number in range(size):
        record = record_from_mapping(yaml.load(record_text(number), Loader=loader), source=f"bench {number}")
        locations = {"landing": f"file:///bench/landing/{record.id}/"}
        if number < indexed_max:
            catalog.upsert_experiment(record, locations)
        else:
            db.execute(
                "INSERT INTO experiments (experiment_id, title, group_name, platform, created, fingerprint, record, "
                "locations, revision, updated_at, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, '2026-12-06', NULL)",
                (
                    record.id,
                    record.title,
                    record.group,
                    record.platform,
                    record.created,
                    record.fingerprint,
                    json.dumps(record.to_dict(), sort_keys=True, default=str),
                    json.dumps(locations, sort_keys=True),
                ),
            )
    db.execute("COMMIT")
    db.close()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--work-dir", default=str(Path(tempfile.gettempdir()) / "labmesh-eln-scale"))
    parser.add_argument("--indexed-max", type=int, default=10_000)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    work = Path(args.work_dir)
    labs = {size: Lab(work / str(size), size) for size in sizes}
    print(f"labs under {work} (built once, reused) ...", flush=True)
    for lab in labs.values():
        lab.build(args.indexed_max)
    metrics = ("listing", "unchanged", "new", "register", "edit10", "fetch", "unchanged_listed", "new_listed")
    times: dict[int, dict[str, list[float]]] = {size: {m: [] for m in metrics} for size in sizes}
    tag = f"{os.getpid()}"
    with dg.instance_for_test() as instance:
        for size, lab in labs.items():
            lab.load_cursor()
            ticks = lab.settle(instance)
            print(
                f"  {size:>7}: {len(ticks) - 1} tick(s) to read what changed since the saved cursor (all of it on a "
                f"first run), longest {max(ticks):.2f} s, then one unchanged tick",
                flush=True,
            )
        try:
            for round_number in range(args.rounds):
                order = sizes if round_number % 2 == 0 else list(reversed(sizes))
                for size in order:
                    lab, got = labs[size], times[size]
                    got["listing"].append(lab.listing())
                    elapsed, requested = lab.tick(instance)
                    assert requested == 0, f"an unchanged tick requested {requested} run(s)"
                    got["unchanged"].append(elapsed)
                    name = lab.add_record(f"{tag}-{round_number}")
                    elapsed, requested = lab.tick(instance)
                    assert requested == 1, f"one new record, {requested} run request(s)"
                    got["new"].append(elapsed)
                    got["register"].append(lab.register(name))
                    edited = lab.edit_records(10, round_number)
                    elapsed, requested = lab.tick(instance)
                    assert requested == 10, f"ten edited records, {requested} run request(s)"
                    got["edit10"].append(elapsed)
                    lab.catch_up(experiment_id(number) for number in edited)
                    got["fetch"].append(lab.fetch(round_number))
                    # The fallback: the same two ticks, listing the folder.
                    elapsed, requested = lab.tick(instance, listed=True)
                    assert requested == 0, f"an unchanged listed tick requested {requested} run(s)"
                    got["unchanged_listed"].append(elapsed)
                    lab.add_record(f"{tag}-{round_number}-listed")
                    elapsed, requested = lab.tick(instance, listed=True)
                    assert requested == 1, f"one new record (listed), {requested} run request(s)"
                    got["new_listed"].append(elapsed)
                    # The watch did not hand out the listed ticks' cursor: its next tick lists once (untimed).
                    lab.settle(instance)
                print(f"  round {round_number + 1}/{args.rounds} done", flush=True)
            for lab in labs.values():
                lab.clean()
                lab.settle(instance)
                lab.save_cursor()
        finally:
            for lab in labs.values():
                lab.clean()
    report(sizes, times)


def ratio(times: dict[int, dict[str, list[float]]], metric: str, larger: int, smaller: int) -> float:
    return statistics.median(times[larger][metric]) / statistics.median(times[smaller][metric])


def print_ratios(sizes: list[int], times: dict[int, dict[str, list[float]]], labels: dict[str, str]) -> None:
    """The ratio of each metric's medians between each size and the next smaller one: O(changes) is about 1."""
    pairs = [(larger, smaller) for smaller, larger in zip(sizes, sizes[1:], strict=False)]
    print(f"{'ratio of medians':<40}" + "".join(f"{f'{a:,}/{b:,}':>20}" for a, b in pairs))
    for metric, label in labels.items():
        print(f"{label:<40}" + "".join(f"{ratio(times, metric, a, b):>20.2f}" for a, b in pairs))


def report(sizes: list[int], times: dict[int, dict[str, list[float]]]) -> None:
    names = {
        "listing": "folder listing alone (stat per file)",
        "unchanged": "unchanged tick, watched",
        "new": "tick, one new record, watched",
        "register": "registration of one experiment",
        "edit10": "tick, 10 edited records",
        "fetch": "fetch of one record",
        "unchanged_listed": "unchanged tick, folder listed",
        "new_listed": "tick, one new record, folder listed",
    }
    print()
    print(f"{'median ms (p95)':<40}" + "".join(f"{size:>20,}" for size in sizes))
    for metric, label in names.items():
        cells = "".join(
            f"{statistics.median(times[s][metric]) * 1000:>11.1f} ({p95(times[s][metric]) * 1000:>6.1f})" for s in sizes
        )
        print(f"{label:<40}{cells}")
    print()

    print_ratios(sizes, times, names)
    if 1000 in sizes and 10_000 in sizes:
        print(f"\nregistration 10,000/1,000: {ratio(times, 'register', 10_000, 1000):.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
