"""S3 event notifications as S3 sends them: test events, encoded keys, sequencers.

Contract: `s3:TestEvent` yields nothing; keys are URL-decoded with
`unquote_plus` (`+` is a space, `%2B` a plus); a body that is not a
notification is a ValueError naming why; for each key only the event with the
highest sequencer survives, comparing sequencers of different lengths as
numbers; redelivered duplicates have the same identity, other operations not.
"""

from __future__ import annotations

import json

import pytest

from labmesh_dagster.core.store_events import latest_per_key, parse_s3_notification


def body(key: str, sequencer: str, event: str = "ObjectCreated:Put", time: str = "2026-11-29T10:00:00.000Z") -> str:
    record = {
        "eventName": event,
        "eventTime": time,
        "s3": {
            "bucket": {"name": "landing"},
            "object": {"key": key, "size": 5, "eTag": '"e1"', "sequencer": sequencer},
        },
    }
    return json.dumps({"Records": [record]})


def test_the_test_event_s3_sends_on_configuration_is_skipped() -> None:
    assert parse_s3_notification(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == []


def test_keys_are_decoded_like_s3_encodes_them() -> None:
    [event] = parse_s3_notification(body("EXP-1/run+1/S1%2BR2%25%C3%BC.fastq", "0A"))
    assert event.key == "EXP-1/run 1/S1+R2%ü.fastq" and event.etag == "e1" and event.created


@pytest.mark.parametrize("text", ["not json", "[]", json.dumps({"Records": [{"s3": {}}]}), json.dumps({"x": 1})])
def test_a_body_that_is_not_a_notification_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(ValueError):
        parse_s3_notification(text)


def test_only_the_latest_operation_on_each_key_counts() -> None:
    events = [
        *parse_s3_notification(body("EXP-1/a", "FF")),
        *parse_s3_notification(body("EXP-1/a", "0100", event="ObjectRemoved:Delete")),  # longer, hence later
        *parse_s3_notification(body("EXP-1/a", "FF")),
        *parse_s3_notification(body("EXP-1/b", "01")),
    ]
    latest = latest_per_key(events)
    assert [(event.key, event.event_name) for event in latest] == [
        ("EXP-1/a", "ObjectRemoved:Delete"),
        ("EXP-1/b", "ObjectCreated:Put"),
    ]
    assert events[0].identity == events[2].identity != events[1].identity
