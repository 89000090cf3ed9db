"""Grants and revokes reach the content index: an experiment's files are found by whom the catalog shows it to.

Publishing gives each document its experiment's access list as the catalog
holds it at that moment. A grant or a revoke (`labmesh access grant`) changes
the catalog's list later, with no new dataset to publish, so `change_grant`
writes the catalog first and then brings the index's list in step with it
(`refresh_access`). The index is always set to the catalog's whole list, never
patched by one principal, so every call is idempotent and a call that failed
halfway (the index unreachable) is finished by running it again, or by the
next publish of any of the experiment's datasets.

The ELN changes a list too (a new group, someone added to the people): the
`experiment` asset compares the catalog's list before and after registering
the record and, when it changed, refreshes the index the same way
(`follow_registration`).

How a backend changes a list is its own: SQLite rewrites the experiment's
rows; Kendra puts the experiment's documents again, rebuilt here from the
catalog's datasets exactly as publishing built them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from labmesh_dagster.connectors.catalog.base import Catalog, ExperimentNotRegistered
from labmesh_dagster.connectors.search.base import ContentDocument, ContentIndex, IndexReport
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.steps.content import dataset_documents

DATASET_ZONES = (Zone.RAW, Zone.PROCESSED, Zone.FINAL)


@dataclass(frozen=True)
class GrantChange:
    """What a grant or a revoke did: whether the catalog changed, the list now, and the index's report."""

    experiment_id: str
    principal: str
    changed: bool
    principals: frozenset[str]
    content: IndexReport


def experiment_documents(
    catalog: Catalog, store: ObjectStore, experiment_id: str, principals: Collection[str]
) -> list[ContentDocument]:
    """The experiment's documents as publishing makes them, from the catalog's datasets, carrying ``principals``."""
    record = catalog.get_experiment(experiment_id)
    if record is None:
        raise ExperimentNotRegistered(experiment_id)
    documents: list[ContentDocument] = []
    for zone in DATASET_ZONES:
        dataset = catalog.get_dataset(experiment_id, zone)
        if dataset is None:
            continue
        manifest = Manifest.build(experiment_id, zone, dataset.files)
        documents += dataset_documents(
            manifest, record, lambda key: store.uri(ObjectKey.parse(key)), principals=principals
        )
    return documents


def refresh_access(catalog: Catalog, index: ContentIndex, store: ObjectStore, experiment_id: str) -> IndexReport:
    """Give the experiment's documents in the index the catalog's access list (group, owner, people, grants)."""
    principals = catalog.principals(experiment_id)
    return index.update_access(
        experiment_id, principals, lambda: experiment_documents(catalog, store, experiment_id, principals)
    )


def change_grant(
    catalog: Catalog, index: ContentIndex, store: ObjectStore, experiment_id: str, principal: str, *, grant: bool
) -> GrantChange:
    """Grant (or revoke) ``principal`` on the experiment in the catalog, then in the content index.

    The index is refreshed even when the catalog already had it so: that is
    how a grant whose index update failed before gets finished.
    """
    if catalog.get_experiment(experiment_id) is None:
        raise ExperimentNotRegistered(experiment_id)
    changed = catalog.grant(experiment_id, principal) if grant else catalog.revoke(experiment_id, principal)
    report = refresh_access(catalog, index, store, experiment_id)
    return GrantChange(experiment_id, principal, changed, catalog.principals(experiment_id), report)


def follow_registration(
    catalog: Catalog, index: ContentIndex, store: ObjectStore, experiment_id: str, before: frozenset[str]
) -> IndexReport | None:
    """After the ELN record was registered: refresh the index if the catalog's list is no longer ``before``.

    None when the list is unchanged (most registrations), so Kendra's documents are only put again when
    who may see them changed.
    """
    if catalog.principals(experiment_id) == before:
        return None
    return refresh_access(catalog, index, store, experiment_id)
