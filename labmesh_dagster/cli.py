"""The ``labmesh`` command: run the platform, search the catalog, see what is where.

Every command but ``dev`` and ``deploy`` opens the ports it needs through
`labmesh_dagster.ports` and imports no Dagster: they answer in a fraction of a second.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from labmesh_dagster.access import commands as access_commands
from labmesh_dagster.access import grant_commands
from labmesh_dagster.connectors.catalog.base import DatasetRecord, SearchQuery
from labmesh_dagster.connectors.store.base import ObjectInfo, ObjectStore
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.access import LOCAL_ADMIN
from labmesh_dagster.core.errors import LabmeshError
from labmesh_dagster.core.ids import validate_experiment_id
from labmesh_dagster.core.keys import LABMESH_DIR, ObjectKey, Zone
from labmesh_dagster.core.locations import copyable_location
from labmesh_dagster.core.text import clean_text, human_size, is_clean_text
from labmesh_dagster.deploy.instance import DEV_DAGSTER_YAML as DAGSTER_YAML
from labmesh_dagster.deploy.instance import write_dagster_yaml
from labmesh_dagster.ports import ClientFactory, Ports, boto3_clients, open_store
from labmesh_dagster.settings import Settings
from labmesh_dagster.steps.check_attention import checks_attention
from labmesh_dagster.steps.landing import list_quarantine
from labmesh_dagster.steps.landing_attention import irregular_entries, unannounced_experiments
from labmesh_dagster.table_output import print_table

# What earlier labmesh versions wrote as dagster.yaml (sha256): such a file, unchanged by anyone, is
# brought up to date; a file someone edited is theirs and is kept as it is.
EARLIER_DAGSTER_YAMLS = frozenset(
    {
        "02a1a54ae23d2fcd154765d280973c530c2718db4bf987441a26b27b731805d7",
        "2825c28bf7ae2744f1bb158bbc961424619de498670f25025254e02281eddc45",
        "4abadc712561b40448577e2446e7366516c252db8a5470b308e7ca9abb2df5c4",
        "c5fc6fff945fff54e21b57531be4def68ff9a28d859592f9160fdd49e2e1c5e7",
        "d605786aab399a99fec6e870232ca88bb24a5c1b6bfca7640ad575d5065e8dc6",
    }
)


def prepare_home(settings: Settings) -> None:
    """Create the home folders and Dagster's instance configuration (kept if the user changed it)."""
    for folder in (settings.home, settings.eln_dir, settings.store_dir, settings.dagster_home):
        folder.mkdir(parents=True, exist_ok=True)
    for zone in Zone:
        (settings.store_dir / zone.value).mkdir(exist_ok=True)
    config = settings.dagster_home / "dagster.yaml"
    new_home = not config.exists()
    write_dagster_yaml(config, DAGSTER_YAML, earlier=EARLIER_DAGSTER_YAMLS)
    if new_home:
        from labmesh_dagster.daemon_cursors import set_first_cursors

        set_first_cursors(settings.dagster_home)


# `dagster dev` warns on every start that `dg dev` supersedes it. `dg dev` runs the very same code
# (dagster._cli.dev.dev_command_impl) for a workspace file, but needs the dg CLI and its dependencies;
# labmesh keeps `dagster dev` and silences that one warning, by its text, and nothing else.
DAGSTER_DEV_SUPERSEDED = "ignore:Function `dev_command` is superseded:FutureWarning"


def quiet_dagster_dev(inherited: str | None) -> str:
    """PYTHONWARNINGS for dagster: the caller's filters, then the one for `dagster dev`'s supersession warning."""
    return ",".join(part for part in (inherited, DAGSTER_DEV_SUPERSEDED) if part)


def find_dagster() -> str | None:
    """The `dagster` command of this environment (the one labmesh is installed in), else the first on PATH."""
    return shutil.which("dagster", path=str(Path(sys.executable).parent)) or shutil.which("dagster")


def start_detached(argv: Sequence[str], env: Mapping[str, str]) -> None:
    """Start ``argv`` as a grandchild that stops once this process (dagster, after exec) has exited.

    `labmesh dev` execs dagster, which never waits for children it did not
    start itself: a direct child would stay a zombie for as long as dagster
    runs. So an intermediate child starts the command and exits at once, is
    reaped here, and the command is adopted (and in the end reaped) by init.
    The command inherits the read end of a pipe whose write end this process
    keeps across exec; the pipe reads end-of-file once dagster has exited,
    however it ends, and that is how the command knows to stop (its parent
    is no longer dagster, so it cannot watch its parent).
    """
    watch, held = os.pipe()
    os.set_inheritable(held, True)  # survives exec: dagster holds it until it exits
    child = os.fork()
    if child == 0:  # the intermediate: start the command, then leave it to init
        status = 1
        try:
            os.close(held)
            subprocess.Popen(
                [*argv, "--watch-fd", str(watch)], env=dict(env), stdin=subprocess.DEVNULL, pass_fds=(watch,)
            )
            status = 0
        finally:
            os._exit(status)
    os.close(watch)
    os.waitpid(child, 0)


def command_dev(ports: Ports, args: argparse.Namespace) -> int:
    from labmesh_dagster import demo

    settings = ports.settings
    seed = settings.demo and demo.home_is_empty(settings)
    prepare_home(settings)
    if seed:
        for path in demo.seed_demo(settings):
            print(f"labmesh demo: wrote ELN record {path}", file=sys.stderr)
    env = {
        **os.environ,
        "LABMESH_HOME": str(settings.home),
        "DAGSTER_HOME": str(settings.dagster_home),
        "PYTHONWARNINGS": quiet_dagster_dev(os.environ.get("PYTHONWARNINGS")),
    }
    if seed:
        start_detached([sys.executable, "-m", "labmesh_dagster.demo"], env)
    if args.portal_port:
        portal = [
            sys.executable,
            "-m",
            "labmesh_dagster.cli",
            "api",
            "--host",
            args.host,
            "--port",
            str(args.portal_port),
        ]
        start_detached(portal, {**env, "LABMESH_DAGSTER_URL": f"http://{args.host}:{args.port}"})
        print(f"labmesh: the portal: http://{args.host}:{args.portal_port}/", file=sys.stderr)
        if seed:
            name, password = demo.add_demo_user(settings)
            print(f"labmesh demo: sign in to the portal as {name}, password {password!r}", file=sys.stderr)
    dagster = find_dagster()
    if dagster is None:
        print("labmesh: the `dagster` command is not installed in this environment", file=sys.stderr)
        return 1
    target = ["-w", "workspace.yaml"] if Path("workspace.yaml").is_file() else ["-m", "labmesh_dagster.definitions"]
    argv = [dagster, "dev", *target, "-h", args.host, "-p", str(args.port)]
    print(f"labmesh: starting {' '.join(argv[1:])} with LABMESH_HOME={settings.home}", file=sys.stderr)
    # Dagster's own landing page is its run timeline; a lab's first look belongs on the flow itself.
    print(f"labmesh: the lab's lineage: http://{args.host}:{args.port}/asset-groups", file=sys.stderr, flush=True)
    # exec, not a child: Ctrl-C and SIGTERM reach dagster itself, which stops its webserver and daemon
    # cleanly. An inherited "ignore SIGINT/SIGTERM" (make in the background, nohup) would survive exec
    # and make dagster deaf to them, so both are set back to their defaults first.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    os.execve(dagster, argv, env)
    return 0  # not reached


def command_deploy_local(ports: Ports, args: argparse.Namespace) -> int:
    """Start the production shape on this machine (code server, webserver, daemon, portal) until Ctrl-C."""
    from labmesh_dagster.deploy.local import SERVICES, Addresses, serve, stop_recorded

    if args.stop:
        return stop_recorded(ports.settings)
    addresses = Addresses(
        host=args.host, webserver_port=args.port, grpc_port=args.grpc_port, portal_port=args.portal_port
    )
    return serve(ports.settings, addresses, only=args.only or SERVICES)


def command_datazone_bootstrap(ports: Ports, args: argparse.Namespace) -> int:
    from labmesh_dagster.connectors.catalog.datazone import DataZoneCatalog

    catalog = ports.catalog()
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


def command_search_content(ports: Ports, args: argparse.Namespace) -> int:
    """Search inside the files (the content index: SQLite FTS5 locally, Kendra in the aws profile)."""
    from labmesh_dagster.connectors.search.base import ContentFilter

    filters = ContentFilter(
        experiment_id=args.experiment,
        sample_id=args.sample,
        platform=args.platform,
        group=args.group,
        format=args.format,
        since=datetime.fromisoformat(args.since) if args.since else None,
        until=(datetime if "T" in args.until else date).fromisoformat(args.until) if args.until else None,
    )
    hits = ports.content_index().search(" ".join(args.query), filters=filters, limit=args.limit)
    if args.json:
        print(json.dumps([asdict(hit) for hit in hits], indent=2, default=str))
        return 0 if hits else 1
    if not hits:
        print("no matching files")
        return 1
    for hit in hits:
        print(hit.id)  # the file's key: zone, experiment and path (the title is the file's name)
        print(f"  {hit.uri}")
        if hit.excerpt:
            print(f"  {clean_text(hit.excerpt)}")
    return 0


EMBED_CHUNK = 512
"""Passages `labmesh content embed` embeds between two progress lines: a few seconds' work on two cores."""


def command_content_embed(ports: Ports, args: argparse.Namespace) -> int:
    """Embed every passage the content index keeps without a vector, saying how far it got; idempotent."""
    index = ports.content_index()
    total = 0
    while embedded := index.embed_missing(limit=EMBED_CHUNK):
        total += embedded
        print(f"embedded {total} passage{'' if total == 1 else 's'} so far", flush=True)
    if total:
        print(f"embedded {total} passage{'' if total == 1 else 's'}: every passage has its vector now")
    else:
        print("every passage already has its vector: embedded 0")
    return 0


def command_search(ports: Ports, args: argparse.Namespace) -> int:
    if args.content:
        return command_search_content(ports, args)
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
    hits = ports.catalog().search(query)
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


def command_ask(ports: Ports, args: argparse.Namespace) -> int:
    """Answer a question from the lab's files and catalog, streamed, each claim with numbered citations."""
    from labmesh_dagster.ask.asking import ask, checked_question
    from labmesh_dagster.ask.base import AnswerEnd, collect
    from labmesh_dagster.ask.engines import open_answerer
    from labmesh_dagster.ask.rendering import citation_lines, part_line
    from labmesh_dagster.core.access import LOCAL_ADMIN
    from labmesh_dagster.core.answers import AnswerPart, Citation

    question = checked_question(" ".join(args.question))
    events = ask(
        question,
        viewer=LOCAL_ADMIN,
        content_index=ports.content_index(),
        catalog=ports.catalog(),
        answerer=open_answerer(ports.settings.answers, ports.clients),
        store=ports.store(),
    )
    if args.json:
        answer = collect(question, events)
        print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
        return 0 if answer.answered else 1
    answered = False
    sources: list[str] = []
    for event in events:
        if isinstance(event, AnswerPart):
            print(part_line(event), flush=True)  # as it comes: a model's answer streams
        elif isinstance(event, Citation):
            sources += citation_lines(event)
        elif isinstance(event, AnswerEnd):
            answered = event.answered
            for note in event.notes:
                print(f"({note})")
    if sources:
        print("\nSources:")
        print("\n".join(sources))
    return 0 if answered else 1


def command_api(ports: Ports, args: argparse.Namespace) -> int:
    """Serve `labmesh api` (the portal and the ELN webhooks) with uvicorn until Ctrl-C."""
    from labmesh_dagster.portal.serve import api_app, serve

    if not ports.settings.webhook_sources and args.watch_fd is None:
        print(
            "labmesh api: the portal only; ELN webhooks need LABMESH_WEBHOOK_<NAME>_SECRETS "
            "or LABMESH_WEBHOOK_<NAME>_BENCHLING_APP_DEFINITION_ID",
            file=sys.stderr,
        )
    serve(api_app(ports, host=args.host), host=args.host, port=args.port, watch_fd=args.watch_fd)
    return 0


def command_mcp(ports: Ports, args: argparse.Namespace) -> int:
    """Serve the MCP tools to an AI assistant: over stdio as one user, or over streamable HTTP with API tokens."""
    import functools

    import anyio

    from labmesh_dagster.access.stores import AccessStores
    from labmesh_dagster.mcp.lab import lab_tools
    from labmesh_dagster.mcp.server import (
        UnknownIdentity,
        admin_notice,
        build_server,
        http_auth,
        stdio_viewer,
        token_viewer,
    )

    access = AccessStores.open(ports.settings.access)
    tools = lab_tools(ports, access)
    if args.http:
        if args.user is not None or args.token is not None or args.admin:
            raise UnknownIdentity(
                "over HTTP each request's API token says who asks: --user, --token, --admin are for stdio"
            )
        url = f"http://{args.host}:{args.port}/mcp"
        auth = http_auth(url, issuer_url=args.issuer_url)
        server = build_server(tools, token_viewer, access=access, auth=auth)
        print(f"labmesh mcp: serving {url}; each request needs Authorization: Bearer <API token>", file=sys.stderr)
        anyio.run(functools.partial(server.run_streamable_http_async, host=args.host, port=args.port))
        return 0
    viewer = stdio_viewer(access, user=args.user, token=args.token, admin=args.admin)
    notice = admin_notice(viewer)
    if notice:
        print(notice, file=sys.stderr)  # stdout is the protocol's: everything said goes to stderr
    anyio.run(build_server(tools, lambda: viewer).run_stdio_async)
    return 0


def command_extract(ports: Ports, args: argparse.Namespace) -> int:
    """Print what labmesh would record of each file: one JSON object per file; 1 if any file is bad or skipped."""
    # Extraction does no linear algebra: without this, numpy's import starts an OpenBLAS thread per core,
    # whose start-up spin costs a one-shot command some 60 ms of CPU. It must precede numpy's import.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from labmesh_dagster.extract.local_files import describe_files

    budget = ports.settings.extract_budget_seconds if args.budget_seconds is None else args.budget_seconds
    documents = describe_files(args.files, budget_seconds=budget or None)
    for document in documents:
        if not args.text:
            document.pop("text", None)
        print(json.dumps(document, indent=2 if args.pretty else None, ensure_ascii=False))
        if "skipped" in document:
            print(f"labmesh extract: skipped {document['skipped']['detail']}", file=sys.stderr)
    if not documents:
        print("labmesh extract: no files found", file=sys.stderr)
        return 1
    return 1 if any("error" in document or "skipped" in document for document in documents) else 0


def command_lineage(ports: Ports, args: argparse.Namespace) -> int:
    from labmesh_dagster.lineage.events import events_to_json_lines
    from labmesh_dagster.lineage.graph import build_graph, render_text

    experiment_id = validate_experiment_id(args.experiment)
    events = ports.lineage_log().events(experiment_id)
    if not events:
        print(f"no lineage recorded for {experiment_id} yet", file=sys.stderr)
        return 1
    if args.format == "openlineage":
        sys.stdout.write(events_to_json_lines(events))
    else:
        print(render_text(build_graph(events), experiment_id, file_limit=args.files))
    return 0


DATASET_ZONES = (Zone.RAW, Zone.PROCESSED, Zone.FINAL)


def command_files(ports: Ports, args: argparse.Namespace) -> int:
    """Every file of an experiment's published datasets (or of one), each with its location to copy.

    The Dagster UI names this command on every dataset (`see_files`): a
    location there cannot be a link that opens, so this is what opens it.
    """
    experiment_id = validate_experiment_id(args.experiment)
    # An empty home has no catalog yet, and looking is no reason to create one.
    registry = ports.registry() if ports.has_registry() else None
    if registry is None or registry.get_experiment(experiment_id) is None:
        print(
            f"labmesh files: experiment {experiment_id} is not registered; `labmesh status` lists those that are",
            file=sys.stderr,
        )
        return 2
    store = ports.store()
    zones = [args.zone] if args.zone else DATASET_ZONES
    published = (registry.get_dataset(experiment_id, zone) for zone in zones)
    described = [_dataset_files(store, record) for record in published if record is not None]
    if args.json:
        print(json.dumps(described, indent=2))
        return 0 if described else 1
    if not described:
        print(f"no {args.zone.value + ' ' if args.zone else ''}dataset of {experiment_id} yet", file=sys.stderr)
        return 1
    for dataset in described:
        files = dataset["files"]
        count = f"{len(files)} file{'' if len(files) == 1 else 's'}"
        size = human_size(sum(file["size"] for file in files))
        print(f"{experiment_id}  {dataset['zone']}  {dataset['entry_id']}  rev {dataset['revision']}, {count}, {size}")
        print(f"  {dataset['location']}")
        for file in files:
            samples = f"  samples: {', '.join(file['sample_ids'])}" if file["sample_ids"] else ""
            error = f"  extraction failed: {file['error']}" if file["error"] else ""
            print(f"  - {file['path']}  {file['format']}  {human_size(file['size'])}{samples}{error}")
            print(f"    {file['location']}")
    return 0


def _dataset_files(store: ObjectStore, dataset: DatasetRecord) -> dict[str, Any]:
    """A published dataset and its files, each with the location people copy (a path, or an s3:// URI)."""
    files = []
    for entry in dataset.files:
        key = ObjectKey.parse(entry.key)
        files.append(
            {
                "key": entry.key,
                "path": key.relative_path,
                "location": copyable_location(store.uri(key)),
                "format": entry.format,
                "size": entry.size,
                "sha256": entry.sha256,
                "sample_ids": list(entry.sample_ids),
                "error": entry.error["reason"] if entry.error else None,
            }
        )
    return {
        "experiment_id": dataset.experiment_id,
        "zone": dataset.zone.value,
        "entry_id": dataset.entry_id,
        "revision": dataset.revision,
        "location": copyable_location(dataset.location),
        "files": files,
    }


def command_status(ports: Ports, args: argparse.Namespace) -> int:
    store = ports.store()
    # An empty home has no catalog yet, and looking is no reason to create one.
    registered = ports.registry().summaries() if ports.has_registry() else []
    summaries = {summary.experiment_id: summary for summary in registered}
    counts: dict[str, dict[Zone, int]] = {}
    landing: list[ObjectInfo] = []  # listed once: on S3 a listing costs requests
    for zone in Zone:
        for info in store.list(zone):
            if zone is Zone.LANDING:
                landing.append(info)
            if info.key.is_labmesh_internal or info.key.first_segment.startswith("_") or "/" not in info.key.path:
                continue
            folder = clean_text(info.key.first_segment)  # a folder name may not be valid UTF-8
            counts.setdefault(folder, {}).setdefault(zone, 0)
            counts[folder][zone] += 1
    experiments = sorted(set(summaries) | set(counts))
    rows: list[tuple[str, ...]] = [("EXPERIMENT", "LANDING", "RAW", "PROCESSED", "FINAL", "CATALOG", "TITLE")]
    for experiment_id in experiments:
        zone_counts = counts.get(experiment_id, {})
        summary = summaries.get(experiment_id)
        catalog_state = "not registered"
        if summary is not None:
            catalog_state = f"rev {summary.revision}" + (", archived" if summary.archived else "")
        rows.append(
            (
                experiment_id,
                *(str(zone_counts.get(zone, 0)) for zone in Zone),
                catalog_state,
                summary.title if summary else "",
            )
        )
    print_table(rows)
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
    if ports.has_registry():
        print_checks_attention(ports)
    print_waiting(ports, store, landing, set(summaries))
    return 0


def print_checks_attention(ports: Ports) -> None:
    """The datasets whose latest revision failed a check, then those without check results, as the portal lists them.

    Printed only when there is something to list: a dataset whose checks all
    passed is nobody's to act on. The list comes from labmesh's own registry,
    which DataZone publishes from, so it costs no AWS request.
    """
    attention = checks_attention(ports.registry(), LOCAL_ADMIN)
    if attention.failing:
        print(f"\nDatasets whose latest checks failed ({len(attention.failing)}):")
        for dataset in attention.failing:
            revision = dataset.revision
            print(
                f"  {revision.experiment_id} {revision.zone.value}, revision {revision.revision}"
                f" (published {_published(revision.published_at)}):"
            )
            for outcome in dataset.failed:
                kind = "warning" if outcome.warning else "failed"
                problems = "; ".join(outcome.problems)
                print(f"    {outcome.name} ({kind})" + (f": {problems}" if problems else ""))
    if attention.unchecked:
        print(
            f"\nDatasets without check results for their latest revision ({len(attention.unchecked)}), "
            "published before labmesh kept them or their run not finished: materialize them again to check"
        )
        for revision in attention.unchecked:
            print(
                f"  {revision.experiment_id} {revision.zone.value}, revision {revision.revision}"
                f" (published {_published(revision.published_at)})"
            )


def _published(moment: str) -> str:
    """A catalog timestamp (ISO 8601) as the other lines of `labmesh status` write times; kept as is if unreadable."""
    try:
        when = datetime.fromisoformat(moment)
    except ValueError:
        return moment
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return f"{when:%Y-%m-%d %H:%M} UTC"


def print_waiting(ports: Ports, store: ObjectStore, landing: Sequence[ObjectInfo], registered: set[str]) -> None:
    """What the flow will not take until someone acts: rejected ELN records, odd landing entries, unannounced files.

    Each section is printed only when it has something in it: these are the
    inputs that would otherwise vanish from view (a log line in a green sensor
    tick, a file the store's listing never shows).
    """
    settings = ports.settings
    if ports.has_registry():
        rejected = ports.eln_rejections().standing()
        if rejected:
            print(f"\nRejected ELN records ({len(rejected)}), left out until they read fine:")
            for rejection in rejected:
                print(f"  {rejection.source}  (since {rejection.first_seen:%Y-%m-%d %H:%M} UTC): {rejection.reason}")
    if isinstance(store, LocalObjectStore):
        irregular = irregular_entries(store.zone_root(Zone.LANDING))
        if irregular:
            print(f"\nNot regular files in landing ({len(irregular)}), never taken: replace them with the files")
            for entry in irregular:
                target = f" -> {entry.target}" if entry.target is not None else ""
                print(f"  {Zone.LANDING.value}/{entry.path}{target}  ({entry.kind})")
    unannounced = unannounced_experiments(
        landing,
        registered.__contains__,
        settle_seconds=0 if store.complete_when_visible else settings.landing_settle_seconds,
        grace_seconds=settings.unknown_experiment_grace_seconds,
    )
    if unannounced:
        now = ports.clock()
        print(f"\nWaiting for an ELN record ({len(unannounced)}), quarantined unless one comes:")
        for waiting in unannounced:
            when = (
                f"quarantined from {waiting.quarantine_from:%Y-%m-%d %H:%M} UTC"
                if waiting.quarantine_from > now
                else "quarantine due at the landing sensor's next tick"
            )
            print(f"  {waiting.experiment_id}: {waiting.files} file(s), {human_size(waiting.size)}; {when}")


def command_land(ports: Ports, args: argparse.Namespace) -> int:
    """Put files into an experiment's landing folder, as an instrument or DataSync would."""
    landings: list[tuple[Path, ObjectKey]] = []
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            print(f"labmesh land: {path} is not a file", file=sys.stderr)
            return 2
        if not is_clean_text(path.name):
            # The landing sensor would quarantine it at once: say so now, while the person is here.
            print(f"labmesh land: the name of {clean_text(str(path))} is not valid UTF-8; rename it", file=sys.stderr)
            return 2
        relative = f"{args.prefix.strip('/')}/{path.name}" if args.prefix else path.name
        key = ObjectKey.for_experiment(Zone.LANDING, args.experiment, relative)
        if key.is_labmesh_internal:
            print(
                f"labmesh land: {LABMESH_DIR}/ is labmesh's own folder inside an experiment (manifests live there); "
                "choose another --prefix",
                file=sys.stderr,
            )
            return 2
        landings.append((path, key))
    store = ports.store()
    for path, key in landings:  # every file checked before the first is put
        with path.open("rb") as stream:
            store.put(key, stream)
        print(f"{path} -> {key}")
    return 0


def command_sync(ports: Ports, args: argparse.Namespace) -> int:
    """Watch an instrument folder and move complete files into landing (the DataSync step, for labs without it)."""
    import threading

    from labmesh_dagster.core.errors import LayoutError
    from labmesh_dagster.sync.agent import ILLUMINA_MARKERS, SyncAgent, SyncOptions
    from labmesh_dagster.sync.layout import Layout
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
    store = open_store({"kind": "local", "root": args.store_dir}) if args.store_dir else ports.store()
    sync_folder = ports.settings.home / "sync"
    ledger_path = (
        Path(args.ledger)
        if args.ledger
        else sync_folder / f"{hashlib.sha256(os.fsencode(watch_dir)).hexdigest()[:16]}.sqlite"
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


def command_demo(ports: Ports, args: argparse.Namespace) -> int:
    from labmesh_dagster import demo

    prepare_home(ports.settings)
    for path in demo.seed_demo(ports.settings):
        print(f"wrote ELN record {path}")
    if args.files:
        for key in demo.drop_demo_files(ports.settings, speed=1e9):
            print(f"dropped {key}")
    return 0


def iso_date(text: str) -> str:
    """An ISO date or date-time, checked when the command line is read rather than deep in a search."""
    try:
        (datetime if "T" in text else date).fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date such as 2026-11-01") from exc
    return text


def text(value: str) -> str:
    """A text argument (a word, an id, a folder name), refused when it is not valid UTF-8.

    Arguments reach Python as bytes decoded with surrogate escapes; a word
    that is not UTF-8 can match nothing and cannot be written to SQLite, a
    key or JSON, so it is refused here with a clear message rather than
    failing deep in a command. File paths are not texts: any name the file
    system holds is taken.
    """
    if not is_clean_text(value):
        raise argparse.ArgumentTypeError(f"{clean_text(value)!r} is not valid UTF-8")
    return value


def dataset_zone(value: str) -> Zone:
    """A zone that holds published datasets: raw, processed or final."""
    if value == Zone.LANDING.value:
        raise argparse.ArgumentTypeError(
            "landing holds no dataset: files wait there until they are promoted to raw (`labmesh status` counts them)"
        )
    if value not in {zone.value for zone in DATASET_ZONES}:
        raise argparse.ArgumentTypeError(f"{clean_text(value)!r} is not a zone: choose raw, processed or final")
    return Zone(value)


def positive(value: str) -> int:
    """A count of at least 1."""
    try:
        number = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{clean_text(value)!r} is not a whole number") from exc
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labmesh", description="labmesh: the laboratory data mesh on Dagster")
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run the platform (dagster dev) on this machine")
    dev.add_argument("--host", type=text, default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument("--portal-port", type=int, default=8000, help="the portal's port beside Dagster; 0: no portal")
    dev.set_defaults(handler=command_dev)

    deploy = commands.add_parser("deploy", help="run labmesh as it is deployed: each process on its own, on PostgreSQL")
    deploy_commands = deploy.add_subparsers(dest="deploy_command", required=True)
    local = deploy_commands.add_parser(
        "local",
        help="start a gRPC code server, dagster-webserver, one dagster-daemon and the portal on this machine, "
        "with Dagster's instance in LABMESH_DATABASE_URL; Ctrl-C stops them all",
    )
    local.add_argument("--host", type=text, default="127.0.0.1")
    local.add_argument("--port", type=int, default=3000, help="the Dagster webserver's port")
    local.add_argument("--grpc-port", dest="grpc_port", type=int, default=4000, help="the code server's port")
    local.add_argument("--portal-port", dest="portal_port", type=int, default=8000, help="the portal's port")
    local.add_argument(
        "--only",
        action="append",
        choices=["code-server", "webserver", "daemon", "portal"],
        help="start only this process (repeatable): one that died, beside the others still running",
    )
    local.add_argument(
        "--stop", action="store_true", help="stop, from another shell, what labmesh deploy local started on this home"
    )
    local.set_defaults(handler=command_deploy_local)

    search = commands.add_parser("search", help="find datasets and files by keywords and facets")
    search.add_argument(
        "query",
        nargs="*",
        type=text,
        help="keywords: sample ids, file names, description words... (with --content: words inside the files)",
    )
    search.add_argument("--experiment", type=text, help="only this experiment id")
    search.add_argument(
        "--sample",
        type=text,
        help="only files of this sample id; a file tied to no sample (a run summary) counts as every sample's "
        "of its experiment, so it is included",
    )
    search.add_argument("--group", type=text, help="only experiments of this group")
    search.add_argument("--platform", type=text, help="only this platform or instrument (words match)")
    search.add_argument(
        "--format",
        type=text,
        help="only files of this format, compressed or not (fastq also finds fastq.gz; fastq.gz only fastq.gz)",
    )
    search.add_argument("--file-name", dest="file_name", type=text, help="only files whose name contains these words")
    search.add_argument("--since", type=iso_date, help="created on or after this ISO date (2026-11-01)")
    search.add_argument("--until", type=iso_date, help="created on or before this ISO date")
    search.add_argument("--limit", type=positive, default=50, help="most results shown (at least 1; default 50)")
    search.add_argument("--json", action="store_true", help="print JSON instead of text")
    search.add_argument(
        "--content",
        action="store_true",
        help="search the words inside the files (the content index) instead of the catalog's metadata",
    )
    search.set_defaults(handler=command_search, as_admin=True)

    ask_parser = commands.add_parser(
        "ask", help="answer a question from the files and the catalog, with numbered citations (never a guess)"
    )
    ask_parser.add_argument("question", nargs="+", type=text, help='the question, e.g. "what is the Q30 of LIV-01"')
    ask_parser.add_argument("--json", action="store_true", help="print the answer and its citations as JSON")
    ask_parser.set_defaults(handler=command_ask, as_admin=True)

    api = commands.add_parser(
        "api", help="serve the discovery portal and the HTTP API ELNs push events to (POST /eln/events/{source})"
    )
    api.add_argument("--host", type=text, default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    # `labmesh dev` hands in a pipe Dagster holds open: end-of-file there stops the server with Dagster.
    api.add_argument("--watch-fd", dest="watch_fd", type=int, default=None, help=argparse.SUPPRESS)
    api.set_defaults(handler=command_api)

    mcp = commands.add_parser(
        "mcp", help="serve search, experiment lookup, lineage and ask to AI assistants (MCP), as one user"
    )
    mcp.add_argument("--user", type=text, help="over stdio, act as this user (one `labmesh users add` made)")
    mcp.add_argument("--token", type=text, help="over stdio, act as this API token's user")
    mcp.add_argument("--admin", action="store_true", help="act as an admin, seeing every experiment (says so)")
    mcp.add_argument("--http", action="store_true", help="serve streamable HTTP (each request's Bearer token)")
    mcp.add_argument("--host", type=text, default="127.0.0.1")
    mcp.add_argument("--port", type=int, default=8765)
    mcp.add_argument(
        "--issuer-url", type=text, default="http://127.0.0.1:8000", help="the portal that issues the API tokens"
    )
    mcp.set_defaults(handler=command_mcp)

    content = commands.add_parser("content", help="the content index that search by words and meaning reads")
    content_commands = content.add_subparsers(dest="content_command", required=True)
    embed = content_commands.add_parser(
        "embed",
        help="embed the passages kept without a vector (an older index, a failed embedding), so search by "
        "meaning finds them; idempotent (publishing catches up a few thousand by itself)",
    )
    embed.set_defaults(handler=command_content_embed)

    datazone = commands.add_parser("datazone", help="Amazon DataZone set-up (aws profile)")
    datazone_commands = datazone.add_subparsers(dest="datazone_command", required=True)
    bootstrap = datazone_commands.add_parser(
        "bootstrap", help="create labmesh's form types, asset type and glossary in the domain (idempotent)"
    )
    bootstrap.set_defaults(handler=command_datazone_bootstrap)

    lineage = commands.add_parser("lineage", help="how an experiment's datasets were made, zone by zone, file by file")
    lineage.add_argument("experiment", type=text)
    lineage.add_argument(
        "--format", choices=["text", "openlineage"], default="text", help="a tree, or the OpenLineage run events"
    )
    lineage.add_argument("--files", type=int, default=50, help="file-level edges shown at most")
    lineage.set_defaults(handler=command_lineage, as_admin=True)

    files = commands.add_parser(
        "files", help="the files of an experiment's datasets, each with its location (a path, or an s3:// URI)"
    )
    files.add_argument("experiment", type=text)
    files.add_argument(
        "zone",
        nargs="?",
        type=dataset_zone,
        metavar="{raw,processed,final}",
        help="only this dataset (default: every dataset of the experiment)",
    )
    files.add_argument("--json", action="store_true", help="print JSON instead of text")
    files.set_defaults(handler=command_files, as_admin=True)

    extract = commands.add_parser("extract", help="print the metadata labmesh extracts from files, as JSON")
    extract.add_argument("files", nargs="+", help="files, or folders (every file under them)")
    extract.add_argument("--pretty", action="store_true", help="indent the JSON")
    extract.add_argument("--text", action="store_true", help="include the searchable text extracted")
    extract.add_argument(
        "--budget-seconds",
        type=float,
        help="time per file before a partial result, 0 for no limit (default: LABMESH_EXTRACT_SECONDS, 600)",
    )
    extract.set_defaults(handler=command_extract)

    status = commands.add_parser(
        "status",
        help="experiments with file counts per zone, the quarantine, failing checks and what waits for someone",
    )
    status.set_defaults(handler=command_status, as_admin=True)

    land = commands.add_parser("land", help="copy files into an experiment's landing folder")
    land.add_argument("experiment", type=text)
    land.add_argument("files", nargs="+")
    land.add_argument(
        "--prefix",
        type=text,
        help=f"sub-folder inside the experiment's landing folder (not {LABMESH_DIR}: labmesh's own)",
    )
    land.set_defaults(handler=command_land)

    sync = commands.add_parser("sync", help="watch an instrument folder and upload complete files to landing")
    sync.add_argument("watch_dir")
    where = sync.add_mutually_exclusive_group(required=True)
    where.add_argument("--experiment", type=text, help="every file belongs to this experiment")
    where.add_argument("--layout", type=text, help="where the experiment id sits, e.g. '{experiment}/{path}'")
    sync.add_argument("--store-dir", help="a local store root (default: the store of LABMESH_PROFILE)")
    sync.add_argument("--quiet-seconds", type=float, default=30.0, help="a file is complete once unchanged this long")
    sync.add_argument(
        "--marker", type=text, action="append", default=[], help="a run folder is complete once it holds this file"
    )
    sync.add_argument("--illumina", action="store_true", help="use Illumina's CopyComplete.txt/RTAComplete.txt")
    sync.add_argument("--workers", type=int, default=4, help="files uploaded at once")
    sync.add_argument("--interval", type=float, default=10.0, help="seconds between passes")
    sync.add_argument("--ledger", help="the agent's SQLite ledger (default: under LABMESH_HOME/sync)")
    sync.add_argument("--once", action="store_true", help="one pass, then exit (1 if a file failed)")
    sync.set_defaults(handler=command_sync)

    demo = commands.add_parser("demo", help="write the demo lab's ELN records (and, with --files, its data)")
    demo.add_argument("--files", action="store_true", help="also drop every demo file now")
    demo.set_defaults(handler=command_demo)

    access_commands.register(commands)
    grant_commands.register(commands)
    return parser


def load_dotenv_like_dagster(folder: Path) -> None:
    """Apply ``./.env`` as `dagster dev` does (its values win), so the CLI and Dagster see one configuration."""
    path = folder / ".env"
    if path.is_file():
        os.environ.update({key: value for key, value in dotenv_values(path).items() if value is not None})


ADMIN_NOTICE = (
    "acts as the local admin, so it sees every experiment, whatever its group (LABMESH_ADMIN_NOTICE=0 hides this line)"
)
"""Said once, on stderr, by each command marked ``as_admin`` (reading the catalog or the audit log for a person):
stdout is what scripts read, and it stays as it was."""

BROKEN_PIPE_EXIT = 128 + signal.SIGPIPE
"""What a shell reports for a command killed by SIGPIPE, as `labmesh status | head` leaves other tools."""


def never_fail_on_output() -> None:
    """Print names that are not UTF-8 as escapes (``a\\udcff.fastq``) instead of failing.

    File and folder names reach labmesh as text with surrogate escapes; in a
    UTF-8 locale Python's stdout refuses those and the command would end in
    a traceback halfway through its output.
    """
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def main(
    argv: Sequence[str] | None = None, *, settings: Settings | None = None, clients: ClientFactory = boto3_clients
) -> int:
    """Run one command; ``settings`` (else the environment and ``./.env``) and ``clients`` open its ports."""
    never_fail_on_output()
    try:
        args = build_parser().parse_args(argv)
        try:
            if settings is None:
                load_dotenv_like_dagster(Path.cwd())
                settings = Settings.from_env()
            if getattr(args, "as_admin", False) and settings.admin_notice:
                print(f"labmesh {args.command}: {ADMIN_NOTICE}", file=sys.stderr)
            code = int(args.handler(Ports(settings, clients), args))
        except LabmeshError as exc:
            print(f"labmesh: {exc}", file=sys.stderr)
            code = 2
        sys.stdout.flush()  # here, so that a reader gone away is noticed here and not at exit
        return code
    except BrokenPipeError:
        # The reader (head, less) has all it wanted. Python would report the error again when it flushes
        # stdout at exit, so stdout is pointed at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return BROKEN_PIPE_EXIT


if __name__ == "__main__":
    sys.exit(main())
