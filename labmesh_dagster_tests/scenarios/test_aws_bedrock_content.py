"""The skeleton's flow on the aws profile with a Bedrock knowledge base as the content index.

S3 is moto's server over HTTP; the knowledge base is the fake held to
botocore's ``bedrock-agent`` and ``bedrock-agent-runtime`` models. Contract:
every passage of every searchable file the flow publishes is one INDEXED
knowledge base document carrying its file's id and place, and each dataset's
``content_indexed`` check passed counting exactly its searchable files; a
member of the experiment's group retrieves its passages, someone of another
group none of them, an admin all of them (a facet at a time: one Retrieve
returns at most 100 results, and the flow's passages are more than that); and
rematerializing a dataset leaves the same documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from labmesh_dagster.connectors.search.base import FORMAT, ZONE, ContentDocument, ContentFilter
from labmesh_dagster.connectors.search.bedrock import MAX_RESULTS
from labmesh_dagster.connectors.search.indexed_passages import document_passages
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.steps.content import dataset_documents
from labmesh_dagster.steps.manifests import read_manifest
from labmesh_dagster_tests.aws_fakes import ServiceClients
from labmesh_dagster_tests.conftest import Lab, aws_settings, builtin_pipelines
from labmesh_dagster_tests.fake_bedrock_agent import FakeKnowledgeBase, bedrock_clients
from labmesh_dagster_tests.scenarios.test_end_to_end import run_flow

pytestmark = pytest.mark.slow


@pytest.fixture
def bedrock_lab(tmp_path: Path, instance: dg.DagsterInstance, request: Any) -> Iterator[tuple[Lab, FakeKnowledgeBase]]:
    knowledge_base = FakeKnowledgeBase(reads_to_index=1)
    agent, runtime = bedrock_clients(knowledge_base)
    settings = aws_settings(
        tmp_path / "home",
        request.getfixturevalue("moto_endpoint"),
        request.getfixturevalue("s3_buckets"),
        LABMESH_BEDROCK_KNOWLEDGE_BASE_ID=knowledge_base.knowledge_base_id,
        LABMESH_BEDROCK_DATA_SOURCE_ID=knowledge_base.data_source_id,
        LABMESH_BEDROCK_KB_MAX_CALLS_PER_SECOND="500",
        # The real tools' outputs: more passages than one Retrieve returns (100).
        **builtin_pipelines(),
    )
    clients = ServiceClients({"bedrock-agent": agent, "bedrock-agent-runtime": runtime})
    yield Lab(settings, instance, clients), knowledge_base


DATASETS = {"raw_dataset": Zone.RAW, "processed_dataset": Zone.PROCESSED, "final_dataset": Zone.FINAL}


def searchable_documents(lab: Lab, zone: Zone) -> list[ContentDocument]:
    record = lab.catalog.get_experiment("EXP-42")
    assert record is not None
    manifest = read_manifest(lab.store, zone, "EXP-42")
    assert manifest is not None
    return dataset_documents(manifest, record, lambda key: lab.store.uri(ObjectKey.parse(key)))


def expected_passage_ids(lab: Lab) -> set[str]:
    return {
        passage.id
        for zone in DATASETS.values()
        for document in searchable_documents(lab, zone)
        for passage in document_passages(document)
    }


def content_checks(lab: Lab) -> dict[str, dg.AssetCheckEvaluation]:
    """The latest ``content_indexed`` evaluation of each dataset asset."""
    latest: dict[str, tuple[int, dg.AssetCheckEvaluation]] = {}
    for run in lab.instance.get_run_records():
        events = lab.instance.get_records_for_run(
            run.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        for record in events:
            evaluation = record.event_log_entry.asset_check_evaluation
            if evaluation is None or evaluation.check_name != "content_indexed":
                continue
            asset = evaluation.asset_key.to_user_string()
            if asset not in latest or latest[asset][0] < record.storage_id:
                latest[asset] = (record.storage_id, evaluation)
    return {asset: evaluation for asset, (_, evaluation) in latest.items()}


def test_every_passage_is_indexed_and_each_group_retrieves_only_its_own(
    bedrock_lab: tuple[Lab, FakeKnowledgeBase],
) -> None:
    lab, knowledge_base = bedrock_lab
    run_flow(lab)

    assert set(knowledge_base.documents) == expected_passage_ids(lab)
    assert all(status.outcome == "INDEXED" for status in knowledge_base.statuses.values())
    checks = content_checks(lab)
    assert set(checks) == set(DATASETS)
    for asset, zone in DATASETS.items():
        assert checks[asset].passed, (asset, checks[asset].metadata)
        assert checks[asset].metadata["indexed"].value == len(searchable_documents(lab, zone)), asset
    index = lab.ports.content_index()
    hepatology = index.retrieve("fibrotic liver samples", viewer=Viewer("bob", frozenset({"Hepatology"})))
    others = index.retrieve("fibrotic liver samples", viewer=Viewer("eve", frozenset({"Nephrology"})))
    assert hepatology and {hit.attributes["experiment_id"] for hit in hepatology} == {"EXP-42"}
    assert others == []
    # One Retrieve returns at most MAX_RESULTS passages, fewer than the flow's: an admin asks a facet at a time.
    assert len(knowledge_base.documents) > MAX_RESULTS
    facets = {(document.metadata[ZONE], document.metadata[FORMAT]) for document in knowledge_base.documents.values()}
    everything: set[str] = set()
    for zone, fmt in sorted(facets):
        hits = index.retrieve(
            "fibrotic liver samples",
            filters=ContentFilter(zone=zone, format=fmt),
            viewer=Viewer("root", admin=True),
            limit=MAX_RESULTS,
        )
        assert len(hits) < MAX_RESULTS, (zone, fmt)  # not cut by the limit: the facet's every passage
        everything |= {hit.passage.id for hit in hits}
    assert everything == set(knowledge_base.documents)


def test_rematerializing_a_dataset_leaves_the_same_documents(bedrock_lab: tuple[Lab, FakeKnowledgeBase]) -> None:
    lab, knowledge_base = bedrock_lab
    run_flow(lab)
    before = set(knowledge_base.documents)

    result = lab.materialize("final_dataset", partition="EXP-42")

    assert result.success
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "content_indexed"]
    assert check.passed
    assert set(knowledge_base.documents) == before
