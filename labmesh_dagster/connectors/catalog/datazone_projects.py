"""Which DataZone project owns an experiment's assets, and whether they are listed in the domain's catalog.

DataZone draws its one visibility line at the project: an asset in a project's
inventory is seen by that project's members only, while a *listing* (a
published asset) appears in the catalog's global search for every user of the
domain ("Unpublish an asset", DataZone user guide: once unpublished "it no
longer appears in global search results"). Membership is per project
(``CreateProjectMembership`` takes a project and a user or group profile, never
an asset), so nothing in DataZone lets one person see one asset of a project and
not the others.

labmesh's access (`labmesh_dagster.core.access`) is therefore carried over as
far as that goes, and no further:

- an experiment of a group the operator mapped to a project is owned by that
  project and published, as a group's data is in DataZone;
- an experiment with no group, or of a group mapped to no project, is owned by
  the *restricted* project (the operator makes only admins its members) and is
  never published, so only that project's members see it in DataZone;
- the people on an experiment and labmesh's grants have no DataZone
  counterpart: labmesh applies them in its own portal, search and API.

A ``*`` entry maps every group not named otherwise; without a mapping at all,
every group is ``*`` to the one labmesh project, as before groups were mapped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from labmesh_dagster.core.access import group_principal

OTHER_GROUPS = "*"
"""The mapping key for every group not named in it."""

PROJECT_ID = re.compile(r"[a-zA-Z0-9_-]{1,36}")
"""DataZone's pattern for a project id (``ProjectId`` in the service model)."""


@dataclass(frozen=True)
class Placement:
    """Where an experiment's assets live in DataZone: the owning project, and whether they are published."""

    project_id: str
    listed: bool


@dataclass(frozen=True)
class GroupProjects:
    """The operator's map from labmesh groups to DataZone projects, and the restricted project for the rest.

    Group names are compared as `labmesh_dagster.core.access` compares them
    (case and surrounding spaces ignored), so the ELN's "Genomics Core" and the
    mapping's "genomics core" are one group.
    """

    by_group: Mapping[str, str]
    restricted_project_id: str

    @classmethod
    def build(cls, mapping: Mapping[str, str], *, restricted_project_id: str) -> GroupProjects:
        """From ``{group or "*": project id}``; `ValueError` names a project id DataZone refuses, or a contradiction."""
        by_group: dict[str, str] = {}
        for group, project_id in mapping.items():
            if not group.strip():
                raise ValueError(f"an empty group name is mapped to DataZone project {project_id!r}")
            _check_project(project_id, f"group {group!r}")
            key = OTHER_GROUPS if group.strip() == OTHER_GROUPS else group_principal(group)
            if by_group.get(key, project_id) != project_id:
                raise ValueError(
                    f"group {group!r} is mapped to two DataZone projects: {by_group[key]} and {project_id}"
                )
            by_group[key] = project_id
        _check_project(restricted_project_id, "the restricted project")
        return cls(by_group=by_group, restricted_project_id=restricted_project_id)

    def placement(self, group: str | None) -> Placement:
        """The group's project, published; no group or an unmapped one: the restricted project, unpublished."""
        if group and group.strip():
            project_id = self.by_group.get(group_principal(group)) or self.by_group.get(OTHER_GROUPS)
            if project_id:
                return Placement(project_id=project_id, listed=True)
        return Placement(project_id=self.restricted_project_id, listed=False)

    @property
    def project_ids(self) -> frozenset[str]:
        """Every project labmesh writes assets into: the mapped ones and the restricted one."""
        return frozenset({*self.by_group.values(), self.restricted_project_id})


def _check_project(project_id: str, what: str) -> None:
    if not PROJECT_ID.fullmatch(project_id):
        raise ValueError(f"{what}: {project_id!r} is not a DataZone project id (1 to 36 letters, digits, _ or -)")
