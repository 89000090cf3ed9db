"""Who may see an experiment, as principals: the one rule every reader applies before it forms a result.

An experiment's access comes from its ELN record: its group, its owner, and the
people on it, plus grants kept in labmesh. Each is a *principal*, a string such
as ``group:genomics core`` or ``user:ada``; a viewer holds the principal of
their own name and of each of their groups, and sees an experiment when the two
sets meet. Admins see everything. An experiment with no group is visible to its
owner, its people and admins, never to everyone.

Principals are plain strings so that every backend can apply the rule inside
its own query (an indexed ``IN`` list in SQLite or Postgres, an attribute
filter in a search service) rather than filtering results afterwards. Names
are compared case-insensitively and with surrounding spaces ignored, since an
ELN's "Genomics Core" and an identity provider's "genomics core" are one group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

GROUP = "group:"
USER = "user:"
# Custom ELN fields that list the people on an experiment, as connectors keep them.
PEOPLE_FIELDS = ("people", "members", "collaborators", "team")


def _name(text: str) -> str:
    return " ".join(text.split()).casefold()


def group_principal(group: str) -> str:
    return GROUP + _name(group)


def user_principal(user: str) -> str:
    return USER + _name(user)


def people_on(custom: Mapping[str, Any]) -> list[str]:
    """The people an ELN record lists on the experiment (its custom ``people``/``members``... fields)."""
    people: list[str] = []
    for key in PEOPLE_FIELDS:
        value = custom.get(key)
        values = [value] if isinstance(value, str) else value if isinstance(value, (list, tuple)) else []
        people += [item for item in values if isinstance(item, str) and item.strip()]
    return people


def experiment_principals(
    group: str | None, owner: str | None, people: Iterable[str] = (), grants: Iterable[str] = ()
) -> frozenset[str]:
    """Everyone who may see the experiment, as principals (admins aside: they see everything)."""
    principals = {group_principal(group)} if group and group.strip() else set()
    principals |= {user_principal(name) for name in (owner, *people) if name and name.strip()}
    return frozenset(principals | set(grants))


@dataclass(frozen=True)
class Viewer:
    """Who is asking: a name, their groups, and whether they are an admin (who sees every experiment)."""

    name: str
    groups: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False

    @property
    def principals(self) -> frozenset[str]:
        return frozenset({user_principal(self.name), *(group_principal(group) for group in self.groups)})

    def may_see(self, principals: Iterable[str]) -> bool:
        return self.admin or not self.principals.isdisjoint(principals)


LOCAL_ADMIN = Viewer(name="local admin", admin=True)
"""The CLI on the lab's own machine: it acts as an admin, and says so."""
