"""API tokens: shown once, kept only as a digest, and refused once revoked or expired.

Contract: a new token is returned once and never stored (the access file holds
its SHA-256 digest and nothing from which it could be read back); the token
makes its bearer the user as they are now (their current groups); a revoked or
expired token, a made-up one and one whose user was removed are refused; the
list shows ids, users, labels and states, never a token. Pinned on SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from labmesh_dagster.access.errors import UnknownToken, UnknownUser
from labmesh_dagster.access.tokens import SqliteTokenStore, TokenStore
from labmesh_dagster.access.users import Users, UserStore
from labmesh_dagster.core.access import Viewer
from labmesh_dagster_tests.access.conftest import Backend, ManualClock, cheap_hasher


@pytest.fixture
def ada(users: Users) -> str:
    users.add("ada", "correct horse", groups=["genomics"])
    return "ada"


def test_only_the_digest_of_a_token_is_stored(tokens: TokenStore, ada: str, backend: Backend) -> None:
    issued = tokens.create(ada, label="nightly notebook")

    rows = backend.rows("api_tokens")
    assert len(rows) == 1
    assert hashlib.sha256(issued.token.encode()).hexdigest() in rows[0]
    assert issued.token.startswith(f"lmt_{issued.info.id}_")
    secret = issued.token.removeprefix(f"lmt_{issued.info.id}_")
    assert len(secret) >= 43, "32 random bytes, in URL-safe base64"
    assert not any(secret in str(value) for value in rows[0])


def test_the_access_file_holds_no_token(access_path: Path) -> None:
    UserStore(access_path, hasher=cheap_hasher()).add("ada", "correct horse")
    token = SqliteTokenStore(access_path).create("ada").token

    assert token.split("_", 2)[2].encode() not in access_path.read_bytes()


def test_a_token_acts_as_its_user_as_they_are_now(tokens: TokenStore, users: Users, ada: str) -> None:
    token = tokens.create(ada).token

    assert tokens.viewer_for_token(token) == Viewer("ada", frozenset({"genomics"}), admin=False)
    users.set_groups("ada", ["microscopy"])
    assert tokens.viewer_for_token(token) == Viewer("ada", frozenset({"microscopy"}), admin=False)


def test_a_revoked_token_is_refused_and_revoking_twice_changes_nothing(tokens: TokenStore, ada: str) -> None:
    issued = tokens.create(ada)
    other = tokens.create(ada)

    revoked = tokens.revoke(issued.info.id)

    assert tokens.viewer_for_token(issued.token) is None
    assert tokens.viewer_for_token(other.token) is not None
    assert tokens.revoke(issued.info.id).revoked_at == revoked.revoked_at
    with pytest.raises(UnknownToken):
        tokens.revoke("nosuchid")


def test_an_expired_token_is_refused(tokens: TokenStore, ada: str, clock: ManualClock) -> None:
    issued = tokens.create(ada, expires_at=clock() + timedelta(days=1))

    clock.advance(86399)
    assert tokens.viewer_for_token(issued.token) is not None
    clock.advance(1)
    assert tokens.viewer_for_token(issued.token) is None
    assert tokens.list_tokens()[0].state(clock()) == "expired"


@pytest.mark.parametrize("token", ["", "lmt_", "Bearer x", "lmt_0123456789ab_" + "A" * 43])
def test_a_made_up_token_is_refused(tokens: TokenStore, ada: str, token: str) -> None:
    tokens.create(ada)

    assert tokens.viewer_for_token(token) is None


def test_removing_a_user_removes_their_tokens(tokens: TokenStore, users: Users, ada: str) -> None:
    token = tokens.create(ada).token

    users.remove(ada)

    assert tokens.viewer_for_token(token) is None
    assert tokens.list_tokens() == []


def test_tokens_are_made_only_for_users_there_are(tokens: TokenStore) -> None:
    with pytest.raises(UnknownUser, match="no user 'ghost'"):
        tokens.create("ghost")


def test_the_list_shows_states_and_labels_newest_first(tokens: TokenStore, ada: str, clock: ManualClock) -> None:
    first = tokens.create(ada, label="pipeline")
    clock.advance(60)
    second = tokens.create(ada, label="notebook")
    tokens.revoke(first.info.id)

    listed = tokens.list_tokens("ada")

    assert [(t.id, t.label, t.state(clock())) for t in listed] == [
        (second.info.id, "notebook", "active"),
        (first.info.id, "pipeline", "revoked"),
    ]
    assert tokens.list_tokens("grace") == []


def test_tokens_are_made_and_listed_for_a_user_whatever_the_case_of_the_name(tokens: TokenStore, ada: str) -> None:
    issued = tokens.create("ADA", label="notebook")

    assert issued.info.user == "ada", "the account's own spelling"
    assert [token.id for token in tokens.list_tokens("Ada")] == [issued.info.id]
    viewer = tokens.viewer_for_token(issued.token)
    assert viewer is not None and viewer.name == "ada"
