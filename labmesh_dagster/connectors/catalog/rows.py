"""What both catalogs (SQLite and PostgreSQL) make of their rows the same way: one reading, two databases."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypeVar

from labmesh_dagster.connectors.catalog.base import DatasetRecord, DatasetRevision
from labmesh_dagster.core.checks import CheckOutcome
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import ManifestEntry


class ByColumn(Protocol):
    """A row read by column name: ``sqlite3.Row`` or psycopg's dict row."""

    def __getitem__(self, column: str) -> Any: ...


class InDataset(Protocol):
    @property
    def dataset(self) -> str | None: ...


RowT = TypeVar("RowT", bound=InDataset)


def dataset_from_rows(experiment_id: str, zone: Zone, row: ByColumn, files: Iterable[ByColumn]) -> DatasetRecord:
    """A dataset's row and its files' rows (each with its manifest entry as JSON), read back."""
    return DatasetRecord(
        entry_id=f"dataset:{experiment_id}/{zone}",
        experiment_id=experiment_id,
        zone=Zone(zone),
        location=row["location"],
        revision=row["revision"],
        manifest_digest=row["manifest_digest"],
        files=tuple(ManifestEntry.from_dict(json.loads(file["entry"])) for file in files),
        run_id=row["run_id"],
    )


def revision_from_row(row: ByColumn) -> DatasetRevision:
    """A ``dataset_revisions`` row, its checks (JSON, or NULL before any ran) read back."""
    checks = row["checks"]
    return DatasetRevision(
        experiment_id=row["experiment_id"],
        zone=Zone(row["dataset"]),
        revision=row["revision"],
        manifest_digest=row["manifest_digest"],
        file_count=row["file_count"],
        total_bytes=row["total_bytes"],
        published_at=row["published_at"],
        run_id=row["run_id"],
        checks=None if checks is None else tuple(CheckOutcome.from_dict(item) for item in json.loads(checks)),
    )


def units(rows: Sequence[RowT]) -> dict[str | None, list[RowT]]:
    """Rows grouped into hits: one per dataset; the experiment's own row only if no dataset matched."""
    grouped: dict[str | None, list[RowT]] = {}
    for row in rows:
        grouped.setdefault(row.dataset, []).append(row)
    if len(grouped) > 1:
        grouped.pop(None, None)
    return grouped
