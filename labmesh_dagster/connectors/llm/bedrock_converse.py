"""Answers on Amazon Bedrock: evidence retrieved under the asker's access goes to Converse, its citations come back.

This is the `aws` profile's answerer (``LABMESH_ANSWERER=bedrock``). It
implements `labmesh_dagster.ask.base.Answerer`: `ask` has already retrieved the
passages and read the catalog under the asker's access, so the model only ever
sees what the asker may see. What shapes the calls (Bedrock's API reference
and user guide):

- The evidence goes in the user message, one content block per passage or
  catalog fact, before the question. ``searchResult`` blocks (source, title,
  content, ``citations: {enabled: true}``) are cited by
  ``searchResultLocation.searchResultIndex``, the block's place among the
  request's search results; only Anthropic's Claude models accept them.
  ``document`` blocks with citations enabled serve the other models and are
  cited by ``documentChar`` / ``documentPage`` / ``documentChunk``, whose
  ``documentIndex`` is the document's place among the request's documents
  (``LABMESH_BEDROCK_SOURCES`` picks one).
- The answer comes back as ``citationsContent`` blocks (generated text and the
  citations that back it) between plain ``text`` blocks. Each block becomes one
  `AnswerPart`; each citation's location is mapped back to the passage or fact
  it was built from and numbered in the order first cited, through the same
  `passage_citation` / `fact_citation` the offline answerer uses, so both
  render alike. A citation naming no source of this request (a web location,
  an index out of range) is dropped, never shown.
- A part that cites nothing and holds a number is left out (and said so in
  a note): a figure no passage backs is the model's own, never the lab's.
- An answer that cites nothing is refused (`refusal`): the model is then
  speaking from its own knowledge or saying the sources do not answer, and
  labmesh never passes an uncited claim on as the lab's data.
  ``guardrail_intervened`` (and ``content_filtered``) is refused alike, with a
  note saying why.
- ``guardrailConfig`` (identifier and version) goes on every call when a
  guardrail is set. Streaming, it runs in ``sync`` mode, so Bedrock judges each
  chunk before sending it, and the whole answer is held until the message
  stops: only then does Bedrock say whether the guardrail intervened.
- Without a guardrail, ConverseStream's parts are held until the first cited
  one arrives (an answer that never cites is refused, so nothing may show
  before), then passed on as each content block ends.
- Throttling and 5xx are retried with backoff (`PacedCaller`); what still
  fails, and access or validation errors, is raised as `AnswererUnavailable`
  naming the model. An error in the middle of a stream is not retried: parts
  may already have reached the asker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labmesh_dagster.ask.base import (
    AnswerEnd,
    AnswerEvent,
    CatalogFact,
    Evidence,
    fact_citation,
    passage_citation,
    refusal,
)
from labmesh_dagster.connectors.aws import PacedCaller, clear_failure
from labmesh_dagster.core.answers import AnswerPart, Citation
from labmesh_dagster.core.defaults import AWS_MAX_ATTEMPTS
from labmesh_dagster.core.errors import LabmeshError
from labmesh_dagster.core.passages import PassageHit

if TYPE_CHECKING:
    from labmesh_dagster.ports import ClientFactory
    from labmesh_dagster.settings import AnswerSettings

ENGINE = "bedrock"
SEARCH_RESULTS = "search_results"
DOCUMENTS = "documents"

SYSTEM_PROMPT = (
    "You answer questions about a laboratory's experiments and data using only the search results or "
    "documents in the user's message. Cite a source for every statement. Quote numbers, units, sample ids "
    "and experiment ids exactly as the sources give them. If the sources do not answer the question, say so "
    "and do not answer from your own knowledge."
)
"""What the model is told: answer from the sources only, cite each statement, refuse otherwise."""

REFUSED_STOPS: Mapping[str, str] = {
    "guardrail_intervened": "the Bedrock guardrail intervened",
    "content_filtered": "Bedrock filtered the answer's content",
}
"""Stop reasons after which nothing the model wrote is shown, with the note that says why."""

MAX_SOURCES = 20
"""Passages and facts passed per question: retrieval already ranked them, and each costs input tokens."""

CALLS_PER_SECOND = 5.0
"""Converse requests per second per model are a per-account quota; one asker stays well under it."""


class AnswererUnavailable(LabmeshError):
    """Bedrock kept failing (throttling, 5xx), or refused the call (access, validation): no answer was formed."""


@dataclass(frozen=True)
class Source:
    """One passage or catalog fact as the model sees it, and how to cite it back."""

    key: str  # the passage id, or ``catalog:<experiment>[/<zone>]``
    title: str
    text: str
    hit: PassageHit | None = None
    fact: CatalogFact | None = None

    def citation(self, number: int) -> Citation:
        if self.hit is not None:
            return passage_citation(number, self.hit)
        assert self.fact is not None
        return fact_citation(number, self.fact)


def evidence_sources(evidence: Evidence, limit: int = MAX_SOURCES) -> list[Source]:
    """The passages (best first), then the catalog's facts, as numbered sources; at most ``limit``."""
    sources = [
        Source(
            key=hit.passage.id,
            title=f"{hit.title} ({hit.passage.location.describe()})",
            text=hit.passage.text,
            hit=hit,
        )
        for hit in evidence.passages
        if hit.passage.text.strip()
    ]
    for fact in evidence.facts:
        place = f"/{fact.zone}" if fact.zone else ""
        sources.append(
            Source(f"catalog:{fact.experiment_id}{place}", f"{fact.experiment_id}: {fact.title}", fact.text, fact=fact)
        )
    return sources[:limit]


def source_block(index: int, source: Source, mode: str) -> dict[str, Any]:
    """A source as a Converse content block, citations enabled."""
    if mode == SEARCH_RESULTS:
        return {
            "searchResult": {
                "source": source.key,
                "title": source.title,
                "content": [{"text": source.text}],
                "citations": {"enabled": True},
            }
        }
    # Document names allow letters, digits, spaces, hyphens, parentheses and brackets only, and must be
    # unique: the title (a file name) may hold anything, so the document is named by its number.
    return {
        "document": {
            "format": "txt",
            "name": f"Source {index + 1}",
            "source": {"text": f"{source.title}\n{source.text}"},
            "citations": {"enabled": True},
        }
    }


def converse_request(
    question: str,
    sources: Sequence[Source],
    *,
    model_id: str,
    mode: str,
    guardrail: tuple[str, str] | None,
    max_tokens: int,
    stream: bool,
) -> dict[str, Any]:
    content = [source_block(index, source, mode) for index, source in enumerate(sources)]
    request: dict[str, Any] = {
        "modelId": model_id,
        "system": [{"text": SYSTEM_PROMPT}],
        "messages": [{"role": "user", "content": [*content, {"text": question}]}],
        "inferenceConfig": {"maxTokens": max_tokens, "temperature": 0.0},
    }
    if guardrail is not None:
        identifier, version = guardrail
        config = {"guardrailIdentifier": identifier, "guardrailVersion": version}
        request["guardrailConfig"] = {**config, "streamProcessingMode": "sync"} if stream else config
    return request


def cited_source(citation: Mapping[str, Any], sources: Sequence[Source], mode: str) -> int | None:
    """The index of the source a Bedrock citation points at, or None when it names none of this request's."""
    location = citation.get("location") or {}
    index: Any = None
    if mode == SEARCH_RESULTS and "searchResultLocation" in location:
        index = location["searchResultLocation"].get("searchResultIndex")
    elif mode == DOCUMENTS:
        for kind in ("documentChar", "documentPage", "documentChunk"):
            if kind in location:
                index = location[kind].get("documentIndex")
    source_key = citation.get("source")
    if source_key:
        # A search result's citation repeats the source it was given: it names the passage outright.
        by_key = [position for position, source in enumerate(sources) if source.key == source_key]
        if by_key:
            return by_key[0]
    if isinstance(index, int) and 0 <= index < len(sources):
        return index
    return None


class _Numbering:
    """Citation numbers from 1, in the order sources are first cited."""

    def __init__(self, sources: Sequence[Source], mode: str) -> None:
        self.sources = sources
        self.mode = mode
        self.numbers: dict[int, int] = {}

    def of(self, citations: Iterable[Mapping[str, Any]]) -> tuple[int, ...]:
        found: list[int] = []
        for citation in citations:
            index = cited_source(citation, self.sources, self.mode)
            if index is None:
                continue
            number = self.numbers.setdefault(index, len(self.numbers) + 1)
            if number not in found:
                found.append(number)
        return tuple(found)

    def citations(self) -> list[Citation]:
        return [self.sources[index].citation(number) for index, number in self.numbers.items()]


@dataclass
class _Outcome:
    """What a Converse call ended with, known only once its blocks are read."""

    stop_reason: str | None = None


class BedrockAnswerer:
    """The `Answerer` on Bedrock's Converse (``stream=True``: ConverseStream), grounded on the evidence alone.

    ``client`` is a ``bedrock-runtime`` client (boto3's, or a test's fake);
    ``guardrail`` the guardrail's identifier and version, when one is set.
    """

    engine = ENGINE

    def __init__(
        self,
        client: Any,
        *,
        model_id: str,
        mode: str = SEARCH_RESULTS,
        guardrail: tuple[str, str] | None = None,
        stream: bool = True,
        max_sources: int = MAX_SOURCES,
        max_tokens: int = 1024,
        attempts: int = AWS_MAX_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if mode not in (SEARCH_RESULTS, DOCUMENTS):
            raise ValueError(f"sources go to the model as {SEARCH_RESULTS} or {DOCUMENTS}, not {mode!r}")
        self.model_id = model_id
        self.mode = mode
        self.guardrail = guardrail
        self.stream = stream
        self.max_sources = max_sources
        self.max_tokens = max_tokens
        self.caller = PacedCaller(client, max_per_second=CALLS_PER_SECOND, attempts=attempts, sleep=sleep)

    def answer(self, evidence: Evidence) -> Iterator[AnswerEvent]:
        sources = evidence_sources(evidence, self.max_sources)
        if not sources:
            # Nothing the asker may see was found: the model would only have its own knowledge to offer.
            yield from refusal(self.engine, "nothing you may see was found for this question")
            return
        request = converse_request(
            evidence.question,
            sources,
            model_id=self.model_id,
            mode=self.mode,
            guardrail=self.guardrail,
            max_tokens=self.max_tokens,
            stream=self.stream,
        )
        outcome = _Outcome()
        blocks = self._streamed(request, outcome) if self.stream else self._whole(request, outcome)
        yield from self._events(blocks, outcome, _Numbering(sources, self.mode))

    def _failures(self) -> Any:
        return clear_failure("Bedrock", f"answer with {self.model_id}", AnswererUnavailable)

    def _whole(self, request: dict[str, Any], outcome: _Outcome) -> Iterator[tuple[str, list[Mapping[str, Any]]]]:
        with self._failures():
            response = self.caller("converse", **request)
        outcome.stop_reason = response.get("stopReason")
        for block in response.get("output", {}).get("message", {}).get("content", []):
            if "citationsContent" in block:
                cited = block["citationsContent"]
                text = "".join(item.get("text", "") for item in cited.get("content", []))
                yield text, list(cited.get("citations", []))
            elif "text" in block:
                yield block["text"], []

    def _streamed(self, request: dict[str, Any], outcome: _Outcome) -> Iterator[tuple[str, list[Mapping[str, Any]]]]:
        texts: dict[int, list[str]] = {}
        citations: dict[int, list[Mapping[str, Any]]] = {}
        with self._failures():
            response = self.caller("converse_stream", **request)
            for event in response["stream"]:
                if "contentBlockDelta" in event:
                    index = event["contentBlockDelta"]["contentBlockIndex"]
                    delta = event["contentBlockDelta"]["delta"]
                    if "text" in delta:
                        texts.setdefault(index, []).append(delta["text"])
                    if "citation" in delta:
                        citations.setdefault(index, []).append(delta["citation"])
                elif "contentBlockStop" in event:
                    index = event["contentBlockStop"]["contentBlockIndex"]
                    yield "".join(texts.pop(index, [])), citations.pop(index, [])
                elif "messageStop" in event:
                    outcome.stop_reason = event["messageStop"]["stopReason"]

    def _events(
        self,
        blocks: Iterator[tuple[str, list[Mapping[str, Any]]]],
        outcome: _Outcome,
        numbering: _Numbering,
    ) -> Iterator[AnswerEvent]:
        held: list[AnswerPart] = []
        shown = False
        hold_all = self.guardrail is not None
        dropped = 0
        for text, citations in blocks:
            numbers = numbering.of(citations)
            if not text.strip():
                continue
            if not numbers and any(character.isdigit() for character in text):
                # A number no passage backs is the model's own (a guess, or memory): never shown as the lab's.
                dropped += 1
                continue
            held.append(AnswerPart(text.strip(), numbers))
            if not hold_all and (shown or numbers):
                shown = True
                yield from held
                held.clear()
        refused = REFUSED_STOPS.get(outcome.stop_reason or "")
        if refused and not shown:
            yield from refusal(self.engine, refused)
            return
        if not numbering.numbers:
            yield from refusal(self.engine, "the model cited none of the passages you may see")
            return
        yield from held
        yield from numbering.citations()
        notes: tuple[str, ...] = (refused,) if refused else ()
        if outcome.stop_reason == "max_tokens":
            notes += ("the answer was cut at the model's token limit",)
        if dropped:
            notes += (f"{dropped} uncited statement(s) holding numbers were left out",)
        yield AnswerEnd(answered=refused is None, engine=self.engine, notes=notes)


def open_bedrock_answerer(
    settings: AnswerSettings, clients: ClientFactory | None = None, *, stream: bool = True
) -> BedrockAnswerer:
    """The answerer ``LABMESH_ANSWERER=bedrock`` names, on a ``bedrock-runtime`` client from ``clients``."""
    from labmesh_dagster.ports import boto3_clients
    from labmesh_dagster.settings import AwsConnection

    if not settings.bedrock_model_id:
        raise ValueError("a Bedrock answerer needs LABMESH_BEDROCK_MODEL_ID")
    connection = AwsConnection(settings.endpoint_url, settings.region, settings.max_attempts)
    client = (clients or boto3_clients)("bedrock-runtime", connection)
    guardrail = (
        (settings.guardrail_id, settings.guardrail_version)
        if settings.guardrail_id and settings.guardrail_version
        else None
    )
    return BedrockAnswerer(
        client,
        model_id=settings.bedrock_model_id,
        mode=settings.sources,
        guardrail=guardrail,
        stream=stream,
        attempts=settings.max_attempts,
    )
