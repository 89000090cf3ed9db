"""The lineage graph that a stream of OpenLineage run events describes, and a terminal view of it.

Events arrive in any order and more than once: a replayed materialization
posts its START and COMPLETE again, a queue may deliver a COMPLETE before its
START, and a FAIL may be followed by a retry's COMPLETE under the same run id.
So the graph is a fold over events sorted by event time, with two rules that
make the result independent of arrival order and duplicates:

- A run's state is that of its latest event by event time, not by arrival;
  at equal times the later lifecycle step wins (COMPLETE over START), so a
  materialization that took no measurable time still ends COMPLETE. A retry's
  START after a FAIL of the same run shows the run running again. OTHER
  events add facets but never change the state, as the spec intends.
- Facets merge per facet name, the latest event winning. A dataset therefore
  keeps the version and file list of its last completed publication even
  after a later run STARTs or FAILs without them.

Events that are not run events (dataset and job events) describe no run and
are left out. The graph reads labmesh's own facets (`labmesh_run`,
`labmesh_dataset`, `labmesh_files`) for experiments, zones and file-level
lineage, and still places other producers' datasets and runs, without them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from openlineage.client.event_v2 import RunEvent

from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.text import human_size
from labmesh_dagster.lineage.events import DATASET_FACET, FILES_FACET, RUN_FACET, event_to_dict
from labmesh_dagster.lineage.naming import dataset_location

_STATE_RANK = {"START": 0, "RUNNING": 1, "COMPLETE": 2, "FAIL": 2, "ABORT": 2}
_ZONE_ORDER = {zone.value: position for position, zone in enumerate(Zone)}
_FILE_EDGE_LIMIT = 50


@dataclass(frozen=True, order=True)
class DatasetId:
    """A dataset's OpenLineage identity."""

    namespace: str
    name: str

    @property
    def location(self) -> str:
        return dataset_location(self.namespace, self.name)


@dataclass(frozen=True, order=True)
class JobId:
    """A job's OpenLineage identity: for labmesh, an asset."""

    namespace: str
    name: str


@dataclass(frozen=True)
class DatasetNode:
    """A dataset as the latest events describe it; counts and version come from its last completed output."""

    id: DatasetId
    facets: Mapping[str, Any] = field(default_factory=dict)
    files_run_id: str | None = None

    @property
    def zone(self) -> str | None:
        return self.facets.get(DATASET_FACET, {}).get("zone")

    @property
    def experiment_id(self) -> str | None:
        return self.facets.get(DATASET_FACET, {}).get("experimentId")

    @property
    def version(self) -> str | None:
        return self.facets.get("version", {}).get("datasetVersion")

    @property
    def files(self) -> Mapping[str, Any] | None:
        """The ``labmesh_files`` facet of the run that last published the dataset, if any did."""
        return self.facets.get(FILES_FACET)


@dataclass(frozen=True)
class JobNode:
    id: JobId
    facets: Mapping[str, Any] = field(default_factory=dict)

    @property
    def description(self) -> str | None:
        return self.facets.get("documentation", {}).get("description")


@dataclass(frozen=True)
class RunNode:
    """One job run: its latest state, when it started and ended, and the datasets it read and wrote."""

    run_id: str
    job: JobId
    state: str
    started: datetime | None
    ended: datetime | None
    updated: datetime
    inputs: tuple[DatasetId, ...]
    outputs: tuple[DatasetId, ...]
    facets: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def experiment_id(self) -> str | None:
        return self.facets.get(RUN_FACET, {}).get("experimentId")

    @property
    def dagster_run_id(self) -> str | None:
        return self.facets.get(RUN_FACET, {}).get("dagsterRunId")

    @property
    def experiment_title(self) -> str | None:
        return self.facets.get(RUN_FACET, {}).get("experimentTitle")

    @property
    def sort_time(self) -> datetime:
        return self.started or self.updated


@dataclass(frozen=True, order=True)
class Edge:
    """Input dataset to job, or job to output dataset."""

    source: DatasetId | JobId
    target: DatasetId | JobId


@dataclass(frozen=True, order=True)
class FileEdge:
    """``target`` (a key in ``dataset``) was computed from ``source``: both as ``<zone>/<key>``."""

    source: str
    target: str
    dataset: DatasetId


@dataclass(frozen=True)
class LineageGraph:
    datasets: Mapping[DatasetId, DatasetNode]
    jobs: Mapping[JobId, JobNode]
    runs: Mapping[str, RunNode]
    edges: frozenset[Edge]
    file_edges: tuple[FileEdge, ...]

    def experiment_runs(self, experiment_id: str) -> list[RunNode]:
        """The runs for one experiment, oldest first."""
        runs = [run for run in self.runs.values() if self.run_experiment(run) == experiment_id]
        return sorted(runs, key=lambda run: (run.sort_time, run.job, run.run_id))

    def latest_runs(self, experiment_id: str) -> dict[JobId, RunNode]:
        """Each job's latest run for one experiment: what the experiment's data is now."""
        return {run.job: run for run in self.experiment_runs(experiment_id)}

    def run_experiment(self, run: RunNode) -> str | None:
        """The experiment a run belongs to: its own facet, else the one experiment all its datasets share."""
        if run.experiment_id:
            return run.experiment_id
        experiments = {self.datasets[ref].experiment_id for ref in run.inputs + run.outputs}
        return experiments.pop() if len(experiments) == 1 else None


@dataclass
class _RunFold:
    run_id: str
    job: JobId
    state: str | None = None
    started: datetime | None = None
    ended: datetime | None = None
    updated: datetime | None = None
    error: str | None = None
    inputs: dict[DatasetId, None] = field(default_factory=dict)
    outputs: dict[DatasetId, None] = field(default_factory=dict)
    facets: dict[str, Any] = field(default_factory=dict)


def _moment(text: Any, run_id: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError as exc:
        raise ValueError(f"run {run_id}: eventTime {text!r} is not an ISO-8601 date-time") from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _as_dict(event: RunEvent | Mapping[str, Any]) -> dict[str, Any]:
    return event_to_dict(event) if isinstance(event, RunEvent) else dict(event)


def build_graph(events: Iterable[RunEvent | Mapping[str, Any]]) -> LineageGraph:
    """Fold run events (as `RunEvent`s or as the dicts their JSON gives) into one lineage graph."""
    timed = []
    for position, raw in enumerate(events):
        event = _as_dict(raw)
        run = event.get("run")
        if not isinstance(run, Mapping) or not run.get("runId"):
            continue
        job = event.get("job")
        if not isinstance(job, Mapping) or not job.get("namespace") or not job.get("name"):
            raise ValueError(f"run {run['runId']}: the event names no job (namespace and name)")
        state = str(event.get("eventType") or "OTHER")
        # At one instant the later lifecycle step folds last (COMPLETE after START), then the order given.
        timed.append((_moment(event.get("eventTime"), run["runId"]), _STATE_RANK.get(state, 1), position, event))
    timed.sort(key=lambda item: item[:3])

    runs: dict[str, _RunFold] = {}
    jobs: dict[JobId, dict[str, Any]] = {}
    datasets: dict[DatasetId, dict[str, Any]] = {}
    files_runs: dict[DatasetId, str] = {}
    for moment, _, _, event in timed:
        run_id = str(event["run"]["runId"])
        job = JobId(str(event["job"]["namespace"]), str(event["job"]["name"]))
        jobs.setdefault(job, {}).update(event["job"].get("facets") or {})
        fold = runs.setdefault(run_id, _RunFold(run_id, job))
        fold.facets.update(event["run"].get("facets") or {})
        fold.updated = moment
        state = str(event.get("eventType") or "OTHER")
        if state in _STATE_RANK:
            fold.state = state
            error = (event["run"].get("facets") or {}).get("errorMessage") or {}
            fold.error = error.get("message") if state == "FAIL" else None
            fold.ended = moment if _STATE_RANK[state] == 2 else None
        if state == "START" and fold.started is None:
            fold.started = moment
        for role, members in (("inputs", fold.inputs), ("outputs", fold.outputs)):
            for dataset in event.get(role) or ():
                ref = DatasetId(str(dataset["namespace"]), str(dataset["name"]))
                members[ref] = None
                facets = datasets.setdefault(ref, {})
                facets.update(dataset.get("facets") or {})
                facets.update(dataset.get("inputFacets") or {})
                output_facets = dataset.get("outputFacets") or {}
                facets.update(output_facets)
                if FILES_FACET in output_facets:
                    files_runs[ref] = run_id

    run_nodes = {
        run_id: RunNode(
            run_id=run_id,
            job=fold.job,
            state=fold.state or "OTHER",
            started=fold.started,
            ended=fold.ended,
            updated=fold.updated or datetime.min.replace(tzinfo=UTC),
            inputs=tuple(fold.inputs),
            outputs=tuple(fold.outputs),
            facets=fold.facets,
            error=fold.error,
        )
        for run_id, fold in runs.items()
    }
    dataset_nodes = {ref: DatasetNode(ref, facets, files_runs.get(ref)) for ref, facets in datasets.items()}
    edges = {Edge(ref, run.job) for run in run_nodes.values() for ref in run.inputs}
    edges |= {Edge(run.job, ref) for run in run_nodes.values() for ref in run.outputs}
    file_edges = sorted(
        FileEdge(str(source), str(item["key"]), node.id)
        for node in dataset_nodes.values()
        if node.files
        for item in node.files.get("files") or ()
        for source in item.get("derivedFrom") or ()
    )
    return LineageGraph(
        datasets=dataset_nodes,
        jobs={job: JobNode(job, facets) for job, facets in jobs.items()},
        runs=run_nodes,
        edges=frozenset(edges),
        file_edges=tuple(file_edges),
    )


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _took(run: RunNode) -> str:
    if run.started is None or run.ended is None:
        return ""
    seconds = int((run.ended - run.started).total_seconds())
    if seconds < 60:
        return f" ({seconds}s)"
    minutes, seconds = divmod(seconds, 60)
    return f" ({minutes}m)" if minutes < 60 else f" ({minutes // 60}h {minutes % 60}m)"


def _first_line(text: str, limit: int = 100) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "no message"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _dataset_label(node: DatasetNode) -> str:
    parts = [f"[{node.zone or 'dataset'}] {node.id.location}"]
    files = node.files
    if files is not None:
        count = int(files.get("fileCount", 0))
        parts.append(f"{count:,} file{'' if count == 1 else 's'}")
        parts.append(human_size(int(files.get("totalBytes", 0))))
    if node.version:
        parts.append(f"version {node.version[:12]}")
    return " · ".join(parts)


def _run_label(run: RunNode, runs_of_job: int) -> str:
    if run.state in ("COMPLETE", "FAIL", "ABORT") and run.ended is not None:
        label = f"{run.job.name}: {run.state} {_when(run.ended)}{_took(run)}"
    else:
        since = f" since {_when(run.started)}" if run.started else ""
        running = run.state in ("START", "RUNNING")
        label = f"{run.job.name}: RUNNING{since}" if running else f"{run.job.name}: {run.state}"
    if runs_of_job > 1:
        label += f" · latest of {runs_of_job} runs"
    if run.state == "FAIL":
        label += f" · error: {_first_line(run.error or '')}"
    return label


def _dataset_order(graph: LineageGraph, ref: DatasetId) -> tuple[int, str]:
    node = graph.datasets[ref]
    return (_ZONE_ORDER.get(node.zone or "", len(_ZONE_ORDER)), ref.location)


def render_text(graph: LineageGraph, experiment_id: str, *, file_limit: int = _FILE_EDGE_LIMIT) -> str:
    """One experiment's lineage as a tree for a terminal: datasets by zone, the job runs between them, then files.

    Each job shows its latest run (a rematerialization replaces what the
    experiment's data is) and says how many runs it had. A dataset reached a
    second time (a run with two inputs) is marked rather than repeated.
    """
    latest = graph.latest_runs(experiment_id)
    runs_per_job: dict[JobId, int] = {}
    for run in graph.experiment_runs(experiment_id):
        runs_per_job[run.job] = runs_per_job.get(run.job, 0) + 1
    title = next((run.experiment_title for run in reversed(list(latest.values())) if run.experiment_title), None)
    lines = [f"{experiment_id} lineage" + (f": {title}" if title else "")]

    members = {ref for run in latest.values() for ref in run.inputs + run.outputs}
    members |= {ref for ref, node in graph.datasets.items() if node.experiment_id == experiment_id}
    if not latest and not members:
        return "\n".join([*lines, f"  no lineage events for {experiment_id}"]) + "\n"

    consumers: dict[DatasetId, list[RunNode]] = {}
    for run in sorted(latest.values(), key=lambda run: (run.sort_time, run.job)):
        for ref in run.inputs:
            consumers.setdefault(ref, []).append(run)
    produced = {ref for run in latest.values() for ref in run.outputs}
    unproduced = sorted((ref for ref in members if ref not in produced), key=lambda ref: _dataset_order(graph, ref))
    roots: list[DatasetId | RunNode] = [*(run for run in latest.values() if not run.inputs), *unproduced]
    shown: set[DatasetId | str] = set()

    def dataset(ref: DatasetId, prefix: str, branch: str) -> None:
        node = graph.datasets[ref]
        if ref in shown:
            lines.append(f"{prefix}{branch}[{node.zone or 'dataset'}] {ref.location} (shown above)")
            return
        label = _dataset_label(node)
        shown.add(ref)
        lines.append(f"{prefix}{branch}{label}")
        children = consumers.get(ref, [])
        for position, child in enumerate(children):
            job(child, _indent(prefix, branch), position == len(children) - 1)

    def job(run: RunNode, prefix: str, last: bool) -> None:
        branch = "└─ " if last else "├─ "
        label = _run_label(run, runs_per_job.get(run.job, 1))
        if run.run_id in shown:
            lines.append(f"{prefix}{branch}{run.job.name} (shown above)")
            return
        shown.add(run.run_id)
        lines.append(f"{prefix}{branch}{label}")
        outputs = sorted(run.outputs, key=lambda ref: _dataset_order(graph, ref))
        for position, ref in enumerate(outputs):
            dataset(ref, _indent(prefix, branch), "└─ " if position == len(outputs) - 1 else "├─ ")

    for root in roots:
        if isinstance(root, RunNode):
            job(root, "", True)
        else:
            dataset(root, "", "")
    # Runs no root leads to (a cycle: a job rewriting its own input) are still shown.
    for run in sorted(latest.values(), key=lambda run: (run.sort_time, run.job)):
        if run.run_id not in shown:
            job(run, "", True)

    lines.extend(_file_lines(graph, members, file_limit))
    return "\n".join(lines) + "\n"


def _indent(prefix: str, branch: str) -> str:
    if not branch:
        return prefix
    return prefix + ("│  " if branch.startswith("├") else "   ")


def _file_lines(graph: LineageGraph, members: set[DatasetId], limit: int) -> list[str]:
    edges = [edge for edge in graph.file_edges if edge.dataset in members]
    edges.sort(key=lambda edge: (_dataset_order(graph, edge.dataset), edge.target, edge.source))
    notes = []
    for ref in sorted(members, key=lambda ref: _dataset_order(graph, ref)):
        files = graph.datasets[ref].files
        if files and files.get("truncated"):
            listed, total = len(files.get("files") or ()), int(files.get("fileCount", 0))
            where = files.get("manifestUri") or "the manifest"
            notes.append(f"  {ref.location}: the event lists {listed:,} of {total:,} files; all are in {where}")
    if not edges and not notes:
        return []
    width = min(max((len(edge.source) for edge in edges[:limit]), default=0), 60)
    lines = ["", "file lineage"]
    lines += [f"  {edge.source:<{width}}  ->  {edge.target}" for edge in edges[:limit]]
    if len(edges) > limit:
        lines.append(f"  … and {len(edges) - limit:,} more")
    return lines + notes
