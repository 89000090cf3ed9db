"""The labelled questions: loading `questions.yaml`, telling a correct passage, and checking the set is sound.

An answer is named by its file (the object key, which is the content index's
document id) and a short verbatim quote, or a few quotes for a table row
(its cells), never by a passage number: a passage is correct when it comes
from that file and holds every quote, whitespace aside, wherever the chunker
cut. So the set stays valid when chunking changes.

A *paraphrased* question shares no key word with its answer: no word outside
the stop words, compared after the Porter stemming the keyword index itself
applies (SQLite FTS5's ``porter unicode61``), with the answer's context,
that is the file's name and the quote's paragraph with its heading (Markdown,
PDF), its line (a log) or its row with the header (a table). BM25 cannot
find such a passage by the words that answer it; only meaning can.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import yaml

from benchmarks.evaluation.documents import EvalFile

QUESTIONS_PATH = Path(__file__).with_name("questions.yaml")


class Kind(StrEnum):
    KEYWORD = "keyword"  # answerable, and may share words with its answer
    PARAPHRASED = "paraphrased"  # answerable, sharing no key word with its answer
    UNANSWERABLE = "unanswerable"  # no file holds the answer
    HIDDEN = "hidden"  # the answer is in an experiment the asker may not see


ANSWERABLE = (Kind.KEYWORD, Kind.PARAPHRASED)

_STOP_WORDS = """
    a about above after again against all am an and any are as at be because been before being below between both
    but by can could did do does doing done down during each few for from further had has have having he her here
    hers him his how i if in into is it its itself just me more most my no nor not now of off on once only or other
    our ours out over own same she should so some such than that the their theirs them then there these they this
    those through to too under until up very was we were what when where which while who whom why will with would
    you your yours get got many much one two
"""
STOP_WORDS = frozenset(_STOP_WORDS.split())
"""Words that carry no subject: English function words, question words, and a few verbs and counts."""

_TOKEN = re.compile(r"[^\W_]+")
"""A token as FTS5's unicode61 tokenizer cuts one: letters and digits, everything else separates."""

TABLE_SUFFIXES = (".csv", ".tsv")
LOG_SUFFIXES = (".txt", ".log")


@dataclass(frozen=True)
class AnswerRef:
    """Where an answer is: the file's key and the quotes a correct passage holds, all of them."""

    file: str
    quotes: tuple[str, ...]

    def held_by(self, document_id: str, text: str) -> bool:
        """Whether a passage of ``document_id`` with ``text`` is this answer."""
        normal = normalise(text)
        return document_id == self.file and all(normalise(quote) in normal for quote in self.quotes)


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    kind: Kind
    asker: str
    answers: tuple[AnswerRef, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Asker:
    name: str
    groups: frozenset[str]


@dataclass(frozen=True)
class EvaluationSet:
    askers: dict[str, Asker]
    questions: tuple[Question, ...] = field(default_factory=tuple)

    def of_kind(self, *kinds: Kind) -> list[Question]:
        return [question for question in self.questions if question.kind in kinds]


def normalise(text: str) -> str:
    """Whitespace collapsed to single spaces: PDF extraction rejoins lines, passages may too."""
    return " ".join(text.split())


def load_questions(path: Path = QUESTIONS_PATH) -> EvaluationSet:
    """The evaluation set; `ValueError` naming the question when one is malformed."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    askers = {
        name: Asker(name, frozenset(value.get("groups") or ())) for name, value in (data.get("askers") or {}).items()
    }
    default = data.get("default_asker")
    questions = []
    for item in data.get("questions") or ():
        ident = item.get("id")
        try:
            kind = Kind(item["kind"])
            answers = tuple(
                AnswerRef(
                    answer["file"], tuple([answer["quote"]] if isinstance(answer["quote"], str) else answer["quote"])
                )
                for answer in item.get("answers") or ()
            )
            questions.append(
                Question(ident, item["question"], kind, item.get("asker", default), answers, item.get("note", ""))
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"question {ident!r} is malformed: {exc}") from exc
    return EvaluationSet(askers, tuple(questions))


def key_words(text: str) -> list[str]:
    """The words of ``text`` that say what it is about: tokens of two or more characters, not stop words."""
    return [
        token for token in (t.casefold() for t in _TOKEN.findall(text)) if len(token) > 1 and token not in STOP_WORDS
    ]


def _blocks(file: EvalFile) -> list[str]:
    """The units an answer's context is taken from: rows with the header, log lines, or paragraphs with a heading."""
    name = file.path.rsplit("/", 1)[-1].lower()
    lines = file.text.splitlines()
    if name.endswith(TABLE_SUFFIXES):
        return [f"{lines[0]}\n{line}" for line in lines[1:]]
    if name.endswith(LOG_SUFFIXES):
        return [line for line in lines if line.strip()]
    blocks: list[str] = []
    heading = ""
    for paragraph in re.split(r"\n\s*\n", file.text):
        if paragraph.lstrip().startswith("#"):
            heading = paragraph
            continue
        blocks.append(f"{heading}\n{paragraph}" if heading else paragraph)
    return blocks


def answer_context(file: EvalFile, answer: AnswerRef) -> str:
    """The file's name and the block holding every quote; `ValueError` when no block holds them all."""
    for block in _blocks(file):
        normal = normalise(block)
        if all(normalise(quote) in normal for quote in answer.quotes):
            return f"{file.path.rsplit('/', 1)[-1]}\n{block}"
    raise ValueError(f"no paragraph, line or row of {answer.file} holds {answer.quotes}")


def shared_key_words(question: str, context: str) -> list[str]:
    """The key words of ``question`` the context holds, as the keyword index would match them (stemmed)."""
    with sqlite3.connect(":memory:") as db:
        db.execute("CREATE VIRTUAL TABLE context USING fts5(text, tokenize = 'porter unicode61')")
        db.execute("INSERT INTO context (text) VALUES (?)", (context,))
        return [
            word
            for word in dict.fromkeys(key_words(question))
            if db.execute("SELECT 1 FROM context WHERE context MATCH ?", (f'"{word}"',)).fetchone()
        ]


def problems(evaluation: EvaluationSet, files: Iterable[EvalFile]) -> list[str]:
    """What makes the set unsound, one line each; empty when it is sound."""
    by_key = {file.key: file for file in files}
    found: list[str] = []
    seen: set[str] = set()
    for question in evaluation.questions:
        where = f"question {question.id}"
        if not question.id or question.id in seen:
            found.append(f"{where}: id missing or given twice")
        seen.add(question.id)
        if question.asker not in evaluation.askers:
            found.append(f"{where}: asker {question.asker!r} is not declared")
        wants_answers = question.kind is not Kind.UNANSWERABLE
        if wants_answers != bool(question.answers):
            found.append(f"{where}: a {question.kind} question {'needs' if wants_answers else 'has no'} answers")
        for answer in question.answers:
            file = by_key.get(answer.file)
            if file is None:
                found.append(f"{where}: no file {answer.file}")
                continue
            text = normalise(file.text)
            missing = [quote for quote in answer.quotes if normalise(quote) not in text]
            if missing:
                found.append(f"{where}: {answer.file} does not hold {missing}")
                continue
            if question.kind is Kind.PARAPHRASED:
                try:
                    shared = shared_key_words(question.text, answer_context(file, answer))
                except ValueError as exc:
                    found.append(f"{where}: {exc}")
                    continue
                if shared:
                    found.append(f"{where}: shares key words with its answer: {', '.join(shared)}")
    return found


def counts(evaluation: EvaluationSet) -> dict[Kind, int]:
    return {kind: len(evaluation.of_kind(kind)) for kind in Kind}
