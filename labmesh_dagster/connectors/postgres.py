"""PostgreSQL as labmesh's stores use it: one connection per operation, retried while the server is away.

A deployment with more than one process (a second run worker, the daemon and
the portal in their own containers) cannot share SQLite files, so its own
state (catalog, ELN inbox, lineage log, users and audit) lives in PostgreSQL,
selected by ``LABMESH_DATABASE_URL``. Each store keeps the shape of its SQLite
twin: a connection for each operation (kept open afterwards for the next, a
few per database and process), a transaction for each write.
psycopg 3 is the driver; rows come back as dicts, as ``sqlite3.Row`` gives
them by name.

Connecting is retried with backoff, because a database restarting or failing
over drops connections for seconds; after `CONNECT_ATTEMPTS` the caller gets
`DatabaseUnavailable` naming the server (never its password).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from labmesh_dagster.core.errors import LabmeshError

CONNECT_ATTEMPTS = 5
FIRST_PAUSE_SECONDS = 0.2
CONNECT_TIMEOUT_SECONDS = 10
SCHEMES = ("postgresql", "postgres")


class DatabaseUnavailable(LabmeshError):
    """The PostgreSQL server could not be reached, or refused the connection, after every attempt."""


class DatabaseUrlError(LabmeshError, ValueError):
    """``LABMESH_DATABASE_URL`` is not a PostgreSQL URL labmesh can use."""


def check_url(url: str) -> str:
    """``url`` if it names a PostgreSQL database (``postgresql://user@host:5432/name``), else a clear error."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise DatabaseUrlError(f"{redacted(url)}: expected a postgresql:// URL (postgresql://user@host:5432/name)")
    if not parts.path.strip("/"):
        raise DatabaseUrlError(f"{redacted(url)}: the URL names no database (postgresql://user@host:5432/name)")
    return url


def redacted(url: str) -> str:
    """The URL with its password replaced by ``***``: what error messages and logs may show."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def database_name(url: str) -> str:
    return urlsplit(url).path.strip("/")


def with_database(url: str, name: str) -> str:
    """The same server and credentials, another database (the tests make and drop their own)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _connect_once(url: str, autocommit: bool) -> Any:
    import psycopg
    from psycopg.rows import dict_row

    return psycopg.connect(url, autocommit=autocommit, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_SECONDS)


def open_connection(
    url: str, *, autocommit: bool = True, sleep: Callable[[float], None] = time.sleep, attempts: int = CONNECT_ATTEMPTS
) -> Any:
    """A psycopg connection to ``url``; a server that cannot be reached is tried again with backoff."""
    import psycopg

    pause = FIRST_PAUSE_SECONDS
    for attempt in range(1, attempts + 1):
        try:
            return _connect_once(url, autocommit)
        except psycopg.OperationalError as error:
            if attempt == attempts:
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise DatabaseUnavailable(
                    f"PostgreSQL at {redacted(url)} could not be reached after {attempts} attempts: {reason}"
                ) from error
            sleep(pause)
            pause *= 2
    raise AssertionError("unreachable")  # pragma: no cover


IDLE_PER_URL = 4
"""Connections a process keeps open per database between operations: opening one costs milliseconds (more with
TLS), and the portal checks a token on every request."""

_idle: dict[str, list[Any]] = {}
_idle_lock = threading.Lock()
_idle_pid = os.getpid()


def _take_idle(url: str) -> Any | None:
    """A kept connection that still answers, or None. After a fork the parent's connections are not ours."""
    global _idle_pid
    with _idle_lock:
        if _idle_pid != os.getpid():
            _idle.clear()  # never closed here: closing would end the parent's sessions
            _idle_pid = os.getpid()
        kept = _idle.get(url) or []
        db = kept.pop() if kept else None
    if db is None:
        return None
    import psycopg

    try:
        db.execute("SELECT 1")  # a restarted server or a dropped database ended it meanwhile
    except psycopg.Error:
        db.close()
        return None
    return db


def _keep_or_close(url: str, db: Any) -> None:
    from psycopg.pq import TransactionStatus

    if not db.closed and db.info.transaction_status == TransactionStatus.IDLE:
        with _idle_lock:
            kept = _idle.setdefault(url, [])
            if _idle_pid == os.getpid() and len(kept) < IDLE_PER_URL:
                kept.append(db)
                return
    db.close()


def close_idle(url: str | None = None) -> None:
    """Close the connections kept for ``url`` (all when None): before a database is dropped, say."""
    with _idle_lock:
        urls = [url] if url is not None else list(_idle)
        closing = [db for name in urls for db in _idle.pop(name, [])]
    for db in closing:
        db.close()


@contextmanager
def connect(url: str) -> Iterator[Any]:
    """An autocommit connection with rows as dicts, one kept from an earlier operation where there is one.

    It goes back to be kept when the block ends cleanly; one a block left by an exception is closed."""
    db = _take_idle(url) or open_connection(url)
    try:
        yield db
    except BaseException:
        db.close()
        raise
    _keep_or_close(url, db)


@contextmanager
def transaction(url: str) -> Iterator[Any]:
    """One write transaction: committed when the block ends, rolled back if it raises."""
    with connect(url) as db, db.transaction():
        yield db
