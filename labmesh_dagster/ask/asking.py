"""Asking one question: read the catalog and retrieve passages under the asker's access, then let an answerer answer.

This is the only place evidence is gathered, so access is applied once, here,
before any engine sees anything: the catalog's search and counts take the
viewer, an experiment named by id is read only if the viewer may see it, and
the content index filters its passages by the viewer inside its own query. The
CLI, ``POST /api/ask``, the portal's chat and the MCP server all call `ask`.

A question the catalog's typed metadata answers (`catalog_questions`) is
answered from it; any other goes to the answerer with the retrieved passages
and the catalog's record of the experiments the question names.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

from labmesh_dagster.ask.base import Answerer, AnswerEvent, CatalogFact, Evidence, collect, refusal
from labmesh_dagster.ask.catalog_questions import Named, answer_from_catalog, recognise
from labmesh_dagster.connectors.catalog.base import Catalog
from labmesh_dagster.connectors.search.base import NO_FILTER, ContentFilter, ContentIndex, ContentIndexUnavailable
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.answers import Answer
from labmesh_dagster.core.errors import LabmeshError
from labmesh_dagster.core.passages import SearchMode
from labmesh_dagster.core.text import clean_text

PASSAGES = 8
"""Passages retrieved for an answer: enough that the answer is among them, few enough to embed in well under 1 s."""
MAX_QUESTION = 1000
"""Characters of a question; a longer one is refused before any search (it is a document, not a question)."""


class BadQuestion(LabmeshError, ValueError):
    """A question that is empty or too long: said to the asker, nothing searched."""


def checked_question(question: str) -> str:
    text = " ".join(clean_text(question).split())
    if not text:
        raise BadQuestion("ask a question: it is empty")
    if len(text) > MAX_QUESTION:
        raise BadQuestion(f"a question is at most {MAX_QUESTION} characters, this one has {len(text)}")
    return text


def ask(
    question: str,
    *,
    viewer: Viewer,
    content_index: ContentIndex | None,
    catalog: Catalog,
    answerer: Answerer,
    store: ObjectStore | None = None,
    filters: ContentFilter = NO_FILTER,
    limit: int = PASSAGES,
    today: date | None = None,
) -> Iterator[AnswerEvent]:
    """Stream the answer to ``question`` for ``viewer``: parts, then citations, then one `AnswerEnd`.

    ``store`` lets the catalog answer QC measures (Q30) from the QC documents;
    ``filters`` narrows the passages (one experiment, say). Raises `BadQuestion`
    before anything is read for an empty or overlong question.
    """
    text = checked_question(question)
    named = recognise(text, viewer=viewer, catalog=catalog, today=today or datetime.now(UTC).date())
    from_catalog = answer_from_catalog(text, viewer=viewer, catalog=catalog, store=store, named=named)
    if from_catalog is not None:
        yield from from_catalog.events()
        return
    if content_index is None:
        yield from refusal(answerer.engine, "no content index is configured: only the catalog was asked")
        return
    try:
        hits = content_index.retrieve(text, filters=filters, viewer=viewer, limit=limit, mode=SearchMode.HYBRID)
    except ContentIndexUnavailable as error:
        yield from refusal(answerer.engine, f"the content index could not be searched just now: {error}")
        return
    evidence = Evidence(text, viewer, tuple(hits), _experiment_facts(named))
    yield from answerer.answer(evidence)


def ask_answer(question: str, **kwargs: object) -> Answer:
    """`ask`, gathered into one `Answer` (for the CLI, the MCP server and tests)."""
    return collect(checked_question(question), ask(question, **kwargs))  # type: ignore[arg-type]


def _experiment_facts(named: Named) -> tuple[CatalogFact, ...]:
    """The catalog's record of each experiment the question names (and the asker may see), for the answerer."""
    facts = []
    for record in named.experiments:
        details = [
            f"{name} {value}"
            for name, value in (
                ("platform", record.platform),
                ("group", record.group),
                ("owner", record.owner),
                ("protocol", record.protocol),
                ("created", record.created),
                ("samples", ", ".join(record.sample_ids)),
            )
            if value
        ]
        text = f"{record.id} ({record.title})" + (f": {'; '.join(details)}." if details else ".")
        facts.append(CatalogFact(text, record.id, record.title))
    return tuple(facts)
