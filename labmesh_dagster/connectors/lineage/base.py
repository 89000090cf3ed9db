"""The lineage port: a sink for OpenLineage run events, and the log they can be read back from.

Sinks answer with the problems they met rather than raising: a lineage
backend that refuses an event must not undo a materialization whose data is
already published, so the problems become a failed asset check instead.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

Event = Mapping[str, Any]


class LineageSink(ABC):
    """Somewhere run events are recorded."""

    @abstractmethod
    def emit(self, events: Sequence[Event]) -> list[str]:
        """Record ``events`` (JSON-ready dicts), idempotently; returns one line per event the sink refused."""


class LineageLog(LineageSink):
    """A sink that can also give its events back, for `labmesh lineage` and the portal."""

    @abstractmethod
    def events(self, experiment_id: str) -> list[dict[str, Any]]:
        """Every recorded event of an experiment, oldest first."""


class FanOutSink(LineageSink):
    """Every event to every sink, in order (the local log first, so it is kept whatever the others say)."""

    def __init__(self, sinks: Sequence[LineageSink]) -> None:
        self.sinks = tuple(sinks)

    def emit(self, events: Sequence[Event]) -> list[str]:
        problems: list[str] = []
        for sink in self.sinks:
            problems += sink.emit(events)
        return problems
