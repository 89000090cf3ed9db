"""The ELN sensor requests a registration for new and changed records, with run keys that name the transition.

Pinned here: a record the catalog lacks is requested with ``new`` as its
origin; an unchanged record is not requested; a changed record's run key is
``experiment:<id>:<catalog fingerprint>-><ELN fingerprint>``, so replaying the
same poll gives the same keys (Dagster starts nothing twice) while an edit
that is later reverted gets a run key of its own. The catalog's fingerprints are
read for the changed records alone, one by one, unless a poll brings more than
`ONE_BY_ONE_LOOKUPS` records; the answer is the same either way.
"""

from __future__ import annotations

from pathlib import Path

from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.eln.base import ElnPoll
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.steps.intake import (
    ONE_BY_ONE_LOOKUPS,
    ExperimentRequest,
    experiments_to_register,
    registered_fingerprints,
)


def record(experiment_id: str = "EXP-1", title: str = "Original title") -> ExperimentRecord:
    return ExperimentRecord(id=experiment_id, title=title, source="eln/exp.yaml")


def run_keys(poll: ElnPoll, registered: dict[str, str]) -> list[str]:
    return [request.run_key for request in experiments_to_register(poll, registered)]


def test_a_new_record_is_requested_with_new_as_its_origin() -> None:
    original = record()

    requests = experiments_to_register(ElnPoll(records=(original,)), {})

    assert requests == [ExperimentRequest(original, f"experiment:EXP-1:new->{original.fingerprint}")]


def test_an_unchanged_record_is_not_requested() -> None:
    original = record()

    assert experiments_to_register(ElnPoll(records=(original,)), {"EXP-1": original.fingerprint}) == []


def test_a_changed_record_names_the_transition_in_its_run_key() -> None:
    original, edited = record(), record(title="Edited title")

    [request] = experiments_to_register(ElnPoll(records=(edited,)), {"EXP-1": original.fingerprint})

    assert request.record == edited
    assert request.run_key == f"experiment:EXP-1:{original.fingerprint}->{edited.fingerprint}"


def test_replaying_the_same_poll_gives_the_same_run_keys() -> None:
    poll = ElnPoll(records=(record("EXP-1"), record("EXP-2", title="Other")))
    registered = {"EXP-1": record("EXP-1", title="Before").fingerprint}

    assert run_keys(poll, registered) == run_keys(poll, registered)


def test_an_edit_that_is_reverted_gets_a_new_run_key() -> None:
    original, edited = record(), record(title="Edited title")
    seen: list[str] = []

    seen += run_keys(ElnPoll(records=(original,)), {})
    seen += run_keys(ElnPoll(records=(edited,)), {"EXP-1": original.fingerprint})
    reverted = run_keys(ElnPoll(records=(original,)), {"EXP-1": edited.fingerprint})

    assert len(reverted) == 1
    assert reverted[0] not in seen
    assert reverted[0] == f"experiment:EXP-1:{edited.fingerprint}->{original.fingerprint}"


def test_only_the_records_that_need_it_are_requested_in_poll_order() -> None:
    unchanged, changed, new = record("EXP-1"), record("EXP-2", title="Now"), record("EXP-3")
    registered = {"EXP-1": unchanged.fingerprint, "EXP-2": record("EXP-2", title="Then").fingerprint, "EXP-9": "x"}

    requests = experiments_to_register(ElnPoll(records=(new, unchanged, changed)), registered)

    assert [request.record.id for request in requests] == ["EXP-3", "EXP-2"]


def test_an_unchanged_poll_requests_nothing() -> None:
    assert experiments_to_register(ElnPoll(cursor="abc", unchanged=True), {"EXP-1": "f"}) == []


class CountingCatalog(SqliteCatalog):
    """The SQLite catalog, counting how often every experiment's fingerprint is read at once."""

    whole_reads = 0

    def experiment_fingerprints(self) -> dict[str, str]:
        self.whole_reads += 1
        return super().experiment_fingerprints()


def test_a_few_changed_records_are_looked_up_alone_not_the_whole_catalog(tmp_path: Path) -> None:
    catalog = CountingCatalog(tmp_path / "catalog.sqlite")
    for number in range(5):
        catalog.upsert_experiment(record(f"EXP-{number}", f"Title {number}"), {})

    found = registered_fingerprints(catalog, ["EXP-1", "EXP-3", "EXP-404"])

    assert catalog.whole_reads == 0
    every = catalog.experiment_fingerprints()
    assert found == {"EXP-1": every["EXP-1"], "EXP-3": every["EXP-3"]}


def test_a_poll_of_many_records_reads_every_fingerprint_at_once(tmp_path: Path) -> None:
    catalog = CountingCatalog(tmp_path / "catalog.sqlite")
    catalog.upsert_experiment(record("EXP-1"), {})

    found = registered_fingerprints(catalog, [f"EXP-{number}" for number in range(ONE_BY_ONE_LOOKUPS + 1)])

    assert catalog.whole_reads == 1 and set(found) == {"EXP-1"}
