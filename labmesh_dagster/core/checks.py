"""What a dataset's checks found, as plain records kept with the catalog revision they checked.

Dagster keeps asset check results in its own instance, which the portal and
scripts should not need to reach: so every dataset asset also hands its check
outcomes to the catalog, keyed by the revision it published
(`Catalog.record_checks`). A revision published before outcomes were kept has
none, which readers show as "unknown", never as passed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CheckOutcome:
    """One check of one revision: its name, whether it passed, and every problem it found."""

    name: str
    passed: bool
    problems: tuple[str, ...] = ()
    warning: bool = False

    @classmethod
    def of(cls, name: str, problems: Iterable[str], *, warning: bool = False) -> CheckOutcome:
        """A check that passes when nothing is wrong; ``warning`` marks one whose failure is for a person to see."""
        found = tuple(str(problem) for problem in problems)
        return cls(name=name, passed=not found, problems=found, warning=warning)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "problems": list(self.problems), "warning": self.warning}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckOutcome:
        return cls(
            name=str(data["name"]),
            passed=bool(data["passed"]),
            problems=tuple(str(problem) for problem in data.get("problems") or ()),
            warning=bool(data.get("warning", False)),
        )


def failed(outcomes: Sequence[CheckOutcome] | None) -> list[CheckOutcome]:
    """The outcomes that did not pass (none when they are unknown)."""
    return [outcome for outcome in outcomes or () if not outcome.passed]
