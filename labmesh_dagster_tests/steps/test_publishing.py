"""Publishing is one step: manifest, catalog revision, content index, lineage events, in that order.

Contract: publishing a dataset writes its manifest beside the data, makes a
catalog revision naming the run, indexes its searchable files and records the
run's COMPLETE (after the START its run sent) with the dataset as output, and reports what each
sink accepted; publishing it again changes no revision, document or file; a
run that publishes what it could and still fails records FAIL; a lineage sink
that refuses events is named in the report while the data stays published;
a dataset of an experiment the catalog does not know stops at the catalog,
before anything is indexed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from labmesh_dagster.connectors.catalog.base import ExperimentNotRegistered
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.lineage.base import Event, LineageSink
from labmesh_dagster.connectors.lineage.sqlite import SqliteLineageLog
from labmesh_dagster.connectors.search.base import ContentFilter
from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import ObjectKey, Zone, manifest_key
from labmesh_dagster.steps.lineage_run import LineageRun, dataset_ref
from labmesh_dagster.steps.manifests import build_manifest
from labmesh_dagster.steps.publishing import Sinks, publish

RECORD = ExperimentRecord(id="EXP-1", title="Soil survey", description="cores from the north field")
STARTED = datetime(2026, 11, 1, 9, tzinfo=UTC)
ENDED = datetime(2026, 11, 1, 9, 5, tzinfo=UTC)


class Refusing(LineageSink):
    def emit(self, events: Sequence[Event]) -> list[str]:
        return [f"event {event['eventType']} refused: the service is read-only" for event in events]


@pytest.fixture
def sinks(tmp_path: Path) -> Sinks:
    store = LocalObjectStore(tmp_path / "store")
    store.put(ObjectKey(Zone.FINAL, "EXP-1/report.md"), b"# North field\n\nNitrogen is low in core B.\n")
    catalog = SqliteCatalog(tmp_path / "catalog.sqlite")
    catalog.upsert_experiment(RECORD, {})
    return Sinks(store=store, catalog=catalog, content_index=SqliteContentIndex(tmp_path / "catalog.sqlite"))


def run(sinks: Sinks, sink: LineageSink, run_id: str = "run-1") -> LineageRun:
    """A run as the asset begins it: its START sent before publishing, which records how it ended."""
    lineage = LineageRun(asset="final_dataset", run_id=run_id, sink=sink, started=STARTED, experiment=RECORD)
    lineage.inputs = [dataset_ref(sinks.store, Zone.PROCESSED, "EXP-1")]
    lineage.start("EXP-1")
    return lineage


def test_one_publish_reaches_every_sink_and_reports_what_each_accepted(sinks: Sinks, tmp_path: Path) -> None:
    log = SqliteLineageLog(tmp_path / "catalog.sqlite")
    manifest = build_manifest(sinks.store, Zone.FINAL, "EXP-1", [])

    report = publish(manifest, sinks, run(sinks, log), record=RECORD, previous=None, ended=ENDED)

    assert sinks.store.read_bytes(manifest_key(Zone.FINAL, "EXP-1")) == manifest.to_json().encode()
    dataset = sinks.catalog.get_dataset("EXP-1", Zone.FINAL)
    assert dataset is not None and (dataset.revision, dataset.run_id) == (1, "run-1")
    assert (report.entry.revision, report.entry.changed, report.catalog_problems) == (1, True, ())
    assert report.content.indexed == ("final/EXP-1/report.md",) and not report.content.failed
    [hit] = sinks.content_index.search("nitrogen", filters=ContentFilter(), limit=5)
    assert hit.id == "final/EXP-1/report.md"
    events = log.events("EXP-1")
    assert [event["eventType"] for event in events] == ["START", "COMPLETE"] and report.lineage_problems == ()
    assert events[-1]["outputs"][0]["name"].endswith("EXP-1")


def test_publishing_the_same_dataset_again_changes_nothing(sinks: Sinks, tmp_path: Path) -> None:
    log = SqliteLineageLog(tmp_path / "catalog.sqlite")
    manifest = build_manifest(sinks.store, Zone.FINAL, "EXP-1", [])
    publish(manifest, sinks, run(sinks, log), record=RECORD, previous=None, ended=ENDED)
    catalog = sinks.catalog
    assert isinstance(catalog, SqliteCatalog)
    before = catalog.snapshot()

    again = publish(manifest, sinks, run(sinks, log, "run-2"), record=RECORD, previous=manifest, ended=ENDED)

    assert (again.entry.revision, again.entry.changed) == (1, False)
    assert catalog.snapshot() == before  # the revision still names the run that made it
    assert again.content.indexed == ("final/EXP-1/report.md",) and again.content.deleted == ()


def test_a_run_that_publishes_and_still_fails_records_fail(sinks: Sinks, tmp_path: Path) -> None:
    log = SqliteLineageLog(tmp_path / "catalog.sqlite")
    manifest = build_manifest(sinks.store, Zone.FINAL, "EXP-1", [])
    lineage = run(sinks, log)

    publish(manifest, sinks, lineage, record=RECORD, previous=None, ended=ENDED, failure="2 files kept in landing")

    assert [event["eventType"] for event in log.events("EXP-1")] == ["START", "FAIL"] and lineage.recorded


def test_a_lineage_sink_that_refuses_is_named_and_the_data_stays_published(sinks: Sinks) -> None:
    manifest = build_manifest(sinks.store, Zone.FINAL, "EXP-1", [])

    report = publish(manifest, sinks, run(sinks, Refusing()), record=RECORD, previous=None, ended=ENDED)

    assert report.lineage_problems == (
        "event START refused: the service is read-only",
        "event COMPLETE refused: the service is read-only",
    )
    assert sinks.catalog.get_dataset("EXP-1", Zone.FINAL) is not None


def test_a_dataset_of_an_experiment_the_catalog_does_not_know_stops_at_the_catalog(sinks: Sinks) -> None:
    sinks.store.put(ObjectKey(Zone.FINAL, "EXP-2/report.md"), b"# Unknown\n")
    manifest = build_manifest(sinks.store, Zone.FINAL, "EXP-2", [])
    stranger = ExperimentRecord(id="EXP-2", title="Not registered")
    lineage = LineageRun(asset="final_dataset", run_id="r", sink=Refusing(), started=STARTED, experiment=stranger)

    with pytest.raises(ExperimentNotRegistered, match="materialize `experiment` first"):
        publish(manifest, sinks, lineage, record=stranger, previous=None, ended=ENDED)
    assert sinks.content_index.search("unknown", filters=ContentFilter(), limit=5) == []
