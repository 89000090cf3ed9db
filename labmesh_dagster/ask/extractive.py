"""The offline answerer: quote the retrieved sentences that answer the question, verbatim, each with its citation.

No small model on PyPI answered grounded questions correctly in our trials, so
the local profile generates nothing: it picks sentences. Each sentence of the
retrieved passages is scored three ways, as the issue asks:

- by meaning: the cosine of its embedding with the question's (all-MiniLM,
  `labmesh_dagster.semantic.embedding`), read in its passage, which finds
  "the pilot used 3 mice per condition" for "how many animals per group";
- by the question's words it shares (stemmed, stop words aside);
- by the ids, numbers and units the question names (`labmesh_dagster.ask.terms`),
  and, when it asks for an amount or a date, by whether the sentence states one
  (a date is no amount; a question asking in a unit, "in nM", is never answered
  by a sentence that does not state it, in its words or its column's name);
- a little by retrieval's own order of the passages.

A question that names a sample or an experiment id is answered only from
sentences that hold the id, or that name no id and come from a file that
carries it (as a sample of the file, its experiment, or in its name): meaning
alone would answer "the Q30 of LIV-07" with LIV-01's, and "the reads of
SOIL-C" with a sentence on SOIL-A and SOIL-B. A question that spells a name as
a symbol (an acronym, ``MIC``, or a mixed-case name, ``pH``: `unheld_symbols`)
that no retrieved passage holds is refused outright: such a name has no
synonym a passage could use instead, and without it the closest sentence
answers a neighbouring question ("the ceftriaxone resistance the hospital
measured" for "the MIC of ceftriaxone"). When the best sentence scores under
`ANSWER_THRESHOLD`, the answer is a refusal too: no document the asker may see
answers it.

The weights and the threshold were tuned on the labelled set in
``labmesh_dagster_tests/ask/labelled.py`` and on the evaluation set of
``benchmarks/search_quality.py``, favouring refusals, and checked on two
halves of that set (weights tuned on one half, measured on the other: no
other weights did better on the half they were not tuned on). There the
answerer cites a correct passage for 51% of the answerable questions (97% of
those asked in the documents' words, 3% of the paraphrased), answers none
from a wrong passage, refuses 92% of the unanswerable and every question whose
answer the asker may not see, in 10 ms per question at the median and 194 ms
at the 95th percentile. The paraphrased stay refused: the cosine of their
answer with the question (0.35-0.5) is no higher than that of the sentence
nearest a question nothing answers (0.45-0.6), whether the sentence is read
alone, in its passage, by its margin over the other sentences or word by
word; a 6-layer sentence model does not tell a paraphrase that is answered
from a question that is not, and answering them would cost the refusals.

A sentence wrapped over lines is joined again before it is scored and quoted.
A table's row is quoted with its header's column names (``sample: LIV-01,
q30: 93.4``), its values verbatim: a bare row of numbers answers nothing.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from labmesh_dagster.ask.base import AnswerEnd, AnswerEvent, Evidence, passage_citation, refusal
from labmesh_dagster.ask.terms import (
    amounts,
    content_terms,
    entity_ids,
    holds_unit,
    holds_word,
    normal_id,
    numbers,
    states_date,
    stem,
    symbols,
    units,
    wants_date,
    wants_quantity,
    words,
)
from labmesh_dagster.connectors.search.base import EXPERIMENT_ID, SAMPLE_IDS
from labmesh_dagster.core.answers import AnswerPart
from labmesh_dagster.core.passages import LocationKind, PassageHit

ENGINE = "extractive"

SENTENCE_SHARE = 0.4
"""A sentence's meaning score is this much its own cosine with the question, the rest its passage's."""
MEANING_WEIGHT = 0.5
WORDS_WEIGHT = 0.4
SPECIFICS_WEIGHT = 0.15
KIND_SHARE = 1.0
"""How much stating a number (or a date) counts, when that is what the question asks for, against naming its ids."""
RANK_WEIGHT = 0.2
"""Retrieval's own order counts a little (1 for its first passage, 1/2 for the second...): it ranked whole
passages against the index by words and meaning together."""
ANSWER_THRESHOLD = 0.58
"""A sentence scoring under this answers nothing: the answer is a refusal."""
KEEP_RATIO = 0.7
"""Other sentences quoted beside the best must score this close to it (and above the threshold)."""
MAX_SENTENCES = 3
CACHED_VECTORS = 4096
"""Embeddings of recent texts kept by an answerer (1.5 KB each)."""
MIN_WORDS = 3

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9µ])")
_ABBREVIATION = re.compile(r"(?:^|\s)(?:Dr|Prof|Mr|Mrs|Ms|St|Fig|No|approx|ca|cf|vs|e\.g|i\.e|et al)\.$", re.IGNORECASE)
_MARKUP = re.compile(r"^\s*(?:[#>*+-]+|\d+[.)])\s+")


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Sentence:
    """A candidate: ``quote`` as the answer shows it, ``scored`` the text compared with the question."""

    hit: int  # index of its passage among the evidence's
    quote: str
    scored: str


@dataclass(frozen=True)
class Scored:
    sentence: Sentence
    score: float
    meaning: float
    overlap: float
    specifics: float
    names_asked: bool = False  # it names an id the question names itself (not just its file)


def sentences(hits: Sequence[PassageHit]) -> list[Sentence]:
    """Every quotable sentence of the passages, in order: lines split into sentences, table rows with headers."""
    found: list[Sentence] = []
    for index, hit in enumerate(hits):
        text = hit.passage.text
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        delimiter = _delimiter(lines[0]) if lines and hit.passage.location.kind is LocationKind.ROWS else None
        if delimiter is not None and len(lines) > 1:
            header = [name.strip() for name in lines[0].split(delimiter)]
            for line in lines[1:]:
                values = [value.strip() for value in line.split(delimiter)]
                quote = ", ".join(f"{name}: {value}" for name, value in zip(header, values, strict=False) if value)
                found.append(Sentence(index, quote, quote))
            continue
        location = hit.passage.location
        # A section's heading says what its sentences are about ("RNA integrity"): it is compared with them.
        topic = f"{location.label}: " if location.kind is LocationKind.SECTION and location.label else ""
        for line in lines if location.kind is LocationKind.FIELD else _unwrapped(lines):
            if line.startswith("#") or (location.kind is LocationKind.FIELD and line.startswith("title:")):
                continue  # a heading or a title names what follows; the sentences under it answer
            for piece in _split_sentences(_MARKUP.sub("", line)):
                if len(words(piece)) >= MIN_WORDS:
                    found.append(Sentence(index, piece, topic + piece))
    return found


def _split_sentences(line: str) -> list[str]:
    """The line's sentences; a title or an abbreviation's stop ("referred by Dr. Lee", "e.g. Trizol") ends none."""
    pieces: list[str] = []
    for piece in _SENTENCE_END.split(line):
        piece = piece.strip()
        if pieces and _ABBREVIATION.search(pieces[-1]):
            pieces[-1] = f"{pieces[-1]} {piece}"
        elif piece:
            pieces.append(piece)
    return pieces


def _unwrapped(lines: Sequence[str]) -> list[str]:
    """The lines with a sentence wrapped over several (as Markdown and text files are wrapped) joined again.

    A line continues the one before when that one stops mid-sentence (no closing punctuation) and it goes on in
    lower case ("... homogenise at 6,500 rpm," / "and centrifuge at 12,000 x g"): quoted and compared apart,
    each half would say half of what the sentence says. A heading, a list item or a line starting in capitals
    or digits (a log's next record) starts anew. A metadata record's fields (``lines: 16``) are never joined."""
    joined: list[str] = []
    for line in lines:
        if (
            joined
            and line[:1].islower()
            and not joined[-1].startswith("#")
            and not joined[-1].endswith((".", "!", "?", ":"))
        ):
            joined[-1] = f"{joined[-1]} {line}"
        else:
            joined.append(line)
    return joined


def _delimiter(header: str) -> str | None:
    for delimiter in ("\t", ",", ";", "|"):
        if header.count(delimiter) >= 1:
            return delimiter
    return None


def _context_ids(hit: PassageHit) -> set[str]:
    """Ids the passage's file carries besides its text: its samples, its experiment, its name."""
    found = entity_ids(hit.title) | entity_ids(hit.passage.document_id)
    samples = hit.attributes.get(SAMPLE_IDS)
    if isinstance(samples, (list, tuple)):
        found |= {normal_id(sample) for sample in samples if isinstance(sample, str)}
    experiment = hit.attributes.get(EXPERIMENT_ID)
    if isinstance(experiment, str):
        found.add(normal_id(experiment))
    return found


class ExtractiveAnswerer:
    """Quotes the best sentences of the evidence, or refuses; ``embedder`` defaults to the process's MiniLM."""

    engine = ENGINE

    def __init__(self, embedder: Embedder | None = None, *, threshold: float = ANSWER_THRESHOLD) -> None:
        self._embedder = embedder
        self.threshold = threshold
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """The texts' embeddings, those of recent passages and sentences kept: a chat's questions retrieve
        the same passages again, and embedding them is most of an answer's time."""
        with self._lock:
            found = {text: self._vectors[text] for text in texts if text in self._vectors}
        missing = [text for text in dict.fromkeys(texts) if text not in found]
        if missing:  # embedded outside the lock: other askers' cached texts need not wait for it
            found.update(zip(missing, self.embedder.embed(missing), strict=True))
        with self._lock:
            for text in dict.fromkeys(texts):
                self._vectors[text] = found[text]
                self._vectors.move_to_end(text)
            while len(self._vectors) > CACHED_VECTORS:
                self._vectors.popitem(last=False)
        return np.stack([found[text] for text in texts])

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from labmesh_dagster.semantic.embedding import default_embedder

            self._embedder = default_embedder()
        return self._embedder

    def score(self, evidence: Evidence) -> list[Scored]:
        """Every candidate sentence of the evidence with its scores, best first (ties: the better passage first)."""
        candidates = sentences(evidence.passages)
        if not candidates:
            return []
        question = evidence.question
        vectors = self.vectors([question, *(candidate.scored for candidate in candidates)])
        own = vectors[1:] @ vectors[0]
        # A sentence is read in its passage: "Col1a1 showed the largest increase" answers "which gene rose the
        # most" once the passage says it is about genes up-regulated. The passage's meaning is the mean of its
        # sentences' vectors: as good as embedding the passage again here, at half the time.
        around = {}
        for hit in {candidate.hit for candidate in candidates}:
            rows = [index for index, candidate in enumerate(candidates) if candidate.hit == hit]
            mean = vectors[1:][rows].mean(axis=0)
            around[hit] = float(mean @ vectors[0]) / max(float(np.linalg.norm(mean)), 1e-12)
        meanings = [
            SENTENCE_SHARE * float(meaning) + (1 - SENTENCE_SHARE) * around[candidate.hit]
            for candidate, meaning in zip(candidates, own, strict=True)
        ]
        terms = content_terms(question)
        asked_ids = entity_ids(question)
        asked_numbers, asked_units = numbers(question), units(question)
        kind = "date" if wants_date(question) else "quantity" if wants_quantity(question) else None
        context = [_context_ids(hit) for hit in evidence.passages]
        scored: list[Scored] = []
        for candidate, meaning in zip(candidates, meanings, strict=True):
            own_ids = entity_ids(candidate.scored)
            if asked_ids and not asked_ids & (own_ids if own_ids else context[candidate.hit]):
                # About another sample or experiment than the one asked: it names others, or (naming none)
                # its file is not the asked one's.
                continue
            if asked_units and not any(holds_unit(candidate.quote, unit) for unit in asked_units):
                continue  # the question asks in a unit (nM, ng/µl) that the sentence never states
            overlap = len(terms & _terms(candidate.scored)) / len(terms) if terms else 0.0
            specifics = _specifics(asked_ids, asked_numbers, asked_units, candidate.scored, own_ids)
            if kind is not None and not asked_numbers and not asked_units:
                # What is asked is a number or a date: a sentence stating one is the likelier answer.
                states = states_date(candidate.quote) if kind == "date" else bool(amounts(candidate.quote))
                specifics = (specifics + KIND_SHARE * float(states)) / 2 if asked_ids else KIND_SHARE * float(states)
            score = (
                MEANING_WEIGHT * float(meaning)
                + WORDS_WEIGHT * overlap
                + SPECIFICS_WEIGHT * specifics
                + RANK_WEIGHT / (1 + candidate.hit)
            )
            names_asked = bool(asked_ids & own_ids)
            scored.append(Scored(candidate, score, float(meaning), overlap, specifics, names_asked))
        scored.sort(key=lambda item: (-item.score, item.sentence.hit))
        return scored

    def answer(self, evidence: Evidence) -> Iterator[AnswerEvent]:
        if unheld_symbols(evidence):
            yield from refusal(ENGINE)  # the question asks about something no passage names
            return
        ranked = self.score(evidence)
        if not ranked or ranked[0].score < self.threshold:
            yield from refusal(ENGINE)
            return
        floor = max(self.threshold, ranked[0].score * KEEP_RATIO)
        chosen: list[Scored] = []
        for item in ranked:
            if item.score < floor or len(chosen) == MAX_SENTENCES:
                break
            if ranked[0].names_asked and not item.names_asked:
                continue  # the best names the sample asked about: a neighbour's sentence is about another one
            if all(item.sentence.quote != other.sentence.quote for other in chosen):
                chosen.append(item)
        numbers_of: dict[int, int] = {}
        for item in chosen:
            number = numbers_of.setdefault(item.sentence.hit, len(numbers_of) + 1)
            yield AnswerPart(item.sentence.quote, (number,))
        for hit, number in numbers_of.items():
            yield passage_citation(number, evidence.passages[hit])
        yield AnswerEnd(answered=True, engine=ENGINE)


def unheld_symbols(evidence: Evidence) -> set[str]:
    """The symbols the question names (`labmesh_dagster.ask.terms.symbols`: ``MIC``, ``pH``) that no passage holds.

    Such a name is what the question is about, and it has no synonym a passage could use instead: when none of
    the passages the asker may see names it, they do not answer the question, however close their meaning
    ("the MIC of ceftriaxone for ECOLI-7" against "consistent with the ceftriaxone resistance measured"). A
    passage holds what its text, its file's name and key, or the catalog's facts name."""
    asked = symbols(evidence.question)
    if not asked:
        return set()
    texts = [f"{hit.passage.text} {hit.title} {hit.passage.document_id}" for hit in evidence.passages]
    texts += [fact.text for fact in evidence.facts]
    held = {word for text in texts for word in words(text)}
    return {symbol for symbol in asked if not holds_word(held, symbol)}


def _terms(text: str) -> set[str]:
    return content_terms(text) | {stem(word) for word in words(text)}


def _specifics(
    asked_ids: set[str], asked_numbers: set[str], asked_units: set[str], text: str, own_ids: set[str]
) -> float:
    """How many of the ids, numbers and units the question names the sentence holds, from 0 to 1; a unit is held
    as `holds_unit` tells, as the filter on units does (a table row's ``library_conc_nM`` states nM)."""
    asked = len(asked_ids) + len(asked_numbers) + len(asked_units)
    if not asked:
        return 0.0
    stated = sum(holds_unit(text, unit) for unit in asked_units)
    held = len(asked_ids & own_ids) + len(asked_numbers & numbers(text)) + stated
    return held / asked
