"""A new Dagster home's daemon cursors, set before its first start so that the start is quiet.

Dagster's daemon retries failed runs (``run_retries`` in the dagster.yaml
`labmesh dev` writes) by reading run events from a cursor it keeps. On a new
home there is no cursor yet, and the daemon says so with a WARNING on its first
start ("No cursor for event type ..., ignoring older events"), which reads like
something is wrong. A new home has no events at all, so a cursor at 0 is
exactly what the daemon would settle on; setting it first makes the first start
as quiet as every later one. Only ever for a home with no run history: on an
older home a cursor at 0 would replay old failures.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg


def set_first_cursors(dagster_home: Path) -> bool:
    """Set the run-retry daemon's cursors of a Dagster home that has none and no runs; True if it did."""
    try:
        from dagster._daemon.auto_run_reexecution.event_log_consumer import (
            DAGSTER_EVENT_TYPES,
            _create_cursor_key,
        )
    except ImportError:  # another Dagster release: its daemon may warn once, nothing worse
        return False
    keys = {_create_cursor_key(event_type) for event_type in DAGSTER_EVENT_TYPES}
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        cursors = instance.daemon_cursor_storage
        if cursors.get_cursor_values(keys) or instance.get_runs_count() > 0:
            return False
        cursors.set_cursor_values(dict.fromkeys(keys, "0"))
        return True
    finally:
        instance.dispose()
