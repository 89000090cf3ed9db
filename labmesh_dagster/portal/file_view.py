"""What the file page shows beyond the file's own metadata: its links to other files, and whether it has a thumbnail.

Extraction links the files of one dataset (`extract.linking`, kept under
``metadata.links``): a FASTQ's read pair (``mate``), the Illumina run it
came from (``run``, the run's ``RunInfo.xml``, whose folder is the run
folder: the link goes to the run folder's page, `portal.run_view`, and names
the RunInfo.xml's own page as ``file_href``) and the sample sheet that lists its sample (``sample_sheet``); a run
or a sample sheet lists its FASTQ files (``fastq_files``). Each linked file
gets a link to its own page only when the catalog holds it and the viewer may
see its experiment; a file of an experiment the viewer may not see is left
out altogether, so not even its name shows.

A file a pipeline made also shows what made it (`made_by`, from the manifest
entry's ``produced_by``): the pipeline and version, the engine and the run,
the command line, the tool versions, and each input with the sha256 it had
when it was read, linked under the same rules, and marked when the catalog now
holds other bytes under its key.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from labmesh_dagster.connectors.catalog.base import Catalog
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.errors import InvalidObjectKey
from labmesh_dagster.core.keys import ObjectKey
from labmesh_dagster.core.manifest import ManifestEntry
from labmesh_dagster.steps.manifests import LINKS
from labmesh_dagster.steps.previews import format_family

THUMBNAIL_FAMILIES = frozenset({"tiff", "tif"})


def file_href(key: str) -> str:
    return "/files/" + quote(key, safe="/")


def run_href(key: str) -> str:
    """The page of the run folder that the RunInfo.xml at ``key`` describes (`portal.run_view`)."""
    return "/runs/" + quote(key, safe="/")


def thumbnail_href(key: str) -> str:
    return "/thumbnail/" + quote(key, safe="/")


def has_thumbnail(entry: ManifestEntry) -> bool:
    return format_family(entry.format) in THUMBNAIL_FAMILIES


class _Linker:
    """Turns linked keys into links, asking the catalog once per experiment and dataset."""

    def __init__(self, catalog: Catalog, viewer: Viewer) -> None:
        self.catalog = catalog
        self.viewer = viewer
        self.visible: dict[str, bool] = {}
        self.checksums: dict[tuple[str, str], dict[str, str]] = {}

    def link(self, relation: str, key: Any, label: str, **more: Any) -> dict[str, Any] | None:
        """A link to ``key``: with its page's address if the catalog holds it, None if the viewer may not see it."""
        try:
            parsed = ObjectKey.parse(str(key))
        except (InvalidObjectKey, ValueError):
            return None
        experiment_id = parsed.experiment_id
        if experiment_id not in self.visible:
            self.visible[experiment_id] = self.viewer.may_see(self.catalog.principals(experiment_id))
        if not self.visible[experiment_id]:
            return None
        dataset = (experiment_id, parsed.zone.value)
        if dataset not in self.checksums:
            record = self.catalog.get_dataset(experiment_id, parsed.zone)
            self.checksums[dataset] = {entry.key: entry.sha256 for entry in record.files} if record else {}
        current = self.checksums[dataset].get(str(parsed))
        return {
            "relation": relation,
            "label": label,
            "key": str(parsed),
            "name": parsed.name,
            "href": file_href(str(parsed)) if current is not None else None,
            "current_sha256": current,
            **more,
        }


def file_links(catalog: Catalog, viewer: Viewer, entry: ManifestEntry) -> list[dict[str, Any]]:
    """The file's links, as the page and its JSON twin show them: read pair, run folder, sample sheet, members."""
    links = entry.metadata.get(LINKS)
    if not isinstance(links, Mapping):
        return []
    linker = _Linker(catalog, viewer)
    found: list[dict[str, Any] | None] = []
    if links.get("mate"):
        read = links.get("read")
        label = f"read {3 - read} of the pair" if read in (1, 2) else "the other read of the pair"
        consistent = links.get("pair_consistent")
        note = links.get("pair_problem") or (
            "not confirmed: a file could not be read whole" if consistent is None else ""
        )
        found.append(linker.link("mate", links["mate"], label, note=str(note)))
    if links.get("run"):
        run_id = links.get("run_id")
        folder = posixpath.dirname(str(links["run"]))
        run = linker.link(
            "run",
            links["run"],
            f"run {run_id}" if run_id else "the sequencing run",
            folder=folder + "/" if folder else "",
        )
        if run is not None:
            run["file_href"] = run["href"]
            run["href"] = run_href(run["key"]) if run["href"] else None
        found.append(run)
    if links.get("sample_sheet"):
        sample = links.get("sample_id")
        label = f"the sample sheet (sample {sample})" if sample else "the sample sheet"
        found.append(linker.link("sample_sheet", links["sample_sheet"], label))
    members = links.get("fastq_files")
    if isinstance(members, list):
        count = links.get("fastq_file_count", len(members))
        found += [linker.link("fastq_file", key, f"FASTQ file of this {_listing(entry)}", of=count) for key in members]
    return [{k: v for k, v in link.items() if k != "current_sha256"} for link in found if link is not None]


def made_by(catalog: Catalog, viewer: Viewer, entry: ManifestEntry, dagster_url: str) -> dict[str, Any] | None:
    """What made the file, as the page's "Made by" and its JSON twin show it; None for a file no pipeline made.

    An input the catalog now holds with another sha256 is marked ``changed``:
    the file was made from bytes that are no longer there under that key.
    """
    made = entry.produced_by
    if made is None:
        return None
    linker = _Linker(catalog, viewer)
    inputs = []
    for item in made.inputs:
        link = linker.link("input", item.key, "input", sha256=item.sha256)
        if link is None:
            continue
        current = link.pop("current_sha256")
        inputs.append({**link, "changed": current is not None and current != item.sha256})
    return {
        "pipeline": made.pipeline,
        "version": made.version,
        "invocation_id": made.invocation_id,
        "engine": made.engine,
        "engine_run_id": made.engine_run_id,
        "run_id": made.run_id,
        "dagster_run": f"{dagster_url}/runs/{made.run_id}" if made.run_id else None,
        "command_line": made.command_line,
        "tool_versions": [{"tool": tool, "version": version} for tool, version in sorted(made.tool_versions.items())],
        "inputs": inputs,
    }


def _listing(entry: ManifestEntry) -> str:
    return "run" if entry.format == "illumina_runinfo" else "sample sheet"
