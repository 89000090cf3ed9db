"""Deciding which ELN records need the `experiment` asset (re)materialized."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from labmesh_dagster.connectors.eln.base import ElnPoll
from labmesh_dagster.core.experiment import ExperimentRecord


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
