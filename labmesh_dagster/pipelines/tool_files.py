"""Files in and out of a tool run: inputs as local paths, outputs checked and staged with their checksums.

Inputs: a tool wants paths. The local store already keeps each object as a
file, so its own path is handed over (zero copy; an index such as
``S1.bam.bai`` beside the BAM is found by the tool as usual). From S3 each
input is downloaded, streaming, into the run's temporary folder and its
sha256 checked against the one the invocation names, so the record of what
ran on what is exact. ``{input_dir}`` is a folder of symlinks (or the
downloads themselves) laid out as the inputs are in the experiment's folder.

Outputs: every ``outputs`` glob must match at least one file; every regular
file under the output folder, at any depth, is uploaded under the
invocation's staging prefix with its sha256 and size. Nothing is written
anywhere else: publishing is the Dagster side's job, after success.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labmesh_dagster.connectors.store.base import READ_CHUNK, ObjectStore
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.errors import ObjectNotFound
from labmesh_dagster.core.keys import ObjectKey


class InputUnavailable(Exception):
    """An input the invocation names cannot be had as it was planned (gone, or changed since)."""


@dataclass(frozen=True)
class LocalInput:
    """One input as the tool sees it."""

    key: ObjectKey
    role: str
    path: Path
    """The file the tool reads: the store's own file, or the download."""
    relative_path: str
    """Where it sits under ``{input_dir}``: its path inside the experiment's folder."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _download(store: ObjectStore, key: ObjectKey, destination: Path, expected_sha256: str | None) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    try:
        with store.open(key) as source, destination.open("wb") as out:
            while chunk := source.read(READ_CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except ObjectNotFound as exc:
        raise InputUnavailable(f"input {key} is not in the store") from exc
    if expected_sha256 and digest.hexdigest() != expected_sha256:
        raise InputUnavailable(f"input {key} changed since it was planned (sha256 {digest.hexdigest()})")


def _relative_path(key: ObjectKey) -> str:
    return key.relative_path or key.name


def local_inputs(store: ObjectStore, inputs: Sequence[Mapping[str, Any]], input_dir: Path) -> list[LocalInput]:
    """Every input as a local file, and ``input_dir`` laid out with all of them.

    The local store's files are used in place (their checksums were verified
    when they were written into the zone); S3 objects are downloaded into
    ``input_dir`` itself and verified while they stream.
    """
    input_dir.mkdir(parents=True, exist_ok=True)
    local: list[LocalInput] = []
    seen: dict[str, ObjectKey] = {}
    for item in inputs:
        key = ObjectKey.parse(str(item["key"]))
        relative = _relative_path(key)
        if relative in seen:
            raise InputUnavailable(f"inputs {seen[relative]} and {key} would share the path {relative}")
        seen[relative] = key
        placed = input_dir / relative
        if isinstance(store, LocalObjectStore):
            path = store.path(key)
            if not path.is_file():
                raise InputUnavailable(f"input {key} is not in the store")
            placed.parent.mkdir(parents=True, exist_ok=True)
            placed.symlink_to(path)
        else:
            _download(store, key, placed, item.get("sha256"))
            path = placed
        local.append(LocalInput(key=key, role=str(item.get("role", "input")), path=path, relative_path=relative))
    return local


def missing_globs(output_dir: Path, globs: Sequence[str]) -> list[str]:
    """The ``outputs`` globs that match no file under ``output_dir``."""
    return [pattern for pattern in globs if not any(path.is_file() for path in output_dir.glob(pattern))]


def output_files(output_dir: Path) -> list[tuple[str, Path]]:
    """(name relative to ``output_dir``, path) of every regular file under it, at any depth, in name order.

    Symlinks are left out: a tool may link its inputs into its output folder,
    and those are not outputs (nor may a link lead the upload outside the run).
    """
    found: list[tuple[str, Path]] = []
    for directory, dirnames, filenames in os.walk(output_dir):
        dirnames.sort()
        for filename in filenames:
            path = Path(directory, filename)
            if path.is_file() and not path.is_symlink():
                found.append((path.relative_to(output_dir).as_posix(), path))
    return sorted(found)


def stage_outputs(store: ObjectStore, output_dir: Path, staging_prefix: str) -> list[dict[str, Any]]:
    """Upload every output under ``staging_prefix``; each one's name, key, sha256 and size.

    The file is hashed in one streaming pass and uploaded in a second: a store's
    upload may read its source in parts and out of order, which a hashing tee
    cannot follow; the second read comes from the page cache.
    """
    staged = []
    for name, path in output_files(output_dir):
        key = ObjectKey.parse(staging_prefix + name)
        sha256 = file_sha256(path)
        with path.open("rb") as stream:
            store.put(key, stream)
        staged.append({"name": name, "key": str(key), "sha256": sha256, "size": path.stat().st_size})
    return staged
