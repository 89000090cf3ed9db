"""The portal's one search box over file contents: passages found by words and meaning, under the viewer's access.

Beside the catalog's hits, a search with words also asks the content index
(`labmesh_dagster.connectors.search`) for the passages that best answer it,
ranked by words and by meaning fused (`ContentIndex.retrieve`, hybrid), so a
question in other words than the file's still finds it. The index applies the
viewer's principals inside its own query, before its limit, so a passage of
an experiment the viewer may not see is never a hit, a count or an excerpt;
nothing is filtered here afterwards for access. The catalog search's facet
filters go along where the index has them (experiment, sample, group,
platform, zone, format, dates). Owner, protocol and file name are the
catalog's alone: with one of those in force, file contents are not searched
rather than answered unfiltered, and the page says so.

Passages are grouped by file: a file is listed once, at the rank of its best
passage, with its best few passages, each linking to its place on the file's
page and saying where it is (page, rows, section, lines). A ranking by
meaning always has a nearest passage, however far: a passage that holds none
of the question's words is shown only when its meaning is close enough
(`MEANING_FLOOR`), so a word no file holds still finds nothing.

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
    ContentIndex,
    ContentIndexUnavailable,
)
from labmesh_dagster.connectors.search.local import QUESTION_WORDS
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.passages import PassageHit, SearchMode

CONTENT_LIMIT = 20
"""Files shown beside the catalog's hits: the best ones; the rest are a narrower search away."""

PASSAGE_DEPTH = 50
"""Passages retrieved to form those files: several may come from one file, and some are too far in meaning."""

PASSAGES_SHOWN = 3
"""A file's best passages shown under it; the file's page has the rest."""

MEANING_FLOOR = 0.3
"""The least score by meaning (all-MiniLM's cosine) of a passage shown without any of the question's words.

Measured on the demo texts: a paraphrase and its answer score 0.34 to 0.48,
unrelated texts up to 0.28. Kendra's and Bedrock's scores (0 to 1, one
ranking for every mode) are read the same way: a LOW Kendra match without
the words is left out.
"""

EXCERPT_CHARS = 300
"""Most characters of a passage shown as its excerpt, around the first of the question's words it holds."""

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


def content_words(text: str) -> list[str]:
    """The query's words without those a question is made of (``how``, ``were``): all of them when it has no other.

    What a passage must hold to be shown without a look at its meaning, and
    what its excerpt marks, as the index's keyword ranking leaves them out too.
    """
    words = query_words(text)
    return [word for word in words if word not in QUESTION_WORDS] or words


def excerpt(text: str, words: Sequence[str], *, width: int = EXCERPT_CHARS) -> str:
    """At most ``width`` characters of ``text`` (its whitespace runs made single spaces), from a little before
    the first of ``words`` it holds (its start when none), cut at spaces and marked ``…`` where cut."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    first = next((match.start() for match in _WORD.finditer(flat) if word_matches(match.group(), words)), 0)
    start = max(0, first - width // 4)
    if start:
        space = flat.find(" ", start, first)
        start = space + 1 if space >= 0 else start
    end = start + width
    if end < len(flat):
        space = flat.rfind(" ", start, end)
        end = space if space > first else end
    return ("…" if start else "") + flat[start:end].strip() + ("…" if end < len(flat) else "")


def words_pattern(words: Sequence[str]) -> re.Pattern[str]:
    """A pattern finding a text's words that `word_matches` ``words``: one scan of a long passage, not a test a word."""
    parts = [re.escape(word) + (r"\w*" if len(word) >= 3 else r"(?!\w)") for word in words]
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + ")", re.IGNORECASE)


def holds_words(hit: PassageHit, pattern: re.Pattern[str]) -> bool:
    """Whether the passage (or its file's name) holds one of the question's words (``pattern``, `words_pattern`)."""
    return pattern.search(hit.title) is not None or pattern.search(hit.passage.text) is not None


def file_key(document_id: str) -> str | None:
    """The file's key of a document id: the id itself, except for keys too long or not UTF-8 (no file page)."""
    return document_id if "#" not in document_id else None


def passage_row(hit: PassageHit, words: Sequence[str]) -> dict[str, Any]:
    """One passage as the page and the JSON API show it: where it is, its excerpt and the link to its place."""
    key, ordinal = file_key(hit.passage.document_id), hit.passage.ordinal
    shown = excerpt(hit.passage.text, words)
    return {
        "id": hit.passage.id,
        "ordinal": ordinal,
        "location": hit.passage.location.describe(),
        "excerpt": shown,
        "excerpt_html": highlighted(shown, words),
        "href": f"/files/{quote(key)}?passage={ordinal}#passage-{ordinal}" if key else None,
    }


def file_rows(hits: Sequence[PassageHit], words: Sequence[str], *, limit: int = CONTENT_LIMIT) -> list[dict[str, Any]]:
    """The passages grouped by file, best file first (its best passage's rank), each with its best passages.

    A file's ``excerpt`` is its best passage's, so a reader of the JSON API's
    earlier, one-excerpt form still finds it.
    """
    files: dict[str, dict[str, Any]] = {}
    for hit in hits:
        document_id = hit.passage.document_id
        row = files.get(document_id)
        if row is None:
            if len(files) == limit:
                continue
            key = file_key(document_id)
            experiment_id = hit.attributes.get(EXPERIMENT_ID)
            row = files[document_id] = {
                "key": key,
                "name": hit.title or document_id.rsplit("/", 1)[-1],
                "experiment_id": experiment_id if isinstance(experiment_id, str) else None,
                "zone": hit.attributes.get(ZONE),
                "format": hit.attributes.get(FORMAT),
                "href": "/files/" + quote(key) if key else None,
                "passages": [],
            }
        if len(row["passages"]) < PASSAGES_SHOWN:
            row["passages"].append(passage_row(hit, words))
    for row in files.values():
        row["excerpt"], row["excerpt_html"] = row["passages"][0]["excerpt"], row["passages"][0]["excerpt_html"]
    return list(files.values())


def relevant(
    index: ContentIndex, text: str, hits: list[PassageHit], words: Sequence[str], **query: Any
) -> list[PassageHit]:
    """``hits`` without the passages that hold none of ``words`` and are not close enough in meaning.

    A hit carries its meaning score where the index measured it (the local
    index's hybrid does); only when a hit that lacks the words does not is the
    index asked for them (by meaning alone, with the same filters and viewer).
    """
    pattern = words_pattern(words)
    wordless = [hit for hit in hits if not holds_words(hit, pattern)]
    if not wordless:
        return hits
    meaning = {hit.passage.id: hit.meaning for hit in wordless if hit.meaning is not None}
    if len(meaning) < len(wordless):
        meaning = {hit.passage.id: hit.score for hit in index.retrieve(text, mode=SearchMode.DENSE, **query)}
    far = {hit.passage.id for hit in wordless if meaning.get(hit.passage.id, 0.0) < MEANING_FLOOR}
    return [hit for hit in hits if hit.passage.id not in far]


def search_contents(
    index: ContentIndex | None, params: Mapping[str, str], viewer: Viewer, *, limit: int = CONTENT_LIMIT
) -> dict[str, Any]:
    """The "In file contents" section: ``searched``, its ``hits`` (files, best first), and a ``note`` when not.

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
    words = content_words(text)
    query: dict[str, Any] = {"filters": filters, "viewer": viewer, "limit": PASSAGE_DEPTH}
    try:
        hits = relevant(index, text, index.retrieve(text, mode=SearchMode.HYBRID, **query), words, **query)
    except ContentIndexUnavailable:
        return {"searched": False, "hits": [], "note": "File contents could not be searched just now; try again."}
    return {"searched": True, "hits": file_rows(hits, words, limit=limit), "note": None}
