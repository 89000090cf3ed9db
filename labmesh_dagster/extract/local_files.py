"""Extraction of files on this machine, as ``labmesh extract`` shows it to people checking what will be recorded.

The same ``extract`` the platform runs on each promoted object, applied to
local paths, with the same links between files (read pairs, run, sample
sheet) that a dataset's manifest gets, so what the command prints is what the
catalog will hold. A folder stands for every file under it, as a run folder
is landed whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from labmesh_dagster.core.checksums import SHA256, HashingReader
from labmesh_dagster.extract.linking import DescribedFile, link_files
from labmesh_dagster.extract.registry import DEFAULT_BUDGET_SECONDS, extract


def expand(paths: Sequence[str]) -> Iterator[Path]:
    """The files named, with folders replaced by the files under them (sorted, hidden ones skipped)."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            for folder, subfolders, files in os.walk(path):
                subfolders[:] = sorted(sub for sub in subfolders if not sub.startswith("."))
                for file in sorted(files):
                    if not file.startswith("."):
                        yield Path(folder) / file
        else:
            yield path


def _open_sibling_of(path: Path) -> Any:
    def open_sibling(name: str) -> BinaryIO | None:
        sibling = path.parent / name
        return sibling.open("rb") if "/" not in name and sibling.is_file() else None

    return open_sibling


def describe_file(path: Path, budget_seconds: float | None = DEFAULT_BUDGET_SECONDS) -> dict[str, Any]:
    """One file's extraction as a JSON object; a file that cannot be read is an object with its error too."""
    document: dict[str, Any] = {"file": str(path)}
    try:
        size = path.stat().st_size
        with path.open("rb") as stream:
            reader = HashingReader(stream)
            extraction = extract(
                reader,  # type: ignore[arg-type]
                path.name,
                budget_seconds=budget_seconds,
                open_sibling=_open_sibling_of(path),
            )
            sha256 = reader.finish()[SHA256].value
    except FileNotFoundError:
        return {**document, "error": {"reason": "not_found", "detail": f"no such file: {path}"}}
    except IsADirectoryError:
        return {**document, "error": {"reason": "not_a_file", "detail": f"{path} is a folder"}}
    except OSError as exc:
        return {**document, "error": {"reason": "unreadable", "detail": f"{path}: {exc.strerror or exc}"}}
    return {**document, "size": size, "sha256": sha256, **extraction.to_json()}


def describe_files(paths: Sequence[str], budget_seconds: float | None = DEFAULT_BUDGET_SECONDS) -> list[dict[str, Any]]:
    """Every file's extraction, in order, with the links between them under ``links``."""
    documents = [describe_file(path, budget_seconds) for path in expand(paths)]
    described = [
        DescribedFile(document["file"], document["format"], document.get("metadata") or {})
        for document in documents
        if "format" in document
    ]
    links = link_files(described)
    for document in documents:
        if document["file"] in links:
            document["links"] = links[document["file"]]
    return documents
