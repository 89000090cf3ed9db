"""An OpenID Connect ID token's claims as a `Viewer`: who signed in, in which groups, and whether an admin.

The portal runs the sign-in flow (Authlib, against any OpenID provider) and
hands this module the claims of the ID token it validated; mapping them needs
no library, so this module takes none.

Providers put groups in different places and shapes, so the claim is named in
the settings (``LABMESH_OIDC_GROUPS_CLAIM``), with a dotted path reaching into
an object (Keycloak's ``realm_access.roles``). Its value may be a list of
names, or one string: split at commas when it has any, since group names may
hold spaces ("Genomics Core, Proteomics"), else at white space (``"genomics
proteomics"``, as some providers send scopes and roles). A missing groups
claim means no groups: the person still sees their own experiments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labmesh_dagster.access.errors import InvalidGroupName, OidcClaimsError
from labmesh_dagster.access.names import group_name, group_names
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.settings import OidcSettings


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """The claim at ``path``: a name, or a dotted path into nested objects; None where it is missing.

    A claim whose own name holds dots (``https://example.org/groups``, as Auth0
    namespaces custom claims) is found first as it is.
    """
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def groups_in(value: Any) -> tuple[str, ...]:
    """Group names from a claim's value: a list of names, or a comma- or space-separated string."""
    if value is None:
        return ()
    if isinstance(value, str):
        names = value.split(",") if "," in value else value.split()
    elif isinstance(value, list | tuple):
        names = [item for item in value if isinstance(item, str)]
    else:
        return ()
    return group_names(name for name in names if _usable(name))


def _usable(name: str) -> bool:
    """Whether a provider's group name can be a labmesh group; one that cannot is left out, not a failed sign-in."""
    try:
        group_name(name)
    except InvalidGroupName:
        return False
    return True


def viewer_from_claims(claims: Mapping[str, Any], settings: OidcSettings) -> Viewer:
    """The viewer the claims describe; `OidcClaimsError` when they name nobody."""
    name = claim(claims, settings.user_claim)
    if not isinstance(name, str) or not name.strip():
        raise OidcClaimsError(
            f"the ID token has no {settings.user_claim!r} claim to name the person; "
            "set LABMESH_OIDC_USER_CLAIM to one it has (email, sub...)"
        )
    groups = groups_in(claim(claims, settings.groups_claim))
    admin_groups = {admin.casefold() for admin in group_names(settings.admin_groups)}
    admin = any(group.casefold() in admin_groups for group in groups)
    return Viewer(name=name.strip(), groups=frozenset(groups), admin=admin)
