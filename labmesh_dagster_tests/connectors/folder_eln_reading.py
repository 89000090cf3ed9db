"""What the folder ELN's change tests share: a reader that counts the record files it is asked to read (its
fixtures, with the records folder's, are in this folder's conftest)."""

from __future__ import annotations

from pathlib import Path

from labmesh_dagster.connectors.eln.folder import read_record_file
from labmesh_dagster.core.errors import RecordError
from labmesh_dagster.core.experiment import ExperimentRecord


class CountingReader:
    """`read_record_file`, counting the files it is asked to read."""

    def __init__(self) -> None:
        self.paths: list[Path] = []

    def __call__(self, path: Path) -> tuple[list[ExperimentRecord], list[RecordError]]:
        self.paths.append(path)
        return read_record_file(path)

    def names(self) -> list[str]:
        names = sorted(path.name for path in self.paths)
        self.paths.clear()
        return names
