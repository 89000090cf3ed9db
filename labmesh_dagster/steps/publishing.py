"""Step 7 of the flow: publishing a dataset, the one idempotent step every dataset asset ends with.

In this order: the manifest is written beside the data, the catalog gets a
new revision of the dataset's entry (naming the run that made it), the
content index is brought in step with the files (and embeds a bounded number
of passages an earlier publish left without a vector), and the
materialization's lineage events are recorded. Each part compares before it
writes, so publishing unchanged content changes nothing, and publishing
changed content makes a new revision of the same entry. The report says what
each sink accepted; the asset turns it into metadata and check results.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from labmesh_dagster.connectors.catalog.base import Catalog, CatalogEntry
from labmesh_dagster.connectors.search.base import ContentIndex, IndexReport
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import ObjectKey
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.steps.content import index_dataset
from labmesh_dagster.steps.lineage_run import LineageRun, dataset_ref
from labmesh_dagster.steps.manifests import write_manifest
from labmesh_dagster.steps.verification import catalog_problems


@dataclass(frozen=True)
class PublishReport:
    """What publishing one dataset did, sink by sink."""

    manifest_key: ObjectKey
    location: str
    entry: CatalogEntry
    catalog_problems: tuple[str, ...]
    content: IndexReport
    lineage_problems: tuple[str, ...]


@dataclass(frozen=True)
class Sinks:
    """Where a published dataset goes: the store (its manifest), the catalog and the content index."""

    store: ObjectStore
    catalog: Catalog
    content_index: ContentIndex


def publish(
    manifest: Manifest,
    sinks: Sinks,
    run: LineageRun,
    *,
    record: ExperimentRecord,
    previous: Manifest | None,
    ended: datetime,
    failure: str | None = None,
) -> PublishReport:
    """Publish ``manifest`` (``previous`` is the one it replaces, whose vanished files leave the index).

    ``run`` is the materialization, its inputs filled in: the catalog revision
    names its Dagster run, and its lineage, with this dataset as its output,
    is recorded last, as FAIL with ``failure`` where the run publishes what it
    could and still fails.
    """
    store = sinks.store
    key = write_manifest(store, manifest)
    location = store.location(manifest.zone, manifest.experiment_id)
    entry = sinks.catalog.upsert_dataset(manifest, location, run_id=run.run_id)
    problems = catalog_problems(sinks.catalog.get_dataset(manifest.experiment_id, manifest.zone), manifest)
    content = index_dataset(
        sinks.content_index,
        manifest,
        previous,
        record,
        lambda file_key: store.uri(ObjectKey.parse(file_key)),
        # The catalog's list, grants included: the content index shows a file to whom the catalog shows it.
        sinks.catalog.principals(manifest.experiment_id),
    )
    run.outputs = [dataset_ref(store, manifest.zone, manifest.experiment_id, manifest)]
    lineage_problems = run.record(ended=ended, error=failure)
    return PublishReport(key, location, entry, tuple(problems), content, tuple(lineage_problems))
