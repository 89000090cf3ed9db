"""The answerer port: what every chat engine receives (`Evidence`) and what it streams back (`AnswerEvent`).

An answerer never searches and never decides who may see what. `ask`
(`labmesh_dagster.ask.asking`) retrieves the passages and reads the catalog
under the asker's access first, and hands the answerer only that: whatever the
answerer quotes or cites, the asker may see. The offline extractive answerer
(`labmesh_dagster.ask.extractive`) and Bedrock's Converse implement the same
protocol, so the CLI, ``POST /api/ask``, the portal's chat and the MCP server
render any of them alike.

An answer streams as events, in this order: `AnswerPart` s (text, each naming
the citation numbers that back it), then the `Citation` s those numbers refer
to (numbered from 1, each once), then one `AnswerEnd` saying whether the
question was answered. A part may name a citation that has not arrived yet: a
streaming model cites as it writes. A refusal ("no document you may see
answers this") is parts without citations and ``AnswerEnd(answered=False)``:
an answerer never guesses. `collect` turns the events into one `Answer`.

Citations are built by `passage_citation` and `fact_citation`, so every
engine's citations link alike: a passage opens its file's page at the passage
(``/files/<key>?passage=<ordinal>#passage-<ordinal>``), a catalog fact its
experiment's page.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from labmesh_dagster.connectors.search.base import EXPERIMENT_ID, ZONE
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.answers import Answer, AnswerPart, Citation
from labmesh_dagster.core.passages import Passage, PassageHit

NO_ANSWER = "No document you may see answers this question."
"""What a refusal says: it names the asker's access, since another person may see a document that answers it."""


@dataclass(frozen=True)
class CatalogFact:
    """One thing the catalog's typed metadata states, in a sentence, with the dataset or experiment it cites.

    ``text`` is self-contained ("EXP-1 (Liver RNA-seq) ran on the NovaSeq 6000."),
    so an answerer may quote it as it quotes a passage. ``zone`` names the
    dataset (raw, processed, final) when the fact is a dataset's; None for the
    experiment's record.
    """

    text: str
    experiment_id: str
    title: str
    zone: str | None = None
    file_key: str | None = None  # when the fact comes from one file (a QC document)

    @property
    def href(self) -> str:
        return f"/experiments/{quote(self.experiment_id, safe='')}"


@dataclass(frozen=True)
class Evidence:
    """All an answerer may use: the question, the passages retrieved and the catalog's facts, all under
    ``viewer``'s access, best passages first."""

    question: str
    viewer: Viewer
    passages: tuple[PassageHit, ...] = ()
    facts: tuple[CatalogFact, ...] = ()


@dataclass(frozen=True)
class AnswerEnd:
    """The last event of an answer: whether it answered, which engine, and notes for the asker."""

    answered: bool
    engine: str
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"answered": self.answered, "engine": self.engine, "notes": list(self.notes)}


AnswerEvent = AnswerPart | Citation | AnswerEnd
"""What an answer streams: parts, then citations, then one end."""


class Answerer(Protocol):
    """A chat engine: turns evidence into a streamed answer that cites only that evidence.

    ``engine`` names it in `Answer.engine` (``extractive``, ``bedrock``).
    """

    engine: str

    def answer(self, evidence: Evidence) -> Iterator[AnswerEvent]:
        """Stream the answer to ``evidence.question``: parts, citations, then one `AnswerEnd`.

        When nothing in the evidence answers it, stream `refusal` instead; never
        cite anything but ``evidence``'s passages and facts.
        """
        ...


def passage_href(passage: Passage) -> str:
    """The file page at the passage: the page shows its text highlighted, scrolled to its anchor."""
    ordinal = passage.ordinal
    return f"/files/{quote(passage.document_id)}?passage={ordinal}#passage-{ordinal}"


def passage_citation(number: int, hit: PassageHit) -> Citation:
    """Citation ``number`` for a retrieved passage, with its file, experiment, dataset and place."""
    experiment_id = hit.attributes.get(EXPERIMENT_ID)
    zone = hit.attributes.get(ZONE)
    return Citation(
        number=number,
        title=hit.title or hit.passage.document_id.rsplit("/", 1)[-1],
        href=passage_href(hit.passage),
        experiment_id=experiment_id if isinstance(experiment_id, str) else None,
        dataset=zone if isinstance(zone, str) else None,
        passage=hit.passage,
        location=hit.passage.location.describe(),
    )


def fact_citation(number: int, fact: CatalogFact) -> Citation:
    """Citation ``number`` for a catalog fact: the experiment's page, the dataset's zone as its place."""
    return Citation(
        number=number,
        title=f"{fact.experiment_id}: {fact.title}",
        href=fact.href,
        experiment_id=fact.experiment_id,
        dataset=fact.zone,
        location=f"{fact.zone} dataset" if fact.zone else "experiment record",
    )


def refusal(engine: str, *notes: str) -> Iterator[AnswerEvent]:
    """The answer when nothing the asker may see answers the question: no citation, ``answered`` False."""
    yield AnswerPart(NO_ANSWER)
    yield AnswerEnd(answered=False, engine=engine, notes=tuple(notes))


def collect(question: str, events: Iterable[AnswerEvent]) -> Answer:
    """One `Answer` from a stream of events (the CLI's and the tests' way to read a streamed answer).

    Raises `ValueError` when the stream breaks the protocol: no end, a citation
    numbered twice, or a part naming a citation that never came.
    """
    parts: list[AnswerPart] = []
    citations: dict[int, Citation] = {}
    end: AnswerEnd | None = None
    for event in events:
        if end is not None:
            raise ValueError("an answer streamed an event after its end")
        if isinstance(event, AnswerPart):
            parts.append(event)
        elif isinstance(event, Citation):
            if event.number in citations:
                raise ValueError(f"citation [{event.number}] was given twice")
            citations[event.number] = event
        else:
            end = event
    if end is None:
        raise ValueError("an answer ended without its end event")
    missing = {number for part in parts for number in part.citations} - set(citations)
    if missing:
        raise ValueError(f"the answer names citations it never gave: {sorted(missing)}")
    return Answer(
        question=question,
        parts=tuple(parts),
        citations=tuple(citations[number] for number in sorted(citations)),
        answered=end.answered,
        engine=end.engine,
        notes=end.notes,
    )


def event_dict(event: AnswerEvent) -> dict[str, Any]:
    """An event as one line of ``POST /api/ask``'s NDJSON: ``{"type": "part"|"citation"|"done", ...}``."""
    if isinstance(event, AnswerPart):
        return {"type": "part", **event.to_dict()}
    if isinstance(event, Citation):
        return {"type": "citation", **event.to_dict()}
    return {"type": "done", **event.to_dict()}
