"""What a user name and a group name may be.

A user name becomes the principal ``user:<name>``, a URL segment in the portal
and a column in the audit log, so it is one plain token: letters, digits and
``. _ @ + -`` (an e-mail address fits), starting with a letter or digit.
Names are unique ignoring case, as principals compare them.

Group names come from ELNs and identity providers ("Genomics Core"), so they
keep their spaces and case; only runs of white space are made one space, the
same way `labmesh_dagster.core.access` compares them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from labmesh_dagster.access.errors import InvalidGroupName, InvalidUserName

USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
GROUP_NAME_MAX = 256


def user_name(name: str) -> str:
    """``name`` if it is a valid user name, else `InvalidUserName` saying what is allowed."""
    if not USER_NAME.fullmatch(name):
        raise InvalidUserName(
            f"{name!r} is not a user name: use 1 to 128 letters, digits and . _ @ + -, starting with a letter or digit"
        )
    return name


def group_name(name: str) -> str:
    """The group name with its white space tidied; `InvalidGroupName` if nothing is left or it holds controls."""
    tidy = " ".join(name.split())
    if not tidy or len(tidy) > GROUP_NAME_MAX:
        raise InvalidGroupName(f"{name!r} is not a group name: use 1 to {GROUP_NAME_MAX} characters")
    if any(unicodedata.category(char).startswith("C") for char in tidy):
        raise InvalidGroupName(f"{name!r} is not a group name: it holds control characters")
    return tidy


def group_names(names: Iterable[str]) -> tuple[str, ...]:
    """Tidied group names, each once (ignoring case, as principals do), in the order first given."""
    seen: dict[str, str] = {}
    for name in names:
        tidy = group_name(name)
        seen.setdefault(tidy.casefold(), tidy)
    return tuple(seen.values())
