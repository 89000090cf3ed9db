"""labmesh on ECS Fargate: the code location, Dagster's webserver and daemon, the portal, and the runs.

One image (the repository's Dockerfile) plays every part; the command picks
it. The code location serves the definitions over gRPC at
``code.<namespace>:4000`` (Cloud Map); the webserver and the daemon load them
from there. The daemon launches each run as an ECS task (EcsRunLauncher, one
task per run, sized by the run's ``ecs/cpu``/``ecs/memory`` tags) with the run
task role, which the code location hands the launcher through its container
context. The portal and Dagster's UI sit behind one HTTPS load balancer that
signs people in with the lab's OpenID provider (``authenticate-oidc``) before
a request reaches them; the portal then reads the identity the load balancer
passes on and does its own OIDC sign-in for its session.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy, SecretValue, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct

CODE_PORT = 4000
WEBSERVER_PORT = 3000
PORTAL_PORT = 8000
NAMESPACE = "labmesh.internal"


class OidcSettings:
    """The lab's OpenID provider, as the load balancer and the portal need it."""

    def __init__(
        self,
        *,
        issuer: str,
        authorization_endpoint: str,
        token_endpoint: str,
        user_info_endpoint: str,
        client_id: str,
        client_secret: secretsmanager.ISecret,
    ) -> None:
        self.issuer = issuer
        self.authorization_endpoint = authorization_endpoint
        self.token_endpoint = token_endpoint
        self.user_info_endpoint = user_info_endpoint
        self.client_id = client_id
        self.client_secret = client_secret


class Services(Construct):
    """The cluster, the four services and the load balancer (EcsRunLauncher registers the runs' task definitions)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        key: kms.IKey,
        image: str,
        tasks_security_group: ec2.SecurityGroup,
        settings: Mapping[str, str],
        secrets: Mapping[str, secretsmanager.ISecret],
        run_role: iam.Role,
        compute_logs: s3.IBucket,
        access_logs: s3.IBucket,
        certificate_arn: str,
        portal_host: str,
        dagster_host: str,
        oidc: OidcSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
            default_cloud_map_namespace=ecs.CloudMapNamespaceOptions(
                name=NAMESPACE, type=servicediscovery.NamespaceType.DNS_PRIVATE, vpc=vpc
            ),
        )
        self.logs = logs.LogGroup(
            self,
            "Logs",
            encryption_key=key,
            retention=logs.RetentionDays.SIX_MONTHS,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            description="labmesh: ECS pulls the image, writes logs and reads the secrets for every task",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
        )
        for secret in secrets.values():
            secret.grant_read(self.execution_role)
        self.logs.grant_write(self.execution_role)
        key.grant_decrypt(self.execution_role)
        self.execution_role.add_to_policy(
            iam.PolicyStatement(
                sid="PullTheImage",
                actions=["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=["*"],
            )
        )
        environment = {
            **settings,
            "LABMESH_PROFILE": "aws",
            "LABMESH_COMPUTE_LOGS_BUCKET": compute_logs.bucket_name,
            "DAGSTER_CURRENT_IMAGE": image,
        }
        ecs_secrets = {name: ecs.Secret.from_secrets_manager(secret) for name, secret in secrets.items()}
        code_address = f"code.{NAMESPACE}"

        # Runs take the code location's image and this container context: their own role, the shared secrets.
        run_context = {
            "ecs": {
                "task_role_arn": run_role.role_arn,
                "execution_role_arn": self.execution_role.role_arn,
                "secrets": [{"name": name, "valueFrom": secret.secret_arn} for name, secret in secrets.items()],
                "env_vars": [f"{name}={value}" for name, value in environment.items()],
            }
        }
        self.code = self._service(
            "CodeLocation",
            image=image,
            command=None,
            port=CODE_PORT,
            cpu=1024,
            memory=2048,
            environment={**environment, "DAGSTER_CONTAINER_CONTEXT": stack.to_json_string(run_context)},
            secrets=ecs_secrets,
            security_group=tasks_security_group,
            cloud_map_name="code",
            health_check=ecs.HealthCheck(
                command=["CMD", "dagster", "api", "grpc-health-check", "--port", str(CODE_PORT)],
                start_period=Duration.minutes(2),
            ),
        )
        self.webserver = self._service(
            "Webserver",
            image=image,
            command=[
                "dagster-webserver",
                "--host",
                "0.0.0.0",
                "--port",
                str(WEBSERVER_PORT),
                "--grpc-host",
                code_address,
                "--grpc-port",
                str(CODE_PORT),
            ],
            port=WEBSERVER_PORT,
            cpu=1024,
            memory=2048,
            environment=environment,
            secrets=ecs_secrets,
            security_group=tasks_security_group,
        )
        self.daemon = self._service(
            "Daemon",
            image=image,
            command=["dagster-daemon", "run", "--grpc-host", code_address, "--grpc-port", str(CODE_PORT)],
            port=None,
            cpu=1024,
            memory=2048,
            environment=environment,
            secrets=ecs_secrets,
            security_group=tasks_security_group,
        )
        self.portal = self._service(
            "Portal",
            image=image,
            command=["labmesh", "api", "--host", "0.0.0.0", "--port", str(PORTAL_PORT)],
            port=PORTAL_PORT,
            cpu=512,
            memory=1024,
            environment={**environment, "LABMESH_LOGIN": "oidc", "LABMESH_DAGSTER_URL": f"https://{dagster_host}"},
            secrets=ecs_secrets,
            security_group=tasks_security_group,
        )
        self._grant_run_launcher(self.daemon.task_definition.task_role, run_role)
        self._grant_run_launcher(self.webserver.task_definition.task_role, run_role)
        for role in (self.daemon.task_definition.task_role, self.webserver.task_definition.task_role, run_role):
            compute_logs.grant_read_write(role)
        self.load_balancer = self._load_balancer(
            vpc=vpc,
            tasks_security_group=tasks_security_group,
            access_logs=access_logs,
            certificate_arn=certificate_arn,
            portal_host=portal_host,
            dagster_host=dagster_host,
            oidc=oidc,
        )

    def _service(
        self,
        name: str,
        *,
        image: str,
        command: list[str] | None,
        port: int | None,
        cpu: int,
        memory: int,
        environment: Mapping[str, str],
        secrets: Mapping[str, ecs.Secret],
        security_group: ec2.ISecurityGroup,
        cloud_map_name: str | None = None,
        health_check: ecs.HealthCheck | None = None,
    ) -> ecs.FargateService:
        task_role = iam.Role(
            self,
            f"{name}TaskRole",
            description=f"labmesh: the {name} service's task",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
        )
        task = ecs.FargateTaskDefinition(
            self,
            f"{name}Task",
            cpu=cpu,
            memory_limit_mib=memory,
            task_role=task_role,
            execution_role=self.execution_role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        task.add_container(
            # EcsRunLauncher takes the daemon's task as the model for a run's, and names the run's container
            # `run` (deploy/aws/dagster.yaml, container_name).
            "run" if name == "Daemon" else name.lower(),
            image=ecs.ContainerImage.from_registry(image),
            command=command,
            environment=dict(environment),
            secrets=dict(secrets),
            logging=ecs.LogDriver.aws_logs(stream_prefix=name.lower(), log_group=self.logs),
            port_mappings=[ecs.PortMapping(container_port=port)] if port else [],
            # Dagster writes step logs to local files before it uploads them, and labmesh stages files in /tmp.
            readonly_root_filesystem=False,
            user="10001",
            health_check=health_check,
        )
        return ecs.FargateService(
            self,
            name,
            cluster=self.cluster,
            task_definition=task,
            desired_count=1,
            security_groups=[security_group],
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            enable_execute_command=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            # One daemon only: Dagster's daemon must not run twice, so a deployment stops the old task first.
            min_healthy_percent=0 if name == "Daemon" else 100,
            max_healthy_percent=100 if name == "Daemon" else 200,
            cloud_map_options=ecs.CloudMapOptions(name=cloud_map_name) if cloud_map_name else None,
        )

    def _grant_run_launcher(self, role: iam.IRole, run_role: iam.IRole) -> None:
        """What EcsRunLauncher calls: start, watch and stop run tasks, and register their task definitions."""
        stack = Stack.of(self)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="LaunchAndWatchRuns",
                actions=[
                    "ecs:RunTask",
                    "ecs:DescribeTasks",
                    "ecs:StopTask",
                    "ecs:TagResource",
                    "ecs:ListTagsForResource",
                ],
                resources=[
                    stack.format_arn(service="ecs", resource="task-definition", resource_name="labmesh-run*"),
                    stack.format_arn(service="ecs", resource="task", resource_name=f"{self.cluster.cluster_name}/*"),
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RegisterRunTaskDefinitions",
                # These ECS actions take no resource ARN (ECS's service authorization reference).
                actions=["ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition", "ecs:ListTaskDefinitions"],
                resources=["*"],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="FindTheRunsNetwork",
                # DescribeNetworkInterfaces takes no resource ARN either (the launcher reads a run task's address).
                actions=["ec2:DescribeNetworkInterfaces"],
                resources=["*"],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadRunLogs",
                actions=["logs:GetLogEvents"],
                resources=[self.logs.log_group_arn, f"{self.logs.log_group_arn}:*"],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PassTheRunRoles",
                actions=["iam:PassRole"],
                resources=[run_role.role_arn, self.execution_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )

    def _load_balancer(
        self,
        *,
        vpc: ec2.IVpc,
        tasks_security_group: ec2.SecurityGroup,
        access_logs: s3.IBucket,
        certificate_arn: str,
        portal_host: str,
        dagster_host: str,
        oidc: OidcSettings,
    ) -> elbv2.ApplicationLoadBalancer:
        security_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            vpc=vpc,
            description="labmesh: HTTPS from people",
            allow_all_outbound=False,
        )
        security_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS")
        for port in (PORTAL_PORT, WEBSERVER_PORT):
            security_group.add_egress_rule(tasks_security_group, ec2.Port.tcp(port), "to the portal and Dagster's UI")
            tasks_security_group.add_ingress_rule(security_group, ec2.Port.tcp(port), "from the load balancer")
        balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            internet_facing=True,
            security_group=security_group,
            drop_invalid_header_fields=True,
        )
        balancer.log_access_logs(access_logs, prefix="alb")
        # authenticate-oidc reaches the provider's token and user info endpoints from the load balancer itself.
        security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "to the OpenID provider")
        listener = balancer.add_listener(
            "Https",
            port=443,
            protocol=elbv2.ApplicationProtocol.HTTPS,
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            certificates=[acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn)],
            open=False,
            default_action=elbv2.ListenerAction.fixed_response(404, content_type="text/plain", message_body="not here"),
        )
        for priority, (name, service, port, host, health) in enumerate(
            (
                ("Portal", self.portal, PORTAL_PORT, portal_host, "/healthz"),
                ("Dagster", self.webserver, WEBSERVER_PORT, dagster_host, "/server_info"),
            ),
            start=1,
        ):
            target = elbv2.ApplicationTargetGroup(
                self,
                f"{name}Targets",
                vpc=vpc,
                port=port,
                protocol=elbv2.ApplicationProtocol.HTTP,
                targets=[service],
                health_check=elbv2.HealthCheck(path=health, healthy_http_codes="200"),
            )
            listener.add_action(
                f"{name}SignedIn",
                priority=priority,
                conditions=[elbv2.ListenerCondition.host_headers([host])],
                action=elbv2.ListenerAction.authenticate_oidc(
                    issuer=oidc.issuer,
                    authorization_endpoint=oidc.authorization_endpoint,
                    token_endpoint=oidc.token_endpoint,
                    user_info_endpoint=oidc.user_info_endpoint,
                    client_id=oidc.client_id,
                    client_secret=SecretValue.secrets_manager(oidc.client_secret.secret_arn),
                    scope="openid email profile",
                    session_timeout=Duration.hours(8),
                    on_unauthenticated_request=elbv2.UnauthenticatedAction.AUTHENTICATE,
                    next=elbv2.ListenerAction.forward([target]),
                ),
            )
        return balancer
