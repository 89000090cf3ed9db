"""The page of an Illumina run folder: the run as its ``RunInfo.xml`` describes it, and the folder's files.

A run folder is known by its ``RunInfo.xml`` (the file extraction reads the
run's id, instrument, flowcell and reads from, `extract.illumina`), so the
page's address is that file's key: ``/runs/raw/EXP-4/160805_run/RunInfo.xml``.
Every file under the folder belongs to that one experiment and dataset, so the
one access check is the experiment's (`visible_experiment`): a run of an
experiment the viewer may not see answers 404, exactly as a file of it does,
and so does a key that is no catalogued RunInfo.xml.

The folder's files are listed a bounded page at a time (``offset``,
``limit``), in key order, with the address of the next page when there is one:
a NovaSeq run folder can hold thousands of FASTQ files.
"""

from __future__ import annotations

import posixpath
from typing import Any

from labmesh_dagster.connectors.catalog.base import Catalog
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.errors import InvalidObjectKey
from labmesh_dagster.core.keys import ObjectKey
from labmesh_dagster.core.manifest import ManifestEntry
from labmesh_dagster.portal.context import NotVisible, visible_experiment
from labmesh_dagster.portal.file_view import file_href, run_href
from labmesh_dagster.steps.manifests import LINKS

RUNINFO_FORMAT = "illumina_runinfo"
SAMPLE_SHEET_FORMAT = "illumina_samplesheet"
FILES_SHOWN = 100
"""Files a run page lists unless asked for fewer; the rest are behind its "more" link."""
MAX_FILES_SHOWN = 500
RUN_FIELDS = (
    "run_id",
    "run_number",
    "instrument",
    "platform",
    "flowcell",
    "date",
    "read_structure",
    "lane_count",
    "surface_count",
    "swath_count",
    "tile_count",
    "image_channels",
    "schema_version",
)
"""What the run page shows of RunInfo's metadata, in this order (the reads get a table of their own)."""


def run_folder(
    catalog: Catalog, viewer: Viewer, text: str, *, offset: int = 0, limit: int = FILES_SHOWN
) -> dict[str, Any]:
    """The run page's content: the experiment, the run's metadata, its sample sheets and one page of its files.

    ``more`` is the next page's ``offset`` (None on the last page); the routes turn it into addresses.
    """
    try:
        key = ObjectKey.parse(text)
    except (InvalidObjectKey, ValueError) as exc:
        raise NotVisible("run") from exc
    record = visible_experiment(catalog, viewer, key.experiment_id)
    dataset = catalog.get_dataset(key.experiment_id, key.zone)
    runinfo = next((entry for entry in dataset.files if entry.key == str(key)), None) if dataset else None
    if dataset is None or runinfo is None or runinfo.format != RUNINFO_FORMAT:
        raise NotVisible("run")
    relative_folder = posixpath.dirname(key.relative_path)
    prefix = f"{key.zone.value}/{key.experiment_id}/" + (f"{relative_folder}/" if relative_folder else "")
    files = sorted((entry for entry in dataset.files if entry.key.startswith(prefix)), key=lambda entry: entry.key)
    shown = files[offset : offset + limit]
    metadata = {name: value for name, value in runinfo.metadata.items() if name != LINKS}
    return {
        "record": record.to_dict(),
        "run": {
            "key": runinfo.key,
            "href": run_href(runinfo.key),
            "folder": prefix,
            "runinfo_href": file_href(runinfo.key),
            "fields": {name: metadata[name] for name in RUN_FIELDS if metadata.get(name) not in (None, "", [])},
            "reads": list(metadata.get("reads") or []),
            "metadata": metadata,
            "error": dict(runinfo.error) if runinfo.error else None,
        },
        "sample_sheets": [_row(entry, prefix) for entry in files if entry.format == SAMPLE_SHEET_FORMAT],
        "files": [_row(entry, prefix) for entry in shown],
        "total": len(files),
        "offset": offset,
        "more": offset + limit if offset + limit < len(files) else None,
    }


def _row(entry: ManifestEntry, prefix: str) -> dict[str, Any]:
    return {
        "key": entry.key,
        "path": entry.key.removeprefix(prefix),
        "format": entry.format,
        "size": entry.size,
        "samples": list(entry.sample_ids),
        "href": file_href(entry.key),
    }
