"""Deciding which ELN records need the `experiment` asset (re)materialized."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from labmesh_dagster.connectors.catalog.base import Catalog
from labmesh_dagster.connectors.eln.base import ElnPoll
from labmesh_dagster.core.experiment import ExperimentRecord

# Each pushed event costs the ELN one read: 50 keep a tick far below Dagster's 60 s sensor limit.
ELN_EVENTS_PER_TICK = 50
# Up to this many changed records, the catalog (and Dagster) are asked about each; past it, one read of
# everything they hold is cheaper (a first poll, or a whole export rewritten).
ONE_BY_ONE_LOOKUPS = 200


@dataclass(frozen=True)
class ExperimentRequest:
    """A record to register, with a run key unique to this change."""

    record: ExperimentRecord
    run_key: str


def experiments_to_register(poll: ElnPoll, registered: Mapping[str, str]) -> list[ExperimentRequest]:
    """New records, and records whose content differs from what the catalog holds.

    The run key names the transition (catalog fingerprint -> ELN fingerprint)
    rather than the new content alone, so replaying a poll starts nothing new,
    while an edit that is later reverted still gets its run.
    """
    requests = []
    for record in poll.records:
        current = registered.get(record.id)
        if current == record.fingerprint:
            continue
        requests.append(ExperimentRequest(record, f"experiment:{record.id}:{current or 'new'}->{record.fingerprint}"))
    return requests


def registered_fingerprints(catalog: Catalog, experiment_ids: Collection[str]) -> Mapping[str, str]:
    """The catalog's fingerprint of each of these experiments that it holds: what a tick compares records with.

    A tick costs what changed: a few changed records are looked up one by one,
    not by reading the fingerprint of every experiment the catalog holds.
    """
    if len(experiment_ids) > ONE_BY_ONE_LOOKUPS:
        return catalog.experiment_fingerprints()
    found = {experiment_id: catalog.get_experiment(experiment_id) for experiment_id in experiment_ids}
    return {experiment_id: record.fingerprint for experiment_id, record in found.items() if record is not None}


@dataclass
class ElnCursor:
    """The ELN sensor's memory: the connector's poll cursor, and the inbox receipts of the last tick.

    Receipts are acknowledged at the start of the next tick, once Dagster has
    recorded the run requests of the tick that read them, so a crash between
    the two only hands the events out again (and their run keys start nothing twice).
    """

    poll: str | None = None
    receipts: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, text: str | None) -> ElnCursor:
        """The cursor a tick saved. One from before the inbox was the connector's poll cursor alone: it is kept,
        so an upgrade does not poll the whole ELN again."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
        except ValueError:
            return cls(poll=text)
        if not isinstance(data, dict) or "poll" not in data:
            return cls(poll=text)
        return cls(poll=data.get("poll"), receipts=[str(r) for r in data.get("receipts") or []])

    def to_json(self) -> str:
        return json.dumps({"poll": self.poll, "receipts": self.receipts}, sort_keys=True)


def merge_polls(pushed: ElnPoll, polled: ElnPoll) -> ElnPoll:
    """One view of what changed: records by experiment id (the later read wins), errors and archives of both."""
    records = {record.id: record for record in (*pushed.records, *polled.records)}
    archived = tuple(dict.fromkeys((*pushed.archived, *polled.archived)))
    return ElnPoll(
        records=tuple(records.values()),
        errors=(*pushed.errors, *polled.errors),
        cursor=polled.cursor,
        unchanged=polled.unchanged and not pushed.records and not pushed.archived,
        archived=archived,
    )


def archive_changes(poll: ElnPoll, catalog: Catalog) -> list[str]:
    """Mirror the ELN's archive state in the catalog: archived entries marked, entries seen active unmarked.

    Archiving only marks: an experiment's data and catalog entries stay, since
    archived experiments are still cited and searched. Returns the experiments whose mark changed.
    """
    changed = [experiment_id for experiment_id in poll.archived if catalog.set_archived(experiment_id, True)]
    if not poll.records:
        return changed
    archived = catalog.archived_experiments()
    changed += [
        record.id for record in poll.records if record.id in archived and catalog.set_archived(record.id, False)
    ]
    return changed
