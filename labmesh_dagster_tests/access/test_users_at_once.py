"""Two processes changing the users at once, as the portal and the CLI will: nothing lost, nothing doubled.

Contract: processes and connections that open a new access file and add users
at the same moment all succeed and every user is there; two adding the same
name end with one account, and the other is told the name is taken. The same
holds on PostgreSQL (``LABMESH_DATABASE_URL``), where the processes also
create the tables together on a new database.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from labmesh_dagster.access.errors import UserExists
from labmesh_dagster.access.postgres_users import PostgresUserStore
from labmesh_dagster.access.users import UserStore
from labmesh_dagster_tests.access.conftest import Backend, cheap_hasher


def start_users_add(home: Path, name: str, group: str, *, database_url: str | None = None) -> subprocess.Popen[str]:
    database = {"LABMESH_DATABASE_URL": database_url} if database_url else {}
    return subprocess.Popen(
        [sys.executable, "-m", "labmesh_dagster.cli", "users", "add", name, "--group", group, "--password-stdin"],
        cwd=home.parent,
        env={"LABMESH_HOME": str(home), "PATH": "/usr/bin:/bin", **database},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_add_users_to_a_new_access_file_at_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    adding = [start_users_add(home, "ada", "genomics"), start_users_add(home, "grace", "microscopy")]
    results = [process.communicate("correct horse\n", timeout=60) for process in adding]

    assert [process.returncode for process in adding] == [0, 0], results
    found = UserStore(home / "access.sqlite").list_users()
    assert [(user.name, user.groups) for user in found] == [("ada", ("genomics",)), ("grace", ("microscopy",))]


def test_two_processes_adding_one_name_leave_one_account(tmp_path: Path) -> None:
    home = tmp_path / "home"
    adding = [start_users_add(home, "ada", "genomics"), start_users_add(home, "ADA", "microscopy")]
    results = [process.communicate("correct horse\n", timeout=60) for process in adding]

    assert sorted(process.returncode for process in adding) == [0, 2], results
    refused = next(err for (_, err), process in zip(results, adding, strict=True) if process.returncode == 2)
    assert "exists already" in refused
    assert len(UserStore(home / "access.sqlite").list_users()) == 1


@pytest.mark.slow  # two labmesh processes starting: about 3 s on the project's 2-core machine
def test_two_processes_adding_one_name_to_a_new_postgresql_database_leave_one_account(
    tmp_path: Path, postgres_url: str
) -> None:
    home = tmp_path / "home"
    adding = [
        start_users_add(home, "ada", "genomics", database_url=postgres_url),
        start_users_add(home, "ADA", "microscopy", database_url=postgres_url),
    ]
    results = [process.communicate("correct horse\n", timeout=60) for process in adding]

    assert sorted(process.returncode for process in adding) == [0, 2], results
    refused = next(err for (_, err), process in zip(results, adding, strict=True) if process.returncode == 2)
    assert refused.endswith("exists already\n") and refused.startswith("labmesh: user ")
    [user] = PostgresUserStore(postgres_url).list_users()
    assert (user.name, user.groups) in {("ada", ("genomics",)), ("ADA", ("microscopy",))}
    assert not (home / "access.sqlite").exists()


def test_many_connections_adding_at_the_same_moment_lose_no_user(backend: Backend) -> None:
    names = [f"user{number}" for number in range(8)] + ["user0"]
    start = threading.Barrier(len(names))
    outcomes: list[str] = []

    def add(name: str) -> None:
        store = backend.users(hasher=cheap_hasher())  # each opens, and creates, the file or the tables itself
        start.wait()
        try:
            store.add(name, "correct horse", groups=["genomics"])
            outcomes.append("added")
        except UserExists:
            outcomes.append("exists")

    threads = [threading.Thread(target=add, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["added"] * 8 + ["exists"]
    assert [user.name for user in backend.users().list_users()] == sorted(set(names))
