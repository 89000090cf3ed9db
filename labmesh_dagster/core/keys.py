"""Zones and object keys: the one layout every store, sensor and asset agrees on.

A key is ``<zone>/<experiment_id>/<relative path>``; on S3 the zone is the
bucket and the rest is the object key. `ObjectKey` is the small value object
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


def _validate_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidObjectKey(f"object key must be a non-empty string, got {key!r}")
    if key.startswith("/") or "\x00" in key:
        raise InvalidObjectKey(f"object key {key!r} must be a relative POSIX path")
    for segment in key.split("/"):
        if segment in {"", ".", ".."}:
            raise InvalidObjectKey(f"object key {key!r} has an empty, '.' or '..' segment")
    return key


@dataclass(frozen=True, order=True)
class ObjectKey:
    """A key within one zone, such as ``EXP-1/run1/sample_R1.fastq.gz`` in ``raw``."""

    zone: Zone
    key: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", Zone(self.zone))
        _validate_key(self.key)

    @classmethod
    def for_experiment(cls, zone: Zone | str, experiment_id: str, relative_path: str) -> ObjectKey:
        """The key of ``relative_path`` inside ``experiment_id``'s folder of ``zone``."""
        validate_experiment_id(experiment_id)
        return cls(Zone(zone), f"{experiment_id}/{_validate_key(relative_path)}")

    @classmethod
    def parse(cls, text: str) -> ObjectKey:
        """Parse ``<zone>/<key>``, the form `str` gives."""
        zone, _, key = text.partition("/")
        try:
            return cls(Zone(zone), key)
        except ValueError as exc:
            raise InvalidObjectKey(f"{text!r} is not '<zone>/<key>': {exc}") from exc

    @property
    def first_segment(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def experiment_id(self) -> str:
        """The experiment this key belongs to; raises `InvalidExperimentId` if it has none."""
        if "/" not in self.key:
            raise InvalidExperimentId(self.first_segment, "object is not inside an experiment folder")
        return validate_experiment_id(self.first_segment)

    @property
    def relative_path(self) -> str:
        """The path below the experiment folder."""
        return self.key.split("/", 1)[1] if "/" in self.key else ""

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def is_labmesh_internal(self) -> bool:
        """Manifests and other files labmesh writes for itself, not data."""
        return self.relative_path == LABMESH_DIR or self.relative_path.startswith(LABMESH_DIR + "/")

    def in_zone(self, zone: Zone | str) -> ObjectKey:
        """The same key in another zone: where a landing file goes when promoted to raw."""
        return ObjectKey(Zone(zone), self.key)

    def __str__(self) -> str:
        return f"{self.zone.value}/{self.key}"


def manifest_key(zone: Zone | str, experiment_id: str) -> ObjectKey:
    """Where the manifest of ``experiment_id``'s dataset in ``zone`` lives."""
    return ObjectKey.for_experiment(zone, experiment_id, MANIFEST_PATH)


def experiment_prefix(experiment_id: str) -> str:
    """The key prefix of an experiment's folder; the trailing slash keeps ``EXP-1`` from matching ``EXP-10``."""
    return f"{validate_experiment_id(experiment_id)}/"
