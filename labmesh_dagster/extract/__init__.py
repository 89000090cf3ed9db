"""Metadata extraction for lab files: format detection, decompression and per-format summaries.

``extract`` is the entry point; the other names are here for code that needs
one step on its own (a sensor that only sniffs a format, a benchmark that only
counts reads).
"""

from labmesh_dagster.extract.compression import open_decompressed
from labmesh_dagster.extract.fastq import FastqStats, fastq_stats
from labmesh_dagster.extract.formats import detect_format
from labmesh_dagster.extract.registry import Extraction, extract

__all__ = [
    "Extraction",
    "FastqStats",
    "detect_format",
    "extract",
    "fastq_stats",
    "open_decompressed",
]
