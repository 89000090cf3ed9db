"""The ELN inbox on SQS (moto's server over HTTP): events in, out once per batch, gone once acknowledged.

A FIFO queue drops a redelivered event id itself; a standard queue may hand
a redelivery out, and the inbox drops it within the batch; a message that is
not an ELN event is removed rather than coming back forever.
"""

from __future__ import annotations

import json

import pytest

from labmesh_dagster.connectors.aws import make_client
from labmesh_dagster.connectors.eln.base import ElnEvent
from labmesh_dagster.connectors.eln.sqs_inbox import SqsInbox

EVENT = ElnEvent("benchling", "evt_1", "etr_A1", "changed", "2026-11-29T10:00:00Z")


@pytest.fixture(params=["standard", "fifo"])
def inbox(request: pytest.FixtureRequest, moto_endpoint: str, aws_environment: None) -> SqsInbox:
    sqs = make_client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    name = f"eln-inbox-{request.node.name.replace('[', '-').replace(']', '')}"[:70]
    attributes = {"FifoQueue": "true"} if request.param == "fifo" else {}
    url = sqs.create_queue(QueueName=name + (".fifo" if request.param == "fifo" else ""), Attributes=attributes)[
        "QueueUrl"
    ]
    return SqsInbox(sqs, url)


def test_an_event_is_handed_out_once_per_batch_and_gone_once_acknowledged(inbox: SqsInbox) -> None:
    for _ in range(3):
        inbox.put(EVENT)

    [message] = inbox.receive(max_messages=10, visibility_seconds=30)
    inbox.acknowledge([message.receipt])

    assert message.event == EVENT
    assert inbox.receive(max_messages=10, visibility_seconds=0) == []


def test_a_message_that_is_not_an_eln_event_is_removed(inbox: SqsInbox) -> None:
    extra = {"MessageGroupId": "g", "MessageDeduplicationId": "d"} if inbox.fifo else {}
    inbox.client.send_message(QueueUrl=inbox.queue_url, MessageBody="{not an event", **extra)
    inbox.put(EVENT)

    assert [m.event for m in inbox.receive(max_messages=10, visibility_seconds=0)] == [EVENT]
    assert [m.event for m in inbox.receive(max_messages=10, visibility_seconds=0)] == [EVENT]  # not acknowledged


def test_benchling_events_routed_by_eventbridge_are_read_as_benchling_events(inbox: SqsInbox) -> None:
    def send(detail_type: str, detail: dict, event_id: str) -> None:
        envelope = {
            "version": "0",
            "id": f"eb-{event_id}",
            "detail-type": detail_type,
            "source": "aws.partner/benchling.com/acme/labmesh",
            "time": "2026-11-29T10:00:00Z",
            "detail": detail,
        }
        extra = {"MessageGroupId": "benchling", "MessageDeduplicationId": event_id} if inbox.fifo else {}
        inbox.client.send_message(QueueUrl=inbox.queue_url, MessageBody=json.dumps(envelope), **extra)

    send(
        "v2.entry.updated.fields",
        {"id": "evt_1", "entity": {"id": "etr_A1"}, "eventType": "v2.entry.updated.fields"},
        "1",
    )
    send("v2.request.created", {"id": "evt_2", "entity": {"id": "req_1"}}, "2")

    [message] = inbox.receive(max_messages=10, visibility_seconds=30)

    assert message.event == ElnEvent("benchling", "evt_1", "etr_A1", "changed", "2026-11-29T10:00:00Z")
    assert inbox.receive(max_messages=10, visibility_seconds=0) == []  # the request event was removed
