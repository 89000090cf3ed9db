"""OpenLineage run events posted to Amazon DataZone, and read back until DataZone has processed them.

``PostLineageEvent`` only accepts an event: DataZone processes it later, and
whether it became lineage is known from ``GetLineageEvent``, which reads
REQUESTED, then PROCESSING, then SUCCESS or FAILED. `DataZoneLineageSink.emit`
posts every event, then polls them all together until each is final or the
timeout passes (one deadline for the batch, so a slow domain costs one timeout,
not one per event), and reports each event that was refused, FAILED or still
unfinished as one problem line. It never raises for those: the data is already
published, and the problems become a failed asset check instead.

Replays are idempotent: each event's ``clientToken`` is derived from its run
id, its type and a digest of its bytes, so re-posting the same event (a retried
run, a re-emitted batch) is answered with the first post's id rather than
recorded twice, while any change to the event makes a new token.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from labmesh_dagster.connectors.aws import PacedCaller, error_code
from labmesh_dagster.connectors.lineage.base import Event, LineageSink
from labmesh_dagster.core.defaults import DATAZONE_CALLS_PER_SECOND

FINAL_STATUSES = frozenset({"SUCCESS", "FAILED"})
EVENT_BYTES_MAX = 300_000
"""DataZone refuses events over 300,000 bytes."""

_TOKEN_MAX = 128


def event_bytes(event: Event) -> bytes:
    """The event as canonical JSON bytes: equal events, equal bytes, equal client tokens."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def _printable(text: str) -> str:
    """Only the characters a client token may hold (printable ASCII, no space)."""
    return re.sub(r"[^\x21-\x7e]", "_", text)


def client_token(event: Event, body: bytes) -> str:
    """``<runId>-<eventType>-<digest of the bytes>``: the same for a replay, different for any other event."""
    run_id = str(_part(event, "run").get("runId") or "")
    digest = hashlib.sha256(body).hexdigest()[:32]
    prefix = _printable(f"{run_id or 'run'}-{event.get('eventType') or 'event'}")
    return f"{prefix[: _TOKEN_MAX - len(digest) - 1]}-{digest}"


def _part(event: Event, name: str) -> dict[str, Any]:
    value = event.get(name)
    return value if isinstance(value, dict) else {}


def describe(event: Event) -> str:
    """Which event a problem line is about: type, job and run."""
    job = _part(event, "job")
    run = _part(event, "run")
    return (
        f"{event.get('eventType') or 'event'} of job {job.get('namespace', '?')}/{job.get('name', '?')}"
        f" run {run.get('runId', '?')}"
    )


def _failure(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message", "")
        return f"{error_code(exc)}: {message}"
    return f"DataZone could not be reached: {exc}"


@dataclass
class _Pending:
    event: Event
    event_id: str
    status: str = "REQUESTED"


class DataZoneLineageSink(LineageSink):
    """Run events to one DataZone domain, each confirmed processed or reported as a problem."""

    def __init__(
        self,
        client: Any,
        *,
        domain_id: str,
        max_per_second: float = DATAZONE_CALLS_PER_SECOND,
        timeout_seconds: float = 60,
        poll_seconds: float = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.domain_id = domain_id
        self.timeout_seconds = timeout_seconds
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.sleep = sleep
        self.call = PacedCaller(client, max_per_second=max_per_second, clock=clock, sleep=sleep)

    def emit(self, events: Sequence[Event]) -> list[str]:
        problems: list[str] = []
        pending: list[_Pending] = []
        for event in events:
            posted = self._post(event, problems)
            if posted:
                pending.append(posted)
        deadline = self.clock() + self.timeout_seconds
        while pending:
            pending = [item for item in pending if not self._finished(item, problems)]
            if not pending:
                break
            if self.clock() >= deadline:
                problems += [
                    f"DataZone had not processed lineage event {item.event_id} ({describe(item.event)}) after "
                    f"{self.timeout_seconds:g} s: still {item.status}"
                    for item in pending
                ]
                break
            self.sleep(self.poll_seconds)
        return problems

    def _post(self, event: Event, problems: list[str]) -> _Pending | None:
        body = event_bytes(event)
        if len(body) > EVENT_BYTES_MAX:
            problems.append(
                f"DataZone refused lineage event {describe(event)}: {len(body)} bytes, at most {EVENT_BYTES_MAX}"
            )
            return None
        try:
            posted = self.call(
                "post_lineage_event", domainIdentifier=self.domain_id, event=body, clientToken=client_token(event, body)
            )
        except (ClientError, BotoCoreError) as exc:
            problems.append(f"DataZone refused lineage event {describe(event)}: {_failure(exc)}")
            return None
        return _Pending(event, str(posted["id"]))

    def _finished(self, item: _Pending, problems: list[str]) -> bool:
        """Read the event's status once; True when it is final (a FAILED one, or one that cannot be read, noted)."""
        try:
            response = self.call("get_lineage_event", domainIdentifier=self.domain_id, identifier=item.event_id)
        except (ClientError, BotoCoreError) as exc:
            problems.append(
                f"DataZone could not say what became of lineage event {item.event_id} ({describe(item.event)}): "
                f"{_failure(exc)}"
            )
            return True
        body = response.get("event")
        if hasattr(body, "close"):
            # The event comes back as a stream, which is not needed: closing it frees the connection.
            body.close()
        item.status = str(response.get("processingStatus") or "REQUESTED")
        if item.status == "FAILED":
            problems.append(f"DataZone failed to process lineage event {item.event_id} ({describe(item.event)})")
        return item.status in FINAL_STATUSES
