"""What the MCP server's tools do, as plain functions of a viewer: nothing here knows MCP.

Each tool reads the lab the way the portal does, so the access rule is the
portal's and is applied while results are formed, never afterwards: the
catalog's search takes the viewer, the content index filters passages by the
viewer's principals inside its query, an experiment (and its lineage) is read
only when the viewer may see it and is "not found" alike when it does not
exist or may not be seen, lineage nodes of other experiments are shown as
"restricted" (`labmesh_dagster.lineage.view`), and ask gathers its evidence
under the viewer (`labmesh_dagster.ask.asking`). Every call is audited under
the viewer's name, as the portal audits each search and view.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from labmesh_dagster.access.audit import AuditEvent, AuditKind, AuditLog
from labmesh_dagster.ask.base import AnswerEvent, collect, passage_href
from labmesh_dagster.connectors.catalog.base import Catalog, SearchQuery
from labmesh_dagster.connectors.lineage.base import LineageLog
from labmesh_dagster.connectors.search.base import ContentFilter, ContentIndex
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.errors import LabmeshError
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.passages import PassageHit
from labmesh_dagster.lineage.graph import build_graph
from labmesh_dagster.lineage.view import lineage_json

Json = dict[str, Any]
Asker = Callable[[str, Viewer], Iterator[AnswerEvent]]
"""Streams the answer to a question for a viewer: `labmesh_dagster.ask.asking.ask` with the lab's ports bound."""

MAX_LIMIT = 50
"""Most results one search returns, in the catalog and in the contents each."""


class NotVisible(LabmeshError, LookupError):
    """An experiment that does not exist or that the viewer may not see: the two answer alike."""

    def __init__(self, experiment_id: str) -> None:
        super().__init__(f"no experiment {experiment_id!r} here, or not one you may see")


@dataclass
class LabTools:
    """The lab as the MCP tools read it; ``content_index`` and ``asker`` are optional parts."""

    catalog: Callable[[], Catalog]
    lineage_log: Callable[[], LineageLog]
    content_index: Callable[[], ContentIndex] | None = None
    asker: Asker | None = None
    audit: AuditLog | None = None
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def _audit(self, viewer: Viewer, kind: AuditKind, **what: Any) -> None:
        if self.audit is not None:
            self.audit.record(AuditEvent(kind, viewer.name, detail="mcp", **what))

    def visible_experiment(self, viewer: Viewer, experiment_id: str) -> ExperimentRecord:
        catalog = self.catalog()
        record = catalog.get_experiment(experiment_id)
        if record is None or not viewer.may_see(catalog.principals(experiment_id)):
            raise NotVisible(experiment_id)
        return record

    def search(
        self,
        viewer: Viewer,
        text: str,
        *,
        experiment: str | None = None,
        sample: str | None = None,
        platform: str | None = None,
        group: str | None = None,
        format: str | None = None,
        limit: int = 10,
    ) -> Json:
        """Datasets and files of the catalog, and passages of file contents, matching ``text`` and the facets."""
        limit = max(1, min(limit, MAX_LIMIT))
        query = SearchQuery(
            text=text,
            experiment=experiment,
            sample=sample,
            platform=platform,
            group=group,
            format=format,
            limit=limit,
            viewer=viewer,
        )
        datasets = [
            {
                "experiment_id": hit.experiment_id,
                "title": hit.title,
                "dataset": hit.dataset,
                "location": hit.location,
                "group": hit.group,
                "platform": hit.platform,
                "files": [
                    {"key": file.key, "format": file.format, "size": file.size, "sample_ids": list(file.sample_ids)}
                    for file in hit.files
                ],
            }
            for hit in self.catalog().search(query)
        ]
        answer: Json = {"datasets": datasets}
        if self.content_index is not None and text.strip():
            filters = ContentFilter(
                experiment_id=experiment, sample_id=sample, platform=platform, group=group, format=format
            )
            answer["passages"] = self._passages(viewer, text, filters, limit)
        self._audit(viewer, AuditKind.SEARCH, query=text)
        return answer

    def _passages(self, viewer: Viewer, text: str, filters: ContentFilter, limit: int) -> list[Json]:
        assert self.content_index is not None
        index = self.content_index()
        try:
            return [passage_json(hit) for hit in index.retrieve(text, filters=filters, viewer=viewer, limit=limit)]
        except NotImplementedError:
            # A backend that does not cut passages yet answers with whole files and their excerpts.
            hits = index.search(text, filters=filters, viewer=viewer, limit=limit)
            return [
                {
                    "file": hit.id,
                    "title": hit.title,
                    "experiment_id": hit.attributes.get("experiment_id"),
                    "text": hit.excerpt,
                    "href": f"/files/{quote(hit.id)}",
                }
                for hit in hits
            ]

    def experiment(self, viewer: Viewer, experiment_id: str) -> Json:
        """The experiment's record and its datasets (zone, revision, location, files), if the viewer may see it."""
        record = self.visible_experiment(viewer, experiment_id)
        catalog = self.catalog()
        datasets: Json = {}
        for zone in (Zone.RAW, Zone.PROCESSED, Zone.FINAL):
            dataset = catalog.get_dataset(record.id, zone)
            if dataset is None:
                continue
            datasets[zone.value] = {
                "revision": dataset.revision,
                "location": dataset.location,
                "run_id": dataset.run_id,
                "files": [
                    {"key": entry.key, "format": entry.format, "size": entry.size, "sample_ids": list(entry.sample_ids)}
                    for entry in dataset.files
                ],
            }
        self._audit(viewer, AuditKind.VIEW, experiment_id=record.id)
        return {"experiment": record.to_dict(), "datasets": datasets, "href": f"/experiments/{record.id}"}

    def lineage(self, viewer: Viewer, experiment_id: str, expand: Iterable[str] = ()) -> Json:
        """The experiment's lineage graph; other experiments' nodes the viewer may not see are "restricted"."""
        record = self.visible_experiment(viewer, experiment_id)
        catalog = self.catalog()

        def may_see(other: str) -> bool:
            return viewer.may_see(catalog.principals(other))

        graph = build_graph(self.lineage_log().events(record.id))
        shaped = lineage_json(graph, record.id, may_see=may_see, secret=self.secret, expand=expand)
        self._audit(viewer, AuditKind.VIEW, experiment_id=record.id, query="lineage")
        return shaped

    def ask(self, viewer: Viewer, question: str) -> Json:
        """The answer with its numbered citations, or a refusal when nothing the viewer may see answers it."""
        if self.asker is None:
            raise LabmeshError("asking is not set up on this server")
        answer = collect(question, self.asker(question, viewer))
        self._audit(viewer, AuditKind.SEARCH, query=question)
        return answer.to_dict()


def passage_json(hit: PassageHit) -> Json:
    return {
        "passage_id": hit.passage.id,
        "file": hit.passage.document_id,
        "title": hit.title,
        "experiment_id": hit.attributes.get("experiment_id"),
        "location": hit.passage.location.describe(),
        "text": hit.passage.text,
        "href": passage_href(hit.passage),
    }
