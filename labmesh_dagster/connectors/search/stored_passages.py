"""What the local content indexes (SQLite and PostgreSQL) keep of a document, and the limits they share.

The two are twins: a lab may move from one to the other, and a search must
answer the same there. So what they store is made here, once: a document's
passages cleaned and hashed (the hash of what is embedded keys its vector, so
an unchanged passage is never embedded again), its attributes as JSON and as
facet rows, and the hits read back from those rows. Each index writes and
queries them in its own database's way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from labmesh_dagster.connectors.search.base import AttributeType, AttributeValue, ContentDocument
from labmesh_dagster.core.passages import Passage, PassageHit, PassageLocation
from labmesh_dagster.core.text import clean_text
from labmesh_dagster.semantic.chunking import chunk_file
from labmesh_dagster.semantic.vectors import TextEmbedder

DOC_SHIFT = 20
"""A passage's number holds its document's number above these bits (``doc << DOC_SHIFT | ordinal``), so the
number alone names the document (in SQLite, reading the FTS row's own columns costs a lookup per match: ten
times the time of an access test by rowid)."""

MAX_PASSAGES = 1 << DOC_SHIFT

COMMON_MATCHES = 2000
"""A word in more passages than this is common: left out of a keyword ranking that has rarer words."""

COMMON_WINDOW = 500
"""How many of the newest matches a keyword ranking of common words alone scores."""

CANDIDATES = 50
"""How deep each ranking goes before fusion: fusing short lists loses what only one ranking ranks fairly high."""

EMBED_BATCH = 32

INLINE_VECTORS = 32
"""A publish whose new passages number at most this embeds them itself (a second or two on two cores), so a
small dataset is searchable by meaning when its run ends; a larger one leaves them all to `embed_missing`, run
by the ``content_vectors`` job, so that ingesting a thousand files never waits on the model."""

PLAIN_EXCERPT = 300
"""Characters of a document's text a hit shows when no words were searched for."""

EmbedderFactory = Callable[[], TextEmbedder]
"""Gives the embedder when one is first needed (so an index that never embeds never loads the model)."""


class StoredPassage:
    """A passage as the index keeps it: cleaned text, its place, and what is embedded for it (and that text's hash)."""

    __slots__ = ("embedded", "passage", "text_hash")

    def __init__(self, passage: Passage | None, text_hash: str, embedded: str) -> None:
        self.passage = passage
        self.text_hash = text_hash
        self.embedded = embedded


def embedded_text(title: str, text: str) -> str:
    """What is embedded for a passage: its file's name, then its text (a field's ``q30: 0.92`` says little alone)."""
    return f"{title}\n{text}"


def text_hash(model: str, embedded: str) -> str:
    return hashlib.sha256(f"{model}\n{embedded}".encode("utf-8", "surrogatepass")).hexdigest()


def stored_passages(document: ContentDocument, model: str) -> list[StoredPassage]:
    """The document's passages (cut from its text by lines when it brings none), cleaned and hashed."""
    title = clean_text(document.title)
    passages = document.passages or tuple(chunk_file(document.id, fmt="text", text=clean_text(document.text)))
    stored: list[StoredPassage] = []
    for passage in passages:
        text = clean_text(passage.text)
        embedded = embedded_text(title, text)
        stored.append(
            StoredPassage(
                Passage(passage.document_id, passage.ordinal, text, passage.location),
                text_hash(model, embedded),
                embedded,
            )
        )
    return stored


def json_value(value: AttributeValue) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def attributes_json(attributes: Mapping[str, AttributeValue]) -> str:
    """A document's stored attributes as the JSON both indexes keep (keys sorted, dates in ISO 8601)."""
    return json.dumps({name: json_value(value) for name, value in attributes.items()}, sort_keys=True)


def attribute_rows(
    doc: int, attributes: Mapping[str, AttributeValue]
) -> list[tuple[int, str, str | None, float | None]]:
    """One facet row per value: ``(doc, name, text, number)``; a list gives a row per item, a date its timestamp."""
    rows: list[tuple[int, str, str | None, float | None]] = []
    for name, value in attributes.items():
        if isinstance(value, list):
            rows.extend((doc, name, item, None) for item in value)
        elif isinstance(value, datetime):
            rows.append((doc, name, None, value.timestamp()))
        elif isinstance(value, int):
            rows.append((doc, name, None, float(value)))
        else:
            rows.append((doc, name, value, None))
    return rows


def decoded_attributes(stored: str, schema: Mapping[str, AttributeType]) -> dict[str, AttributeValue]:
    """The attributes of `attributes_json` again, dates as datetimes."""
    attributes: dict[str, AttributeValue] = json.loads(stored)
    for name, value in attributes.items():
        if schema.get(name) is AttributeType.DATE and isinstance(value, str):
            attributes[name] = datetime.fromisoformat(value)
    return attributes


def passage_hit(row: Any, score: float, meaning: float | None, schema: Mapping[str, AttributeType]) -> PassageHit:
    """A hit from a row of a passage joined to its document (``ordinal``, ``text``, ``location``, ``document_id``,
    ``title``, ``uri``, ``attributes``)."""
    return PassageHit(
        passage=Passage(
            row["document_id"],
            int(row["ordinal"]),
            row["text"],
            PassageLocation.from_dict(json.loads(row["location"])),
        ),
        title=row["title"],
        uri=row["uri"],
        score=score,
        attributes=decoded_attributes(row["attributes"], schema),
        meaning=meaning,
    )
