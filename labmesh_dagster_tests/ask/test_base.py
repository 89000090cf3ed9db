"""The answerer protocol's stream: parts, then citations, then one end, gathered into one `Answer`.

Pinned here: `collect` keeps the parts in order and the citations by number;
a refusal carries no citation and is not ``answered``; a stream that breaks the
protocol (no end, a number given twice, a part naming a citation never given,
an event after the end) is refused with a clear error rather than rendered;
a passage's citation opens its file's page at the passage, a fact's the experiment.
"""

from __future__ import annotations

import pytest

from labmesh_dagster.ask.base import (
    NO_ANSWER,
    AnswerEnd,
    CatalogFact,
    collect,
    event_dict,
    fact_citation,
    passage_citation,
    refusal,
)
from labmesh_dagster.core.answers import AnswerPart
from labmesh_dagster.core.passages import LocationKind, Passage, PassageHit, PassageLocation

HIT = PassageHit(
    passage=Passage("raw/EXP-1/notes/run 1.md", 2, "Q30 was 93.1%.", PassageLocation(LocationKind.SECTION, label="QC")),
    title="run 1.md",
    uri="/store/raw/EXP-1/notes/run 1.md",
    score=1.0,
    attributes={"experiment_id": "EXP-1", "zone": "raw"},
)
FACT = CatalogFact("EXP-1 (Liver RNA-seq) ran on the MiSeq.", "EXP-1", "Liver RNA-seq")


def test_an_answer_streams_parts_then_citations_then_its_end() -> None:
    events = [
        AnswerPart("Q30 was 93.1%.", (1,)),
        AnswerPart("It ran on the MiSeq.", (2,)),
        passage_citation(1, HIT),
        fact_citation(2, FACT),
        AnswerEnd(answered=True, engine="extractive"),
    ]
    answer = collect("what was the Q30?", events)
    assert answer.text == "Q30 was 93.1%. It ran on the MiSeq."
    assert [c.number for c in answer.citations] == [1, 2]
    passage, fact = answer.citations
    assert passage.href == "/files/raw/EXP-1/notes/run%201.md?passage=2#passage-2"
    assert (passage.experiment_id, passage.dataset, passage.location) == ("EXP-1", "raw", 'section "QC"')
    assert fact.href == "/experiments/EXP-1" and fact.passage is None
    assert [event_dict(event)["type"] for event in events] == ["part", "part", "citation", "citation", "done"]


def test_a_refusal_cites_nothing_and_is_not_answered() -> None:
    answer = collect("who won the cup?", refusal("extractive"))
    assert (answer.answered, answer.citations, answer.text) == (False, (), NO_ANSWER)


@pytest.mark.parametrize(
    ("events", "error"),
    [
        ([AnswerPart("text")], "without its end"),
        ([passage_citation(1, HIT), passage_citation(1, HIT), AnswerEnd(True, "x")], "given twice"),
        ([AnswerPart("text", (3,)), AnswerEnd(True, "x")], r"never gave: \[3\]"),
        ([AnswerEnd(True, "x"), AnswerPart("late")], "after its end"),
    ],
)
def test_a_stream_that_breaks_the_protocol_is_refused(events: list, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        collect("q", events)
