"""Which engine answers: LABMESH_ANSWERER and, for Bedrock, its model, guardrail and endpoint.

Pinned here: the extractive answerer is the default and reads no Bedrock setting; Bedrock needs a model;
a guardrail's id and version come together, each in the form Bedrock accepts; a wrong value is a clear
error naming the variable; `open_bedrock_answerer` asks the client factory for ``bedrock-runtime`` at the
configured endpoint and region and carries the model, the sources' form and the guardrail to the answerer.
"""

from __future__ import annotations

from typing import Any

import pytest

from labmesh_dagster.connectors.llm.bedrock_converse import DOCUMENTS, open_bedrock_answerer
from labmesh_dagster.settings import AnswerSettings, AwsConnection, SettingsError
from labmesh_dagster_tests.fake_bedrock_runtime import FakeBedrockRuntimeClient

MODEL = "us.anthropic.claude-sonnet-4-20250514-v1:0"


def test_the_extractive_answerer_is_the_default() -> None:
    settings = AnswerSettings.from_env({"LABMESH_BEDROCK_MODEL_ID": MODEL})

    assert settings == AnswerSettings() and not settings.bedrock


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LABMESH_ANSWERER": "llama"}, "LABMESH_ANSWERER='llama'"),
        ({"LABMESH_ANSWERER": "bedrock"}, "needs LABMESH_BEDROCK_MODEL_ID"),
        ({"LABMESH_BEDROCK_GUARDRAIL_ID": "gr4example"}, "go together"),
        ({"LABMESH_BEDROCK_GUARDRAIL_VERSION": "1"}, "go together"),
        (
            {"LABMESH_BEDROCK_GUARDRAIL_ID": "Not A Guardrail", "LABMESH_BEDROCK_GUARDRAIL_VERSION": "1"},
            "LABMESH_BEDROCK_GUARDRAIL_ID",
        ),
        (
            {"LABMESH_BEDROCK_GUARDRAIL_ID": "gr4example", "LABMESH_BEDROCK_GUARDRAIL_VERSION": "latest"},
            "LABMESH_BEDROCK_GUARDRAIL_VERSION",
        ),
        ({"LABMESH_BEDROCK_SOURCES": "pages"}, "LABMESH_BEDROCK_SOURCES"),
    ],
)
def test_a_wrong_bedrock_setting_is_a_clear_error(env: dict[str, str], message: str) -> None:
    base = {"LABMESH_ANSWERER": "bedrock", "LABMESH_BEDROCK_MODEL_ID": MODEL} if "LABMESH_ANSWERER" not in env else {}
    with pytest.raises(SettingsError, match=message):
        AnswerSettings.from_env({**base, **env})


def test_the_bedrock_answerer_is_opened_on_the_configured_endpoint_with_its_model_and_guardrail() -> None:
    settings = AnswerSettings.from_env(
        {
            "LABMESH_ANSWERER": "bedrock",
            "LABMESH_BEDROCK_MODEL_ID": MODEL,
            "LABMESH_BEDROCK_GUARDRAIL_ID": "gr4example",
            "LABMESH_BEDROCK_GUARDRAIL_VERSION": "DRAFT",
            "LABMESH_BEDROCK_SOURCES": "documents",
            "LABMESH_BEDROCK_ENDPOINT_URL": "http://127.0.0.1:5003",
            "AWS_REGION": "eu-west-1",
        }
    )
    asked: list[tuple[str, AwsConnection]] = []
    fake = FakeBedrockRuntimeClient()

    def clients(service: str, connection: AwsConnection) -> Any:
        asked.append((service, connection))
        return fake

    answerer = open_bedrock_answerer(settings, clients)

    assert asked == [("bedrock-runtime", AwsConnection("http://127.0.0.1:5003", "eu-west-1", 8))]
    assert (answerer.model_id, answerer.mode, answerer.guardrail) == (MODEL, DOCUMENTS, ("gr4example", "DRAFT"))
    assert answerer.caller.client is fake
