"""What the synthesised template must hold, whatever the constructs look like inside.

- The DataZone form types carry exactly the Smithy models and descriptions
  `labmesh datazone bootstrap` writes, read from the same module, so bootstrap
  finds them current after a deployment.
- Each zone bucket is versioned, encrypted with the lab's KMS key, refuses
  plain HTTP and blocks public access; the landing and final buckets notify
  queues that have dead-letter queues.
- Benchling's events and HealthOmics run status reach queues through EventBridge.
- The portal and Dagster's UI are reached only through the load balancer's
  OIDC sign-in.
- The content index is a Bedrock knowledge base, or a Kendra index with the
  context flag, and the services are told which.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
import pytest
from app import FEATURE_FLAGS, build
from aws_cdk.assertions import Match, Template

from labmesh_dagster.connectors.catalog.datazone_forms import FORM_TYPES, form_type_description

ZONE_BUCKETS = ("labmesh-landing", "labmesh-raw", "labmesh-processed", "labmesh-final")


def synthesise(context: dict[str, Any] | None = None) -> Template:
    app = cdk.App(context={**FEATURE_FLAGS, **(context or {})})
    return Template.from_stack(build(app))


@pytest.fixture(scope="module")
def template() -> Template:
    return synthesise()


def resources(template: Template, kind: str) -> Mapping[str, Any]:
    return template.find_resources(kind)


def test_form_types_are_bootstraps_own(template: Template) -> None:
    forms = {r["Properties"]["Name"]: r["Properties"] for r in resources(template, "AWS::DataZone::FormType").values()}
    assert set(forms) == set(FORM_TYPES)
    for name, smithy in FORM_TYPES.items():
        assert forms[name]["Model"] == {"Smithy": smithy}
        assert forms[name]["Description"] == form_type_description(name)
        assert forms[name]["Status"] == "ENABLED"


def test_zone_buckets_are_versioned_kms_encrypted_and_private(template: Template) -> None:
    buckets = {
        r["Properties"].get("BucketName"): r["Properties"] for r in resources(template, "AWS::S3::Bucket").values()
    }
    for name in ZONE_BUCKETS:
        bucket = buckets[name]
        assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
        (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        assert bucket["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }


def test_every_bucket_refuses_plain_http(template: Template) -> None:
    policies = resources(template, "AWS::S3::BucketPolicy").values()
    tls_only = [
        p
        for p in policies
        if any(
            s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        )
    ]
    assert len(tls_only) == len(resources(template, "AWS::S3::Bucket"))


def test_landing_and_final_notify_queues_with_dead_letters(template: Template) -> None:
    notifications = resources(template, "Custom::S3BucketNotifications")
    assert len(notifications) == 2
    queues = resources(template, "AWS::SQS::Queue")
    for notification in notifications.values():
        (target,) = notification["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
        queue_id = target["QueueArn"]["Fn::GetAtt"][0]
        assert "RedrivePolicy" in queues[queue_id]["Properties"]
        assert queues[queue_id]["Properties"]["KmsMasterKeyId"]


def test_benchling_and_healthomics_events_reach_queues(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": [{"prefix": "aws.partner/benchling.com"}],
                "detail-type": [{"prefix": "v2.entry."}],
            },
            "Targets": [Match.object_like({"DeadLetterConfig": Match.any_value()})],
        },
    )
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {"source": ["aws.omics"], "detail-type": ["Run Status Change"]},
            "Targets": [Match.object_like({"DeadLetterConfig": Match.any_value()})],
        },
    )


def test_people_reach_the_portal_and_dagster_only_signed_in(template: Template) -> None:
    rules = resources(template, "AWS::ElasticLoadBalancingV2::ListenerRule").values()
    assert len(rules) == 2
    for rule in rules:
        first, then = sorted(rule["Properties"]["Actions"], key=lambda action: action["Order"])
        assert first["Type"] == "authenticate-oidc"
        assert then["Type"] == "forward"
    (listener,) = resources(template, "AWS::ElasticLoadBalancingV2::Listener").values()
    assert listener["Properties"]["Protocol"] == "HTTPS"


def test_runs_are_ecs_tasks_with_their_own_role(template: Template) -> None:
    task_definitions = resources(template, "AWS::ECS::TaskDefinition").values()
    (code,) = [t for t in task_definitions if t["Properties"]["ContainerDefinitions"][0]["Name"] == "codelocation"]
    environment = {e["Name"]: e["Value"] for e in code["Properties"]["ContainerDefinitions"][0]["Environment"]}
    context = environment["DAGSTER_CONTAINER_CONTEXT"]
    assert "task_role_arn" in json.dumps(context)
    assert code["Properties"]["ContainerDefinitions"][0]["HealthCheck"]["Command"][1:4] == [
        "dagster",
        "api",
        "grpc-health-check",
    ]
    for task in task_definitions:
        secrets = {secret["Name"] for secret in task["Properties"]["ContainerDefinitions"][0]["Secrets"]}
        assert {"LABMESH_DATABASE_URL", "LABMESH_DAGSTER_DATABASE_URL"} <= secrets
    (daemon,) = [t for t in task_definitions if t["Properties"]["ContainerDefinitions"][0]["Name"] == "run"]
    assert daemon["Properties"]["ContainerDefinitions"][0]["Command"][:2] == ["dagster-daemon", "run"]


def test_the_content_index_is_a_bedrock_knowledge_base_by_default(template: Template) -> None:
    template.resource_count_is("AWS::Bedrock::KnowledgeBase", 1)
    template.has_resource_properties(
        "AWS::Bedrock::DataSource",
        {
            "DataSourceConfiguration": {"Type": "CUSTOM"},
            "VectorIngestionConfiguration": {"ChunkingConfiguration": {"ChunkingStrategy": "NONE"}},
        },
    )
    template.resource_count_is("AWS::Kendra::Index", 0)


@pytest.mark.slow
def test_a_labs_choices_come_from_context() -> None:
    """Kendra instead of Bedrock, and the lab's own settings and secrets, reach every service."""
    lab = synthesise(
        {
            "labmesh:contentIndex": "kendra",
            "labmesh:settings": {"LABMESH_ELN": "benchling", "LABMESH_BENCHLING_URL": "https://lab.benchling.com"},
            "labmesh:secrets": ["LABMESH_BENCHLING_API_KEY"],
        }
    )
    lab.resource_count_is("AWS::Kendra::Index", 1)
    lab.resource_count_is("AWS::Bedrock::KnowledgeBase", 0)
    containers = [
        c
        for t in lab.find_resources("AWS::ECS::TaskDefinition").values()
        for c in t["Properties"]["ContainerDefinitions"]
    ]
    assert len(containers) == 4
    for container in containers:
        environment = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert "LABMESH_KENDRA_INDEX_ID" in environment
        assert "LABMESH_BEDROCK_KNOWLEDGE_BASE_ID" not in environment
        assert environment["LABMESH_ELN"] == "benchling"
        assert "LABMESH_BENCHLING_API_KEY" in {secret["Name"] for secret in container["Secrets"]}
