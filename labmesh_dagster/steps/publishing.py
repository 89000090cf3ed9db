"""Step 7 of the flow: publishing a dataset, the one idempotent step every dataset asset ends with.

Publishing writes the manifest beside the data, upserts the catalog entry for
(experiment, dataset) and replaces the dataset's lineage edges. Each part
compares before it writes, so publishing unchanged content is a no-op and
publishing changed content makes a new revision of the same entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from labmesh_dagster.connectors.catalog.base import Catalog, CatalogEntry, LineageEdge
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.steps.manifests import write_manifest

ACTIVITIES = {
    Zone.RAW: "promote",
    Zone.PROCESSED: "fastq_qc",
    Zone.FINAL: "curate",
}


@dataclass(frozen=True)
class Publication:
    entry: CatalogEntry
    manifest_key: ObjectKey
    location: str
    edges: tuple[LineageEdge, ...]


def lineage_edges(manifest: Manifest, activity: str) -> tuple[LineageEdge, ...]:
    return tuple(
        LineageEdge(source, entry.key, activity) for entry in manifest.entries for source in entry.derived_from
    )


def publish_dataset(store: ObjectStore, catalog: Catalog, manifest: Manifest) -> Publication:
    zone = Zone(manifest.zone)
    key = write_manifest(store, manifest)
    location = store.location(zone, manifest.experiment_id)
    entry = catalog.upsert_dataset(manifest.experiment_id, zone.value, location, manifest)
    edges = lineage_edges(manifest, ACTIVITIES[zone])
    catalog.replace_lineage(manifest.experiment_id, zone.value, edges)
    return Publication(entry, key, location, edges)
