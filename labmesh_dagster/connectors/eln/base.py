"""The ELN port: where experiments come from and where their data locations go back to.

Every ELN is polled with an opaque cursor. Pushed events (webhooks, an
EventBridge queue) feed the same sensor through the inbox: an event only says
which entry changed, and `ElnSource.resolve` reads those entries as a poll
would. The poll stays as the backfill that guarantees nothing is missed.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from labmesh_dagster.core.errors import LabmeshError, RecordError
from labmesh_dagster.core.experiment import ExperimentRecord

EntryId = TypeVar("EntryId")
Entry = TypeVar("Entry")


class ElnUnavailable(LabmeshError):
    """The ELN kept failing (throttling, 5xx, timeouts, network) after every retry; nothing was changed by labmesh."""


class ElnRequestRefused(LabmeshError):
    """The ELN refused a request on its merits (a 4xx other than 429): retrying would not help."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        super().__init__(f"{method} {path} was refused with HTTP {status}: {message}")


class ElnBadResponse(LabmeshError):
    """The ELN answered, but not with what its API documents (not JSON, or the wrong shape)."""


class InvalidEntryId(LabmeshError, ValueError):
    """An entry id its ELN cannot have: refused before it reaches an inbox, a path or a URL.

    The value is shown cut short: a sender that posts a 10,000-character id
    should not get it back, nor fill a log with it.
    """

    def __init__(self, value: object, rule: str) -> None:
        shown = repr(value)
        self.value = value
        self.rule = rule
        super().__init__(f"{shown if len(shown) <= 80 else shown[:77] + '...'} is not {rule}")


@dataclass(frozen=True)
class ElnPoll:
    """What one poll found: readable records, unreadable ones, and where to resume.

    ``unchanged`` says nothing changed since the cursor, so there is nothing to compare.
    """

    records: tuple[ExperimentRecord, ...] = ()
    errors: tuple[RecordError, ...] = ()
    cursor: str | None = None
    unchanged: bool = False
    # Experiments the ELN archived or deleted since the cursor: marked archived, their data kept.
    archived: tuple[str, ...] = ()


@dataclass(frozen=True)
class ElnEvent:
    """One pushed notice that an ELN entry changed, as it waits in the inbox.

    ``source`` names the ELN connector that reads the event (``folder``,
    ``elabftw``, ``benchling``), whoever sent it: a LIMS posting to its own
    webhook feeds the folder ELN. ``event_id`` is the sender's own id
    (duplicates are dropped by it), prefixed with the sender's name when the
    sender is not named after the ELN, so two senders' ids never collide;
    ``entry_id`` is the ELN's id of the entry (not yet an experiment id: the
    connector reads the entry to learn that); ``kind`` is ``changed`` or
    ``archived``.
    """

    source: str
    event_id: str
    entry_id: str
    kind: str
    occurred_at: str

    def __post_init__(self) -> None:
        if self.kind not in {"changed", "archived"}:
            raise ValueError(f"an ELN event is 'changed' or 'archived', not {self.kind!r}")
        if not self.event_id or not self.entry_id:
            raise ValueError("an ELN event needs the sender's event id and the entry id")


class ElnSource(ABC):
    """An electronic lab notebook or LIMS."""

    name: str

    @staticmethod
    @abstractmethod
    def validate_entry_id(entry_id: str) -> str:
        """``entry_id`` unchanged when an entry of this ELN can have it, else `InvalidEntryId`.

        Pushed events name entries in the sender's words; the rule is checked
        where the event arrives (so a bad one is refused at once) and again
        before the id goes into a path or a URL.
        """

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

    @abstractmethod
    def resolve(self, events: Sequence[ElnEvent]) -> ElnPoll:
        """The records the events point at, read now (an event may be stale; the entry is the truth)."""


def first_entry_with_id(
    experiment_id: str,
    candidates: Iterable[EntryId],
    read: Callable[[EntryId], Entry | None],
    experiment_id_of: Callable[[Entry], str],
) -> tuple[EntryId, Entry] | None:
    """The first candidate entry whose mapped experiment id is ``experiment_id``, read once each.

    ELN searches are fuzzy (wildcards, display ids, text matches), so every
    candidate is read and its id mapped again; entries that cannot be mapped,
    or that ``read`` turns down (None), are passed over.
    """
    tried: set[EntryId] = set()
    for entry_id in candidates:
        if entry_id in tried:
            continue
        tried.add(entry_id)
        entry = read(entry_id)
        if entry is None:
            continue
        try:
            if experiment_id_of(entry) == experiment_id:
                return entry_id, entry
        except RecordError:
            continue
    return None


LIVE, ARCHIVED, NOT_OURS = "live", "archived", "not ours"


def sort_entries(
    entries: Iterable[tuple[EntryId, Entry | None]],
    *,
    read: Callable[[EntryId, Entry | None], Entry | None],
    state_of: Callable[[Entry], str],
    record_of: Callable[[Entry], ExperimentRecord],
    experiment_id_of: Callable[[Entry], str],
    entry_url: Callable[[EntryId], str],
) -> tuple[tuple[ExperimentRecord, ...], tuple[RecordError, ...], tuple[str, ...]]:
    """ELN entries sorted into records, errors and archived experiment ids, one bad entry never stopping the rest.

    ``read`` gives the entry as it is now (from what is already known of it, or
    None if it cannot be read); the entry's own state (`state_of`: live, archived,
    not ours) decides, not whatever announced the change. When two entries claim
    one experiment id the first keeps it and the second is an error.
    """
    records: dict[str, ExperimentRecord] = {}
    errors: list[RecordError] = []
    archived: dict[str, None] = {}
    for entry_id, known in entries:
        try:
            entry = read(entry_id, known)
            if entry is None:
                errors.append(RecordError(entry_url(entry_id), "entry cannot be read (deleted or not shared)"))
                continue
            state = state_of(entry)
            if state == NOT_OURS:
                continue
            if state == ARCHIVED:
                archived[experiment_id_of(entry)] = None
                continue
            record = record_of(entry)
        except RecordError as exc:
            errors.append(exc)
            continue
        except ElnRequestRefused as exc:
            errors.append(RecordError(entry_url(entry_id), str(exc)))
            continue
        if record.id in records:
            errors.append(RecordError(record.source, f"experiment {record.id} is also {records[record.id].source}"))
            continue
        records[record.id] = record
    return tuple(records.values()), tuple(errors), tuple(archived)


def cursor_fields(text: str | None, version: int) -> dict[str, Any] | None:
    """A poll cursor's fields, or None (poll from the start) for none, a damaged one or one of another version:
    Dagster keeps the text across upgrades, and another connector's cursor must never be read as this one's."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("v") != version:
        return None
    return data
