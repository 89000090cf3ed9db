"""The search page's facets as links: each value with its count, and the filters in force with a way out.

A facet value is a link to the same search with that filter added, so a
filtered search is a plain URL anyone can bookmark or share, and the back
button undoes it. The month facet sets a date range (``since`` and ``until``,
the month's first and last day), which is how the date range is offered.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

LABELS = {
    "experiment": "Experiment",
    "group": "Group",
    "owner": "Owner",
    "platform": "Platform",
    "protocol": "Assay or protocol",
    "format": "Format",
    "zone": "Zone",
    "sample": "Sample",
    "month": "Created",
}
FILTERS = (
    "experiment",
    "group",
    "owner",
    "platform",
    "protocol",
    "format",
    "zone",
    "sample",
    "file_name",
    "since",
    "until",
)


@dataclass(frozen=True)
class FacetValue:
    value: str
    count: int
    href: str
    active: bool


@dataclass(frozen=True)
class Facet:
    name: str
    label: str
    values: tuple[FacetValue, ...]


@dataclass(frozen=True)
class ActiveFilter:
    name: str
    value: str
    remove_href: str


def _href(params: Mapping[str, str]) -> str:
    return "/?" + urlencode({name: value for name, value in params.items() if value})


def month_range(month: str) -> tuple[str, str] | None:
    """``2024-03`` as its first and last day, or None for anything else."""
    try:
        year, number = (int(part) for part in month.split("-"))
        last = calendar.monthrange(year, number)[1]
    except ValueError:
        return None
    return f"{year:04d}-{number:02d}-01", f"{year:04d}-{number:02d}-{last:02d}"


def facet_links(params: Mapping[str, str], counts: Mapping[str, Sequence[tuple[str, int]]]) -> list[Facet]:
    """Each facet with values, in `LABELS` order; a value already filtered on is marked active."""
    facets = []
    for name, label in LABELS.items():
        values = []
        for value, count in counts.get(name, ()):
            if name == "month":
                days = month_range(value)
                if days is None:
                    continue
                href = _href({**params, "since": days[0], "until": days[1]})
                active = (params.get("since"), params.get("until")) == days
            else:
                href = _href({**params, name: value})
                active = params.get(name) == value
            values.append(FacetValue(value, count, href, active))
        if values:
            facets.append(Facet(name, label, tuple(values)))
    return facets


def active_filters(params: Mapping[str, str]) -> list[ActiveFilter]:
    """The filters in force, each with the URL of the same search without it."""
    return [
        ActiveFilter(name, params[name], _href({key: value for key, value in params.items() if key != name}))
        for name in FILTERS
        if params.get(name)
    ]
