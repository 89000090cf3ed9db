"""An identity provider's ID token claims as a viewer, whatever shape the provider gives its groups.

Contract: the person is named by the configured claim, and claims naming
nobody are refused; groups come from the configured claim, found as it is or
by a dotted path, as a list or as a comma- or space-separated string (commas
win, so names may hold spaces); no groups claim means no groups; membership
of a configured admin group (ignoring case) makes an admin.
"""

from __future__ import annotations

from typing import Any

import pytest

from labmesh_dagster.access.errors import OidcClaimsError
from labmesh_dagster.access.oidc import viewer_from_claims
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.settings import Settings

PROVIDER = {"LABMESH_LOGIN": "oidc", "LABMESH_OIDC_ISSUER": "https://login.example.org", "LABMESH_OIDC_CLIENT_ID": "lm"}


def viewer(claims: dict[str, Any], **env: str) -> Viewer:
    oidc = Settings.from_env({**PROVIDER, **env}).access.oidc
    assert oidc is not None
    return viewer_from_claims(claims, oidc)


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        (["Genomics Core", "proteomics"], {"Genomics Core", "proteomics"}),
        ("Genomics Core, proteomics", {"Genomics Core", "proteomics"}),
        ("genomics proteomics", {"genomics", "proteomics"}),
        ("", set()),
        (None, set()),
        (["genomics", 7, "  "], {"genomics"}),
    ],
)
def test_groups_come_as_a_list_or_a_separated_string(groups: Any, expected: set[str]) -> None:
    claims = {"sub": "1234", "preferred_username": "ada", "groups": groups}

    assert viewer(claims) == Viewer("ada", frozenset(expected), admin=False)


def test_the_groups_claim_is_configurable_and_may_be_a_dotted_path() -> None:
    keycloak = {"preferred_username": "ada", "realm_access": {"roles": ["genomics"]}}
    auth0 = {"preferred_username": "ada", "https://lab.example.org/groups": ["genomics"]}

    assert viewer(keycloak, LABMESH_OIDC_GROUPS_CLAIM="realm_access.roles").groups == {"genomics"}
    assert viewer(auth0, LABMESH_OIDC_GROUPS_CLAIM="https://lab.example.org/groups").groups == {"genomics"}
    assert viewer({"preferred_username": "ada", "roles": ["genomics"]}).groups == frozenset()


def test_the_person_is_named_by_the_configured_claim() -> None:
    claims = {"sub": "f81d4fae", "email": "ada@example.org"}

    assert viewer(claims, LABMESH_OIDC_USER_CLAIM="email").name == "ada@example.org"
    with pytest.raises(OidcClaimsError, match="no 'preferred_username' claim"):
        viewer(claims)


def test_members_of_an_admin_group_see_everything() -> None:
    claims = {"preferred_username": "ada", "groups": ["Lab-Admins", "genomics"]}

    assert viewer(claims, LABMESH_OIDC_ADMIN_GROUPS="lab-admins, it").admin
    assert not viewer(claims).admin
