"""labmesh's PostgreSQL stores migrate their own tables (each step once, in order, never from a newer release),
and reuse their connections while the server keeps them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from labmesh_dagster.connectors.postgres import (
    DatabaseUnavailable,
    DatabaseUrlError,
    check_url,
    connect,
    open_connection,
    redacted,
)
from labmesh_dagster.connectors.postgres_migrations import Migrations, SchemaTooNew, migrate
from labmesh_dagster_tests.postgres_databases import SERVER_URL as SERVER

NOTES_V1 = Migrations("notes", ("CREATE TABLE notes (id TEXT PRIMARY KEY)",))
NOTES_V2 = Migrations("notes", (*NOTES_V1.steps, "ALTER TABLE notes ADD COLUMN body TEXT NOT NULL DEFAULT ''"))


def columns(url: str, table: str) -> list[str]:
    with connect(url) as db:
        rows = db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()
    return [row["column_name"] for row in rows]


def test_a_new_database_gets_every_step_and_a_second_run_applies_none(postgres_url: str) -> None:
    assert migrate(postgres_url, NOTES_V2) == 2
    assert migrate(postgres_url, NOTES_V2) == 0
    assert columns(postgres_url, "notes") == ["id", "body"]


def test_an_upgrade_applies_only_the_new_steps_and_keeps_the_rows(postgres_url: str) -> None:
    migrate(postgres_url, NOTES_V1)
    with connect(postgres_url) as db:
        db.execute("INSERT INTO notes (id) VALUES ('kept')")
    assert migrate(postgres_url, NOTES_V2) == 1
    with connect(postgres_url) as db:
        assert db.execute("SELECT id, body FROM notes").fetchall() == [{"id": "kept", "body": ""}]


def test_processes_starting_together_apply_each_step_once(postgres_url: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        applied = list(pool.map(lambda _: migrate(postgres_url, NOTES_V2), range(4)))
    assert sum(applied) == 2
    with connect(postgres_url) as db:
        versions = db.execute("SELECT version FROM labmesh_migrations WHERE store = 'notes' ORDER BY 1").fetchall()
    assert [row["version"] for row in versions] == [1, 2]
    assert columns(postgres_url, "notes") == ["id", "body"]


def test_a_failing_step_leaves_the_database_at_the_step_before(postgres_url: str) -> None:
    broken = Migrations("notes", (*NOTES_V1.steps, "ALTER TABLE notes ADD COLUMN body NOT_A_TYPE"))
    with pytest.raises(Exception, match="not_a_type"):
        migrate(postgres_url, broken)
    assert columns(postgres_url, "notes") == ["id"]
    assert migrate(postgres_url, NOTES_V2) == 1


def test_a_database_from_a_newer_release_is_refused(postgres_url: str) -> None:
    migrate(postgres_url, NOTES_V2)
    with pytest.raises(SchemaTooNew, match="notes tables are at version 2.*knows \\(1\\)"):
        migrate(postgres_url, NOTES_V1)


def test_stores_keep_their_histories_apart(postgres_url: str) -> None:
    migrate(postgres_url, NOTES_V2)
    assert migrate(postgres_url, Migrations("tags", ("CREATE TABLE tags (name TEXT)",))) == 1


def test_an_unreachable_server_is_retried_then_named_without_its_password() -> None:
    pauses: list[float] = []
    url = "postgresql://lab:hunter2@127.0.0.1:1/labmesh"
    with pytest.raises(DatabaseUnavailable, match=r"lab:\*\*\*@127.0.0.1:1/labmesh.*after 3 attempts") as raised:
        open_connection(url, sleep=pauses.append, attempts=3)
    assert "hunter2" not in str(raised.value)
    assert pauses == [0.2, 0.4]


@pytest.mark.parametrize(
    ("url", "problem"),
    [("mysql://lab@db/labmesh", "expected a postgresql:// URL"), ("postgresql://lab:pw@db:5432/", "names no database")],
)
def test_a_url_that_is_not_a_postgres_database_is_refused_clearly(url: str, problem: str) -> None:
    with pytest.raises(DatabaseUrlError, match=problem) as raised:
        check_url(url)
    assert "pw" not in str(raised.value).replace("postgresql", "")


def test_redaction_keeps_user_host_and_database() -> None:
    assert (
        redacted("postgresql://lab:s3cret@db.internal:5432/labmesh") == "postgresql://lab:***@db.internal:5432/labmesh"
    )
    assert redacted("postgresql://lab@db/labmesh") == "postgresql://lab@db/labmesh"


def backend_pid(url: str) -> int:
    with connect(url) as db:
        return int(db.execute("SELECT pg_backend_pid() AS pid").fetchone()["pid"])


def test_a_connection_is_kept_for_the_next_operation(postgres_url: str) -> None:
    assert backend_pid(postgres_url) == backend_pid(postgres_url)


def test_a_connection_the_server_ended_is_replaced_not_handed_out(postgres_url: str) -> None:
    first = backend_pid(postgres_url)
    with connect(SERVER) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
    assert backend_pid(postgres_url) != first


def test_a_connection_left_by_an_exception_is_closed_not_kept(postgres_url: str) -> None:
    first = backend_pid(postgres_url)
    with pytest.raises(RuntimeError), connect(postgres_url) as db:
        db.execute("BEGIN")
        raise RuntimeError("the store's code failed mid-transaction")
    assert backend_pid(postgres_url) != first
