"""Metadata of instrument exports through allotropy."""

from __future__ import annotations

from labmesh_dagster.extract.base import Extractor

EXTRACTORS: dict[str, Extractor] = {}
