"""Which of a search hit's fields hold the query's words: what a result shows as "matched in".

Worked out from the hit's own metadata (its title, experiment id, zone,
group, owner, platform, protocol, and its files' names, formats and samples)
and the query's words, after the catalog formed the hits: no query more, so
the search is no slower. A word the catalog matched in a field the hit does
not carry (the description, tags, custom ELN fields) is shown as "other ELN
fields", so a result never looks as if it matched nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from labmesh_dagster.portal.content_search import query_words, word_matches

_WORD = re.compile(r"\w+")
OTHER = "other ELN fields"


def _holds(values: Iterable[str | None], words: Sequence[str]) -> set[str]:
    """The query words found among the words of ``values`` (a dataset's files repeat theirs: each is tried once)."""
    tokens = {token for value in values if value for token in _WORD.findall(value)}
    return {word for word in words if any(word_matches(token, [word]) for token in tokens)}


def matched_fields(hit: Mapping[str, Any], words: Sequence[str]) -> list[str]:
    """The labels of the fields of ``hit`` (a result as the portal shows it) that hold a word of the query."""
    if not words:
        return []
    files = hit.get("files") or []
    fields: list[tuple[str, list[str | None]]] = [
        ("title", [hit.get("title")]),
        ("experiment id", [hit.get("experiment_id")]),
        ("sample", [sample for file in files for sample in file.get("sample_ids") or ()]),
        ("file name", [file.get("name") for file in files]),
        ("format", [file.get("format") for file in files]),
        ("zone", [hit.get("dataset")]),
        ("group", [hit.get("group")]),
        ("owner", [hit.get("owner")]),
        ("platform", [hit.get("platform")]),
        ("protocol", [hit.get("protocol")]),
    ]
    labels, explained = [], set()
    for label, values in fields:
        found = _holds(values, words)
        if found:
            labels.append(label)
            explained |= found
    if set(words) - explained:
        labels.append(OTHER)
    return labels


def with_matches(results: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """``results`` with each one's ``matched`` fields for the query ``text``."""
    words = query_words(text)
    return [{**result, "matched": matched_fields(result, words)} for result in results]
