"""Step 2 of the flow: fetch an experiment, prepare its place in every zone, register it, tell the ELN."""

from __future__ import annotations

from dataclasses import dataclass

from labmesh_dagster.connectors.catalog.base import Catalog, CatalogEntry
from labmesh_dagster.connectors.eln.base import ElnSource
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.experiment import ExperimentRecord


@dataclass(frozen=True)
class Registration:
    record: ExperimentRecord
    locations: dict[str, str]
    entry: CatalogEntry
    wrote_back: bool


def register_experiment(eln: ElnSource, store: ObjectStore, catalog: Catalog, experiment_id: str) -> Registration:
    """Idempotent: an unchanged experiment changes nothing anywhere."""
    record = eln.fetch(experiment_id)
    locations = {zone.value: uri for zone, uri in store.provision(record.id).items()}
    entry = catalog.upsert_experiment(record, locations)
    wrote_back = False
    if eln.read_back(record.id) != locations:
        eln.write_back(record.id, locations)
        wrote_back = True
    return Registration(record, locations, entry, wrote_back)
