"""The lineage graph shaped for one viewer: node ids opaque and stable, others' nodes nameless, files on request.

Pinned here: ids stay the same for the same server key (the page merges an
expansion into what it drew) and change with the key (they cannot be
recomputed from guessed experiment ids); an id asked to expand that is
restricted, unknown or not a dataset adds nothing; a viewer who may see
nothing else still gets the experiment's shape with every foreign node as
``{"id", "label": "restricted", "restricted": true}``.
"""

from __future__ import annotations

import json

from labmesh_dagster.lineage.graph import build_graph
from labmesh_dagster.lineage.view import lineage_json
from labmesh_dagster_tests.portal.lineage_lab import OTHER_FILE, cross_experiment_events

GRAPH = build_graph(cross_experiment_events())


def own_only(experiment_id: str) -> bool:
    return experiment_id == "EXP-1"


def test_ids_are_stable_under_one_key_and_change_with_it() -> None:
    first = lineage_json(GRAPH, "EXP-1", may_see=own_only, secret=b"one")
    again = lineage_json(GRAPH, "EXP-1", may_see=own_only, secret=b"one")
    other = lineage_json(GRAPH, "EXP-1", may_see=own_only, secret=b"two")

    ids = [node["id"] for node in first["nodes"]]
    assert ids == [node["id"] for node in again["nodes"]]
    assert set(ids).isdisjoint(node["id"] for node in other["nodes"])


def test_restricted_unknown_and_run_ids_expand_nothing() -> None:
    first = lineage_json(GRAPH, "EXP-1", may_see=own_only, secret=b"k")
    refused = [node["id"] for node in first["nodes"] if node["restricted"] or node.get("kind") == "run"]

    answer = lineage_json(GRAPH, "EXP-1", may_see=own_only, secret=b"k", expand=[*refused, "d-unknown"])

    assert answer["expanded"] == []
    assert answer["nodes"] == first["nodes"]


def test_foreign_nodes_are_restricted_and_a_full_viewer_sees_them_named() -> None:
    expand_all = [node["id"] for node in lineage_json(GRAPH, "EXP-1", may_see=lambda _: True, secret=b"k")["nodes"]]

    limited = lineage_json(GRAPH, "EXP-1", may_see=own_only, secret=b"k", expand=expand_all)
    full = lineage_json(GRAPH, "EXP-1", may_see=lambda _: True, secret=b"k", expand=expand_all)

    assert [node for node in limited["nodes"] if node["restricted"]] == [
        {"id": node["id"], "label": "restricted", "restricted": True} for node in limited["nodes"] if node["restricted"]
    ]
    assert "EXP-2" not in json.dumps(limited) and OTHER_FILE in json.dumps(full)
    assert len(limited["nodes"]) == len(full["nodes"]) and len(limited["edges"]) == len(full["edges"])
