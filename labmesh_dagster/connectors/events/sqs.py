"""Amazon SQS as the event queue, in batches of ten (SQS's limit per call)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from labmesh_dagster.connectors.events.base import EventQueue, QueueMessage

SQS_BATCH = 10


class SqsEventQueue(EventQueue):
    def __init__(self, client: Any, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url

    def receive(self, *, max_messages: int, visibility_timeout: int) -> list[QueueMessage]:
        messages: list[QueueMessage] = []
        while len(messages) < max_messages:
            response = self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(SQS_BATCH, max_messages - len(messages)),
                VisibilityTimeout=visibility_timeout,
                WaitTimeSeconds=0,
            )
            batch = response.get("Messages", [])
            if not batch:
                break
            messages.extend(QueueMessage(m["MessageId"], m["ReceiptHandle"], m["Body"]) for m in batch)
        return messages

    def acknowledge(self, receipts: Iterable[str]) -> None:
        pending = list(receipts)
        for start in range(0, len(pending), SQS_BATCH):
            entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(pending[start : start + SQS_BATCH])]
            # Failed entries (expired receipts) come back in "Failed"; their messages reappear and
            # are recognised as duplicates, so there is nothing to retry here.
            self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
