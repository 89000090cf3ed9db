"""What time it is, asked in one place so that sensors and assets can be given a time instead of reading one.

Every rule that waits (files settling in landing, the grace period of an
unannounced experiment, the landing retry period) compares a moment with
"now"; taking "now" from an injected clock lets tests move time forward
instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""A function giving the current moment, timezone-aware."""


def utc_now() -> datetime:
    """The system clock, in UTC."""
    return datetime.now(UTC)
