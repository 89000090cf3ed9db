"""An ECS task's container logs, forwarded to Dagster while the Pipes session lasts, and then no more.

PipesECSClient gives each container of the task a ``PipesCloudWatchLogReader``.
In dagster-aws 0.29 that reader's thread looks at whether the session has
closed only after a page that holds events, and after an empty page it asks
``GetLogEvents`` again at once. So once the task has ended and its log is
read, the thread asks without pause (681 calls in 3 s against moto's server)
for as long as the process lives. That spends the account's GetLogEvents
quota, which the service throttles, and the thread, not being a daemon, holds
the run's process open after the run.

`ClosingCloudWatchMessageReader` is dagster-aws's message reader, except that
it hands PipesECSClient `ClosingCloudWatchLogReader` instead. That reader:

- pauses between polls that found nothing new (GetLogEvents' documented end
  of the stream: no events, or the same ``nextForwardToken`` as was sent);
- once the session has closed (or `stop` was called), reads what is left of
  the stream and ends;
- runs on a daemon thread, so a stuck call never keeps a process alive;
- logs a failed read and ends, instead of a thread dying with a traceback:
  the logs are a convenience, the results travel by Pipes messages.
"""

from __future__ import annotations

import logging
import threading
from typing import IO, Any

from dagster._core.pipes.utils import PipesLogReader, PipesParams, forward_only_logs_to_file
from dagster_aws.pipes import PipesCloudWatchLogReader, PipesCloudWatchMessageReader
from dagster_aws.pipes.message_readers import get_log_events

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
"""The pause after a poll that found nothing new, while the task may still write."""


class ClosingCloudWatchLogReader(PipesCloudWatchLogReader):
    """dagster-aws's container log reader, ending when the Pipes session does (see the module)."""

    def __init__(self, *args: Any, poll_seconds: float = POLL_SECONDS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.poll_seconds = poll_seconds
        self._stopping = threading.Event()

    @classmethod
    def like(cls, reader: PipesCloudWatchLogReader) -> ClosingCloudWatchLogReader:
        """This kind of reader for what ``reader`` was made to read."""
        return cls(
            client=reader.client,
            log_group=reader.log_group,
            log_stream=reader.log_stream,
            target_stream=reader.target_stream,
            start_time=reader.start_time,
            debug_info=reader.debug_info,
            max_retries=reader.max_retries,
        )

    def start(self, params: PipesParams, is_session_closed: threading.Event) -> None:
        if not self.target_is_readable(params):
            raise ValueError("log_group and log_stream must be set either in the constructor or in Pipes params")
        stream = params.get("log_stream") or self.log_stream
        self.thread = threading.Thread(  # type: ignore[assignment]  # dagster-aws declares it None
            target=self._forward,
            args=(params, is_session_closed),
            name=f"labmesh CloudWatch log reader {stream}",
            daemon=True,
        )
        self.thread.start()  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Read what is left of the stream, then end (as when the session closes)."""
        self._stopping.set()

    def _forward(self, params: PipesParams, is_session_closed: threading.Event) -> None:
        request: dict[str, Any] = {
            "logGroupName": params.get("log_group") or self.log_group,
            "logStreamName": params.get("log_stream") or self.log_stream,
            "startFromHead": True,
        }
        start_time = self.start_time or params.get("start_time")
        if start_time is not None:
            request["startTime"] = start_time
        try:
            while True:
                # Looked at before the read: a read that began after the close and reached the end read it all.
                closing = is_session_closed.is_set() or self._stopping.is_set()
                response = get_log_events(client=self.client, max_retries=self.max_retries, **request)
                events = response.get("events") or []
                write_lines(events, self.target_stream)
                token = response.get("nextForwardToken")
                at_end = not events or token is None or token == request.get("nextToken")
                if token is not None:
                    request["nextToken"] = token
                if at_end:
                    if closing:
                        return
                    is_session_closed.wait(self.poll_seconds)
        except Exception as error:  # any failure of the read; the results travel by Pipes messages, not here
            log.warning(
                "stopped forwarding the container log %s/%s: %s",
                request["logGroupName"],
                request["logStreamName"],
                error,
            )


def write_lines(events: list[dict[str, Any]], target: IO[str]) -> None:
    """Each line of the events' messages that is not a Pipes message, to ``target``."""
    for event in events:
        for line in str(event.get("message", "")).splitlines():
            if line:
                forward_only_logs_to_file(line, target)


class ClosingCloudWatchMessageReader(PipesCloudWatchMessageReader):
    """dagster-aws's CloudWatch message reader, whose container log readers end with the session."""

    def add_log_reader(self, log_reader: PipesLogReader) -> None:
        if type(log_reader) is PipesCloudWatchLogReader:
            log_reader = ClosingCloudWatchLogReader.like(log_reader)
        super().add_log_reader(log_reader)
