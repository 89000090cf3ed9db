"""S3 event notifications, read as plain data.

S3 delivers at least once and in no particular order, so the rules are: skip
the ``s3:TestEvent`` S3 sends when a notification is configured; URL-decode keys
with ``unquote_plus`` (S3 encodes a space as ``+`` and a real ``+`` as ``%2B``);
and, for the same key, trust only the event with the highest ``sequencer``
(hex strings of varying length, compared after left-padding), which is the
latest operation on that key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote_plus


@dataclass(frozen=True)
class StoreEvent:
    bucket: str
    key: str
    event_name: str
    sequencer: str
    size: int
    etag: str
    time: datetime

    @property
    def created(self) -> bool:
        return self.event_name.startswith("ObjectCreated")

    @property
    def removed(self) -> bool:
        return self.event_name.startswith("ObjectRemoved")

    @property
    def identity(self) -> str:
        """Names this event: a redelivered duplicate has the same identity, another operation does not
        (the time and name tell operations apart where a store sends no sequencer)."""
        return f"{self.bucket}/{self.key}@{self.sequencer}:{self.event_name}:{self.time.isoformat()}"

    def order(self) -> tuple[str, datetime]:
        # The sequencer orders operations on one key; the event time breaks ties where a store
        # (an S3-compatible one, or moto) sends no sequencer at all.
        return (self.sequencer.rjust(32, "0"), self.time)


def parse_s3_notification(body: str) -> list[StoreEvent]:
    """The object events in one SQS message body; raises ValueError for a body that is not one."""
    try:
        message = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise ValueError("not an S3 event notification object")
    if message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        raise ValueError("no list of 'Records' in the message (an SNS envelope is not unwrapped)")
    events = []
    for record in records:
        try:
            s3 = record["s3"]
            texts = [s3["bucket"]["name"], s3["object"]["key"], record["eventName"], record["eventTime"]]
            sequencer = s3["object"].get("sequencer", "0")
            if not all(isinstance(text, str) for text in [*texts, sequencer]):
                raise TypeError("bucket, key, eventName, eventTime and sequencer must be strings")
            time = datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00"))
            if time.tzinfo is None:
                raise ValueError(f"eventTime {record['eventTime']!r} has no time zone")
            events.append(
                StoreEvent(
                    bucket=s3["bucket"]["name"],
                    key=unquote_plus(s3["object"]["key"]),
                    event_name=record["eventName"],
                    sequencer=sequencer,
                    size=int(s3["object"].get("size", 0)),
                    etag=str(s3["object"].get("eTag", "")).strip('"'),
                    time=time,
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"malformed S3 event record: {exc!r}") from exc
    return events


def latest_per_key(events: Iterable[StoreEvent]) -> list[StoreEvent]:
    """For each (bucket, key), the event of the latest operation; duplicates and stale events drop out."""
    latest: dict[tuple[str, str], StoreEvent] = {}
    for event in events:
        current = latest.get((event.bucket, event.key))
        if current is None or event.order() > current.order():
            latest[(event.bucket, event.key)] = event
    return sorted(latest.values(), key=lambda event: (event.bucket, event.key))
