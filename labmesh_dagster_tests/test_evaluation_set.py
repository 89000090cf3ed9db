"""The labelled evaluation set of search and chat (benchmarks/evaluation) is sound.

It holds at least 60 questions over the demo lab and the generated documents:
at least 20 paraphrased so that they share no key word (stemmed, stop words
aside) with their answer, at least 10 that no document answers, and a few whose
answer sits in an experiment the asker may not see. Ids are unique, every
answer names a file of the set and quotes it verbatim, and a PDF's quotes are
in the text labmesh extracts from it, not only in the text it was written from.
"""

from __future__ import annotations

import io

import pytest

from benchmarks.evaluation.documents import EvalFile, evaluation_files, evaluation_records
from benchmarks.evaluation.questions import (
    AnswerRef,
    EvaluationSet,
    Kind,
    Question,
    answer_context,
    load_questions,
    normalise,
    problems,
    shared_key_words,
)
from labmesh_dagster.extract import extract


@pytest.fixture(scope="module")
def files() -> list[EvalFile]:
    return evaluation_files(sequences=False)


@pytest.fixture(scope="module")
def evaluation() -> EvaluationSet:
    return load_questions()


def test_the_set_has_the_questions_the_issue_asks_for(evaluation: EvaluationSet) -> None:
    assert len(evaluation.questions) >= 60
    assert len(evaluation.of_kind(Kind.PARAPHRASED)) >= 20
    assert len(evaluation.of_kind(Kind.UNANSWERABLE)) >= 10
    assert len(evaluation.of_kind(Kind.HIDDEN)) >= 3
    ids = [question.id for question in evaluation.questions]
    assert len(ids) == len(set(ids))


def test_every_answer_is_quoted_from_its_file_and_paraphrases_share_no_key_word(
    evaluation: EvaluationSet, files: list[EvalFile]
) -> None:
    assert problems(evaluation, files) == []


def test_a_hidden_answer_is_in_an_experiment_of_a_group_its_asker_is_not_in(evaluation: EvaluationSet) -> None:
    groups = {record.id: record.group for record in evaluation_records()}
    for question in evaluation.of_kind(Kind.HIDDEN):
        asker = evaluation.askers[question.asker]
        for answer in question.answers:
            experiment = answer.file.split("/")[1]
            assert groups[experiment] not in asker.groups, question.id


def test_the_checks_catch_a_shared_word_a_stemmed_one_and_a_quote_the_file_lacks(files: list[EvalFile]) -> None:
    protocol = next(file for file in files if file.path == "protocols/rna-extraction.md")
    storage = AnswerRef(protocol.key, ("stored at -80 °C in freezer F-12",))
    context = answer_context(protocol, storage)
    assert "No more than two freeze-thaw cycles" in context
    assert "Homogenisation" not in context
    assert shared_key_words("Which freezer holds it?", context) == ["freezer"]
    assert shared_key_words("Where is the purification product stored?", context) == ["stored"]
    assert shared_key_words("Where do we store the product?", context) == ["store"]  # Porter: store ~ stored
    unsound = EvaluationSet(
        {"lab-lead": next(iter(load_questions().askers.values()))},
        (
            Question("shares", "Which freezer keeps it?", Kind.PARAPHRASED, "lab-lead", (storage,)),
            Question(
                "misquotes",
                "Where is it?",
                Kind.KEYWORD,
                "lab-lead",
                (AnswerRef(protocol.key, ("stored at -20 °C",)),),
            ),
            Question("shares", "Anything?", Kind.UNANSWERABLE, "nobody", (storage,)),
        ),
    )
    found = problems(unsound, files)
    assert any("shares key words with its answer: freezer" in line for line in found)
    assert any("does not hold ['stored at -20 °C']" in line for line in found)
    assert any("given twice" in line for line in found)
    assert any("asker 'nobody' is not declared" in line for line in found)
    assert any("unanswerable question has no answers" in line for line in found)


def test_a_pdf_s_quotes_are_in_the_text_labmesh_extracts_from_it(
    evaluation: EvaluationSet, files: list[EvalFile]
) -> None:
    pdfs = {file.key: file for file in files if file.path.endswith(".pdf")}
    extracted = {key: normalise(extract(io.BytesIO(file.content), file.path).text) for key, file in pdfs.items()}
    quoted = [answer for question in evaluation.questions for answer in question.answers if answer.file in pdfs]
    assert len(quoted) >= 10
    for answer in quoted:
        for quote in answer.quotes:
            assert normalise(quote) in extracted[answer.file], (answer.file, quote)


def test_the_documents_are_the_same_on_every_run(files: list[EvalFile]) -> None:
    again = evaluation_files(sequences=False)
    assert [(file.key, file.content) for file in again] == [(file.key, file.content) for file in files]
    assert len({file.key for file in files}) == len(files)


def test_a_passage_answers_when_it_is_of_the_answer_s_file_and_holds_every_quote_wherever_lines_break() -> None:
    row = AnswerRef("raw/EXP-1/qc.csv", ("LIV-02", "6.1"))
    assert row.held_by("raw/EXP-1/qc.csv", "sample_id,rin\nLIV-01,8.7\nLIV-02,6.1\n")
    assert not row.held_by("raw/EXP-1/qc.csv", "sample_id,rin\nLIV-01,8.7\n")
    assert not row.held_by("raw/EXP-2/qc.csv", "sample_id,rin\nLIV-02,6.1\n")
    prose = AnswerRef("final/EXP-1/report.pdf", ("91.3% of bases at or above Q30",))
    assert prose.held_by("final/EXP-1/report.pdf", "Total yield was 812 Gb with 91.3% of bases\nat  or above Q30.")
