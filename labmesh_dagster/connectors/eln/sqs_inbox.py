"""The ELN event inbox on Amazon SQS, for the aws profile (where `labmesh api` and Dagster share no disk).

The same queue can be the target of an Amazon EventBridge rule on Benchling's
partner event bus: those messages are EventBridge envelopes whose
``detail-type`` is the event type (``v2.entry.updated.fields``) and whose
``detail`` is the event itself, as Benchling's List Events API gives it
(``EntryUpdatedFieldsEvent`` and its kin): its ``id``, its ``createdAt`` and
the entry at ``entry``. They are read as Benchling events.

A FIFO queue (``.fifo``) is deduplicated by SQS itself on (source, event id)
for five minutes, the window in which senders retry; SQS cannot say whether a
send was such a duplicate, so `put` answers True and the API accepts the
redelivery again. Nothing runs twice either way: the sensor drops events it
saw in the same batch, and run keys carry the ELN's modification time.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from typing import Any

from labmesh_dagster.connectors.eln.base import ElnEvent
from labmesh_dagster.connectors.eln.inbox import EventInbox, InboxMessage
from labmesh_dagster.connectors.events.sqs import SqsEventQueue

log = logging.getLogger(__name__)


class SqsInbox(EventInbox):
    def __init__(self, client: Any, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url
        self.queue = SqsEventQueue(client, queue_url)
        self.fifo = queue_url.endswith(".fifo")

    def put(self, event: ElnEvent) -> bool:
        body = json.dumps(
            {
                "source": event.source,
                "event_id": event.event_id,
                "entry_id": event.entry_id,
                "kind": event.kind,
                "occurred_at": event.occurred_at,
            },
            sort_keys=True,
        )
        extra = {}
        if self.fifo:
            identity = hashlib.sha256(f"{event.source}\x1f{event.event_id}".encode()).hexdigest()
            # One group per entry keeps an entry's events in order while different entries flow in parallel.
            extra = {"MessageDeduplicationId": identity, "MessageGroupId": f"{event.source}-{event.entry_id}"[:128]}
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=body, **extra)
        return True

    def receive(self, *, max_messages: int, visibility_seconds: int) -> list[InboxMessage]:
        received, seen, messages = [], set(), set()
        for message in self.queue.receive(max_messages=max_messages, visibility_timeout=visibility_seconds):
            if message.message_id in messages:
                continue  # the same message again (a short visibility): one copy is enough, and it must stay
            messages.add(message.message_id)
            try:
                event = parse_message(json.loads(message.body))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                log.warning("ELN inbox message %s dropped, it is not an ELN event: %s", message.message_id, exc)
                self.queue.acknowledge([message.receipt])  # not ours, or garbled: it would only come back
                continue
            if event is None:
                self.queue.acknowledge([message.receipt])  # an EventBridge event about something else
                continue
            if (event.source, event.event_id) in seen:
                self.queue.acknowledge([message.receipt])  # a redelivery sent as a message of its own
                continue
            seen.add((event.source, event.event_id))
            received.append(InboxMessage(message.receipt, event))
        return received

    def acknowledge(self, receipts: Iterable[str]) -> None:
        self.queue.acknowledge(receipts)


def parse_message(data: dict[str, Any]) -> ElnEvent | None:
    """An inbox message: one `SqsInbox.put` wrote, or an EventBridge envelope of a Benchling event.

    Raises ValueError (or KeyError, TypeError) for a message that is neither,
    or a Benchling entry event that names no entry.
    """
    if "detail-type" not in data:
        return ElnEvent(data["source"], data["event_id"], data["entry_id"], data["kind"], data["occurred_at"])
    kind_name, detail = str(data["detail-type"]), data["detail"]
    if not kind_name.startswith("v2.entry."):
        return None  # requests, assay runs, workflow tasks: not experiments
    entry = detail.get("entry")
    entry_id = entry.get("id") if isinstance(entry, dict) else None
    if not isinstance(entry_id, str):
        raise ValueError(f"Benchling event {detail.get('id')} ({kind_name}) carries no entry id at detail.entry.id")
    occurred_at = detail.get("createdAt") or data.get("time") or ""
    kind = "archived" if any(word in kind_name for word in ("archived", "deleted")) else "changed"
    return ElnEvent("benchling", str(detail.get("id") or data["id"]), entry_id, kind, str(occurred_at))
