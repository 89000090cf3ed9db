"""Asking under access: two people of different groups ask the same question and each is answered from their own files.

Pinned here, on `ask_lab` (the same question has an answer in a Genomics file
and in a Proteomics file): ada's answer quotes her liver summary and cites only
her experiments; bob's quotes his kidney notes and cites only his; a question
only ada's files answer is answered for her and refused for bob, with no
citation and no word of her file; an admin may be answered from either; a
question the catalog answers goes to the catalog, the rest to the passages; an
empty or overlong question is refused before anything is read; an index that
cannot be reached gives a refusal that says so, not an error.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from labmesh_dagster.ask.asking import MAX_QUESTION, BadQuestion, ask_answer
from labmesh_dagster.ask.engines import extractive_answerer
from labmesh_dagster.connectors.search.base import NO_FILTER, ContentFilter, ContentIndexUnavailable
from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.answers import Answer
from labmesh_dagster.core.passages import PassageHit, SearchMode
from labmesh_dagster_tests.ask.ask_lab import KIDNEY_NOTES, SUMMARY, AskLab, build_ask_lab

ADA = Viewer("ada", frozenset({"Genomics"}))
BOB = Viewer("bob", frozenset({"Proteomics"}))
ROOT = Viewer("root", admin=True)
SEES = {"ada": {"EXP-1", "EXP-3"}, "bob": {"EXP-2"}}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> AskLab:
    return build_ask_lab(tmp_path_factory.mktemp("asking") / "home")


def asked(lab: AskLab, question: str, viewer: Viewer) -> Answer:
    return ask_answer(
        question,
        viewer=viewer,
        content_index=lab.index,
        catalog=lab.lab.catalog,
        answerer=extractive_answerer(),
        store=lab.lab.store,
    )


def test_two_groups_asking_the_same_question_are_answered_from_their_own_files(lab: AskLab) -> None:
    question = "What stage was the fibrosis scored at?"
    ada, bob = asked(lab, question, ADA), asked(lab, question, BOB)

    assert ada.answered and ada.text == "Fibrosis was scored at stage 3 in every liver."
    assert {c.experiment_id for c in ada.citations} <= SEES["ada"]
    assert [c.passage.document_id for c in ada.citations if c.passage] == [SUMMARY]

    assert bob.answered and bob.text == "Fibrosis was scored at stage 1 in the kidney sections."
    assert {c.experiment_id for c in bob.citations} <= SEES["bob"]
    assert [c.passage.document_id for c in bob.citations if c.passage] == [KIDNEY_NOTES]


def test_what_only_another_groups_files_answer_is_refused_without_a_trace_of_them(lab: AskLab) -> None:
    question = "Which kit extracted the RNA?"
    assert asked(lab, question, ADA).text == "The liver RNA was extracted with the RNeasy kit."
    refused = asked(lab, question, BOB)
    assert not refused.answered and refused.citations == ()
    assert "RNeasy" not in str(refused.to_dict()) and "liver" not in str(refused.to_dict())


def test_an_admin_may_be_answered_from_any_group(lab: AskLab) -> None:
    answer = asked(lab, "Which kit extracted the RNA?", ROOT)
    assert answer.answered and answer.citations[0].experiment_id == "EXP-1"


def test_a_catalog_question_is_answered_by_the_catalog_a_content_question_by_passages(lab: AskLab) -> None:
    assert asked(lab, "Who owns EXP-2?", BOB).engine == "catalog"
    assert asked(lab, "What stage was the fibrosis scored at?", BOB).engine == "extractive"


@pytest.mark.parametrize("question", ["", "   ", "x" * (MAX_QUESTION + 1)])
def test_an_empty_or_overlong_question_is_refused_before_anything_is_read(lab: AskLab, question: str) -> None:
    with pytest.raises(BadQuestion):
        asked(lab, question, ADA)


class UnreachableIndex(SqliteContentIndex):
    """The local index whose retrieval fails as a remote one does after its retries."""

    def retrieve(
        self,
        text: str,
        *,
        filters: ContentFilter = NO_FILTER,
        viewer: Viewer | None = None,
        limit: int = 10,
        mode: SearchMode = SearchMode.HYBRID,
    ) -> list[PassageHit]:
        raise ContentIndexUnavailable("Kendra kept answering ThrottlingException")


def test_an_unreachable_index_is_a_refusal_that_says_why(lab: AskLab) -> None:
    answer = ask_answer(
        "What stage was the fibrosis scored at?",
        viewer=ADA,
        content_index=UnreachableIndex(lab.index.path),
        catalog=lab.lab.catalog,
        answerer=extractive_answerer(),
    )
    assert not answer.answered and answer.citations == ()
    notes: Sequence[str] = answer.notes
    assert any("could not be searched just now" in note for note in notes)
