"""What the two local content indexes (SQLite and PostgreSQL) do alike before they touch their database.

They are twins (`stored_passages`): the same documents must be accepted or
refused for the same reasons, cut into the same passages, and embedded by one
model made on first need (loading it takes a second or more, and an index
only searched by words never needs it). So the embedder and the checks a
`replace` makes before its write transaction live here, once; each index
writes the plan in its own database's way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from labmesh_dagster.connectors.search.base import (
    AttributeType,
    ContentDocument,
    ContentIndex,
    check_unique_ids,
    document_problem,
)
from labmesh_dagster.connectors.search.stored_passages import (
    MAX_PASSAGES,
    EmbedderFactory,
    StoredPassage,
    stored_passages,
)
from labmesh_dagster.semantic.embedding import MODEL_ID
from labmesh_dagster.semantic.vectors import TextEmbedder


@dataclass
class ReplacePlan:
    """What a `replace` writes: the documents that passed, cut into passages; what failed and why; what goes."""

    valid: list[ContentDocument]
    failed: dict[str, str]
    removed: tuple[str, ...]
    passages: dict[str, list[StoredPassage]]


class PassageIndex(ContentIndex):
    """A content index that keeps passages and their vectors itself (not a service that embeds for it)."""

    def __init__(
        self, *, schema: Mapping[str, AttributeType], embedder: EmbedderFactory | None, inline_vectors: int
    ) -> None:
        """``embedder`` None keeps no vectors: passages are then ranked by their words alone, in every mode.
        ``inline_vectors``: the most new passages `replace` embeds itself (`INLINE_VECTORS`)."""
        self.schema = dict(schema)
        self.inline_vectors = inline_vectors
        self._embedder_factory = embedder
        self._embedder: TextEmbedder | None = None

    def _get_embedder(self) -> TextEmbedder | None:
        if self._embedder is None and self._embedder_factory is not None:
            self._embedder = self._embedder_factory()
        return self._embedder

    def _required_embedder(self) -> TextEmbedder:
        embedder = self._get_embedder()
        assert embedder is not None
        return embedder

    @property
    def model_id(self) -> str:
        """The model whose vectors this index keeps (and hashes passages for)."""
        embedder = self._get_embedder()
        return embedder.model_id if embedder is not None else MODEL_ID

    def _plan_replace(
        self,
        documents: Sequence[ContentDocument],
        removed_ids: Sequence[str],
        *,
        storage_problem: Callable[[ContentDocument], str | None] = lambda document: None,
        storable: Callable[[ContentDocument], ContentDocument] = lambda document: document,
    ) -> ReplacePlan:
        """Check the documents against the port's rules (and the database's, ``storage_problem``), keep those that
        pass as the database can hold them (``storable``), and cut them into passages; an id both put and removed
        is put. Two documents with one id refuse the whole call."""
        check_unique_ids(documents)
        failed: dict[str, str] = {}
        valid: list[ContentDocument] = []
        for document in documents:
            problem = document_problem(document, self.schema) or storage_problem(document)
            if problem:
                failed[document.id] = problem
            else:
                valid.append(storable(document))
        put = {document.id for document in documents}
        removed = tuple(dict.fromkeys(document_id for document_id in removed_ids if document_id not in put))
        model = self.model_id
        passages = {document.id: stored_passages(document, model) for document in valid}
        for document in [document for document in valid if len(passages[document.id]) > MAX_PASSAGES]:
            failed[document.id] = f"document has more than {MAX_PASSAGES} passages"
            valid.remove(document)
            del passages[document.id]
        return ReplacePlan(valid=valid, failed=failed, removed=removed, passages=passages)
