"""Metadata of SAM, BAM and CRAM."""

from __future__ import annotations

from labmesh_dagster.extract.base import Extractor

EXTRACTORS: dict[str, Extractor] = {}
