"""`labmesh users`, `labmesh tokens` and `labmesh audit` as an operator uses them.

Contract: `users add` takes the password from a prompt typed twice or one
line of stdin, never the command line, and the user can then sign in; `users
list`, `users groups` and `users remove` show and change what the store holds;
a taken name or an unknown user exits 2 with one clear line; `tokens create`
prints the token alone on stdout, once, and `tokens list` never shows it;
`tokens revoke` ends it; `audit` filters by user, kind, experiment and dates,
prints text with controls escaped or JSON, and exits 1 when nothing matches.
The same commands work on the SQLite files under the home and, with
``LABMESH_DATABASE_URL``, on PostgreSQL. Looking at an empty home creates no
file.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from labmesh_dagster import cli
from labmesh_dagster.access.audit import AuditEvent, AuditKind
from labmesh_dagster.access.stores import open_audit, open_tokens, open_users
from labmesh_dagster.settings import Settings
from labmesh_dagster_tests.access.conftest import ManualClock
from labmesh_dagster_tests.conftest import make_settings


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A lab whose accounts and audit log are SQLite files under its home, then one whose are in PostgreSQL."""
    if request.param == "sqlite":
        return make_settings(tmp_path / "home")
    return make_settings(tmp_path / "home", LABMESH_DATABASE_URL=request.getfixturevalue("postgres_schema_url"))


Labmesh = Callable[..., int]


@pytest.fixture
def labmesh(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Labmesh:
    """The command on the test's home: ``labmesh("users", "list")``, with ``stdin=`` for what is piped in."""

    def run(*argv: str, stdin: str | None = None) -> int:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        return cli.main(list(argv), settings=settings)

    return run


def test_an_operator_adds_lists_regroups_and_removes_a_user(
    settings: Settings, labmesh: Labmesh, capsys: pytest.CaptureFixture[str]
) -> None:
    run = labmesh
    groups = ["--group", "Genomics Core", "--group", "proteomics"]

    assert run("users", "add", "ada", *groups, "--password-stdin", stdin="correct horse\n") == 0
    assert capsys.readouterr().out == "added user ada (Genomics Core, proteomics)\n"
    assert run("users", "add", "root", "--admin", "--password-stdin", stdin="root password\n") == 0
    capsys.readouterr()

    assert run("users", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["NAME", "ADMIN"], ["ada", "-"], ["root", "admin"]]
    assert lines[1].endswith("Genomics Core, proteomics") and lines[2].endswith("-")

    assert run("users", "groups", "ada", "--set", "microscopy", "imaging") == 0
    assert capsys.readouterr().out == "ada: microscopy, imaging\n"
    assert run("users", "groups", "ada") == 0
    assert capsys.readouterr().out == "ada: microscopy, imaging\n"
    signed_in = open_users(settings.access).authenticate("ada", "correct horse")
    assert signed_in is not None and signed_in.groups == ("microscopy", "imaging")

    assert run("users", "remove", "ada") == 0
    assert "removed user ada and their 0 API token(s)" in capsys.readouterr().out
    assert run("users", "list", "--json") == 0
    assert [user["name"] for user in json.loads(capsys.readouterr().out)] == ["root"]


def test_the_password_is_asked_twice_at_a_prompt(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    typed = iter(["correct horse", "correct horse", "battery staple", "battery stapler"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(typed))

    assert cli.main(["users", "add", "ada"], settings=settings) == 0
    assert cli.main(["users", "password", "ada"], settings=settings) == 2
    assert "the two passwords differ; nothing was changed" in capsys.readouterr().err
    assert open_users(settings.access).authenticate("ada", "correct horse") is not None


def test_mistakes_exit_2_with_one_clear_line(labmesh: Labmesh, capsys: pytest.CaptureFixture[str]) -> None:
    run = labmesh
    run("users", "add", "ada", "--password-stdin", stdin="correct horse\n")
    capsys.readouterr()

    assert run("users", "add", "ADA", "--password-stdin", stdin="other password\n") == 2
    assert capsys.readouterr().err == "labmesh: user 'ADA' exists already\n"
    assert run("users", "add", "grace", "--password-stdin", stdin="short\n") == 2
    assert "at least 8 characters" in capsys.readouterr().err
    assert run("users", "remove", "grace") == 2
    assert "no user 'grace'" in capsys.readouterr().err
    assert run("tokens", "revoke", "0123abcd") == 2
    assert "no token '0123abcd'" in capsys.readouterr().err


def test_a_token_is_printed_once_and_works_until_revoked(
    settings: Settings, labmesh: Labmesh, capsys: pytest.CaptureFixture[str]
) -> None:
    labmesh("users", "add", "ada", "--group", "genomics", "--password-stdin", stdin="correct horse\n")
    capsys.readouterr()

    assert cli.main(["tokens", "create", "ada", "--label", "nightly notebook", "--days", "30"], settings=settings) == 0
    created = capsys.readouterr()
    token = created.out.strip()
    assert created.out == token + "\n" and token.startswith("lmt_")
    assert "shown this once" in created.err and "valid until" in created.err
    tokens = open_tokens(settings.access)
    viewer = tokens.viewer_for_token(token)
    assert viewer is not None and viewer.name == "ada"

    assert cli.main(["tokens", "list"], settings=settings) == 0
    listed = capsys.readouterr().out
    token_id = token.split("_")[1]
    assert token not in listed and token_id in listed and "active" in listed and "nightly notebook" in listed

    assert cli.main(["tokens", "revoke", token_id], settings=settings) == 0
    assert capsys.readouterr().out == f"revoked token {token_id} of ada (nightly notebook)\n"
    assert tokens.viewer_for_token(token) is None
    assert cli.main(["tokens", "list", "--json"], settings=settings) == 0
    assert [entry["state"] for entry in json.loads(capsys.readouterr().out)] == ["revoked"]


def test_audit_reads_the_log_with_filters(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    clock = ManualClock(datetime(2026, 12, 4, 23, 0, tzinfo=UTC))
    log = open_audit(settings.access, clock=clock)
    for event in (
        AuditEvent(AuditKind.LOGIN_FAILED, "ada\x1b[2J", address="10.0.0.9", detail="wrong user name or password"),
        AuditEvent(AuditKind.LOGIN, "ada", address="10.0.0.1", detail="password"),
        AuditEvent(AuditKind.SEARCH, "ada", query='fibrosis "liver"'),
        AuditEvent(AuditKind.DOWNLOAD, "ada", experiment_id="EXP-42", file_key="raw/EXP-42/a.fastq.gz"),
        AuditEvent(AuditKind.PREVIEW, "grace", experiment_id="EXP-7", file_key="raw/EXP-7/plate.csv"),
    ):
        log.record(event)
        clock.advance(3600)  # one an hour, from 23:00 on the 4th

    assert cli.main(["audit", "--user", "ada", "--kind", "download", "--kind", "search"], settings=settings) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2026-12-05 02:00:00Z  download      ada  experiment=EXP-42  file=raw/EXP-42/a.fastq.gz",
        '2026-12-05 01:00:00Z  search        ada  query="fibrosis \\"liver\\""',
    ]
    assert cli.main(["audit", "--until", "2026-12-04"], settings=settings) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2026-12-04 23:00:00Z  login_failed  ada\\x1b[2J  from=10.0.0.9  (wrong user name or password)"
    ]
    assert cli.main(["audit", "--since", "2026-12-05T02:00", "--experiment", "EXP-7", "--json"], settings=settings) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert (entry["user"], entry["kind"], entry["file_key"]) == ("grace", "preview", "raw/EXP-7/plate.csv")
    assert cli.main(["audit", "--limit", "1"], settings=settings) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1

    assert cli.main(["audit", "--user", "nobody"], settings=settings) == 1
    assert capsys.readouterr().out == "no audit entries match\n"


def test_looking_at_an_empty_home_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(tmp_path / "home")

    assert cli.main(["users", "list"], settings=settings) == 0
    assert cli.main(["tokens", "list"], settings=settings) == 0
    assert cli.main(["audit"], settings=settings) == 1

    assert "no users yet" in capsys.readouterr().out
    assert not settings.access.access_path.exists() and not settings.access.audit_path.exists()


def test_a_date_that_is_not_iso_is_refused_when_the_command_is_read(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["audit", "--since", "yesterday"], settings=settings)

    assert caught.value.code == 2
    assert "'yesterday' is not an ISO date" in capsys.readouterr().err


def test_with_a_database_url_the_accounts_are_in_postgresql_and_no_file_is_made(
    tmp_path: Path, postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_postgres = make_settings(tmp_path / "home", LABMESH_DATABASE_URL=postgres_schema_url)
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))

    assert cli.main(["users", "add", "ada", "--group", "genomics", "--password-stdin"], settings=on_postgres) == 0
    assert cli.main(["tokens", "create", "ada"], settings=on_postgres) == 0

    assert not on_postgres.access.access_path.exists() and not on_postgres.access.audit_path.exists()
    from labmesh_dagster.access.postgres_users import PostgresUserStore

    signed_in = PostgresUserStore(postgres_schema_url).authenticate("ada", "correct horse")
    assert signed_in is not None and signed_in.groups == ("genomics",)
