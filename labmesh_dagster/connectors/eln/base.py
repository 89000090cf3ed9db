"""The ELN port: where experiments come from and where their data locations go back to.

Every ELN is polled with an opaque cursor. A push channel (webhooks) can later
feed the same sensor; the poll stays as the backfill that guarantees nothing is
missed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

from labmesh_dagster.core.errors import RecordError
from labmesh_dagster.core.experiment import ExperimentRecord


@dataclass(frozen=True)
class ElnPoll:
    """What one poll found: readable records, unreadable ones, and where to resume.

    ``unchanged`` says nothing changed since the cursor, so there is nothing to compare.
    """

    records: tuple[ExperimentRecord, ...] = ()
    errors: tuple[RecordError, ...] = ()
    cursor: str | None = None
    unchanged: bool = False


class ElnSource(ABC):
    """An electronic lab notebook or LIMS."""

    name: str

    @abstractmethod
    def poll(self, cursor: str | None) -> ElnPoll:
        """Experiments created or changed since ``cursor`` (all of them for ``None``)."""

    @abstractmethod
    def fetch(self, experiment_id: str) -> ExperimentRecord:
        """The full, current record; raises `ExperimentNotFound` or `RecordError`."""

    @abstractmethod
    def write_back(self, experiment_id: str, locations: Mapping[str, str]) -> None:
        """Tell the ELN where the experiment's data lives, one location per zone (idempotent)."""

    @abstractmethod
    def read_back(self, experiment_id: str) -> dict[str, str]:
        """The locations the ELN currently holds for the experiment, to confirm a write-back."""
