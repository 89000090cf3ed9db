"""Answers the chat gives: text in parts, each part with the numbers of the citations that back it.

Every answerer (the offline extractive one, Bedrock's Converse) produces the
same `Answer`, so the CLI, the JSON API, the portal's chat and the MCP server
render citations alike. A citation points at a passage of a file or at a
dataset of the catalog (for questions the catalog's typed metadata answers),
never at something the asker may not see: answerers only ever receive what
retrieval and the catalog returned under the asker's access.

An answer that is not ``answered`` says so in its parts (no document the asker
may see answers it) and carries no citation: it never guesses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from labmesh_dagster.core.passages import Passage


@dataclass(frozen=True)
class Citation:
    """A numbered source (from 1): a file passage, or a dataset of the catalog when ``passage`` is None.

    ``href`` opens it in the portal: the file page at the passage
    (``/files/<key>#passage-<ordinal>``), or the experiment page.
    """

    number: int
    title: str
    href: str
    experiment_id: str | None = None
    dataset: str | None = None
    passage: Passage | None = None
    location: str | None = None  # `PassageLocation.describe()`, or the dataset's zone

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "title": self.title,
            "href": self.href,
            "experiment_id": self.experiment_id,
            "dataset": self.dataset,
            "passage_id": self.passage.id if self.passage else None,
            "location": self.location,
            "quote": self.passage.text if self.passage else None,
        }


@dataclass(frozen=True)
class AnswerPart:
    """A piece of the answer's text and the citations (by number) that back it; streamed one by one."""

    text: str
    citations: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "citations": list(self.citations)}


@dataclass(frozen=True)
class Answer:
    question: str
    parts: tuple[AnswerPart, ...]
    citations: tuple[Citation, ...] = ()
    answered: bool = True
    engine: str = "extractive"  # or "bedrock"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def text(self) -> str:
        return " ".join(part.text for part in self.parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answered": self.answered,
            "engine": self.engine,
            "text": self.text,
            "parts": [part.to_dict() for part in self.parts],
            "citations": [citation.to_dict() for citation in self.citations],
            "notes": list(self.notes),
        }
