"""The event queue port: messages received, then acknowledged once acted on.

Acknowledging is separate from receiving so that a consumer can delete a
message only after what it asked for is durably recorded; until then an
unacknowledged message comes back after its visibility timeout.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    receipt: str
    body: str


class EventQueue(ABC):
    @abstractmethod
    def receive(self, *, max_messages: int, visibility_timeout: int) -> list[QueueMessage]:
        """Up to ``max_messages`` messages available now (never waits for more)."""

    @abstractmethod
    def acknowledge(self, receipts: Iterable[str]) -> None:
        """Delete acted-on messages; an expired or unknown receipt is not an error."""
