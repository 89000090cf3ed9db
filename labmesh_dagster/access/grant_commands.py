"""`labmesh access`: who may see an experiment, and grants kept in labmesh beside the ELN's own access.

A grant or a revoke goes to the catalog and then to the content index
(`labmesh_dagster.steps.content_access`), so the portal's search over file
contents shows an experiment's files to exactly whom the catalog shows the
experiment. `labmesh access sync` sets every experiment's list in the index
from the catalog again: after an index file from before access lists held
principals was migrated, or after a grant whose index update failed.

The CLI acts as the local admin; the ports are opened inside the handlers,
so registering these commands costs other commands nothing at start.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from labmesh_dagster.access.commands import AS_ADMIN, shown

if TYPE_CHECKING:
    from labmesh_dagster.connectors.search.base import IndexReport
    from labmesh_dagster.ports import Ports


def _index_outcome(report: IndexReport) -> tuple[str, int]:
    """One line on what the content index did, and the exit code: 1 when a document could not be updated."""
    if report.failed:
        first = next(iter(report.failed.items()))
        return (
            f"content index: {len(report.failed)} file(s) not updated ({shown(first[0])}: {shown(first[1])});"
            " run the command again",
            1,
        )
    return f"content index: {len(report.indexed)} file(s) carry the list", 0


def command_access_change(ports: Ports, args: argparse.Namespace) -> int:
    from labmesh_dagster.steps.content_access import change_grant

    grant = args.access_command == "grant"
    try:
        change = change_grant(
            ports.catalog(), ports.content_index(), ports.store(), args.experiment, args.principal, grant=grant
        )
    except ValueError as exc:
        print(f"labmesh: {exc}", file=sys.stderr)
        return 2
    verb = "granted" if grant else "revoked"
    state = verb if change.changed else f"already {verb}" if grant else "was not granted"
    line, code = _index_outcome(change.content)
    print(f"{shown(change.experiment_id)}: {shown(change.principal)} {state}")
    print(f"  may see it: {', '.join(sorted(change.principals)) or 'admins only'}")
    print(f"  {line}")
    return code


def command_access_show(ports: Ports, args: argparse.Namespace) -> int:
    catalog = ports.catalog()
    if catalog.get_experiment(args.experiment) is None:
        print(f"labmesh: experiment {shown(args.experiment)} is not registered in the catalog", file=sys.stderr)
        return 2
    principals = sorted(catalog.principals(args.experiment))
    if args.json:
        print(json.dumps({"experiment_id": args.experiment, "principals": principals}, indent=2))
    else:
        print("\n".join(principals) if principals else "admins only")
    return 0


def command_access_sync(ports: Ports, args: argparse.Namespace) -> int:
    from labmesh_dagster.steps.content_access import refresh_access

    catalog, index, store = ports.catalog(), ports.content_index(), ports.store()
    experiments = args.experiment or [summary.experiment_id for summary in catalog.summaries()]
    code = 0
    for experiment_id in experiments:
        line, failed = _index_outcome(refresh_access(catalog, index, store, experiment_id))
        print(f"{shown(experiment_id)}: {line}")
        code = max(code, failed)
    return code


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `access` to the `labmesh` command."""
    access = commands.add_parser(
        "access", help=f"who may see an experiment, and grants beside the ELN's access {AS_ADMIN}"
    )
    access.set_defaults(as_admin=True)  # `labmesh_dagster.cli.main` says so on stderr
    access_commands = access.add_subparsers(dest="access_command", required=True)
    for name, help_text in (
        ("grant", "let a user or group see an experiment (catalog and content index)"),
        ("revoke", "take a grant back (the ELN's own access stays)"),
    ):
        change = access_commands.add_parser(name, help=help_text)
        change.add_argument("experiment", help="the experiment id")
        change.add_argument("principal", help="user:NAME or group:NAME")
        change.set_defaults(handler=command_access_change)
    show = access_commands.add_parser("show", help="everyone who may see an experiment, besides admins")
    show.add_argument("experiment", help="the experiment id")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    show.set_defaults(handler=command_access_show)
    sync = access_commands.add_parser(
        "sync", help="set the content index's access lists from the catalog again (every experiment, or those named)"
    )
    sync.add_argument("experiment", nargs="*", help="experiment ids (default: all)")
    sync.set_defaults(handler=command_access_sync)
