"""The portal's one search box over file contents: content hits formed by the index under the viewer's access.

Beside the catalog's hits, a search with words also asks the content index
(`labmesh_dagster.connectors.search`) which files hold them. The index applies
the viewer's principals inside its own query, before its limit, so a file of
an experiment the viewer may not see is never a hit, a count or an excerpt;
nothing is filtered here afterwards. The catalog search's facet filters go
along where the index has them (experiment, sample, group, platform, zone,
format, dates). Owner, protocol and file name are the catalog's alone: with one
of those in force, file contents are not searched rather than answered
unfiltered, and the page says so.

An excerpt is file text, so it is escaped whole; the only markup is the
``<mark>`` around the query's words, built here from escaped pieces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

from labmesh_dagster.connectors.search.base import (
    EXPERIMENT_ID,
    FORMAT,
    ZONE,
    ContentFilter,
    ContentHit,
    ContentIndex,
    ContentIndexUnavailable,
)
from labmesh_dagster.core.access import Viewer

CONTENT_LIMIT = 20
"""Content hits shown beside the catalog's: the best ones; the rest are a narrower search away."""

CATALOG_ONLY = {"owner": "owner", "protocol": "protocol", "file_name": "file name"}
"""Catalog filters the content index has no attribute for, by parameter, with the label the page shows."""

_WORD = re.compile(r"\w+")


def query_words(text: str) -> list[str]:
    """The query's words, casefolded, each once: what an excerpt highlights and what a field is matched on."""
    return list(dict.fromkeys(word.casefold() for word in _WORD.findall(text)))


def word_matches(token: str, words: Sequence[str]) -> bool:
    """Whether a text's word is one of the query's: the same, or longer (FTS5's stemming finds ``tissues``)."""
    folded = token.casefold()
    return any(folded == word or (len(word) >= 3 and folded.startswith(word)) for word in words)


def highlighted(text: str, words: Sequence[str]) -> Markup:
    """``text`` escaped, with each word of the query inside ``<mark>``: the only markup, built here."""
    parts: list[Markup] = []
    last = 0
    for match in _WORD.finditer(text):
        if word_matches(match.group(), words):
            parts += [escape(text[last : match.start()]), Markup("<mark>%s</mark>") % match.group()]
            last = match.end()
    parts.append(escape(text[last:]))
    return Markup("").join(parts)


def _moment(value: str) -> date | datetime:
    """An ISO date or date-time from the URL (a bare ``until`` date means its whole day); `ValueError` otherwise."""
    text = value.strip()
    return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)


def content_filter(params: Mapping[str, str]) -> ContentFilter:
    """The catalog search's facet filters that the content index has, as its filter; `ValueError` for a bad date."""
    since, until = params.get("since") or None, params.get("until") or None
    return ContentFilter(
        experiment_id=params.get("experiment") or None,
        sample_id=params.get("sample") or None,
        group=params.get("group") or None,
        platform=params.get("platform") or None,
        zone=params.get("zone") or None,
        format=params.get("format") or None,
        since=_moment(since) if since else None,
        until=_moment(until) if until else None,
    )


def hit_row(hit: ContentHit, words: Sequence[str]) -> dict[str, Any]:
    """One content hit as the page and the JSON API show it."""
    experiment_id = hit.attributes.get(EXPERIMENT_ID)
    # A document's id is its file's key, except for keys too long or not UTF-8, which no file page serves.
    key = hit.id if "#" not in hit.id else None
    return {
        "key": key,
        "name": hit.title or hit.id.rsplit("/", 1)[-1],
        "experiment_id": experiment_id if isinstance(experiment_id, str) else None,
        "zone": hit.attributes.get(ZONE),
        "format": hit.attributes.get(FORMAT),
        "excerpt": hit.excerpt,
        "excerpt_html": highlighted(hit.excerpt, words),
        "href": "/files/" + quote(key) if key else None,
    }


def search_contents(
    index: ContentIndex | None, params: Mapping[str, str], viewer: Viewer, *, limit: int = CONTENT_LIMIT
) -> dict[str, Any]:
    """The "In file contents" section: ``searched``, its ``hits`` (best first), and a ``note`` when it was not.

    Searched only for words (a facet alone lists the catalog's datasets), and
    only with filters the index can apply.
    """
    text = params.get("q", "").strip()
    if index is None or not query_words(text):
        return {"searched": False, "hits": [], "note": None}
    unfiltered = [label for name, label in CATALOG_ONLY.items() if params.get(name)]
    if unfiltered:
        note = f"File contents are not searched with a filter by {', '.join(unfiltered)}: the files do not carry it."
        return {"searched": False, "hits": [], "note": note}
    try:
        filters = content_filter(params)
    except ValueError:
        return {"searched": False, "hits": [], "note": "File contents are not searched: a date is not an ISO date."}
    try:
        hits = index.search(text, filters=filters, viewer=viewer, limit=limit)
    except ContentIndexUnavailable:
        return {"searched": False, "hits": [], "note": "File contents could not be searched just now; try again."}
    words = query_words(text)
    return {"searched": True, "hits": [hit_row(hit, words) for hit in hits], "note": None}
