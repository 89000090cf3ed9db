"""Least-privilege IAM: what a run may do, and the per-experiment prefix policy template.

A run's task role may read and write the zone buckets (objects only, no
bucket configuration), use the lab's key for them, write DataZone assets and
lineage in the lab's domain, index into the content index, and start and
read HealthOmics work. Nothing else: no IAM, no deletion of buckets or keys.

The per-experiment template gives a person or tool (an instrument PC's role,
a collaborator's) one experiment's folders and nothing else, by attribute:
the principal's ``labmesh-experiment`` tag names the experiment, so one
managed policy serves every experiment and no policy is written per
experiment. `experiment_prefix_statements` builds the same statements for a
fixed experiment id, for labs that prefer one policy each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

EXPERIMENT_TAG = "labmesh-experiment"
"""The principal tag that names the one experiment a principal may reach."""

OBJECT_READ = ("s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectAttributes", "s3:GetObjectTagging")
OBJECT_WRITE = ("s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload")


def experiment_prefix_statements(
    buckets: Mapping[str, s3.IBucket], experiment: str, *, writable: Sequence[str] = ("landing", "final")
) -> list[iam.PolicyStatement]:
    """Statements granting one experiment's folder in every zone: read everywhere, write in ``writable``.

    ``experiment`` is an experiment id, or ``${aws:PrincipalTag/labmesh-experiment}``
    for the attribute-based template. Listing is limited to the prefix by the
    ``s3:prefix`` condition, since ``ListBucket`` applies to the bucket, not to keys.
    """
    statements = [
        iam.PolicyStatement(
            sid="ListTheExperimentsFolder",
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn for bucket in buckets.values()],
            conditions={"StringLike": {"s3:prefix": [experiment, f"{experiment}/*"]}},
        ),
        iam.PolicyStatement(
            sid="ReadTheExperimentsObjects",
            actions=list(OBJECT_READ),
            resources=[bucket.arn_for_objects(f"{experiment}/*") for bucket in buckets.values()],
        ),
    ]
    if writable:
        statements.append(
            iam.PolicyStatement(
                sid="WriteTheExperimentsNewData",
                actions=list(OBJECT_WRITE),
                resources=[buckets[zone].arn_for_objects(f"{experiment}/*") for zone in writable],
            )
        )
    return statements


class Access(Construct):
    """The run task role and the per-experiment managed policy."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        buckets: Mapping[str, s3.IBucket],
        key: kms.IKey,
        datazone_domain_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.run_role = iam.Role(
            self,
            "RunTaskRole",
            description="labmesh: one Dagster run's ECS task (EcsRunLauncher)",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
        )
        self.grant_zone_objects(self.run_role, buckets, key)
        self.run_role.add_to_policy(
            iam.PolicyStatement(
                sid="PublishToTheLabsDomain",
                actions=[
                    "datazone:CreateAsset",
                    "datazone:CreateAssetRevision",
                    "datazone:GetAsset",
                    "datazone:DeleteAsset",
                    "datazone:CreateListingChangeSet",
                    "datazone:GetListing",
                    "datazone:SearchListings",
                    "datazone:PostLineageEvent",
                    "datazone:GetLineageEvent",
                    "datazone:GetFormType",
                    "datazone:GetAssetType",
                ],
                resources=[datazone_domain_arn],
            )
        )
        # `labmesh datazone bootstrap` runs once as a one-off task with this role (infra/README.md, step 6):
        # the form types exist already (the stack made them); it adds the asset type and the glossary.
        self.run_role.add_to_policy(
            iam.PolicyStatement(
                sid="BootstrapTheLabsTypes",
                actions=[
                    "datazone:CreateFormType",
                    "datazone:CreateAssetType",
                    "datazone:Search",
                    "datazone:CreateGlossary",
                    "datazone:CreateGlossaryTerm",
                ],
                resources=[datazone_domain_arn],
            )
        )
        template = iam.ManagedPolicy(
            self,
            "ExperimentPrefixTemplate",
            description=(
                "labmesh: one experiment's folders in every zone, the experiment named by the principal's "
                f"{EXPERIMENT_TAG} tag"
            ),
            statements=experiment_prefix_statements(buckets, f"${{aws:PrincipalTag/{EXPERIMENT_TAG}}}"),
        )
        key.grant_encrypt_decrypt(template)
        self.experiment_template = template

    @staticmethod
    def grant_zone_objects(grantee: iam.IGrantable, buckets: Mapping[str, s3.IBucket], key: kms.IKey) -> None:
        """Objects in the zone buckets, read, write and delete (landing is emptied after promotion)."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListTheZones",
                actions=["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation"],
                resources=[bucket.bucket_arn for bucket in buckets.values()],
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ZoneObjects",
                actions=[*OBJECT_READ, *OBJECT_WRITE, "s3:DeleteObject"],
                resources=[bucket.arn_for_objects("*") for bucket in buckets.values()],
            )
        )
        key.grant_encrypt_decrypt(grantee)


def domain_arn(scope: Construct, domain_id: str) -> str:
    """The ARN IAM knows a DataZone domain by."""
    return Stack.of(scope).format_arn(service="datazone", resource="domain", resource_name=domain_id)
