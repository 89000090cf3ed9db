"""The aws profile's chat end to end: a Bedrock Knowledge Base retrieves under the asker's access, Converse answers.

Two people of different groups ask the same question through `ask`: the knowledge base (the validating
bedrock-agent fakes) returns each only their own group's passages, and Bedrock's answerer (the validating
bedrock-runtime fake) answers and cites from those alone. Pinned here: each answer's text and citations
come only from the asker's own experiment, although the other group's passage answers the question as
well; and what reached Converse held nothing of the other group's experiment.
"""

from __future__ import annotations

from pathlib import Path

from labmesh_dagster.ask.asking import ask_answer
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.llm.bedrock_converse import BedrockAnswerer
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster_tests.connectors.test_bedrock_index import KIDNEY, LIVER, Clock, make_index
from labmesh_dagster_tests.fake_bedrock_agent import bedrock_clients
from labmesh_dagster_tests.fake_bedrock_runtime import CLAUDE, FakeBedrockRuntimeClient

LIVER_LAB = Viewer("bob", frozenset({"liver-lab"}))
KIDNEY_LAB = Viewer("kim", frozenset({"kidney-lab"}))


def test_two_groups_asking_alike_on_bedrock_are_answered_from_their_own_experiments(tmp_path: Path) -> None:
    clock = Clock()
    index = make_index(*bedrock_clients(clock=clock), clock)
    index.prepare()
    assert index.replace([LIVER, KIDNEY]).ok
    catalog = SqliteCatalog(tmp_path / "catalog.sqlite")
    catalog.upsert_experiment(ExperimentRecord(id="LIV-01", title="Liver run", owner="ada", group="liver-lab"), {})
    catalog.upsert_experiment(ExperimentRecord(id="KID-02", title="Kidney run", owner="ada", group="kidney-lab"), {})
    bedrock = FakeBedrockRuntimeClient()
    answerer = BedrockAnswerer(bedrock, model_id=CLAUDE)

    answers = {
        viewer.name: ask_answer(
            "What was the Q30 of the run?",
            viewer=viewer,
            content_index=index,
            catalog=catalog,
            answerer=answerer,
        )
        for viewer in (LIVER_LAB, KIDNEY_LAB)
    }

    liver, kidney = answers["bob"], answers["kim"]
    assert liver.answered and kidney.answered
    assert {citation.experiment_id for citation in liver.citations} == {"LIV-01"}
    assert {citation.experiment_id for citation in kidney.citations} == {"KID-02"}
    assert "91 percent" in liver.text and "88" not in liver.text
    assert "88 percent" in kidney.text and "91" not in kidney.text
    sent = [str(request["messages"]) for name, request in bedrock.calls if name == "ConverseStream"]
    assert len(sent) == 2
    assert "KID-02" not in sent[0] and "kidney" not in sent[0]
    assert "LIV-01" not in sent[1] and "liver" not in sent[1]
