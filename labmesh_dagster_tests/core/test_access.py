"""Who may see an experiment: its group, its owner, the people on it, grants; admins see all; no group is no one else.

Pinned here: principals compare names without case or surrounding spaces, an
experiment without a group is visible to its owner, its people and admins
only, and a viewer holds their own name's and their groups' principals.
"""

from __future__ import annotations

from labmesh_dagster.core.access import (
    LOCAL_ADMIN,
    Viewer,
    experiment_principals,
    group_principal,
    people_on,
    user_principal,
)


def test_an_experiment_is_seen_by_its_group_owner_people_and_grants_only() -> None:
    principals = experiment_principals("Genomics Core", "Ada", people=["grace"], grants=[group_principal("imaging")])

    assert Viewer("bob", frozenset({" genomics  core "})).may_see(principals)
    assert Viewer("ADA").may_see(principals)
    assert Viewer("Grace", frozenset({"proteomics"})).may_see(principals)
    assert Viewer("ida", frozenset({"Imaging"})).may_see(principals)
    assert not Viewer("eve", frozenset({"proteomics"})).may_see(principals)
    assert LOCAL_ADMIN.may_see(principals)


def test_an_experiment_without_a_group_is_not_everyones() -> None:
    principals = experiment_principals(None, "ada")

    assert principals == {user_principal("ada")}
    assert not Viewer("bob", frozenset({"genomics core"})).may_see(principals)
    assert not Viewer("bob").may_see(experiment_principals("  ", None))
    assert LOCAL_ADMIN.may_see(experiment_principals(None, None))


def test_the_people_on_an_experiment_come_from_the_eln_records_custom_fields() -> None:
    custom = {"people": ["ada", " "], "collaborators": "grace", "team": 3, "members": ("alan",)}

    assert people_on(custom) == ["ada", "alan", "grace"]
