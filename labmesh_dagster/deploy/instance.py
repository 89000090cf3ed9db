"""Dagster's instance file (``dagster.yaml``): `labmesh dev`'s on SQLite, a deployment's on PostgreSQL.

Both say the same about how runs are handled (`INSTANCE_POLICY`): retries,
the run launcher that tells run monitoring whether a run's worker lives, run
monitoring's timeouts, at most one run at a time per experiment partition (a
tag concurrency limit of the queued run coordinator) and the pools' default
slots. They differ only in storage. `labmesh dev` leaves storage out, so
Dagster keeps SQLite files under ``DAGSTER_HOME``; a deployment's processes
(code server, webserver, daemon, run workers) share one PostgreSQL database,
whose URL each process reads from its environment when it starts, so no
password is ever written into the file.

That variable is ``LABMESH_DAGSTER_DATABASE_URL``, not ``LABMESH_DATABASE_URL``
itself: it is the same database, with the driver named
(``postgresql+psycopg2://``, `dagster_database_url`). dagster-postgres is
written for psycopg2, while SQLAlchemy 2.1 picks psycopg 3 for a plain
``postgresql://`` URL; psycopg 3 binds parameters on the server, where
PostgreSQL refuses the one in dagster-postgres's ``NOTIFY run_events, $1``,
so every event write (every sensor tick, every run) fails. labmesh's own
stores connect with psycopg 3 and take the plain URL.

Nothing here imports Dagster: the CLI renders these files in a blink.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from pathlib import Path

DATABASE_URL_VARIABLE = "LABMESH_DATABASE_URL"
DAGSTER_DATABASE_URL_VARIABLE = "LABMESH_DAGSTER_DATABASE_URL"
DAGSTER_DRIVER = "postgresql+psycopg2"

INSTANCE_POLICY = """\
telemetry:
  enabled: false
# No first-visit prompts in the UI (Dagster's newsletter dialog).
nux:
  enabled: false
# A run that fails (a locked file, a transient error) is retried twice before it is left for a person.
run_retries:
  enabled: true
  max_retries: 2
# Runs start as processes of the code server, as with Dagster's default launcher; this one also tells run
# monitoring whether a run's process is still alive, so a run whose worker died unwatched (the OS killed
# it with its code server, labmesh dev was stopped mid-run) fails and is retried, instead of staying
# STARTED and holding its experiment's one run slot for ever.
run_launcher:
  module: labmesh_dagster.defs.run_launcher
  class: LocalRunLauncher
# Run monitoring, by the daemon: worker health every minute; a run stuck starting or cancelling is ended
# after 5 minutes, and any run after 6 hours (a worker whose pid another process took since). These
# launchers cannot resume a run, so resume attempts must be 0 (Dagster refuses to start otherwise).
run_monitoring:
  enabled: true
  start_timeout_seconds: 300
  cancel_timeout_seconds: 300
  max_resume_run_attempts: 0
  poll_interval_seconds: 60
  max_runtime_seconds: 21600
concurrency:
  runs:
    max_concurrent_runs: 4
    # One run at a time per experiment partition, so two runs never build the same manifest at once.
    tag_concurrency_limits:
      - key: "dagster/partition"
        value:
          applyLimitPerUniqueValue: true
        limit: 1
  # Pools without a limit of their own: labmesh has one, healthomics_import, whose runs each hold a slot
  # while their HealthOmics import job runs. Raise it with `dagster instance concurrency set healthomics_import N`.
  pools:
    default_limit: 2
"""
"""What every labmesh instance says about runs, whatever its storage."""

DEV_DAGSTER_YAML = (
    """\
# Written by `labmesh dev`. Dagster's own storage is SQLite under this folder.
"""
    + INSTANCE_POLICY
)
"""`labmesh dev`'s instance: SQLite under ``DAGSTER_HOME`` (storage left to Dagster's default)."""


def deployment_dagster_yaml(variable: str = DAGSTER_DATABASE_URL_VARIABLE) -> str:
    """A deployment's instance: runs, event log and schedules in the PostgreSQL database ``$variable`` names."""
    return (
        "# Written by `labmesh deploy`. Dagster's own storage (runs, event log, schedules) is PostgreSQL, at the\n"
        f"# URL each process reads from ${variable} when it starts: no password is written here. It is\n"
        f"# ${DATABASE_URL_VARIABLE} with the driver named ({DAGSTER_DRIVER}://), which dagster-postgres needs.\n"
        "storage:\n"
        "  postgres:\n"
        "    postgres_url:\n"
        f"      env: {variable}\n"
    ) + INSTANCE_POLICY


def dagster_database_url(url: str) -> str:
    """``LABMESH_DATABASE_URL`` as Dagster's storage takes it: the same database through psycopg2."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.split("+", 1)[0] not in {"postgresql", "postgres"}:
        raise ValueError("expected a postgresql:// URL")
    return f"{DAGSTER_DRIVER}://{rest}"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_dagster_yaml(path: Path, text: str, *, earlier: Collection[str] = ()) -> bool:
    """Write ``text`` to ``path`` unless someone changed the file: True if written.

    A missing file is written; so is one that holds what an earlier labmesh
    wrote (its sha256 in ``earlier``), brought up to date. A file with other
    content was edited by a person, and is theirs: it is kept as it is.
    """
    if path.exists():
        current = path.read_bytes()
        if current == text.encode("utf-8") or digest(current) not in earlier:
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True
