"""The lab's Amazon DataZone domain, its labmesh project and labmesh's two metadata form types.

The form types' Smithy models and descriptions are imported from
`labmesh_dagster.connectors.catalog.datazone_forms`, the module `labmesh
datazone bootstrap` creates them from: the stack and the command cannot
disagree. Bootstrap compares a form type's description (which names the
digest of its model), so after this stack is deployed it finds both form
types current and only adds the asset type and glossary, which CloudFormation
has no resource for.

The domain is a DataZone (V1) domain: labmesh's calls (assets, asset types,
form types, listings, glossaries, lineage events) are all available in V1 and
V2 (SageMaker Unified Studio) domains alike, but V2 projects are made from
project profiles with their own IAM roles, which a lab sets up in the Unified
Studio console. Labs on V2 pass their domain and project ids to labmesh and
do not deploy this part (context ``labmesh:datazone=existing``).
"""

from __future__ import annotations

from aws_cdk import aws_datazone as datazone
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from labmesh_dagster.connectors.catalog.datazone_forms import FORM_TYPES, form_type_description


class Catalog(Construct):
    """Domain, project and form types; ``domain_id`` and ``project_id`` go to the services' settings."""

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey, domain_name: str) -> None:
        super().__init__(scope, construct_id)
        execution_role = iam.Role(
            self,
            "DomainExecutionRole",
            description="labmesh: the DataZone domain's execution role",
            assumed_by=iam.ServicePrincipal("datazone.amazonaws.com").with_conditions(
                {"ForAllValues:StringLike": {"aws:TagKeys": "datazone*"}}
            ),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonDataZoneDomainExecutionRolePolicy")
            ],
        )
        execution_role.assume_role_policy.add_statements(  # type: ignore[union-attr]
            iam.PolicyStatement(
                actions=["sts:TagSession"],
                principals=[iam.ServicePrincipal("datazone.amazonaws.com")],
            )
        )
        key.grant_encrypt_decrypt(execution_role)
        self.domain = datazone.CfnDomain(
            self,
            "Domain",
            name=domain_name,
            description="labmesh: the lab's experiments and datasets",
            domain_execution_role=execution_role.role_arn,
            kms_key_identifier=key.key_arn,
        )
        self.project = datazone.CfnProject(
            self,
            "Project",
            domain_identifier=self.domain.attr_id,
            name="labmesh",
            description="labmesh: owns the lab's assets, form types and glossary",
        )
        self.form_types = [
            datazone.CfnFormType(
                self,
                name,
                domain_identifier=self.domain.attr_id,
                owning_project_identifier=self.project.attr_id,
                name=name,
                description=form_type_description(name),
                model=datazone.CfnFormType.ModelProperty(smithy=smithy),
                status="ENABLED",
            )
            for name, smithy in FORM_TYPES.items()
        ]

    def add_contributor(self, construct_id: str, role: iam.IRole) -> None:
        """Make an IAM role a contributor of the labmesh project: DataZone checks membership besides IAM."""
        datazone.CfnProjectMembership(
            self,
            construct_id,
            domain_identifier=self.domain.attr_id,
            project_identifier=self.project.attr_id,
            designation="PROJECT_CONTRIBUTOR",
            member=datazone.CfnProjectMembership.MemberProperty(user_identifier=role.role_arn),
        )

    @property
    def domain_id(self) -> str:
        return self.domain.attr_id

    @property
    def project_id(self) -> str:
        return self.project.attr_id
