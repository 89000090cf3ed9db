"""Moments as the access file and the audit log store them: UTC text of one fixed width.

``datetime.isoformat`` drops the microseconds when they are zero, so two of
its strings do not always sort as their moments do. A fixed width does, which
lets SQLite compare and index moments as plain text (``at >= ?``).
"""

from __future__ import annotations

from datetime import UTC, datetime

FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def stamp(moment: datetime) -> str:
    """``moment`` in UTC, as sortable text; a naive moment is taken to be UTC already."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.strftime(FORMAT)


def moment(text: str) -> datetime:
    """The timezone-aware moment a `stamp` stands for."""
    return datetime.strptime(text, FORMAT).replace(tzinfo=UTC)
