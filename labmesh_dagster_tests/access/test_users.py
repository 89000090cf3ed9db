"""Local users: a password proves who someone is, and their groups say what they see.

Contract: an added user signs in with their password and becomes a `Viewer`
with their groups; a wrong password or an unknown name gives None; names are
unique ignoring case; only an Argon2id hash of the password is stored; a hash
made with older parameters is replaced by one with today's on the next good
sign-in (and never when the password was wrong); groups can be replaced;
removing a user ends their sign-ins. Pinned on SQLite and PostgreSQL alike;
on SQLite the access file is also readable by its owner only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from labmesh_dagster.access.errors import InvalidGroupName, InvalidUserName, UnknownUser, UnusablePassword, UserExists
from labmesh_dagster.access.users import Users, UserStore
from labmesh_dagster.core.access import Viewer, experiment_principals
from labmesh_dagster_tests.access.conftest import START, Backend, ManualClock, cheap_hasher


def stored_hash(backend: Backend, name: str) -> str:
    [password_hash] = [row[1] for row in backend.rows("users", "name, password_hash") if row[0] == name]
    return str(password_hash)


def test_a_user_signs_in_with_their_password_and_sees_their_groups(users: Users) -> None:
    users.add("ada", "correct horse", groups=["Genomics Core", "proteomics"])

    user = users.authenticate("ada", "correct horse")

    assert user is not None
    assert user.viewer == Viewer(name="ada", groups=frozenset({"Genomics Core", "proteomics"}), admin=False)
    assert user.viewer.may_see(experiment_principals("genomics core", "grace"))
    assert not user.viewer.may_see(experiment_principals("microscopy", "grace"))
    assert user.created_at == START


def test_a_wrong_password_or_an_unknown_name_signs_nobody_in(users: Users) -> None:
    users.add("ada", "correct horse")

    assert users.authenticate("ada", "correct horsE") is None
    assert users.authenticate("grace", "correct horse") is None
    assert users.authenticate("ada", "") is None


def test_the_store_keeps_an_argon2id_hash_and_never_the_password(users: Users, backend: Backend) -> None:
    users.add("ada", "correct horse", groups=["genomics"])

    assert stored_hash(backend, "ada").startswith("$argon2id$")
    kept = [*backend.rows("users"), *backend.rows("user_groups")]
    assert not any("correct horse" in str(value) for row in kept for value in row)


def test_the_access_file_holds_no_password_and_is_readable_by_its_owner_only(access_path: Path) -> None:
    UserStore(access_path, hasher=cheap_hasher()).add("ada", "correct horse")

    assert b"correct horse" not in access_path.read_bytes()
    assert access_path.stat().st_mode & 0o077 == 0, "the access file is readable by its owner only"


def test_names_are_unique_ignoring_case_and_sign_in_ignores_case_too(users: Users) -> None:
    users.add("Ada", "correct horse")

    with pytest.raises(UserExists, match="'ada' exists already"):
        users.add("ada", "another password")
    signed_in = users.authenticate("ADA", "correct horse")
    assert signed_in is not None and signed_in.name == "Ada"


def test_an_admin_sees_every_experiment(users: Users) -> None:
    users.add("root", "correct horse", admin=True)

    admin = users.authenticate("root", "correct horse")

    assert admin is not None and admin.viewer.admin
    assert admin.viewer.may_see(experiment_principals(None, None))


def test_a_hash_with_old_parameters_is_replaced_at_the_next_good_sign_in(backend: Backend) -> None:
    backend.users(hasher=cheap_hasher(time_cost=1)).add("ada", "correct horse")
    old = stored_hash(backend, "ada")
    stronger = backend.users(hasher=cheap_hasher(time_cost=2))

    assert stronger.authenticate("ada", "wrong password") is None
    assert stored_hash(backend, "ada") == old, "a wrong password changes nothing"
    assert stronger.authenticate("ada", "correct horse") is not None
    assert "t=1" in old and "t=2" in stored_hash(backend, "ada")
    assert stronger.authenticate("ada", "correct horse") is not None


def test_groups_are_replaced_and_removing_a_user_ends_their_sign_ins(users: Users) -> None:
    users.add("ada", "correct horse", groups=["genomics"])

    assert users.set_groups("ada", ["microscopy", "Microscopy ", "imaging"]).groups == ("microscopy", "imaging")
    assert users.set_groups("ada", []).groups == ()
    users.remove("ada")

    assert users.authenticate("ada", "correct horse") is None
    assert users.list_users() == []
    with pytest.raises(UnknownUser):
        users.remove("ada")


def test_a_password_can_be_changed(users: Users) -> None:
    users.add("ada", "correct horse")

    users.set_password("ada", "battery staple")

    assert users.authenticate("ada", "correct horse") is None
    assert users.authenticate("ada", "battery staple") is not None


def test_list_gives_every_user_by_name_with_their_groups(users: Users, clock: ManualClock) -> None:
    users.add("grace", "correct horse", groups=["microscopy"])
    users.add("ada", "correct horse", groups=["genomics", "proteomics"], admin=True)

    assert [(u.name, u.groups, u.admin) for u in users.list_users()] == [
        ("ada", ("genomics", "proteomics"), True),
        ("grace", ("microscopy",), False),
    ]


@pytest.mark.parametrize("name", ["", "ada lovelace", "../ada", "-ada", "ada\n", "a" * 129, "ädä"])
def test_a_name_that_is_not_one_plain_token_is_refused(users: Users, name: str) -> None:
    with pytest.raises(InvalidUserName, match="is not a user name"):
        users.add(name, "correct horse")


def test_short_passwords_and_empty_groups_are_refused(users: Users) -> None:
    with pytest.raises(UnusablePassword, match="at least 8"):
        users.add("ada", "short")
    with pytest.raises(InvalidGroupName):
        users.add("ada", "correct horse", groups=["  "])
    assert users.list_users() == []


def test_a_user_is_found_listed_and_removed_whatever_the_case_of_the_name(users: Users) -> None:
    users.add("grace", "correct horse")
    users.add("Ada", "correct horse", groups=["genomics"])
    users.add("bob", "correct horse")

    assert [user.name for user in users.list_users()] == ["Ada", "bob", "grace"], "by name, ignoring case"
    found = users.get("ADA")
    assert found is not None and (found.name, found.groups) == ("Ada", ("genomics",))
    assert users.set_groups("aDa", ["imaging"]).groups == ("imaging",)
    assert users.remove("ada").name == "Ada"
    assert [user.name for user in users.list_users()] == ["bob", "grace"]
