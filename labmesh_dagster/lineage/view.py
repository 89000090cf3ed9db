"""One experiment's lineage as nodes and edges for a graph view, with what the viewer may not see left nameless.

The portal draws this with Cytoscape.js: datasets by zone, each pipeline run
as a node between the datasets it read and wrote, and, for a dataset the
viewer expands, its files with the file-level edges (``derivedFrom``) that
lead into them. The first answer holds datasets and runs only, because an
experiment can have thousands of files; files come one dataset at a time.

Access is applied while the nodes are formed, not by filtering afterwards.
Lineage crosses experiments (a summary can be computed from another group's
raw files), so every node is checked against the experiment it belongs to. A
node the viewer may not see becomes ``{"id", "label": "restricted",
"restricted": true}``: no name, key, location or experiment id. Its id is an
HMAC of what it names under a key the server keeps, so it stays the same
between the first answer and an expansion (the page merges them) but cannot
be reversed by guessing experiment ids, which are short and predictable.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from labmesh_dagster.core.errors import InvalidExperimentId, InvalidObjectKey
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.lineage.graph import DatasetId, DatasetNode, LineageGraph, RunNode

RESTRICTED = "restricted"
_ZONE_ORDER = {zone.value: position for position, zone in enumerate(Zone)}
_PAGE_ZONES = frozenset({Zone.RAW.value, Zone.PROCESSED.value, Zone.FINAL.value})

Json = dict[str, Any]


def restricted_node(node_id: str) -> Json:
    """What a node the viewer may not see shows: an opaque id and nothing else."""
    return {"id": node_id, "label": RESTRICTED, "restricted": True}


def file_experiment(key: str) -> str | None:
    """The experiment a ``<zone>/<experiment>/<path>`` key belongs to, if the key names one."""
    try:
        return ObjectKey.parse(key).experiment_id
    except (InvalidObjectKey, InvalidExperimentId, ValueError):
        return None


@dataclass
class LineageView:
    """Shapes one experiment's `LineageGraph` into JSON for one viewer.

    ``may_see`` answers for an experiment id (the caller applies the catalog's
    principals and the viewer); ``secret`` keys the opaque node ids.
    """

    graph: LineageGraph
    experiment_id: str
    may_see: Callable[[str], bool]
    secret: bytes
    _seen: dict[str, bool] = field(default_factory=dict, init=False, repr=False)

    def node_id(self, kind: str, name: str) -> str:
        digest = hmac.new(self.secret, f"{kind}\0{name}".encode(), hashlib.sha256).hexdigest()
        return f"{kind[0]}{digest[:20]}"

    def visible(self, experiment_id: str | None) -> bool:
        # A node no experiment claims came in this experiment's own events: it is this experiment's.
        owner = experiment_id or self.experiment_id
        if owner not in self._seen:
            self._seen[owner] = self.may_see(owner)
        return self._seen[owner]

    def dataset_id(self, ref: DatasetId) -> str:
        return self.node_id("dataset", f"{ref.namespace}\0{ref.name}")

    def run_id(self, run: RunNode) -> str:
        return self.node_id("run", run.run_id)

    def file_id(self, key: str) -> str:
        return self.node_id("file", key)

    def to_json(self, expand: Iterable[str] = ()) -> Json:
        """Datasets and runs, plus the files of each visible dataset whose node id is in ``expand``."""
        nodes: dict[str, Json] = {}
        edges: dict[str, Json] = {}
        runs = self.graph.experiment_runs(self.experiment_id)
        latest = {run.run_id for run in self.graph.latest_runs(self.experiment_id).values()}
        members = {ref for run in runs for ref in run.inputs + run.outputs}
        members |= {ref for ref, node in self.graph.datasets.items() if node.experiment_id == self.experiment_id}
        for ref in sorted(members, key=self._dataset_order):
            nodes[self.dataset_id(ref)] = self._dataset(self.graph.datasets[ref])
        for run in runs:
            run_node = self.run_id(run)
            nodes[run_node] = self._run(run, run_node, latest=run.run_id in latest)
            for ref in run.inputs:
                self._edge(edges, self.dataset_id(ref), run_node, "flow")
            for ref in run.outputs:
                self._edge(edges, run_node, self.dataset_id(ref), "flow")
        wanted = set(expand)
        expanded = []
        for ref in sorted(members, key=self._dataset_order):
            node_id = self.dataset_id(ref)
            if node_id in wanted and nodes[node_id].get("expandable"):
                self._expand(self.graph.datasets[ref], nodes, edges, members)
                expanded.append(node_id)
        return {
            "experiment_id": self.experiment_id,
            "nodes": list(nodes.values()),
            "edges": list(edges.values()),
            "expanded": expanded,
        }

    def _dataset_order(self, ref: DatasetId) -> tuple[int, str, str]:
        node = self.graph.datasets[ref]
        return (_ZONE_ORDER.get(node.zone or "", len(_ZONE_ORDER)), ref.namespace, ref.name)

    def _dataset(self, node: DatasetNode) -> Json:
        node_id = self.dataset_id(node.id)
        if not self.visible(node.experiment_id):
            return restricted_node(node_id)
        files = node.files or {}
        listed = len(files.get("files") or ())
        zone = node.zone or "dataset"
        return {
            "id": node_id,
            "kind": "dataset",
            "label": f"{zone} · {node.experiment_id or self.experiment_id}",
            "restricted": False,
            "zone": node.zone,
            "experiment_id": node.experiment_id or self.experiment_id,
            "location": node.id.location,
            "version": node.version,
            "file_count": int(files.get("fileCount", 0)) if files else None,
            "total_bytes": int(files.get("totalBytes", 0)) if files else None,
            "files_listed": listed,
            "files_truncated": bool(files.get("truncated")),
            "expandable": listed > 0,
        }

    def _run(self, run: RunNode, node_id: str, *, latest: bool) -> Json:
        if not self.visible(self.graph.run_experiment(run)):
            return restricted_node(node_id)
        return {
            "id": node_id,
            "kind": "run",
            "label": f"{run.job.name} · {run.state}",
            "restricted": False,
            "job": run.job.name,
            "state": run.state,
            "run_id": run.run_id,
            "dagster_run_id": run.dagster_run_id,
            "started": run.started.isoformat() if run.started else None,
            "ended": run.ended.isoformat() if run.ended else None,
            "latest": latest,
            "error": run.error,
        }

    def _expand(
        self, dataset: DatasetNode, nodes: dict[str, Json], edges: dict[str, Json], members: set[DatasetId]
    ) -> None:
        """A dataset's listed files, and each file it was derived from, placed in its own dataset when shown."""
        parent = self.dataset_id(dataset.id)
        for item in (dataset.files or {}).get("files") or ():
            key = str(item["key"])
            target = self._file(nodes, key, members, default_parent=parent, item=item)
            for source_key in item.get("derivedFrom") or ():
                source = self._file(nodes, str(source_key), members)
                self._edge(edges, source, target, "file")

    def _file(
        self,
        nodes: dict[str, Json],
        key: str,
        members: set[DatasetId],
        *,
        default_parent: str | None = None,
        item: Mapping[str, Any] | None = None,
    ) -> str:
        node_id = self.file_id(key)
        experiment_id = file_experiment(key)
        if not self.visible(experiment_id):
            nodes.setdefault(node_id, restricted_node(node_id))
            return node_id
        shown = nodes.get(node_id)
        if shown is not None and (item is None or "size" in shown):
            return node_id
        parsed = ObjectKey.parse(key) if experiment_id else None
        zone = parsed.zone.value if parsed else None
        parent = default_parent or self._parent_of(zone, experiment_id, members, nodes)
        node: Json = {
            "id": node_id,
            "kind": "file",
            "label": parsed.relative_path if parsed else key,
            "restricted": False,
            "key": key,
            "zone": zone,
            "experiment_id": experiment_id,
            "dataset": parent,
            "href": f"/files/{key}" if zone in _PAGE_ZONES else None,
        }
        if item is not None:
            node |= {"size": item.get("size"), "format": item.get("format"), "sha256": item.get("sha256")}
        nodes[node_id] = node
        return node_id

    def _parent_of(
        self, zone: str | None, experiment_id: str | None, members: set[DatasetId], nodes: dict[str, Json]
    ) -> str | None:
        """The shown dataset a file from another dataset belongs to (a landing file sits in the landing folder)."""
        for ref in members:
            node = self.graph.datasets[ref]
            if node.zone == zone and (node.experiment_id or self.experiment_id) == experiment_id:
                node_id = self.dataset_id(ref)
                return node_id if not nodes.get(node_id, {}).get("restricted") else None
        return None

    @staticmethod
    def _edge(edges: dict[str, Json], source: str, target: str, kind: str) -> None:
        edge_id = f"{source}-{target}"
        edges.setdefault(edge_id, {"id": edge_id, "source": source, "target": target, "kind": kind})


def lineage_json(
    graph: LineageGraph,
    experiment_id: str,
    *,
    may_see: Callable[[str], bool],
    secret: bytes,
    expand: Iterable[str] = (),
) -> Json:
    """One experiment's lineage for one viewer; see `LineageView`."""
    return LineageView(graph, experiment_id, may_see, secret).to_json(expand)
