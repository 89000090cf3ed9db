"""Benchmark: eLabFTW and Benchling intake cost what changed, not how many experiments the lab holds.

For each API ELN, a fake server (the tests' in-process eLabFTW and Benchling,
`labmesh_dagster_tests/eln/`) holding 1,000, 10,000 and 100,000 entries, a
catalog holding every one of them (`eln_scale.fill_catalog`) and a Dagster
instance holding their partitions, as after a steady state. Side by side,
several rounds, each size in turn (the order alternating, so drift on a busy
machine falls on all), it times through the real `eln_sensor`, with the
connector the resource opens each tick:

- an unchanged tick (the poll cursor at the end);
- a tick after one new entry appears (one run request): for eLabFTW found by
  the ``lastchange`` listing, for Benchling announced by a webhook in the inbox
  and found again in the List Events feed;
- a tick after 10 entries are edited (10 run requests), the same way;
- a registration run's fetch of one entry, from a fresh connector told where
  the sensor read it (the run's source tag), as `register_experiment` does.

The fake servers answer in the benchmark's own process, so their work is part
of each figure; they keep the listing by last change (eLabFTW) and the events
by id (Benchling), as the real services' databases do, so that a tick's first
page costs a page. Unhinted lookups are not timed: eLabFTW's extended search
is the server's own query (the fake scans), and an experiment id held in a
Benchling schema field cannot be searched, so Benchling lists every entry
then (the last resort the source hint spares).

It prints medians and p95 per size, in wall time and in this process's CPU
time (the fake server's thread included; steadier than wall time on a busy
machine), the requests each measure sent to the ELN, and the ratios 10k/1k and
100k/10k. Goal (issue 17): every tick O(changes), a ratio near 1 for a 10x
larger lab, and the same requests at every size.

The catalogs are filled once under ``--work-dir`` and copied for each run (the
fake servers and Dagster instances are built each run, in memory and in
temporary folders). The catalog's records are eln_scale's, under the same
experiment ids as the entries; their content differs from what the connectors
map, which no measured tick compares except for the entries it reads.

Run: .venv/bin/python benchmarks/eln_api_scale.py [--sizes 1000,10000,100000] [--rounds 15]
     [--eln elabftw,benchling] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
from pytest_httpserver import HTTPServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from eln_scale import experiment_id, fill_catalog, p95, print_ratios  # noqa: E402

from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog  # noqa: E402
from labmesh_dagster.connectors.eln import benchling, elabftw  # noqa: E402
from labmesh_dagster.connectors.eln.base import ElnEvent, ElnSource  # noqa: E402
from labmesh_dagster.defs.experiment_assets import ELN_SOURCE_TAG  # noqa: E402
from labmesh_dagster.defs.partitions import EXPERIMENTS  # noqa: E402
from labmesh_dagster.defs.resources import (  # noqa: E402
    BenchlingElnResource,
    ElabFtwElnResource,
    ElnResource,
    RegistryCatalogResource,
    SqliteInboxResource,
)
from labmesh_dagster.defs.sensors.eln import eln_sensor  # noqa: E402
from labmesh_dagster.ports import open_sqlite_inbox  # noqa: E402
from labmesh_dagster.steps.intake import ElnCursor  # noqa: E402
from labmesh_dagster.steps.registration import FindsEntriesBySource  # noqa: E402
from labmesh_dagster_tests.eln.benchling_server import API_KEY as BENCHLING_KEY  # noqa: E402
from labmesh_dagster_tests.eln.benchling_server import FakeBenchling, text_field  # noqa: E402
from labmesh_dagster_tests.eln.elabftw_server import API_KEY as ELABFTW_KEY  # noqa: E402
from labmesh_dagster_tests.eln.elabftw_server import TIME_FORMAT, FakeElabFtw  # noqa: E402

METRICS = {
    "unchanged": "unchanged tick",
    "new": "tick, one new entry",
    "edit10": "tick, 10 edited entries",
    "fetch": "fetch of one entry (source hint)",
}


@dataclass
class Timing:
    """Seconds elapsed, and seconds of this process's CPU (the fake server's thread included)."""

    wall: float = 0.0
    cpu: float = 0.0


@contextmanager
def timing() -> Iterator[Timing]:
    took = Timing()
    wall, cpu = time.perf_counter(), time.process_time()
    yield took
    took.wall, took.cpu = time.perf_counter() - wall, time.process_time() - cpu


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "value": value}


def record_fields(number: int, name: str) -> dict[str, str]:
    """The fields of generated entry ``number``, the same in both ELNs; each wraps them in its own field format."""
    return {
        "Experiment ID": name,
        "Samples": f"S{number}-1, S{number}-2",
        "Instrument": "Illumina NovaSeq 6000",
        "Project": "Fibrosis atlas",
        "Group": f"Group {number % 7}",
    }


class ApiLab(ABC):
    """One API ELN of ``size`` entries: its fake server, a catalog and inbox, a Dagster instance, the cursor."""

    name = ""
    lab: FakeElabFtw | FakeBenchling  # the fake server, set by each ELN's class
    eln_resource: ElnResource

    def __init__(self, root: Path, size: int, catalog: Path, instance: dg.DagsterInstance) -> None:
        self.root = root
        self.size = size
        root.mkdir(parents=True)
        shutil.copyfile(catalog, root / "catalog.sqlite")
        self.catalog_resource = RegistryCatalogResource(path=str(root / "catalog.sqlite"))
        self.inbox_resource = SqliteInboxResource(path=str(root / "inbox.sqlite"))
        self.instance = instance
        self.server = HTTPServer(threaded=True)
        self.server.start()
        self.cursor: str | None = None
        self.added = 0

    @abstractmethod
    def fill(self) -> None:
        """``size`` entries in the fake server, numbered as eln_scale's experiments."""

    @abstractmethod
    def end_cursor(self) -> str:
        """The connector's poll cursor after the entries filled (the steady state's, but for the last ticks)."""

    @abstractmethod
    def add_entry(self, tag: str) -> None: ...

    @abstractmethod
    def edit_entries(self, count: int, round_number: int) -> None: ...

    @abstractmethod
    def source_of(self, number: int) -> str:
        """Where the sensor read experiment ``number``'s record: the source tag of its run."""

    def build(self) -> None:
        started = time.perf_counter()
        self.fill()
        print(f"  {self.name} {self.size:>7}: {self.size} entries in {time.perf_counter() - started:.1f} s", flush=True)
        self.cursor = ElnCursor(poll=self.end_cursor()).to_json()

    def tick(self) -> tuple[Timing, dg.SensorResult]:
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor)
        with timing() as took:
            result = eln_sensor(
                context, eln=self.eln_resource, catalog=self.catalog_resource, eln_inbox=self.inbox_resource
            )
        self.cursor = result.cursor
        return took, result

    def settle(self) -> list[float]:
        """Ticks (each caught up) until one finds nothing changed."""
        ticks = []
        while True:
            took, result = self.tick()
            ticks.append(took.wall)
            self.catch_up(result)
            if result.skip_reason and "no ELN record changed" in str(result.skip_reason):
                return ticks

    def catch_up(self, result: dg.SensorResult) -> None:
        """What Dagster and the requested runs do (untimed): partitions added, records in the catalog."""
        for request in result.dynamic_partitions_requests or []:
            if isinstance(request, dg.AddDynamicPartitionsRequest):
                self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        if not result.run_requests:
            return
        registry, eln = SqliteCatalog(Path(self.catalog_resource.path)), self.eln_resource.get_eln()
        for run in result.run_requests:
            name = str(run.partition_key)
            if isinstance(eln, FindsEntriesBySource) and ELN_SOURCE_TAG in run.tags:
                eln.remember(name, run.tags[ELN_SOURCE_TAG])
            registry.upsert_experiment(eln.fetch(name), registry.experiment_locations(name))

    def fetch(self, round_number: int) -> Timing:
        number = (round_number * 7919) % self.size
        eln: ElnSource = self.eln_resource.get_eln()
        assert isinstance(eln, FindsEntriesBySource)
        with timing() as took:
            eln.remember(experiment_id(number), self.source_of(number))
            record = eln.fetch(experiment_id(number))
        assert record.id == experiment_id(number), record.id
        return took

    def requests_served(self) -> int:
        return len(self.lab.requests)

    def close(self) -> None:
        self.server.clear()
        self.server.stop()


class ElabFtwLab(ApiLab):
    """eLabFTW: entries a minute apart, polled by ``lastchange``; edits land within one second."""

    name = "eLabFTW"
    lab: FakeElabFtw

    def __init__(self, root: Path, size: int, catalog: Path, instance: dg.DagsterInstance) -> None:
        super().__init__(root, size, catalog, instance)
        self.lab = FakeElabFtw(self.server)
        self.eln_resource = ElabFtwElnResource(
            base_url=self.lab.url,
            api_key=ELABFTW_KEY,
            mapping_path=None,
            scope=elabftw.SCOPE_TEAM,
            verify_tls=True,  # the default: the process's shared TLS context, as Benchling's connector uses
            timeout_seconds=30.0,
        )

    def _add(self, number: int, name: str) -> int:
        return self.lab.add_experiment(
            f"Liver biopsy RNA-seq {number}",
            body=f"<p>Bulk RNA sequencing of two liver biopsies, batch {number // 100}.</p>",
            tags=["rna-seq"],
            extra_fields={field: text(value) for field, value in record_fields(number, name).items()},
        )

    def fill(self) -> None:
        for number in range(self.size):
            self.lab.tick(60)
            self._add(number, experiment_id(number))

    def end_cursor(self) -> str:
        # The newest second with no entry seen at it: the first tick reads that second's entry, then settles.
        return elabftw.PollCursor(elabftw.change_key(self.lab.clock.strftime(TIME_FORMAT))).to_json()

    def add_entry(self, tag: str) -> None:
        self.lab.tick(1)
        number = 10_000_000 + self.added
        self.added += 1
        self._add(number, f"NEW-{tag}-{number}")

    def edit_entries(self, count: int, round_number: int) -> None:
        self.lab.tick(1)
        step = max(1, self.size // count)
        for index in range(count):
            number = (index * step + round_number) % self.size
            self.lab.set_extra(number + 1, "Samples", f"S{number}-1, S{number}-2, S{number}-{round_number + 3}")

    def source_of(self, number: int) -> str:
        return f"{self.lab.url}/experiments.php?mode=view&id={number + 1}"


class BenchlingLab(ApiLab):
    """Benchling: each change announced by a webhook (into the inbox) and in the List Events feed."""

    name = "Benchling"
    lab: FakeBenchling

    def __init__(self, root: Path, size: int, catalog: Path, instance: dg.DagsterInstance) -> None:
        super().__init__(root, size, catalog, instance)
        # Each event type's first event is checked against Benchling's schema: all 100,000 would take ten minutes.
        self.lab = FakeBenchling(self.server, check_every_event=False)
        self.inbox = open_sqlite_inbox(self.inbox_resource.path)
        self.eln_resource = BenchlingElnResource(
            base_url=self.lab.url,
            api_key=BENCHLING_KEY,
            location_field=benchling.DEFAULT_LOCATION_FIELD,
            schema_id=None,
            mapping_path=None,
            timeout_seconds=30.0,
        )

    def _add(self, number: int, name: str) -> str:
        return self.lab.add_entry(
            f"Liver biopsy RNA-seq {number}",
            {field: text_field(value) for field, value in record_fields(number, name).items()},
        )

    def fill(self) -> None:
        for number in range(self.size):
            self._add(number, experiment_id(number))

    def end_cursor(self) -> str:
        return benchling.PollCursor(after=self.lab.events[-1]["id"]).to_json()

    def webhook(self, entry_id: str) -> None:
        event_id = self.lab.events[-1]["id"]
        now = datetime.now(UTC).isoformat()
        assert self.inbox.put(ElnEvent("benchling", f"bench-{os.getpid()}-{event_id}", entry_id, "changed", now))

    def add_entry(self, tag: str) -> None:
        number = 10_000_000 + self.added
        self.added += 1
        self.webhook(self._add(number, f"NEW-{tag}-{number}"))

    def edit_entries(self, count: int, round_number: int) -> None:
        step = max(1, self.size // count)
        for index in range(count):
            number = (index * step + round_number) % self.size
            entry_id = f"etr_{number + 1:06d}"
            self.lab.set_field(entry_id, "Samples", f"S{number}-1, S{number}-2, S{number}-{round_number + 3}")
            self.webhook(entry_id)

    def source_of(self, number: int) -> str:
        return str(self.lab.entries[f"etr_{number + 1:06d}"]["webURL"])


LABS: dict[str, type[ApiLab]] = {"elabftw": ElabFtwLab, "benchling": BenchlingLab}


def catalog_template(work: Path, size: int, indexed_max: int) -> Path:
    """The filled catalog of ``size`` experiments, built once under ``work`` and copied by each lab."""
    path = work / f"catalog-{size}.sqlite"
    if not path.exists():
        started = time.perf_counter()
        work.mkdir(parents=True, exist_ok=True)
        partial = work / f"catalog-{size}.partial.sqlite"
        partial.unlink(missing_ok=True)
        SqliteCatalog(partial)
        fill_catalog(partial, size, indexed_max)
        partial.rename(path)
        print(f"  catalog of {size:>7}: filled in {time.perf_counter() - started:.1f} s", flush=True)
    return path


@dataclass
class Figures:
    """Per size and measure: wall and CPU seconds, and the requests the ELN served, one per round."""

    sizes: list[int]
    wall: dict[int, dict[str, list[float]]] = field(default_factory=dict)
    cpu: dict[int, dict[str, list[float]]] = field(default_factory=dict)
    requests: dict[int, dict[str, list[float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for table in (self.wall, self.cpu, self.requests):
            table.update({size: {metric: [] for metric in METRICS} for size in self.sizes})

    def add(self, size: int, metric: str, took: Timing, served: int) -> None:
        self.wall[size][metric].append(took.wall)
        self.cpu[size][metric].append(took.cpu)
        self.requests[size][metric].append(served)


def one_round(lab: ApiLab, figures: Figures, tag: str, round_number: int) -> None:
    """The three ticks and the fetch, each counted in requests to the fake server; the ticks caught up after."""

    def tick(metric: str, expected: int) -> None:
        before = lab.requests_served()
        took, result = lab.tick()
        figures.add(lab.size, metric, took, lab.requests_served() - before)
        requested = len(result.run_requests or [])
        assert requested == expected, f"{lab.name} {metric}: {requested} run request(s), not {expected}"
        lab.catch_up(result)

    tick("unchanged", 0)
    lab.add_entry(f"{tag}-{round_number}")
    tick("new", 1)
    lab.edit_entries(10, round_number)
    tick("edit10", 10)
    before = lab.requests_served()
    took = lab.fetch(round_number)
    figures.add(lab.size, "fetch", took, lab.requests_served() - before)


def measure(kind: str, sizes: list[int], rounds: int, work: Path, indexed_max: int, scratch: Path) -> None:
    figures = Figures(sizes)
    tag = f"{os.getpid()}"
    with ExitStack() as stack:
        labs: dict[int, ApiLab] = {}
        for size in sizes:
            instance = stack.enter_context(dg.instance_for_test())
            started = time.perf_counter()
            instance.add_dynamic_partitions(EXPERIMENTS, [experiment_id(n) for n in range(size)])
            print(f"  Dagster {size:>7}: partitions added in {time.perf_counter() - started:.1f} s", flush=True)
            lab = LABS[kind](scratch / f"{kind}-{size}", size, catalog_template(work, size, indexed_max), instance)
            stack.callback(lab.close)
            lab.build()
            ticks = lab.settle()
            print(f"  {lab.name} {size:>7}: settled in {len(ticks)} tick(s), longest {max(ticks):.2f} s", flush=True)
            labs[size] = lab
        for round_number in range(rounds):
            for size in sizes if round_number % 2 == 0 else list(reversed(sizes)):
                one_round(labs[size], figures, tag, round_number)
            print(f"  {kind} round {round_number + 1}/{rounds} done", flush=True)
    name = LABS[kind].name
    report(f"{name}: wall, median ms (p95)", sizes, figures.wall, figures.requests)
    report(f"{name}: CPU, median ms (p95)", sizes, figures.cpu, figures.requests)


def report(
    title: str, sizes: list[int], times: dict[int, dict[str, list[float]]], requests: dict[int, dict[str, list[float]]]
) -> None:
    print()
    print(f"{title:<40}" + "".join(f"{size:>20,}" for size in sizes) + "   requests to the ELN")
    for metric, label in METRICS.items():
        cells = "".join(
            f"{statistics.median(times[s][metric]) * 1000:>11.1f} ({p95(times[s][metric]) * 1000:>6.1f})" for s in sizes
        )
        served = "/".join(str(int(max(requests[s][metric]))) for s in sizes)
        print(f"{label:<40}{cells}   {served}")

    print_ratios(sizes, times, METRICS)
    print()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--eln", default="elabftw,benchling", help="the ELNs to measure, in turn")
    parser.add_argument("--work-dir", default=str(Path(tempfile.gettempdir()) / "labmesh-eln-api-scale"))
    parser.add_argument("--indexed-max", type=int, default=10_000)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    kinds = [kind.strip() for kind in args.eln.split(",") if kind.strip()]
    unknown = sorted(set(kinds) - set(LABS))
    if unknown:
        parser.error(f"unknown ELN(s) {', '.join(unknown)}: choose from {', '.join(LABS)}")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the fake servers' access log
    work = Path(args.work_dir)
    print(f"catalogs under {work} (filled once, reused); {os.cpu_count()} CPUs, load {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="eln-api-scale-") as scratch:
        for kind in kinds:
            measure(kind, sizes, args.rounds, work, args.indexed_max, Path(scratch))
    print(f"load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
