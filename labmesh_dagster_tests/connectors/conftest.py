"""Fixtures of the connectors' tests: the folder ELN's records folder and a reader counting what it reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from labmesh_dagster_tests.connectors.folder_eln_reading import CountingReader


@pytest.fixture
def records_dir(tmp_path: Path) -> Path:
    path = tmp_path / "eln"
    path.mkdir()
    return path


@pytest.fixture
def reader() -> CountingReader:
    return CountingReader()
