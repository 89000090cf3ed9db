"""An ECS task's container log, read from moto's CloudWatch Logs server over HTTP, until the session ends.

dagster-aws's own reader asks GetLogEvents without pause once the stream is
read and never ends; labmesh's:

- forwards every line of the stream, those written while it reads included,
  but Pipes' own messages, and ends once the session has closed;
- after reading to the end of the stream, waits before asking again;
- is what PipesECSClient gets for each container through labmesh's message reader;
- logs a read that fails and ends, rather than dying with a traceback.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
import time
import uuid
from typing import Any

import pytest
from dagster_aws.pipes import PipesCloudWatchLogReader

from labmesh_dagster.connectors.aws import make_client
from labmesh_dagster.defs.cloudwatch_logs import ClosingCloudWatchLogReader, ClosingCloudWatchMessageReader

GROUP = "/labmesh/pipelines"
JOIN_SECONDS = 30.0


@pytest.fixture
def logs(moto_endpoint: str, aws_environment: None) -> Any:
    return make_client("logs", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def stream(logs: Any) -> str:
    """A fresh log stream of the container, in a group made once."""
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=GROUP)
    name = f"tool-runner/{uuid.uuid4().hex}"
    logs.create_log_stream(logGroupName=GROUP, logStreamName=name)
    return name


def write(logs: Any, stream: str, *lines: str) -> None:
    now = int(time.time() * 1000)
    events = [{"timestamp": now, "message": line} for line in lines]
    logs.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=events)


def count_reads(logs: Any) -> list[int]:
    """A one-item list holding how many GetLogEvents calls ``logs`` has sent so far."""
    reads = [0]

    def counted(**_: Any) -> None:
        reads[0] += 1

    logs.meta.events.register("before-call.logs.GetLogEvents", counted)
    return reads


def reader_of(logs: Any, stream: str, target: io.StringIO, poll_seconds: float) -> ClosingCloudWatchLogReader:
    return ClosingCloudWatchLogReader(
        client=logs, log_group=GROUP, log_stream=stream, target_stream=target, poll_seconds=poll_seconds
    )


def ended(reader: ClosingCloudWatchLogReader) -> bool:
    assert reader.thread is not None
    reader.thread.join(JOIN_SECONDS)
    return not reader.is_running()


def test_every_line_is_forwarded_but_pipes_messages_and_the_reader_ends_with_the_session(
    logs: Any, stream: str
) -> None:
    write(logs, stream, "fastp: reading S1_R1.fastq.gz", json.dumps({"__dagster_pipes_version": "0.1", "method": "x"}))
    target = io.StringIO()
    closed = threading.Event()
    reader = reader_of(logs, stream, target, poll_seconds=0.05)

    reader.start({}, closed)
    write(logs, stream, "fastp: 2000 reads\nfastp: done")
    closed.set()

    assert ended(reader)
    assert target.getvalue().splitlines() == ["fastp: reading S1_R1.fastq.gz", "fastp: 2000 reads", "fastp: done"]
    assert reader.thread is not None and reader.thread.daemon


def test_at_the_end_of_the_stream_the_reader_waits_instead_of_asking_again_at_once(logs: Any, stream: str) -> None:
    write(logs, stream, "seqkit: 4 files")
    reads = count_reads(logs)
    target = io.StringIO()
    closed = threading.Event()
    reader = reader_of(logs, stream, target, poll_seconds=3600)

    reader.start({}, closed)
    deadline = time.monotonic() + JOIN_SECONDS
    while "seqkit" not in target.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # dagster-aws's reader sends GetLogEvents hundreds of times meanwhile

    assert reads[0] == 2  # the page with the line, then the empty one that says the stream ends there
    reader.stop()
    closed.set()
    assert ended(reader)
    assert reads[0] == 3  # one last read, for what the task wrote before it ended


def test_the_ecs_clients_container_log_readers_are_labmeshs(logs: Any) -> None:
    message_reader = ClosingCloudWatchMessageReader(client=logs)
    theirs = PipesCloudWatchLogReader(client=logs, log_group=GROUP, log_stream="tool-runner/abc", start_time=1700)

    message_reader.add_log_reader(theirs)

    (ours,) = message_reader.log_readers.values()
    assert isinstance(ours, ClosingCloudWatchLogReader)
    assert (ours.client, ours.log_group, ours.log_stream, ours.start_time) == (logs, GROUP, "tool-runner/abc", 1700)


def test_a_read_that_fails_is_logged_and_ends_the_reader(
    logs: Any, stream: str, caplog: pytest.LogCaptureFixture
) -> None:
    write(logs, stream, "multiqc: report written")
    target = io.StringIO()
    uncaught: list[Any] = []
    previous_hook = threading.excepthook
    threading.excepthook = uncaught.append
    try:
        with caplog.at_level(logging.WARNING, logger="labmesh_dagster.defs.cloudwatch_logs"):
            reader = reader_of(logs, stream, target, poll_seconds=0.05)
            reader.start({}, threading.Event())
            deadline = time.monotonic() + JOIN_SECONDS
            while "multiqc" not in target.getvalue() and time.monotonic() < deadline:
                time.sleep(0.05)
            logs.delete_log_stream(logGroupName=GROUP, logStreamName=stream)  # the session never closes

            assert ended(reader)
    finally:
        threading.excepthook = previous_hook

    assert uncaught == []
    assert f"stopped forwarding the container log {GROUP}/{stream}" in caplog.text
