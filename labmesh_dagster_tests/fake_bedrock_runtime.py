"""An Amazon Bedrock Runtime client for tests, held to botocore's own service model for ``bedrock-runtime``.

moto has no ``converse``, so `FakeBedrockRuntimeClient` stands in for
``boto3.client("bedrock-runtime")`` in Converse and ConverseStream. Every
request goes through `labmesh_dagster_tests.service_model`'s checks (boto3's
own validation, then the service's limits and patterns), every Converse
response through the model's output shape, and every ConverseStream event
through the ``ConverseStreamOutput`` union it belongs to, so what the fake
accepts the model allows and what it answers botocore would parse.

It behaves as the Bedrock documentation describes, with a "model" simple
enough to predict:

- the passages come as ``searchResult`` blocks (which only Anthropic's Claude
  models accept: any other model id gets the ValidationException the
  service gives) or as ``document`` blocks with citations enabled;
- it answers with the sentences of those sources that share at least half of
  the question's words, each in a ``citationsContent`` block citing where the
  sentence came from (``searchResultLocation`` by search result and content
  block, ``documentChar`` by document and character range), after one
  uncited text block, as models write a lead-in;
- a question no source answers gets one uncited sentence saying so;
- with a ``guardrailConfig`` naming a guardrail the fake knows, a question
  holding one of that guardrail's denied words stops with
  ``guardrail_intervened`` and the guardrail's blocked message, citing nothing;
  an unknown guardrail or version is a ResourceNotFoundException.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import EventStreamError
from botocore.validate import ParamValidator

from labmesh_dagster_tests.service_model import FakeServiceClient, ModelViolation, load_model, service_problems

SERVICE = "bedrock-runtime"
CLAUDE = "us.anthropic.claude-sonnet-4-20250514-v1:0"
NOVA = "amazon.nova-pro-v1:0"
NO_ANSWER = "The provided sources do not answer this question."
LEAD_IN = "According to the sources:"
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SENTENCE = re.compile(r"\S.*?(?:[.!?](?=\s|$)|$)", re.MULTILINE)  # a stop ends one only before a space
_STOP_WORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from", "how", "in", "is", "it"}
    | {"of", "on", "or", "that", "the", "this", "to", "was", "were", "what", "which", "who", "with", "whose"}
)


@dataclass(frozen=True)
class FakeGuardrail:
    """A guardrail with a word filter: a question holding one of ``denied_words`` is blocked."""

    identifier: str
    version: str
    denied_words: frozenset[str]
    blocked_message: str = "Sorry, this question is outside what this assistant may answer."


@dataclass
class _Source:
    index: int  # among the request's search results, or among its documents
    kind: str  # "searchResult" or "document"
    title: str
    source: str | None
    blocks: list[str]  # a search result's content blocks; a document's text as one block


@dataclass
class _Block:
    text: str
    citations: list[dict[str, Any]] = field(default_factory=list)


def words(text: str) -> set[str]:
    return {word.lower().strip("._-") for word in _WORD.findall(text)} - _STOP_WORDS - {""}


class FakeBedrockRuntimeClient(FakeServiceClient):
    """Converse and ConverseStream over the request's own sources, answering like ``boto3.client("bedrock-runtime")``.

    ``search_result_models`` accept ``searchResult`` blocks; ``models`` lists
    every model id the fake serves (others get a ValidationException, as an
    unknown model id does). `fail` makes the next calls raise a 5xx. ``own_knowledge`` is a sentence the
    model adds, uncited, after its cited ones.
    """

    service_name = SERVICE

    def __init__(
        self,
        *,
        models: Sequence[str] = (CLAUDE, NOVA),
        search_result_models: Sequence[str] = (CLAUDE,),
        guardrails: Sequence[FakeGuardrail] = (),
        own_knowledge: str | None = None,
    ) -> None:
        super().__init__()
        self.models = frozenset(models)
        self.search_result_models = frozenset(search_result_models)
        self.guardrails = {(guardrail.identifier, guardrail.version): guardrail for guardrail in guardrails}
        self.own_knowledge = own_knowledge
        self._failures: Counter[str] = Counter()
        self._failure_codes: dict[str, str] = {}
        self._stream_break: tuple[int, str] | None = None
        self.events_sent = 0

    def fail(self, operation_name: str, code: str = "InternalServerException", times: int = 1) -> None:
        """Make the next ``times`` calls of the operation raise ``code`` (a 5xx the operation declares)."""
        self._error(operation_name, code, "check")  # refuses a code the operation does not declare
        self._failures[operation_name] += times
        self._failure_codes[operation_name] = code

    def break_stream(self, after_events: int, code: str = "modelStreamErrorException") -> None:
        """Make the next ConverseStream fail after ``after_events`` events with an exception event ``code``.

        botocore raises an exception event met while reading the stream as `EventStreamError`.
        """
        if code not in load_model(SERVICE).shape_for("ConverseStreamOutput").members:
            raise ModelViolation(f"ConverseStream has no exception event {code}")
        self._stream_break = (after_events, code)

    def _begin(self, operation_name: str, params: Mapping[str, Any]) -> tuple[list[_Source], str, FakeGuardrail | None]:
        self._receive(operation_name, params)
        if self._failures[operation_name] > 0:
            self._failures[operation_name] -= 1
            raise self._error(operation_name, self._failure_codes[operation_name], "the service failed; try again")
        model_id = params["modelId"]
        if model_id not in self.models:
            raise self._error(operation_name, "ValidationException", "The provided model identifier is invalid.")
        messages = params.get("messages") or []  # optional in the model: a managed prompt may carry them
        if not messages or messages[0]["role"] != "user" or messages[-1]["role"] != "user":
            raise self._error(
                operation_name, "ValidationException", "A conversation must start and end with a user message."
            )
        sources = self._sources(operation_name, model_id, messages)
        question = " ".join(block["text"] for block in messages[-1]["content"] if "text" in block)
        if not question.strip():
            raise self._error(operation_name, "ValidationException", "The last user message holds no text.")
        return sources, question, self._guardrail(operation_name, params.get("guardrailConfig"))

    def _sources(self, operation_name: str, model_id: str, messages: Sequence[Mapping[str, Any]]) -> list[_Source]:
        sources: list[_Source] = []
        counts = Counter[str]()
        names: set[str] = set()
        for message in messages:
            for block in message["content"]:
                if "searchResult" in block:
                    if model_id not in self.search_result_models:
                        raise self._error(
                            operation_name,
                            "ValidationException",
                            "This model doesn't support the searchResult content block.",
                        )
                    result = block["searchResult"]
                    texts = [item["text"] for item in result["content"]]
                    sources.append(
                        _Source(counts["searchResult"], "searchResult", result["title"], result["source"], texts)
                    )
                    counts["searchResult"] += 1
                elif "document" in block:
                    document = block["document"]
                    if document["name"] in names:
                        raise self._error(operation_name, "ValidationException", "Document names must be unique.")
                    names.add(document["name"])
                    text = document["source"].get("text")
                    if text is None:
                        raise ModelViolation("the fake reads only documents given as text")
                    sources.append(_Source(counts["document"], "document", document["name"], None, [text]))
                    counts["document"] += 1
        return sources

    def _guardrail(self, operation_name: str, config: Mapping[str, Any] | None) -> FakeGuardrail | None:
        if config is None:
            return None
        key = (config.get("guardrailIdentifier", ""), config.get("guardrailVersion", ""))
        guardrail = self.guardrails.get(key)
        if guardrail is None:
            raise self._error(operation_name, "ResourceNotFoundException", f"guardrail {key[0]} version {key[1]}")
        return guardrail

    def _answer(
        self, sources: Sequence[_Source], question: str, guardrail: FakeGuardrail | None
    ) -> tuple[list[_Block], str]:
        asked = words(question)
        if guardrail is not None and asked & guardrail.denied_words:
            return [_Block(guardrail.blocked_message)], "guardrail_intervened"
        needed = max(1, (len(asked) + 1) // 2)
        cited: list[_Block] = []
        for source in sources:
            for block_index, text in enumerate(source.blocks):
                for match in _SENTENCE.finditer(text):
                    sentence = match.group()
                    if len(words(sentence) & asked) >= needed:
                        location = self._location(source, block_index, match.start(), match.end())
                        citation = {"title": source.title, "sourceContent": [{"text": sentence}], "location": location}
                        if source.source is not None:
                            citation["source"] = source.source
                        cited.append(_Block(sentence, [citation]))
        if not cited:
            return [_Block(NO_ANSWER)], "end_turn"
        # A model may add what it "knows" without citing it, as models do when the sources say less.
        tail = [_Block(self.own_knowledge)] if self.own_knowledge else []
        return [_Block(LEAD_IN), *cited, *tail], "end_turn"

    @staticmethod
    def _location(source: _Source, block_index: int, start: int, end: int) -> dict[str, Any]:
        if source.kind == "searchResult":
            return {
                "searchResultLocation": {"searchResultIndex": source.index, "start": block_index, "end": block_index}
            }
        return {"documentChar": {"documentIndex": source.index, "start": start, "end": end}}

    @staticmethod
    def _usage(params: Mapping[str, Any], blocks: Sequence[_Block]) -> dict[str, int]:
        asked = sum(len(str(message).split()) for message in params["messages"])
        said = sum(len(block.text.split()) for block in blocks)
        return {"inputTokens": asked, "outputTokens": said, "totalTokens": asked + said}

    def converse(self, **params: Any) -> dict[str, Any]:
        sources, question, guardrail = self._begin("Converse", params)
        blocks, stop_reason = self._answer(sources, question, guardrail)
        content = [
            {"citationsContent": {"content": [{"text": block.text}], "citations": block.citations}}
            if block.citations
            else {"text": block.text}
            for block in blocks
        ]
        response = {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop_reason,
            "usage": self._usage(params, blocks),
            "metrics": {"latencyMs": 120},
        }
        return self._reply("Converse", response)

    def converse_stream(self, **params: Any) -> dict[str, Any]:
        sources, question, guardrail = self._begin("ConverseStream", params)
        blocks, stop_reason = self._answer(sources, question, guardrail)
        events = list(self._events(params, blocks, stop_reason))
        for event in events:
            check_stream_event(event)
        broken, self._stream_break = self._stream_break, None
        return {"stream": self._send(events, broken), "ResponseMetadata": {"HTTPStatusCode": 200}}

    def _send(self, events: Sequence[dict[str, Any]], broken: tuple[int, str] | None) -> Iterator[dict[str, Any]]:
        """The events one by one, as the reader asks for them (``events_sent`` counts them)."""
        for position, event in enumerate(events):
            if broken is not None and position == broken[0]:
                error = {"Error": {"Code": broken[1], "Message": "the model's stream failed"}}
                raise EventStreamError(error, "ConverseStream")
            self.events_sent += 1
            yield event

    def _events(
        self, params: Mapping[str, Any], blocks: Sequence[_Block], stop_reason: str
    ) -> Iterator[dict[str, Any]]:
        yield {"messageStart": {"role": "assistant"}}
        for index, block in enumerate(blocks):
            for citation in block.citations:
                yield {"contentBlockDelta": {"delta": {"citation": citation}, "contentBlockIndex": index}}
            pieces = re.findall(r"\S+\s*", block.text)
            for start in range(0, len(pieces), 3):  # a few words a chunk, as a model streams tokens
                text = "".join(pieces[start : start + 3])
                yield {"contentBlockDelta": {"delta": {"text": text}, "contentBlockIndex": index}}
            yield {"contentBlockStop": {"contentBlockIndex": index}}
        yield {"messageStop": {"stopReason": stop_reason}}
        yield {"metadata": {"usage": self._usage(params, blocks), "metrics": {"latencyMs": 120}}}


def check_stream_event(event: Mapping[str, Any]) -> None:
    """One ConverseStream event against the ``ConverseStreamOutput`` union: exactly one member, valid."""
    shape = load_model(SERVICE).shape_for("ConverseStreamOutput")
    if len(event) != 1 or next(iter(event)) not in shape.members:
        raise ModelViolation(f"not one ConverseStream event: {sorted(event)}")
    report = ParamValidator().validate(event, shape)
    problems = [report.generate_report()] if report.has_errors() else []
    problems += service_problems(event, shape, response=True)
    if problems:
        raise ModelViolation("ConverseStream event breaks the bedrock-runtime model: " + "; ".join(problems))
