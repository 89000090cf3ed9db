"""The ``labmesh`` command: run the platform, search the catalog, see what is where."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path

from dotenv import dotenv_values

from labmesh_dagster.connectors.catalog.base import Catalog, ExperimentSummary, SearchQuery
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.errors import LabmeshError
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.text import clean_text, human_size
from labmesh_dagster.settings import Settings
from labmesh_dagster.steps.landing import list_quarantine

DAGSTER_YAML = """\
# Written by `labmesh dev`. Dagster's own storage is SQLite under this folder.
telemetry:
  enabled: false
# A run that fails (a locked file, a transient error) is retried twice before it is left for a person.
run_retries:
  enabled: true
  max_retries: 2
run_queue:
  max_concurrent_runs: 4
  # One run at a time per experiment partition, so two runs never build the same manifest at once.
  tag_concurrency_limits:
    - key: "dagster/partition"
      value:
        applyLimitPerUniqueValue: true
      limit: 1
"""


def prepare_home(settings: Settings) -> None:
    """Create the home folders and Dagster's instance configuration (kept if the user changed it)."""
    for folder in (settings.home, settings.eln_dir, settings.store_dir, settings.dagster_home):
        folder.mkdir(parents=True, exist_ok=True)
    for zone in Zone:
        (settings.store_dir / zone.value).mkdir(exist_ok=True)
    config = settings.dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")


def command_dev(settings: Settings, args: argparse.Namespace) -> int:
    from labmesh_dagster import demo

    seed = settings.demo and demo.home_is_empty(settings)
    prepare_home(settings)
    if seed:
        for path in demo.seed_demo(settings):
            print(f"labmesh demo: wrote ELN record {path}", file=sys.stderr)
    env = {
        **os.environ,
        "LABMESH_HOME": str(settings.home),
        "DAGSTER_HOME": str(settings.dagster_home),
    }
    if seed:
        # The dropper outlives nothing: it stops when the process it was started from (dagster dev) exits.
        subprocess.Popen([sys.executable, "-m", "labmesh_dagster.demo"], env=env, stdin=subprocess.DEVNULL)
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or shutil.which("dagster")
    if dagster is None:
        print("labmesh: the `dagster` command is not installed in this environment", file=sys.stderr)
        return 1
    target = ["-w", "workspace.yaml"] if Path("workspace.yaml").is_file() else ["-m", "labmesh_dagster.definitions"]
    argv = [dagster, "dev", *target, "-h", args.host, "-p", str(args.port)]
    print(f"labmesh: starting {' '.join(argv[1:])} with LABMESH_HOME={settings.home}", file=sys.stderr, flush=True)
    # exec, not a child: Ctrl-C and SIGTERM reach dagster itself, which stops its webserver and daemon
    # cleanly. An inherited "ignore SIGINT/SIGTERM" (make in the background, nohup) would survive exec
    # and make dagster deaf to them, so both are set back to their defaults first.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    os.execve(dagster, argv, env)
    return 0  # not reached


def profile_store(settings: Settings) -> ObjectStore:
    """The store the profile selects (local folders, or the S3 buckets), built as Dagster builds it."""
    from labmesh_dagster.definitions import build_store_resource

    return build_store_resource(settings).get_store()


def profile_catalog(settings: Settings) -> Catalog:
    """The catalog the profile selects (SQLite, or DataZone in the aws profile), built as Dagster builds it."""
    from labmesh_dagster.definitions import build_catalog_resource

    return build_catalog_resource(settings).get_catalog()


def command_datazone_bootstrap(settings: Settings, args: argparse.Namespace) -> int:
    from labmesh_dagster.connectors.catalog.datazone import DataZoneCatalog

    catalog = profile_catalog(settings)
    if not isinstance(catalog, DataZoneCatalog):
        print(
            "labmesh: DataZone is not configured: set LABMESH_PROFILE=aws, LABMESH_DATAZONE_DOMAIN_ID and "
            "LABMESH_DATAZONE_PROJECT_ID",
            file=sys.stderr,
        )
        return 2
    report = catalog.bootstrap()
    print(f"form types: {', '.join(f'{name} (revision {rev})' for name, rev in sorted(report.form_types.items()))}")
    print(f"asset type: LabmeshAsset (revision {report.asset_type_revision})")
    print(f"glossary: {report.glossary_id}, {sum(len(terms) for terms in report.terms.values())} term(s)")
    print(f"created now: {', '.join(report.created) or 'nothing, everything was there'}")
    return 0


def command_search_content(settings: Settings, args: argparse.Namespace) -> int:
    """Search inside the files (the content index: SQLite FTS5 locally, Kendra in the aws profile)."""
    from labmesh_dagster.connectors.search.base import ContentFilter
    from labmesh_dagster.definitions import build_content_index_resource

    filters = ContentFilter(
        experiment_id=args.experiment,
        sample_id=args.sample,
        platform=args.platform,
        group=args.group,
        format=args.format,
        since=datetime.fromisoformat(args.since) if args.since else None,
        until=(datetime if "T" in args.until else date).fromisoformat(args.until) if args.until else None,
    )
    index = build_content_index_resource(settings).get_index()
    hits = index.search(" ".join(args.query), filters=filters, limit=args.limit)
    if args.json:
        print(json.dumps([asdict(hit) for hit in hits], indent=2, default=str))
        return 0 if hits else 1
    if not hits:
        print("no matching files")
        return 1
    for hit in hits:
        print(f"{hit.id}  {hit.title}")
        print(f"  {hit.uri}")
        if hit.excerpt:
            print(f"  {clean_text(hit.excerpt)}")
    return 0


def command_search(settings: Settings, args: argparse.Namespace) -> int:
    if args.content:
        return command_search_content(settings, args)
    query = SearchQuery(
        text=" ".join(args.query),
        experiment=args.experiment,
        sample=args.sample,
        group=args.group,
        platform=args.platform,
        format=args.format,
        file_name=args.file_name,
        since=args.since,
        until=args.until,
        limit=args.limit,
    )
    hits = profile_catalog(settings).search(query)
    if args.json:
        print(json.dumps([asdict(hit) for hit in hits], indent=2))
        return 0 if hits else 1
    if not hits:
        print("no matching datasets")
        return 1
    for hit in hits:
        label = hit.dataset or "experiment"
        print(f"{hit.experiment_id}  {label}  {hit.entry_id}  {hit.title}")
        if hit.location:
            print(f"  {hit.location}")
        for file in hit.files:
            samples = f"  samples: {', '.join(file.sample_ids)}" if file.sample_ids else ""
            print(f"  - {file.key}  {file.format}  {human_size(file.size)}{samples}")
    return 0


def command_api(settings: Settings, args: argparse.Namespace) -> int:
    """Serve `labmesh api` (ELN webhooks) with uvicorn until Ctrl-C."""
    import uvicorn

    from labmesh_dagster.api.app import create_app_from_settings
    from labmesh_dagster.definitions import build_inbox_resource

    if not settings.webhook_sources:
        print(
            "labmesh api: no webhook source configured; set LABMESH_WEBHOOK_<NAME>_SECRETS "
            "or LABMESH_WEBHOOK_<NAME>_BENCHLING_APP_DEFINITION_ID",
            file=sys.stderr,
        )
    app = create_app_from_settings(settings, build_inbox_resource(settings).get_inbox())
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


def command_extract(settings: Settings, args: argparse.Namespace) -> int:
    """Print what labmesh would record of each file: one JSON object per file; 1 if any file is bad."""
    from labmesh_dagster.extract.local_files import describe_files

    documents = describe_files(args.files, budget_seconds=args.budget_seconds)
    for document in documents:
        if not args.text:
            document.pop("text", None)
        print(json.dumps(document, indent=2 if args.pretty else None, ensure_ascii=False))
    if not documents:
        print("labmesh extract: no files found", file=sys.stderr)
        return 1
    return 1 if any("error" in document for document in documents) else 0


def command_lineage(settings: Settings, args: argparse.Namespace) -> int:
    from labmesh_dagster.connectors.lineage.sqlite import SqliteLineageLog
    from labmesh_dagster.core.ids import validate_experiment_id
    from labmesh_dagster.lineage.events import events_to_json_lines
    from labmesh_dagster.lineage.graph import build_graph, render_text

    experiment_id = validate_experiment_id(args.experiment)
    events = SqliteLineageLog(settings.catalog_path).events(experiment_id)
    if not events:
        print(f"no lineage recorded for {experiment_id} yet", file=sys.stderr)
        return 1
    if args.format == "openlineage":
        sys.stdout.write(events_to_json_lines(events))
    else:
        print(render_text(build_graph(events), experiment_id, file_limit=args.files))
    return 0


def _catalog_state(summary: ExperimentSummary | None) -> str:
    if summary is None:
        return "not registered"
    return f"rev {summary.revision}" + (", archived" if summary.archived else "")


def command_status(settings: Settings, args: argparse.Namespace) -> int:
    store = profile_store(settings)
    catalog = SqliteCatalog(settings.catalog_path)
    summaries = {summary.experiment_id: summary for summary in catalog.summaries()}
    counts: dict[str, dict[Zone, int]] = {}
    for zone in Zone:
        for info in store.list(zone):
            if info.key.is_labmesh_internal or info.key.first_segment.startswith("_") or "/" not in info.key.key:
                continue
            folder = clean_text(info.key.first_segment)  # a folder name may not be valid UTF-8
            counts.setdefault(folder, {}).setdefault(zone, 0)
            counts[folder][zone] += 1
    experiments = sorted(set(summaries) | set(counts))
    rows = [("EXPERIMENT", "LANDING", "RAW", "PROCESSED", "FINAL", "CATALOG", "TITLE")]
    for experiment_id in experiments:
        zone_counts = counts.get(experiment_id, {})
        summary = summaries.get(experiment_id)
        rows.append(
            (
                experiment_id,
                *(str(zone_counts.get(zone, 0)) for zone in Zone),
                (f"rev {summary.revision}" + (", archived" if summary.archived else ""))
                if summary
                else "not registered",
                summary.title if summary else "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    if not experiments:
        print("(no experiments yet)")
    quarantined = list_quarantine(store)
    print()
    if quarantined:
        print(f"Quarantined ({len(quarantined)}):")
        for item in quarantined:
            print(f"  {item.original_key}  ({human_size(item.size)}, {item.quarantined_at}): {item.reason}")
            print(f"    now at {clean_text(str(item.key))}")
    else:
        print("Quarantined: nothing")
    return 0


def command_land(settings: Settings, args: argparse.Namespace) -> int:
    """Put files into an experiment's landing folder, as an instrument or DataSync would."""
    store = profile_store(settings)
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            print(f"labmesh land: {path} is not a file", file=sys.stderr)
            return 2
        relative = f"{args.prefix.strip('/')}/{path.name}" if args.prefix else path.name
        key = ObjectKey.for_experiment(Zone.LANDING, args.experiment, relative)
        with path.open("rb") as stream:
            store.put(key, stream)
        print(f"{path} -> {key}")
    return 0


def command_sync(settings: Settings, args: argparse.Namespace) -> int:
    """Watch an instrument folder and move complete files into landing (the DataSync step, for labs without it)."""
    import hashlib
    import threading

    from labmesh_dagster.sync.agent import ILLUMINA_MARKERS, SyncAgent, SyncOptions
    from labmesh_dagster.sync.layout import Layout, LayoutError
    from labmesh_dagster.sync.ledger import Ledger

    watch_dir = Path(args.watch_dir).resolve()
    if not watch_dir.is_dir():
        print(f"labmesh sync: {watch_dir} is not a folder", file=sys.stderr)
        return 2
    try:
        layout = Layout(experiment=args.experiment, pattern=args.layout)
    except LayoutError as exc:
        print(f"labmesh sync: {exc}", file=sys.stderr)
        return 2
    store = LocalObjectStore(args.store_dir) if args.store_dir else profile_store(settings)
    ledger_path = (
        Path(args.ledger)
        if args.ledger
        else (settings.home / "sync" / f"{hashlib.sha256(str(watch_dir).encode()).hexdigest()[:16]}.sqlite")
    )
    markers = tuple(args.marker) + (ILLUMINA_MARKERS if args.illumina else ())
    agent = SyncAgent(
        watch_dir,
        store,
        layout,
        Ledger(ledger_path),
        SyncOptions(quiet_seconds=args.quiet_seconds, markers=markers, workers=args.workers),
    )
    if args.once:
        report = agent.run_once()
        print(
            f"uploaded {len(report.uploaded)}, already in landing {len(report.already_there)}, "
            f"waiting {len(report.waiting)}, not placed {len(report.unplaced)}, failed {len(report.failed)}"
        )
        return 1 if report.failed else 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        agent.run(interval=args.interval, stop=stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


def command_demo(settings: Settings, args: argparse.Namespace) -> int:
    from labmesh_dagster import demo

    prepare_home(settings)
    for path in demo.seed_demo(settings):
        print(f"wrote ELN record {path}")
    if args.files:
        for key in demo.drop_demo_files(settings, speed=1e9):
            print(f"dropped {key}")
    return 0


def iso_date(text: str) -> str:
    """An ISO date or date-time, checked when the command line is read rather than deep in a search."""
    try:
        (datetime if "T" in text else date).fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date such as 2026-11-01") from exc
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labmesh", description="labmesh: the laboratory data mesh on Dagster")
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run the platform (dagster dev) on this machine")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(handler=command_dev)

    search = commands.add_parser("search", help="find datasets and files by keywords and facets")
    search.add_argument("query", nargs="*", help="keywords: sample ids, file names, description words...")
    search.add_argument("--experiment", help="only this experiment id")
    search.add_argument("--sample", help="only files of this sample id")
    search.add_argument("--group", help="only experiments of this group")
    search.add_argument("--platform", help="only this platform or instrument (words match)")
    search.add_argument("--format", help="only files of this format (fastq, fastq.gz, csv, ...)")
    search.add_argument("--file-name", dest="file_name", help="only files whose name contains these words")
    search.add_argument("--since", type=iso_date, help="created on or after this ISO date (2026-11-01)")
    search.add_argument("--until", type=iso_date, help="created on or before this ISO date")
    search.add_argument("--limit", type=int, default=50)
    search.add_argument("--json", action="store_true", help="print JSON instead of text")
    search.add_argument(
        "--content", action="store_true", help="search inside the files (the content index) instead of the catalog"
    )
    search.set_defaults(handler=command_search)

    api = commands.add_parser("api", help="serve the HTTP API ELNs push events to (POST /eln/events/{source})")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.set_defaults(handler=command_api)

    datazone = commands.add_parser("datazone", help="Amazon DataZone set-up (aws profile)")
    datazone_commands = datazone.add_subparsers(dest="datazone_command", required=True)
    bootstrap = datazone_commands.add_parser(
        "bootstrap", help="create labmesh's form types, asset type and glossary in the domain (idempotent)"
    )
    bootstrap.set_defaults(handler=command_datazone_bootstrap)

    lineage = commands.add_parser("lineage", help="how an experiment's datasets were made, zone by zone, file by file")
    lineage.add_argument("experiment")
    lineage.add_argument(
        "--format", choices=["text", "openlineage"], default="text", help="a tree, or the OpenLineage run events"
    )
    lineage.add_argument("--files", type=int, default=50, help="file-level edges shown at most")
    lineage.set_defaults(handler=command_lineage)

    extract = commands.add_parser("extract", help="print the metadata labmesh extracts from files, as JSON")
    extract.add_argument("files", nargs="+", help="files, or folders (every file under them)")
    extract.add_argument("--pretty", action="store_true", help="indent the JSON")
    extract.add_argument("--text", action="store_true", help="include the searchable text extracted")
    extract.add_argument(
        "--budget-seconds", type=float, default=600.0, help="time per file before a partial result (default 600)"
    )
    extract.set_defaults(handler=command_extract)

    status = commands.add_parser("status", help="experiments with file counts per zone, and the quarantine")
    status.set_defaults(handler=command_status)

    land = commands.add_parser("land", help="copy files into an experiment's landing folder")
    land.add_argument("experiment")
    land.add_argument("files", nargs="+")
    land.add_argument("--prefix", help="sub-folder inside the experiment's landing folder")
    land.set_defaults(handler=command_land)

    sync = commands.add_parser("sync", help="watch an instrument folder and upload complete files to landing")
    sync.add_argument("watch_dir")
    where = sync.add_mutually_exclusive_group(required=True)
    where.add_argument("--experiment", help="every file belongs to this experiment")
    where.add_argument("--layout", help="where the experiment id sits, e.g. '{experiment}/{path}'")
    sync.add_argument("--store-dir", help="a local store root (default: the store of LABMESH_PROFILE)")
    sync.add_argument("--quiet-seconds", type=float, default=30.0, help="a file is complete once unchanged this long")
    sync.add_argument("--marker", action="append", default=[], help="a run folder is complete once it holds this file")
    sync.add_argument("--illumina", action="store_true", help="use Illumina's CopyComplete.txt/RTAComplete.txt")
    sync.add_argument("--workers", type=int, default=4, help="files uploaded at once")
    sync.add_argument("--interval", type=float, default=10.0, help="seconds between passes")
    sync.add_argument("--ledger", help="the agent's SQLite ledger (default: under LABMESH_HOME/sync)")
    sync.add_argument("--once", action="store_true", help="one pass, then exit (1 if a file failed)")
    sync.set_defaults(handler=command_sync)

    demo = commands.add_parser("demo", help="write the demo lab's ELN records (and, with --files, its data)")
    demo.add_argument("--files", action="store_true", help="also drop every demo file now")
    demo.set_defaults(handler=command_demo)
    return parser


def load_dotenv_like_dagster(folder: Path) -> None:
    """Apply ``./.env`` as `dagster dev` does (its values win), so the CLI and Dagster see one configuration."""
    path = folder / ".env"
    if path.is_file():
        os.environ.update({key: value for key, value in dotenv_values(path).items() if value is not None})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    load_dotenv_like_dagster(Path.cwd())
    try:
        settings = Settings.from_env()
        return int(args.handler(settings, args))
    except LabmeshError as exc:
        print(f"labmesh: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
