"""Which answerer a lab uses: the offline extractive one, or Bedrock's Converse when ``LABMESH_ANSWERER=bedrock``."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from labmesh_dagster.ask.base import Answerer
from labmesh_dagster.ask.extractive import ExtractiveAnswerer

if TYPE_CHECKING:
    from labmesh_dagster.ports import ClientFactory
    from labmesh_dagster.settings import AnswerSettings


@functools.cache
def extractive_answerer() -> ExtractiveAnswerer:
    """The process's extractive answerer: one, so its cache of recent passages' embeddings serves every asker."""
    return ExtractiveAnswerer()


def open_answerer(settings: AnswerSettings, clients: ClientFactory | None = None) -> Answerer:
    """The answerer the settings name; boto3 is imported only for Bedrock."""
    if settings.bedrock:
        from labmesh_dagster.connectors.llm.bedrock_converse import open_bedrock_answerer

        return open_bedrock_answerer(settings, clients)
    return extractive_answerer()
