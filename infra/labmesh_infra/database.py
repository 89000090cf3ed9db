"""The network and the PostgreSQL database Dagster and labmesh share (RDS).

The database sits in isolated subnets and takes connections only from the
services' security group, over TLS (``rds.force_ssl``). Its master password is
generated into Secrets Manager without punctuation, so it can stand in a URL
unescaped: ``url_secret`` is the ``LABMESH_DATABASE_URL`` labmesh's stores read
and ``dagster_url_secret`` the ``LABMESH_DAGSTER_DATABASE_URL`` Dagster's storage
reads (the same database, psycopg2 named), both composed by CloudFormation from
the generated password (a dynamic reference, never written into the template).
"""

from __future__ import annotations

from aws_cdk import Duration, Fn, RemovalPolicy, SecretValue
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

DATABASE_NAME = "labmesh"
DATABASE_USER = "labmesh"


class Network(Construct):
    """Two availability zones: public subnets for the load balancer, private ones for the tasks, isolated for RDS."""

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=1,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="tasks", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
                ec2.SubnetConfiguration(name="database", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
        )
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            encryption_key=key,
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
        # The tasks reach S3 without the NAT gateway (and its per-GB charge) through a gateway endpoint.
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)


class Database(Construct):
    """RDS PostgreSQL, its generated credentials and the URL secret built from them."""

    def __init__(
        self, scope: Construct, construct_id: str, *, vpc: ec2.IVpc, clients: ec2.ISecurityGroup, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        credentials = rds.DatabaseSecret(
            self,
            "Credentials",
            username=DATABASE_USER,
            encryption_key=key,
            exclude_characters=" %+~`#$&*()|[]{}:;<>?!'/@\"\\,=^.-_",
        )
        parameters = rds.ParameterGroup(
            self,
            "Parameters",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_17_9),
            parameters={"rds.force_ssl": "1"},
        )
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="labmesh: PostgreSQL", allow_all_outbound=False
        )
        self.security_group.add_ingress_rule(clients, ec2.Port.tcp(5432), "labmesh's services and runs")
        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_17_9),
            instance_type=ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MEDIUM),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[self.security_group],
            credentials=rds.Credentials.from_secret(credentials),
            database_name=DATABASE_NAME,
            parameter_group=parameters,
            multi_az=True,
            storage_encrypted=True,
            storage_encryption_key=key,
            allocated_storage=50,
            max_allocated_storage=500,
            backup_retention=Duration.days(14),
            deletion_protection=True,
            iam_authentication=True,
            enable_performance_insights=True,
            monitoring_interval=Duration.seconds(60),
            performance_insight_encryption_key=key,
            cloudwatch_logs_exports=["postgresql", "upgrade"],
            auto_minor_version_upgrade=True,
            removal_policy=RemovalPolicy.SNAPSHOT,
        )
        password = credentials.secret_value_from_json("password").unsafe_unwrap()

        def url_secret(construct_id: str, scheme: str, what: str) -> secretsmanager.Secret:
            return secretsmanager.Secret(
                self,
                construct_id,
                description=f"labmesh: {what} (composed from the generated credentials)",
                encryption_key=key,
                secret_string_value=SecretValue.unsafe_plain_text(
                    Fn.join(
                        "",
                        [
                            f"{scheme}://{DATABASE_USER}:",
                            password,
                            "@",
                            self.instance.db_instance_endpoint_address,
                            ":",
                            self.instance.db_instance_endpoint_port,
                            f"/{DATABASE_NAME}?sslmode=require",
                        ],
                    )
                ),
            )

        self.url_secret = url_secret("Url", "postgresql", "LABMESH_DATABASE_URL, for labmesh's own stores")
        # The same database for Dagster's storage, with the driver dagster-postgres is written for
        # (labmesh_dagster.deploy.instance: psycopg 3 refuses its NOTIFY with a bound parameter).
        self.dagster_url_secret = url_secret(
            "DagsterUrl", "postgresql+psycopg2", "LABMESH_DAGSTER_DATABASE_URL, for Dagster's storage"
        )
