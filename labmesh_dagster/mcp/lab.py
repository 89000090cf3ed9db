"""The MCP tools over a lab's ports: its catalog, content index, lineage log and answerer, as the settings name them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from labmesh_dagster.ask.base import AnswerEvent
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.mcp.tools import LabTools

if TYPE_CHECKING:
    from labmesh_dagster.access.stores import AccessStores
    from labmesh_dagster.ports import Ports


def lab_tools(ports: Ports, access: AccessStores) -> LabTools:
    """The tools `labmesh mcp` serves: ask uses ``LABMESH_ANSWERER``'s engine, as `labmesh ask` does."""

    def asker(question: str, viewer: Viewer) -> Iterator[AnswerEvent]:
        from labmesh_dagster.ask.asking import ask
        from labmesh_dagster.ask.engines import open_answerer

        return ask(
            question,
            viewer=viewer,
            content_index=ports.content_index(),
            catalog=ports.catalog(),
            answerer=open_answerer(ports.settings.answers, ports.clients),
            store=ports.store(),
        )

    return LabTools(
        catalog=ports.catalog,
        lineage_log=ports.lineage_log,
        content_index=ports.content_index,
        asker=asker,
        audit=access.audit,
    )
