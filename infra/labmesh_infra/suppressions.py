"""Every finding left in the stack (cdk-nag's AWS Solutions pack, checkov, cfn-lint), acknowledged where it arises.

A finding not acknowledged here fails the synthesis (`app.py`). Acknowledgments
are scoped to the construct the finding is on, so a new resource of the same
kind is checked afresh.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, CfnElement, CfnResource, Stack, Validations
from constructs import IConstruct

KMS_GRANT = (
    "CDK's KMS grant to the lab's own key: GenerateDataKey* and ReEncrypt* are the variants of one "
    "encrypt/decrypt permission, and the statement's resource is that one key"
)
OBJECTS = (
    "Object-level actions on the lab's own buckets: an object ARN needs `bucket/*` (labmesh cannot know "
    "experiment ids in advance), and CDK's grant names the Get/List/Delete/Abort variants as wildcards"
)
ECS_NO_RESOURCE = (
    "EcsRunLauncher's calls that take no resource ARN (ecs:RegisterTaskDefinition, DescribeTaskDefinition, "
    "ListTaskDefinitions; ec2:DescribeNetworkInterfaces), and run tasks and their definitions, whose ARNs "
    "exist only once a run starts: limited to the lab's cluster and the labmesh-run family"
)


def at(stack: Stack, path: str) -> IConstruct:
    node: IConstruct = stack
    for part in path.split("/"):
        node = node.node.find_child(part)
    return node


def acknowledge(scope: IConstruct, rule: str, reason: str, findings: Iterable[str] = ()) -> None:
    """Acknowledge ``rule`` on ``scope``, or, for rules that report each wildcard apart, each of ``findings``."""
    ids = [f"{rule}[{finding}]" for finding in findings] or [rule]
    Validations.of(scope).acknowledge(
        *(Acknowledgment(id=f"AwsSolutions::AwsSolutions-{id_}", reason=reason) for id_ in ids)
    )


def logical_id(stack: Stack, path: str) -> str:
    resource = at(stack, path).node.default_child
    assert isinstance(resource, CfnElement)
    return str(stack.resolve(stack.get_logical_id(resource)))


def arn_of(stack: Stack, path: str) -> str:
    """How cdk-nag writes a resource's ARN in a finding: ``<LogicalId.Arn>``."""
    return f"<{logical_id(stack, path)}.Arn>"


def lab_data_findings(stack: Stack) -> list[str]:
    """The wildcards of the grants on the lab's buckets and key, as cdk-nag names them."""
    buckets = [f"Storage/{zone}Bucket" for zone in ("Landing", "Raw", "Processed", "Final", "ComputeLogs")]
    return [
        "Action::kms:GenerateDataKey*",
        "Action::kms:ReEncrypt*",
        "Action::s3:GetBucket*",
        "Action::s3:GetObject*",
        "Action::s3:List*",
        "Action::s3:DeleteObject*",
        "Action::s3:Abort*",
        *(f"Resource::{arn_of(stack, bucket)}/*" for bucket in buckets),
    ]


def skip_checkov(resource: IConstruct, check: str, reason: str) -> None:
    """Checkov reads its suppressions from the resource's template metadata."""
    cfn = resource if isinstance(resource, CfnResource) else resource.node.default_child
    assert isinstance(cfn, CfnResource)
    metadata = cfn.get_metadata("checkov") or {"skip": []}
    metadata["skip"].append({"id": check, "comment": reason})
    cfn.add_metadata("checkov", metadata)


def skip_cfn_lint(resource: IConstruct, rule: str, reason: str) -> None:
    """cfn-lint reads the rules to skip from the resource's template metadata; the reason stays here."""
    cfn = resource if isinstance(resource, CfnResource) else resource.node.default_child
    assert isinstance(cfn, CfnResource), reason
    metadata = cfn.get_metadata("cfn-lint") or {"config": {"ignore_checks": []}}
    metadata["config"]["ignore_checks"].append(rule)
    cfn.add_metadata("cfn-lint", metadata)


def suppress(stack: Stack) -> None:
    redundant_depends_on = "CDK writes a DependsOn beside the GetAtt that already orders the two resources"
    for zone in ("Landing", "Final"):
        skip_cfn_lint(at(stack, f"Storage/{zone}Bucket/Notifications/Resource"), "W3005", redundant_depends_on)
    skip_checkov(
        at(stack, "Storage/AccessLogs"),
        "CKV_AWS_18",
        "The bucket that receives the other buckets' access logs; logging it to itself would loop.",
    )
    acknowledge(
        at(stack, "Database/Credentials"),
        "SMG4",
        "The master password is composed into LABMESH_DATABASE_URL at deployment; rotating it alone would "
        "break that URL. Rotate both together (infra/README.md, 'Rotating the database password').",
    )
    for url in ("Database/Url", "Database/DagsterUrl"):
        acknowledge(
            at(stack, url),
            "SMG4",
            "Derived from the database credentials at deployment; it changes when they are rotated and redeployed.",
        )
    acknowledge(
        at(stack, "OidcClientSecret"),
        "SMG4",
        "Issued by the lab's OpenID provider, which rotates it; the operator puts the new value here.",
    )
    acknowledge(
        at(stack, "PortalSecret"),
        "SMG4",
        "Signs the portal's session cookies; rotating it signs everyone out, so it is rotated by hand.",
    )
    for child in stack.node.children:
        if child.node.id.startswith("LabLabmesh"):
            acknowledge(
                child,
                "SMG4",
                "A credential the lab's ELN or LIMS issues (an API key), rotated there; the operator puts "
                "the new value here.",
            )
    acknowledge(
        at(stack, "Database/Instance"),
        "RDS11",
        "The database is in isolated subnets and takes connections only from the tasks' security group; "
        "a non-default port would add no protection.",
    )
    acknowledge(
        at(stack, "Database/Instance/MonitoringRole"),
        "IAM4",
        findings=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"],
        reason="RDS enhanced monitoring's role, as RDS documents it: it only writes the instance's OS metrics.",
    )
    for service in ("CodeLocation", "Webserver", "Daemon", "Portal"):
        acknowledge(
            at(stack, f"Services/{service}Task"),
            "ECS2",
            "The environment holds settings only (bucket names, queue URLs, DataZone ids); every secret comes "
            "from Secrets Manager through the task definition's secrets.",
        )
    acknowledge(
        at(stack, "Services/LoadBalancerSecurityGroup"),
        "EC23",
        "The portal is for people wherever they are: HTTPS on 443 only, and every request is signed in "
        "with the lab's OpenID provider by the load balancer before it reaches a task.",
    )
    acknowledge(
        at(stack, "Catalog/DomainExecutionRole"),
        "IAM4",
        findings=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonDataZoneDomainExecutionRolePolicy"],
        reason="AmazonDataZoneDomainExecutionRolePolicy is the policy AWS documents for a DataZone domain's "
        "execution role and keeps up to date with DataZone's features.",
    )
    notifications = next(
        child for child in stack.node.children if child.node.id.startswith("BucketNotificationsHandler")
    )
    for check, why in (
        ("CKV_AWS_116", "it runs only during deployment, called by CloudFormation, which reports its failures"),
        ("CKV_AWS_117", "it calls only S3's API to configure notifications and needs no VPC"),
        ("CKV_AWS_115", "it runs once per deployment"),
    ):
        skip_checkov(notifications.node.find_child("Resource"), check, f"CDK's bucket notifications function: {why}.")
    skip_cfn_lint(notifications.node.find_child("Resource"), "W3005", redundant_depends_on)
    acknowledge(
        notifications,
        "IAM4",
        findings=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
        reason="CDK's own function that configures the buckets' event notifications at deployment; "
        "its managed policy lets it write its logs and nothing else.",
    )
    lab_data = lab_data_findings(stack)
    for role in (
        "Access/RunTaskRole",
        "Services/CodeLocationTaskRole",
        "Services/PortalTaskRole",
    ):
        acknowledge(at(stack, role), "IAM5", f"{OBJECTS}. {KMS_GRANT}.", lab_data)
    launcher = [
        "Resource::*",
        f"Resource::{arn_of(stack, 'Services/Logs')}:*",
        f"Resource::arn:<AWS::Partition>:ecs:{stack.region}:<AWS::AccountId>:task-definition/labmesh-run*",
        f"Resource::arn:<AWS::Partition>:ecs:{stack.region}:<AWS::AccountId>:task/"
        f"<{logical_id(stack, 'Services/Cluster')}>/*",
    ]
    for role in ("Services/DaemonTaskRole", "Services/WebserverTaskRole"):
        acknowledge(
            at(stack, role),
            "IAM5",
            f"{OBJECTS}. {KMS_GRANT}. {ECS_NO_RESOURCE}; a run's log streams are named per task.",
            [*lab_data, *launcher],
        )
    acknowledge(
        at(stack, "Access/ExperimentPrefixTemplate"),
        "IAM5",
        "The template's resources are `bucket/${aws:PrincipalTag/labmesh-experiment}/*`: one experiment's "
        f"folder, named by the principal's tag. {KMS_GRANT}.",
        [
            "Action::kms:GenerateDataKey*",
            "Action::kms:ReEncrypt*",
            *(
                f"Resource::{arn_of(stack, f'Storage/{zone}Bucket')}/<aws:PrincipalTag/labmesh-experiment>/*"
                for zone in ("Landing", "Raw", "Processed", "Final")
            ),
        ],
    )
    acknowledge(
        at(stack, "Services/ExecutionRole"),
        "IAM5",
        "ecr:GetAuthorizationToken takes no resource ARN, and the image may live in any registry the "
        "operator names (ImageUri).",
        ["Resource::*"],
    )
    for role in ("Catalog/DomainExecutionRole", "ContentIndex/KnowledgeBaseRole", "ContentIndex/KendraRole"):
        if stack.node.find_child(role.split("/")[0]).node.try_find_child(role.split("/")[1]) is not None:
            acknowledge(
                at(stack, role),
                "IAM5",
                f"{KMS_GRANT}. Kendra's role writes its metrics (namespace AWS/Kendra only) and its own log groups.",
                [
                    "Action::kms:GenerateDataKey*",
                    "Action::kms:ReEncrypt*",
                    "Resource::*",
                    f"Resource::arn:<AWS::Partition>:logs:{stack.region}:<AWS::AccountId>:log-group:/aws/kendra/*",
                ],
            )
