"""Which experiment a file in a watched folder belongs to, and its key in landing.

Either every file belongs to one experiment (``--experiment EXP-1``: the key is
``EXP-1/<path in the watched folder>``), or a layout pattern says where the
experiment id sits in the path: ``{experiment}/{path}`` (a folder per
experiment) or ``runs/{experiment}_{ignore}/{path}``. ``{path}`` is what follows
the experiment in the key; ``{ignore}`` matches anything within one folder name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from labmesh_dagster.core.errors import InvalidExperimentId, InvalidObjectKey, LayoutError
from labmesh_dagster.core.ids import validate_experiment_id
from labmesh_dagster.core.keys import ObjectKey, Zone

_PLACEHOLDERS = {
    "experiment": r"(?P<experiment>[A-Za-z0-9][A-Za-z0-9._-]{0,127})",
    "path": r"(?P<path>.+)",
    "ignore": r"[^/]*",
}


@dataclass(frozen=True)
class Layout:
    """Maps a path relative to the watched folder to its landing key, or to None (not ours)."""

    experiment: str | None = None
    pattern: str | None = None

    def __post_init__(self) -> None:
        if (self.experiment is None) == (self.pattern is None):
            raise LayoutError("give exactly one of an experiment id or a layout pattern")
        if self.experiment is not None:
            validate_experiment_id(self.experiment)
        elif "{experiment}" not in (self.pattern or "") or "{path}" not in (self.pattern or ""):
            raise LayoutError(f"layout {self.pattern!r} must contain {{experiment}} and {{path}}")

    def _regex(self) -> re.Pattern[str]:
        parts = re.split(r"(\{\w+\})", self.pattern or "")
        regex = ""
        for part in parts:
            name = part[1:-1] if part.startswith("{") and part.endswith("}") else None
            if name is None:
                regex += re.escape(part)
            elif name in _PLACEHOLDERS:
                regex += _PLACEHOLDERS[name]
            else:
                raise LayoutError(f"unknown placeholder {part} in layout {self.pattern!r}")
        return re.compile(regex)

    def key_for(self, relative_path: str) -> ObjectKey | None:
        """The landing key of a file, or None when the layout does not place it in an experiment."""
        try:
            if self.experiment is not None:
                return ObjectKey.for_experiment(Zone.LANDING, self.experiment, relative_path)
            match = self._regex().fullmatch(relative_path)
            if match is None:
                return None
            return ObjectKey.for_experiment(Zone.LANDING, match["experiment"], match["path"])
        except (InvalidExperimentId, InvalidObjectKey):
            return None
