"""Step 2 of the flow: fetch an experiment, prepare its place in every zone, register it, tell the ELN."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from labmesh_dagster.connectors.catalog.base import Catalog, CatalogEntry
from labmesh_dagster.connectors.eln.base import ElnSource
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.errors import WriteBackNotVisible
from labmesh_dagster.core.experiment import ExperimentRecord


@runtime_checkable
class FindsEntriesBySource(Protocol):
    """An ELN connector that finds an experiment's entry faster when told where its record was read from."""

    def remember(self, experiment_id: str, source: str) -> None: ...


@dataclass(frozen=True)
class Registration:
    """What registering did: the record, where its data lives, its catalog entry, and what the ELN now says."""

    record: ExperimentRecord
    locations: dict[str, str]
    entry: CatalogEntry
    wrote_back: bool
    eln_locations: dict[str, str]


def register_experiment(
    eln: ElnSource,
    store: ObjectStore,
    catalog: Catalog,
    experiment_id: str,
    *,
    run_id: str | None = None,
    source_hint: str | None = None,
) -> Registration:
    """Idempotent: an unchanged experiment changes nothing anywhere.

    ``source_hint`` is where the record was last read from (the sensor's
    poll, or the catalog): an ELN that can use it goes to that entry first
    instead of searching for the experiment; the entry read is the truth.

    The ELN entry is read back once to decide whether to write, and once more
    only after writing, to verify what it now holds: a write-back that does
    not read back raises `WriteBackNotVisible`, so the run is left unfinished
    and started again until the ELN shows where the data lives.
    """
    if source_hint and isinstance(eln, FindsEntriesBySource):
        eln.remember(experiment_id, source_hint)
    record = eln.fetch(experiment_id)
    locations = {zone.value: uri for zone, uri in store.provision(record.id).items()}
    entry = catalog.upsert_experiment(record, locations, run_id=run_id)
    eln_locations = eln.read_back(record.id)
    wrote_back = eln_locations != locations
    if wrote_back:
        eln.write_back(record.id, locations)
        eln_locations = eln.read_back(record.id)
        if eln_locations != locations:
            raise WriteBackNotVisible(record.id, locations, eln_locations)
    return Registration(record, locations, entry, wrote_back, eln_locations)
