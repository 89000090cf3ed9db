"""`labmesh users`, `labmesh tokens` and `labmesh audit`: accounts, API tokens and the audit log from a shell.

The CLI runs on the lab's own machine with the access file's owner's rights,
so it acts as the local admin (`labmesh_dagster.core.access.LOCAL_ADMIN`) and
each command's help says so. Passwords are read from a prompt that does not
echo, or with ``--password-stdin`` from a pipe, never from the command line,
where `ps` and the shell's history would show them.

The stores are imported inside the handlers, so that registering these
commands costs other commands nothing at start.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from labmesh_dagster.access.audit import AuditEntry, AuditFilter, AuditKind
from labmesh_dagster.access.errors import UnknownUser, UnusablePassword
from labmesh_dagster.table_output import print_table

if TYPE_CHECKING:
    from labmesh_dagster.access.tokens import TokenStore
    from labmesh_dagster.access.users import Users
    from labmesh_dagster.ports import Ports

AS_ADMIN = "(the CLI acts as the local admin)"


def user_store(ports: Ports) -> Users:
    """The accounts where the settings keep them: the access file, or PostgreSQL with ``LABMESH_DATABASE_URL``."""
    from labmesh_dagster.access.stores import open_users

    return open_users(ports.settings.access)


def token_store(ports: Ports) -> TokenStore:
    from labmesh_dagster.access.stores import open_tokens

    return open_tokens(ports.settings.access)


def has_accounts(ports: Ports) -> bool:
    from labmesh_dagster.access.stores import accounts_exist

    return accounts_exist(ports.settings.access)


def read_password(args: argparse.Namespace) -> str:
    """The new password: one line of standard input with ``--password-stdin``, else typed twice at a prompt."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("the same again: ") != first:
        raise UnusablePassword("the two passwords differ; nothing was changed")
    return first


def shown(text: str | None) -> str:
    """Text from outside (a name typed at the sign-in form, a search) as one printable line: controls escaped."""
    if text is None:
        return "-"
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def command_users_add(ports: Ports, args: argparse.Namespace) -> int:
    user = user_store(ports).add(args.name, read_password(args), groups=args.group, admin=args.admin)
    groups = ", ".join(user.groups) or "no group"
    print(f"added user {user.name} ({groups}{'; admin' if user.admin else ''})")
    return 0


def command_users_list(ports: Ports, args: argparse.Namespace) -> int:
    # An empty home has no access file yet, and looking is no reason to create one.
    users = user_store(ports).list_users() if has_accounts(ports) else []
    if args.json:
        print(
            json.dumps(
                [
                    {"name": u.name, "groups": list(u.groups), "admin": u.admin, "created_at": u.created_at.isoformat()}
                    for u in users
                ],
                indent=2,
            )
        )
        return 0
    if not users:
        print("no users yet; `labmesh users add NAME --group GROUP` adds one")
        return 0
    rows = [("NAME", "ADMIN", "CREATED", "GROUPS")] + [
        (u.name, "admin" if u.admin else "-", f"{u.created_at:%Y-%m-%d %H:%M}", ", ".join(u.groups) or "-")
        for u in users
    ]
    print_table(rows)
    return 0


def command_users_remove(ports: Ports, args: argparse.Namespace) -> int:
    tokens = token_store(ports).list_tokens(args.name)
    user = user_store(ports).remove(args.name)
    print(f"removed user {user.name} and their {len(tokens)} API token(s); the audit log keeps what they did")
    return 0


def command_users_groups(ports: Ports, args: argparse.Namespace) -> int:
    users = user_store(ports)
    if args.set is not None:
        user = users.set_groups(args.name, args.set)
    else:
        found = users.get(args.name)
        if found is None:
            raise UnknownUser(f"no user {args.name!r}; `labmesh users list` shows who there is")
        user = found
    print(f"{user.name}: {', '.join(user.groups) or 'no group'}")
    return 0


def command_users_password(ports: Ports, args: argparse.Namespace) -> int:
    user_store(ports).set_password(args.name, read_password(args))
    print(f"changed the password of {args.name}")
    return 0


def command_tokens_create(ports: Ports, args: argparse.Namespace) -> int:
    tokens = token_store(ports)
    expires_at = tokens.clock() + timedelta(days=args.days) if args.days else None
    issued = tokens.create(args.name, label=args.label, expires_at=expires_at)
    print(issued.token)  # alone on stdout, so that TOKEN=$(labmesh tokens create ada) works
    until = f", valid until {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
    print(
        f"labmesh: token {issued.info.id} for {issued.info.user}{until}. It is shown this once: labmesh keeps only "
        "its SHA-256 digest. Send it as 'Authorization: Bearer <token>'.",
        file=sys.stderr,
    )
    return 0


def command_tokens_list(ports: Ports, args: argparse.Namespace) -> int:
    if not has_accounts(ports):
        tokens, now = [], datetime.now(UTC)
    else:
        store = token_store(ports)
        tokens, now = store.list_tokens(args.user), store.clock()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": t.id,
                        "user": t.user,
                        "label": t.label,
                        "state": t.state(now),
                        "created_at": t.created_at.isoformat(),
                        "expires_at": t.expires_at.isoformat() if t.expires_at else None,
                        "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
                    }
                    for t in tokens
                ],
                indent=2,
            )
        )
        return 0
    if not tokens:
        print("no API tokens")
        return 0
    rows = [("ID", "USER", "STATE", "CREATED", "EXPIRES", "LABEL")] + [
        (
            t.id,
            t.user,
            t.state(now),
            f"{t.created_at:%Y-%m-%d %H:%M}",
            f"{t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "never",
            shown(t.label),
        )
        for t in tokens
    ]
    print_table(rows)
    return 0


def command_tokens_revoke(ports: Ports, args: argparse.Namespace) -> int:
    info = token_store(ports).revoke(args.id)
    print(f"revoked token {info.id} of {info.user}{f' ({shown(info.label)})' if info.label else ''}")
    return 0


def command_audit(ports: Ports, args: argparse.Namespace) -> int:
    filters = AuditFilter(
        user=args.user,
        kinds=frozenset(AuditKind(kind) for kind in args.kind),
        experiment_id=args.experiment,
        since=args.since,
        until=args.until,
        limit=args.limit,
    )
    from labmesh_dagster.access.stores import audit_exists, open_audit

    access = ports.settings.access
    entries = open_audit(access).read(filters) if audit_exists(access) else []
    if args.json:
        print(json.dumps([entry.as_dict() for entry in entries], indent=2))
        return 0
    if not entries:
        print("no audit entries match")
        return 1
    for entry in entries:
        print(audit_line(entry))
    return 0


def audit_line(entry: AuditEntry) -> str:
    """One entry as a line: when, what, who, then whichever of experiment, file, query, address and detail it has."""
    event = entry.event
    parts = [f"{entry.at:%Y-%m-%d %H:%M:%S}Z", event.kind.value.ljust(12), shown(event.user)]
    for label, value in (
        ("experiment", event.experiment_id),
        ("file", event.file_key),
        ("query", event.query),
        ("from", event.address),
    ):
        if value is not None:
            parts.append(f"{label}={shown(value)}" if label != "query" else f"query={json.dumps(value)}")
    if event.detail:
        parts.append(f"({shown(event.detail)})")
    return "  ".join(parts)


def since_moment(text: str) -> datetime:
    """``--since``: an ISO date (from its midnight, UTC) or date-time (UTC unless it says otherwise)."""
    return _moment(text, end_of_day=False)


def until_moment(text: str) -> datetime:
    """``--until``: through the whole of an ISO date, or up to an ISO date-time."""
    return _moment(text, end_of_day=True)


def _moment(text: str, *, end_of_day: bool) -> datetime:
    try:
        if "T" not in text:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end_of_day else start
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date such as 2026-11-01") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def positive_days(value: str) -> float:
    try:
        days = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of days") from exc
    if not 0 < days < 36600:
        raise argparse.ArgumentTypeError(f"{value!r}: give a number of days above 0")
    return days


def positive_count(value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from exc
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `users`, `tokens` and `audit` to the `labmesh` command."""
    users = commands.add_parser("users", help=f"the portal's local users and their groups {AS_ADMIN}")
    users_commands = users.add_subparsers(dest="users_command", required=True)

    add = users_commands.add_parser("add", help="add a user; the password is asked for (or read with --password-stdin)")
    add.add_argument("name", help="letters, digits and . _ @ + - (an e-mail address fits)")
    add.add_argument(
        "--group", action="append", default=[], help="a group the user is in (repeat for several); sees its experiments"
    )
    add.add_argument("--admin", action="store_true", help="sees every experiment, whatever its group")
    add.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    add.set_defaults(handler=command_users_add)

    listing = users_commands.add_parser("list", help="every user with their groups")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    listing.set_defaults(handler=command_users_list)

    remove = users_commands.add_parser("remove", help="remove a user and their API tokens (the audit log stays)")
    remove.add_argument("name")
    remove.set_defaults(handler=command_users_remove)

    groups = users_commands.add_parser("groups", help="show a user's groups, or replace them with --set")
    groups.add_argument("name")
    groups.add_argument("--set", nargs="*", metavar="GROUP", help="the user's groups from now on (none: no group)")
    groups.set_defaults(handler=command_users_groups)

    password = users_commands.add_parser("password", help="set a user's password")
    password.add_argument("name")
    password.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    password.set_defaults(handler=command_users_password)

    tokens = commands.add_parser("tokens", help=f"API tokens for scripts, acting as their user {AS_ADMIN}")
    tokens_commands = tokens.add_subparsers(dest="tokens_command", required=True)

    create = tokens_commands.add_parser("create", help="make a token for a user and print it, this once")
    create.add_argument("name", help="the user the token acts as")
    create.add_argument("--label", default="", help="what the token is for (a notebook, a pipeline)")
    create.add_argument("--days", type=positive_days, help="expires after this many days (default: never)")
    create.set_defaults(handler=command_tokens_create)

    token_list = tokens_commands.add_parser("list", help="tokens by id, user, state and label (never the token)")
    token_list.add_argument("--user", help="only this user's tokens")
    token_list.add_argument("--json", action="store_true", help="print JSON instead of text")
    token_list.set_defaults(handler=command_tokens_list)

    revoke = tokens_commands.add_parser("revoke", help="refuse a token from now on")
    revoke.add_argument("id", help="the token's id, as `labmesh tokens list` shows it")
    revoke.set_defaults(handler=command_tokens_revoke)

    audit = commands.add_parser(
        "audit", help=f"read the audit log: sign-ins, searches, page views, previews, downloads {AS_ADMIN}"
    )
    audit.add_argument("--user", help="only this user's entries")
    audit.add_argument(
        "--kind",
        action="append",
        default=[],
        choices=[kind.value for kind in AuditKind],
        help="only this kind (repeatable)",
    )
    audit.add_argument("--experiment", help="only entries about this experiment id")
    audit.add_argument("--since", type=since_moment, help="on or after this ISO date or date-time (UTC)")
    audit.add_argument("--until", type=until_moment, help="up to this ISO date-time, or through this whole date")
    audit.add_argument("--limit", type=positive_count, default=50, help="newest entries shown (default 50)")
    audit.add_argument("--json", action="store_true", help="print JSON instead of text")
    audit.set_defaults(handler=command_audit, as_admin=True)  # `labmesh_dagster.cli.main` says so on stderr
