"""Dataset manifests: the one record of what a dataset holds.

A manifest lists every file of one experiment's dataset in one zone with its
size, checksum, format, extracted metadata and lineage. It is rendered
deterministically (sorted entries, sorted keys, no timestamps of its own) so
that rebuilding it from an unchanged zone gives byte-identical JSON; its digest
is what lets publishing skip work and the catalog avoid spurious revisions.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from labmesh_dagster.core.keys import Zone

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ProvenanceInput:
    """One file a pipeline read, named by key and pinned by its sha256, so lineage survives the file changing."""

    key: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProvenanceInput:
        return cls(key=str(data["key"]), sha256=str(data["sha256"]))


@dataclass(frozen=True)
class Provenance:
    """What made a processed file: the pipeline and version, the engine's run, the command, tools and inputs.

    ``run_id`` is the Dagster run that published the file; ``engine_run_id`` is
    the engine's own id for it (a process, an ECS task ARN, a HealthOmics run),
    so a scientist can find the run's logs where the tool ran. ``inputs`` are
    the exact files read, with the checksums they had then: ``derived_from``
    names the same keys, but only this says which bytes were read.
    """

    pipeline: str
    version: str
    invocation_id: str
    engine: str
    run_id: str
    command_line: str
    engine_run_id: str | None = None
    tool_versions: Mapping[str, str] = field(default_factory=dict)
    inputs: tuple[ProvenanceInput, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "version": self.version,
            "invocation_id": self.invocation_id,
            "engine": self.engine,
            "engine_run_id": self.engine_run_id,
            "run_id": self.run_id,
            "command_line": self.command_line,
            "tool_versions": dict(sorted(self.tool_versions.items())),
            "inputs": [item.to_dict() for item in self.inputs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provenance:
        engine_run_id = data.get("engine_run_id")
        return cls(
            pipeline=str(data["pipeline"]),
            version=str(data["version"]),
            invocation_id=str(data.get("invocation_id") or ""),
            engine=str(data.get("engine") or ""),
            run_id=str(data.get("run_id") or ""),
            command_line=str(data.get("command_line") or ""),
            engine_run_id=str(engine_run_id) if engine_run_id is not None else None,
            tool_versions={str(tool): str(version) for tool, version in (data.get("tool_versions") or {}).items()},
            inputs=tuple(ProvenanceInput.from_dict(item) for item in data.get("inputs") or ()),
        )

    @classmethod
    def of_invocation(cls, invocation: Mapping[str, Any], result: Mapping[str, Any], run_id: str) -> Provenance:
        """The provenance of every output of one invocation, from the planner's invocation and the runner's
        result (their JSON shapes are the pipelines contract's), published by Dagster run ``run_id``."""
        pipeline = invocation["pipeline"]
        engine_run_id = result.get("engine_run_id")
        return cls(
            pipeline=str(pipeline["name"]),
            version=str(pipeline["version"]),
            invocation_id=str(invocation["invocation_id"]),
            engine=str(result.get("engine") or pipeline.get("engine") or "local"),
            run_id=run_id,
            command_line=str(result.get("command_line") or ""),
            engine_run_id=str(engine_run_id) if engine_run_id else None,
            tool_versions={str(tool): str(version) for tool, version in (result.get("tool_versions") or {}).items()},
            inputs=tuple(ProvenanceInput.from_dict(item) for item in invocation.get("inputs") or ()),
        )


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a dataset.

    ``source_checksum`` (``algorithm:hex``) is the checksum of the file it was
    promoted from (for raw files, the landing object), in the algorithm the
    promotion was verified in, and ``checksums`` holds the file's own checksum
    in that algorithm when it is not SHA-256, computed in the same read as
    ``sha256``, so the promotion can be re-verified later without reading again;
    ``derived_from`` names the keys it was computed from (file-level lineage);
    ``text`` is the short searchable text the extractor found (titles, first lines);
    ``produced_by`` says which pipeline run made a processed file (None for raw and final files).
    """

    key: str
    size: int
    sha256: str
    format: str
    created: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    sample_ids: tuple[str, ...] = ()
    error: Mapping[str, str] | None = None
    derived_from: tuple[str, ...] = ()
    source_checksum: str | None = None
    text: str = ""
    checksums: Mapping[str, str] = field(default_factory=dict)
    produced_by: Provenance | None = None

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    def to_dict(self) -> dict[str, Any]:
        """The entry as its manifest's JSON holds it. Built field by field: ``dataclasses.asdict`` deep-copies
        the metadata, which cost most of a thousand-file publish. ``produced_by`` is left out when there is
        none, so the manifests (and digests) of datasets no pipeline made are as they were before it existed."""
        data: dict[str, Any] = {
            "key": self.key,
            "size": self.size,
            "sha256": self.sha256,
            "format": self.format,
            "created": self.created,
            "metadata": dict(self.metadata),
            "sample_ids": list(self.sample_ids),
            "error": dict(self.error) if self.error is not None else None,
            "derived_from": list(self.derived_from),
            "source_checksum": self.source_checksum,
            "text": self.text,
            "checksums": dict(sorted(self.checksums.items())),
        }
        if self.produced_by is not None:
            data["produced_by"] = self.produced_by.to_dict()
        return data

    def checksum(self, algorithm: str) -> str | None:
        """The file's own checksum (hex) in ``algorithm``, if it was computed when the file was read."""
        return self.sha256 if algorithm == "sha256" else self.checksums.get(algorithm)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManifestEntry:
        return cls(
            key=str(data["key"]),
            size=int(data["size"]),
            sha256=str(data["sha256"]),
            format=str(data["format"]),
            created=str(data["created"]),
            metadata=dict(data.get("metadata") or {}),
            sample_ids=tuple(data.get("sample_ids") or ()),
            error=dict(data["error"]) if data.get("error") else None,
            derived_from=tuple(data.get("derived_from") or ()),
            # Manifests from before checksums named their algorithm carried a bare landing sha256.
            source_checksum=data.get("source_checksum") or _sha256_label(data.get("source_sha256")),
            text=str(data.get("text") or ""),
            checksums={str(name): str(value) for name, value in (data.get("checksums") or {}).items()},
            produced_by=Provenance.from_dict(data["produced_by"]) if data.get("produced_by") else None,
        )


def _sha256_label(value: Any) -> str | None:
    return f"sha256:{value}" if value else None


@dataclass(frozen=True)
class Manifest:
    """All files of one experiment's dataset in one zone."""

    experiment_id: str
    zone: Zone
    entries: tuple[ManifestEntry, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", Zone(self.zone))
        ordered = tuple(sorted(self.entries, key=lambda entry: entry.key))
        keys = [entry.key for entry in ordered]
        if len(set(keys)) != len(keys):
            raise ValueError(f"manifest for {self.zone}/{self.experiment_id} lists a key twice")
        object.__setattr__(self, "entries", ordered)

    @classmethod
    def build(cls, experiment_id: str, zone: Zone | str, entries: Iterable[ManifestEntry]) -> Manifest:
        return cls(experiment_id=experiment_id, zone=Zone(zone), entries=tuple(entries))

    @property
    def file_count(self) -> int:
        return len(self.entries)

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.entries)

    @property
    def formats(self) -> list[str]:
        return sorted({entry.format for entry in self.entries})

    @property
    def sample_ids(self) -> list[str]:
        return sorted({sample for entry in self.entries for sample in entry.sample_ids})

    @property
    def pipelines(self) -> list[tuple[str, str]]:
        """The (pipeline, version) pairs that made the dataset's files, sorted; none for raw and final datasets."""
        return sorted(
            {(entry.produced_by.pipeline, entry.produced_by.version) for entry in self.entries if entry.produced_by}
        )

    @property
    def errors(self) -> list[ManifestEntry]:
        return [entry for entry in self.entries if entry.error]

    def entry(self, key: str) -> ManifestEntry | None:
        return next((entry for entry in self.entries if entry.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "experiment_id": self.experiment_id,
            "zone": self.zone.value,
            "files": [entry.to_dict() for entry in self.entries],
        }

    def to_json(self) -> str:
        return self._canonical_json

    @functools.cached_property
    def _canonical_json(self) -> str:
        """Rendered once: publishing writes, digests and compares the same manifest several times."""
        # ASCII escapes keep any file name writable, even one that is not valid UTF-8.
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, ensure_ascii=True) + "\n"

    @functools.cached_property
    def digest(self) -> str:
        """sha256 of the canonical JSON: equal digests mean equal datasets."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        data = json.loads(text)
        if data.get("version") != MANIFEST_VERSION:
            raise ValueError(f"unsupported manifest version {data.get('version')!r}")
        return cls(
            experiment_id=data["experiment_id"],
            zone=Zone(data["zone"]),
            entries=tuple(ManifestEntry.from_dict(item) for item in data["files"]),
        )
