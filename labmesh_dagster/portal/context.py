"""What every portal route shares: its context (catalog, store, access, cookie signer) and the one access check.

`visible_experiment` answers "not found" alike for an experiment that does not
exist and one the viewer may not see, so no page or API tells which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException

from labmesh_dagster.access.stores import AccessStores
from labmesh_dagster.ask.base import Answerer
from labmesh_dagster.connectors.catalog.base import Catalog
from labmesh_dagster.connectors.rejections import RejectionStore
from labmesh_dagster.connectors.search.base import ContentIndex
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.portal.sessions import SessionSigner

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class PortalContext:
    """What the portal reads: the catalog, the store, the access stores; and how its cookies are signed.

    ``rejections`` holds the ELN records the ELN sensor could not read (for the status page; none if not given).
    ``content_index`` is searched for words inside files beside the catalog (no "In file contents" if not given).
    ``answerer`` answers the chat (the offline extractive one if not given).
    """

    catalog: Callable[[], Catalog]
    store: Callable[[], ObjectStore]
    access: AccessStores
    signer: SessionSigner
    secure_cookies: bool = True
    dagster_url: str = "http://127.0.0.1:3000"
    rejections: Callable[[], RejectionStore] | None = None
    content_index: Callable[[], ContentIndex] | None = None
    answerer: Callable[[], Answerer] | None = None


class NotVisible(HTTPException):
    """404 for an experiment that does not exist or that the viewer may not see: the two answer alike."""

    def __init__(self, what: str) -> None:
        super().__init__(404, f"no {what} here, or not one you may see")


def visible_experiment(catalog: Catalog, viewer: Viewer, experiment_id: str) -> ExperimentRecord:
    record = catalog.get_experiment(experiment_id)
    if record is None:
        raise NotVisible("experiment")
    if not viewer.may_see(catalog.principals(experiment_id)):
        raise NotVisible("experiment")
    return record
