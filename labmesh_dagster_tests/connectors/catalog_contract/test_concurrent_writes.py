"""Two runs writing the same experiment at once take turns: no lost revision, no duplicate, no error.

Pinned here, each with two threads released together, each through its own
catalog object (as two run processes would be), several rounds: registering
one new experiment twice makes revision 1 once (the other finds it unchanged);
publishing the same manifest twice makes one revision; publishing two
different manifests of one dataset makes revisions 1 and 2, the current one
holding the files of the manifest that made revision 2; granting one
principal twice grants it once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from labmesh_dagster.connectors.catalog.base import CatalogEntry
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster_tests.connectors.catalog_contract.conftest import AnyCatalog

ROUNDS = 3


def at_once(open_catalog: Callable[[], AnyCatalog], *writes: Callable[[AnyCatalog], Any]) -> list[Any]:
    """Run each write on its own thread and catalog, released together; their results (or errors), in order."""
    catalogs = [open_catalog() for _ in writes]
    start = threading.Barrier(len(writes))
    results: list[Any] = [None] * len(writes)

    def run(number: int) -> None:
        start.wait()
        try:
            results[number] = writes[number](catalogs[number])
        except Exception as error:  # reported on the test's thread
            results[number] = error

    threads = [threading.Thread(target=run, args=(number,)) for number in range(len(writes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def reads(experiment_id: str, *names: str) -> Manifest:
    entries = [
        ManifestEntry(key=f"raw/{experiment_id}/{name}", size=1, sha256="ab" * 32, format="fastq", created="2024-03-01")
        for name in names
    ]
    return Manifest.build(experiment_id, "raw", entries)


def changes(results: list[Any]) -> list[tuple[int, bool]]:
    assert all(isinstance(result, CatalogEntry) for result in results), results
    return sorted((result.revision, result.changed) for result in results)


def test_registering_one_experiment_twice_at_once_makes_one_revision(open_catalog: Callable[[], AnyCatalog]) -> None:
    for round_ in range(ROUNDS):
        record = ExperimentRecord(id=f"EXP-{round_}", title="Liver", group="Hepatology")

        results = at_once(open_catalog, *[lambda c, record=record: c.upsert_experiment(record, {})] * 2)

        assert changes(results) == [(1, False), (1, True)]
    assert sorted(open_catalog().experiment_fingerprints()) == [f"EXP-{n}" for n in range(ROUNDS)]


def test_publishing_one_manifest_twice_at_once_makes_one_revision(open_catalog: Callable[[], AnyCatalog]) -> None:
    catalog = open_catalog()
    for round_ in range(ROUNDS):
        experiment_id = f"EXP-{round_}"
        catalog.upsert_experiment(ExperimentRecord(id=experiment_id, title="Liver"), {})
        manifest = reads(experiment_id, "a.fastq")

        results = at_once(open_catalog, *[lambda c, manifest=manifest: c.upsert_dataset(manifest, "file:///raw/")] * 2)

        assert changes(results) == [(1, False), (1, True)]
        assert [r.revision for r in catalog.dataset_revisions(experiment_id, Zone.RAW)] == [1]


def test_two_manifests_of_one_dataset_at_once_are_revisions_one_and_two(open_catalog: Callable[[], AnyCatalog]) -> None:
    catalog = open_catalog()
    for round_ in range(ROUNDS):
        experiment_id = f"EXP-{round_}"
        catalog.upsert_experiment(ExperimentRecord(id=experiment_id, title="Liver"), {})
        first, second = reads(experiment_id, "a.fastq"), reads(experiment_id, "a.fastq", "b.fastq")

        results = at_once(
            open_catalog,
            lambda c, first=first: c.upsert_dataset(first, "file:///raw/"),
            lambda c, second=second: c.upsert_dataset(second, "file:///raw/"),
        )

        assert changes(results) == [(1, True), (2, True)]
        history = catalog.dataset_revisions(experiment_id, Zone.RAW)
        assert [r.revision for r in history] == [2, 1]
        current = catalog.get_dataset(experiment_id, Zone.RAW)
        assert current is not None and current.revision == 2
        assert current.manifest_digest == history[0].manifest_digest
        assert len(current.files) == history[0].file_count
        assert current.files == (first if current.manifest_digest == first.digest else second).entries


def test_one_grant_twice_at_once_is_granted_once(open_catalog: Callable[[], AnyCatalog]) -> None:
    catalog = open_catalog()
    catalog.upsert_experiment(ExperimentRecord(id="EXP-1", title="Liver", group="Hepatology"), {})
    for round_ in range(ROUNDS):
        principal = f"user:reviewer {round_}"

        results = at_once(open_catalog, *[lambda c, principal=principal: c.grant("EXP-1", principal)] * 2)

        assert sorted(results) == [False, True]
    assert catalog.principals("EXP-1") == {"group:hepatology", *(f"user:reviewer {n}" for n in range(ROUNDS))}
