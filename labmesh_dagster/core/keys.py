"""Zones and object keys: the one layout every store, sensor and asset agrees on.

A key is ``<zone>/<experiment_id>/<relative path>``; on S3 the zone is the
bucket and the rest (the key's ``path``) is the object key. `ObjectKey` is the small value object
that separates that logical key from where a backend keeps the bytes, and it
refuses anything that could escape its zone (absolute paths, ``..``, empty
segments) so that a hostile or sloppy file name cannot overwrite another
experiment's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from labmesh_dagster.core.errors import InvalidExperimentId, InvalidObjectKey
from labmesh_dagster.core.ids import validate_experiment_id

# Labmesh's own files inside an experiment's folder (manifests). The leading
# underscore can never start an experiment id, nor is it expected of instruments.
LABMESH_DIR = "_labmesh"
MANIFEST_PATH = f"{LABMESH_DIR}/manifest.json"

# Landing objects that cannot be attributed to an experiment are moved here, and
# a note saying why goes to the notes folder under the same relative key. An
# experiment id cannot start with "_", so neither prefix collides with one.
QUARANTINE_PREFIX = "_quarantine"
QUARANTINE_NOTES_PREFIX = "_quarantine-notes"
RESERVED_PREFIXES = frozenset({QUARANTINE_PREFIX, QUARANTINE_NOTES_PREFIX})


class Zone(StrEnum):
    """The four zones data passes through, in order."""

    LANDING = "landing"
    RAW = "raw"
    PROCESSED = "processed"
    FINAL = "final"


def _validate_path(path: str) -> str:
    if not isinstance(path, str) or not path:
        raise InvalidObjectKey(f"object path must be a non-empty string, got {path!r}")
    if path.startswith("/") or "\x00" in path:
        raise InvalidObjectKey(f"object path {path!r} must be a relative POSIX path")
    for segment in path.split("/"):
        if segment in {"", ".", ".."}:
            raise InvalidObjectKey(f"object path {path!r} has an empty, '.' or '..' segment")
    return path


@dataclass(frozen=True, order=True)
class ObjectKey:
    """An object in one zone: ``raw`` and the path ``EXP-1/run1/sample_R1.fastq.gz``.

    Like Quilt's ``PhysicalKey(bucket, path)``: the zone says which bucket or
    folder, the path where inside it. A key travels as text in one spelling
    only, ``str(key)``: ``raw/EXP-1/run1/sample_R1.fastq.gz``, the form manifests,
    the catalog, lineage and the content index all use; `parse` reads it back.
    """

    zone: Zone
    path: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", Zone(self.zone))
        _validate_path(self.path)

    @classmethod
    def for_experiment(cls, zone: Zone | str, experiment_id: str, relative_path: str) -> ObjectKey:
        """The key of ``relative_path`` inside ``experiment_id``'s folder of ``zone``."""
        validate_experiment_id(experiment_id)
        return cls(Zone(zone), f"{experiment_id}/{_validate_path(relative_path)}")

    @classmethod
    def parse(cls, text: str) -> ObjectKey:
        """Parse ``<zone>/<path>``, the one spelling `str` gives."""
        zone, _, path = text.partition("/")
        try:
            return cls(Zone(zone), path)
        except ValueError as exc:
            raise InvalidObjectKey(f"{text!r} is not '<zone>/<path>': {exc}") from exc

    @property
    def first_segment(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def experiment_id(self) -> str:
        """The experiment this key belongs to; raises `InvalidExperimentId` if it has none."""
        if "/" not in self.path:
            raise InvalidExperimentId(self.first_segment, "object is not inside an experiment folder")
        return validate_experiment_id(self.first_segment)

    @property
    def relative_path(self) -> str:
        """The path below the experiment folder."""
        return self.path.split("/", 1)[1] if "/" in self.path else ""

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def is_labmesh_internal(self) -> bool:
        """Manifests and other files labmesh writes for itself, not data."""
        return self.relative_path == LABMESH_DIR or self.relative_path.startswith(LABMESH_DIR + "/")

    def in_zone(self, zone: Zone | str) -> ObjectKey:
        """The same key in another zone: where a landing file goes when promoted to raw."""
        return ObjectKey(Zone(zone), self.path)

    def __str__(self) -> str:
        return f"{self.zone.value}/{self.path}"


def manifest_key(zone: Zone | str, experiment_id: str) -> ObjectKey:
    """Where the manifest of ``experiment_id``'s dataset in ``zone`` lives."""
    return ObjectKey.for_experiment(zone, experiment_id, MANIFEST_PATH)


def experiment_prefix(experiment_id: str) -> str:
    """The key prefix of an experiment's folder; the trailing slash keeps ``EXP-1`` from matching ``EXP-10``."""
    return f"{validate_experiment_id(experiment_id)}/"
