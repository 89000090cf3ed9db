"""The one labmesh stack: an empty account's region to a running lab.

Values known only at deployment (the image, the certificate, the OpenID
provider, Benchling's partner event bus) are CloudFormation parameters, so one
synthesised template serves every lab. Structural choices are CDK context:
``labmesh:contentIndex`` (``bedrock`` or ``kendra``), ``labmesh:bucketPrefix``,
``labmesh:region``, and the lab's own settings: ``labmesh:settings`` (a mapping of
``LABMESH_*`` variables, such as the ELN's URL) and ``labmesh:secrets`` (names of
``LABMESH_*`` variables, such as the ELN's API key, each given a Secrets Manager
secret whose value the operator puts after the first deployment).
"""

from __future__ import annotations

from aws_cdk import CfnOutput, CfnParameter, Environment, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from labmesh_infra.access import Access, domain_arn
from labmesh_infra.catalog import Catalog
from labmesh_infra.content_index import ContentIndex
from labmesh_infra.database import Database, Network
from labmesh_infra.events import LabEvents
from labmesh_infra.services import OidcSettings, Services
from labmesh_infra.storage import Storage

CHAT_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"


class LabmeshStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, description: str, env: Environment) -> None:
        super().__init__(scope, construct_id, description=description, env=env)
        Tags.of(self).add("application", "labmesh")
        bucket_prefix = str(self.node.try_get_context("labmesh:bucketPrefix") or "labmesh")
        index_kind = str(self.node.try_get_context("labmesh:contentIndex") or "bedrock")
        lab_settings = {str(k): str(v) for k, v in (self.node.try_get_context("labmesh:settings") or {}).items()}
        lab_secrets = [str(name) for name in self.node.try_get_context("labmesh:secrets") or []]
        for name in [*lab_settings, *lab_secrets]:
            if not name.startswith("LABMESH_"):
                raise ValueError(f"labmesh:settings and labmesh:secrets name LABMESH_* variables, not {name!r}")

        def parameter(name: str, description: str, default: str | None = None) -> str:
            return CfnParameter(self, name, type="String", description=description, default=default).value_as_string

        image = parameter("ImageUri", "The labmesh image (repository@sha256:digest), built from the Dockerfile")
        certificate_arn = parameter("CertificateArn", "ACM certificate for the portal's and Dagster's host names")
        portal_host = parameter("PortalHost", "Host name of the portal, e.g. lab.example.org")
        dagster_host = parameter("DagsterHost", "Host name of Dagster's UI, e.g. dagster.lab.example.org")
        oidc_issuer = parameter("OidcIssuer", "OpenID provider's issuer URL")
        oidc_authorization = parameter("OidcAuthorizationEndpoint", "OpenID provider's authorization endpoint")
        oidc_token = parameter("OidcTokenEndpoint", "OpenID provider's token endpoint")
        oidc_user_info = parameter("OidcUserInfoEndpoint", "OpenID provider's user info endpoint")
        oidc_client_id = parameter("OidcClientId", "The client id the provider gave labmesh")
        benchling_bus = parameter(
            "BenchlingEventBusName",
            "Benchling's partner event bus (aws.partner/benchling.com/...); `default` if the lab has no Benchling",
            default="default",
        )

        storage = Storage(self, "Storage", bucket_prefix=bucket_prefix)
        eln_queue = storage.queue("ElnEvents")
        omics_queue = storage.queue("OmicsRunStatus")
        LabEvents(self, "Events", eln_queue=eln_queue, omics_queue=omics_queue, benchling_bus_name=benchling_bus)

        network = Network(self, "Network", key=storage.key)
        tasks = ec2.SecurityGroup(self, "Tasks", vpc=network.vpc, description="labmesh: the services and runs")
        tasks.add_ingress_rule(tasks, ec2.Port.tcp(4000), "the code location's gRPC, from the webserver, daemon, runs")
        database = Database(self, "Database", vpc=network.vpc, clients=tasks, key=storage.key)

        catalog = Catalog(self, "Catalog", key=storage.key, domain_name=f"{bucket_prefix}-lab")
        content = ContentIndex(self, "ContentIndex", kind=index_kind, key=storage.key)
        access = Access(
            self,
            "Access",
            buckets=storage.zones,
            key=storage.key,
            datazone_domain_arn=domain_arn(self, catalog.domain_id),
        )
        content.grant_use(access.run_role)
        catalog.add_contributor("RunRoleMembership", access.run_role)

        oidc_client_secret = secretsmanager.Secret(
            self,
            "OidcClientSecret",
            description="labmesh: the OpenID client secret (put its value after the first deployment)",
            encryption_key=storage.key,
        )
        portal_secret = secretsmanager.Secret(
            self,
            "PortalSecret",
            description="labmesh: signs the portal's session cookies",
            encryption_key=storage.key,
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64, exclude_punctuation=True),
        )
        secrets: dict[str, secretsmanager.ISecret] = {
            "LABMESH_DATABASE_URL": database.url_secret,
            "LABMESH_DAGSTER_DATABASE_URL": database.dagster_url_secret,
            "LABMESH_PORTAL_SECRET": portal_secret,
            "LABMESH_OIDC_CLIENT_SECRET": oidc_client_secret,
        }
        for name in lab_secrets:
            secrets[name] = secretsmanager.Secret(
                self,
                f"Lab{name.title().replace('_', '')}",
                description=f"labmesh: {name} (put its value after the first deployment)",
                encryption_key=storage.key,
            )
        settings = {
            "LABMESH_AWS_REGION": self.region,
            "LABMESH_S3_BUCKET_PREFIX": bucket_prefix,
            **{f"LABMESH_S3_BUCKET_{zone.upper()}": bucket.bucket_name for zone, bucket in storage.zones.items()},
            "LABMESH_SQS_LANDING_QUEUE_URL": storage.queues["landing"].queue_url,
            "LABMESH_SQS_FINAL_QUEUE_URL": storage.queues["final"].queue_url,
            "LABMESH_SQS_ELN_QUEUE_URL": eln_queue[0].queue_url,
            "LABMESH_DATAZONE_DOMAIN_ID": catalog.domain_id,
            "LABMESH_DATAZONE_PROJECT_ID": catalog.project_id,
            "LABMESH_OIDC_ISSUER": oidc_issuer,
            "LABMESH_OIDC_CLIENT_ID": oidc_client_id,
            "LABMESH_OIDC_REDIRECT_URL": f"https://{portal_host}/auth/callback",
            **content.environment,
            **lab_settings,
        }
        services = Services(
            self,
            "Services",
            vpc=network.vpc,
            key=storage.key,
            image=image,
            tasks_security_group=tasks,
            settings=settings,
            secrets=secrets,
            run_role=access.run_role,
            compute_logs=storage.compute_logs,
            access_logs=storage.access_logs,
            certificate_arn=certificate_arn,
            portal_host=portal_host,
            dagster_host=dagster_host,
            oidc=OidcSettings(
                issuer=oidc_issuer,
                authorization_endpoint=oidc_authorization,
                token_endpoint=oidc_token,
                user_info_endpoint=oidc_user_info,
                client_id=oidc_client_id,
                client_secret=oidc_client_secret,
            ),
        )
        self._grant_services(storage, eln_queue[0], catalog, content, services)

        CfnOutput(self, "LoadBalancerDns", value=services.load_balancer.load_balancer_dns_name)
        CfnOutput(self, "DataZoneDomainId", value=catalog.domain_id)
        CfnOutput(self, "DataZoneProjectId", value=catalog.project_id)
        CfnOutput(self, "OidcClientSecretArn", value=oidc_client_secret.secret_arn)
        CfnOutput(self, "ExperimentPolicyArn", value=access.experiment_template.managed_policy_arn)
        for zone, bucket in storage.zones.items():
            CfnOutput(self, f"{zone.capitalize()}Bucket", value=bucket.bucket_name)

    def _grant_services(
        self,
        storage: Storage,
        eln_queue: sqs.IQueue,
        catalog: Catalog,
        content: ContentIndex,
        services: Services,
    ) -> None:
        """The code location's sensors read the zones and queues; the portal reads and searches."""
        domain = domain_arn(self, catalog.domain_id)
        code_role = services.code.task_definition.task_role
        portal_role = services.portal.task_definition.task_role
        for bucket in storage.zones.values():
            bucket.grant_read(code_role)
            bucket.grant_read(portal_role)
        for queue in (*storage.queues.values(), eln_queue):
            queue.grant_consume_messages(code_role)
        eln_queue.grant_send_messages(portal_role)  # the webhook intake (`labmesh api`) puts ELN events
        code_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadTheLabsDomain",
                actions=["datazone:GetAsset", "datazone:SearchListings", "datazone:GetListing"],
                resources=[domain],
            )
        )
        portal_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SearchTheLabsDomain",
                actions=[
                    "datazone:SearchListings",
                    "datazone:GetListing",
                    "datazone:GetAsset",
                    "datazone:GetLineageEvent",
                ],
                resources=[domain],
            )
        )
        content.grant_use(portal_role)
        portal_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="AnswerFromPassages",
                # Converse is authorised as bedrock:InvokeModel.
                actions=["bedrock:InvokeModel"],
                resources=[
                    self.format_arn(
                        service="bedrock", account="", resource="foundation-model", resource_name=CHAT_MODEL
                    )
                ],
            )
        )
