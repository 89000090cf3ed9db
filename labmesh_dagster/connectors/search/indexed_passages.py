"""The passages a content document is indexed as, the same on every backend that indexes passages.

Bedrock Knowledge Bases and Kendra hold each labmesh passage as a document of
its own, and the local index keeps them as rows: cut the same way, a passage id
(``<file key>#<n>``) names the same place of the same file in every profile,
so a citation opens the same page, rows or section whichever backend found it.
"""

from __future__ import annotations

from labmesh_dagster.connectors.search.base import ContentDocument
from labmesh_dagster.core.passages import LocationKind, Passage, PassageLocation
from labmesh_dagster.core.text import clean_text
from labmesh_dagster.semantic.chunking import chunk_file


def document_passages(document: ContentDocument) -> tuple[Passage, ...]:
    """The passages a document is indexed as: its own, else its text cut as the local index cuts it.

    A document without text is one passage of its title, so it can still be found.
    """
    if document.passages:
        return document.passages
    cut = chunk_file(document.id, fmt="text", text=clean_text(document.text))
    if cut:
        return tuple(cut)
    return (Passage(document.id, 0, document.title or document.id, PassageLocation(LocationKind.WHOLE)),)
