"""The content index labmesh's search and chat read: a Bedrock Knowledge Base, or Kendra for existing customers.

Bedrock (the default): a knowledge base over an S3 Vectors index, with one
*custom* data source whose chunking is NONE, because labmesh cuts its own
passages and ingests them directly (``IngestKnowledgeBaseDocuments``, see
`labmesh_dagster.connectors.search`). With context ``labmesh:contentIndex=kendra``
the stack makes a Kendra index instead, for labs that already search with
Kendra. Either way the services get the ids through their environment
(``LABMESH_BEDROCK_KNOWLEDGE_BASE_ID`` and ``..._DATA_SOURCE_ID``, or
``LABMESH_KENDRA_INDEX_ID``), and `grant_use` gives a role exactly the calls
labmesh makes.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kendra as kendra
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3vectors as s3vectors
from constructs import Construct

EMBEDDING_MODEL = "amazon.titan-embed-text-v2:0"
EMBEDDING_DIMENSIONS = 1024


class ContentIndex(Construct):
    """One of the two indexes, and the environment the services need to reach it."""

    def __init__(self, scope: Construct, construct_id: str, *, kind: str, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        if kind not in ("bedrock", "kendra"):
            raise ValueError(f"labmesh:contentIndex must be bedrock or kendra, not {kind!r}")
        self.kind = kind
        self.environment: dict[str, str] = {}
        self._resources: list[str] = []
        if kind == "bedrock":
            self._bedrock(key)
        else:
            self._kendra(key)

    def _bedrock(self, key: kms.IKey) -> None:
        stack = Stack.of(self)
        vectors = s3vectors.CfnVectorBucket(
            self,
            "Vectors",
            encryption_configuration=s3vectors.CfnVectorBucket.EncryptionConfigurationProperty(
                sse_type="aws:kms", kms_key_arn=key.key_arn
            ),
        )
        index = s3vectors.CfnIndex(
            self,
            "VectorIndex",
            vector_bucket_arn=vectors.attr_vector_bucket_arn,
            data_type="float32",
            dimension=EMBEDDING_DIMENSIONS,
            distance_metric="cosine",
            # Bedrock keeps each chunk's text and metadata beside its vector; they exceed S3 Vectors'
            # filterable metadata limit, so they are stored but not filterable.
            metadata_configuration=s3vectors.CfnIndex.MetadataConfigurationProperty(
                non_filterable_metadata_keys=["AMAZON_BEDROCK_TEXT", "AMAZON_BEDROCK_METADATA"]
            ),
        )
        embedding_model_arn = stack.format_arn(
            service="bedrock", account="", resource="foundation-model", resource_name=EMBEDDING_MODEL
        )
        role = iam.Role(
            self,
            "KnowledgeBaseRole",
            description="labmesh: the Bedrock knowledge base's service role",
            assumed_by=iam.ServicePrincipal("bedrock.amazonaws.com").with_conditions(
                {"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
        )
        role.add_to_policy(iam.PolicyStatement(actions=["bedrock:InvokeModel"], resources=[embedding_model_arn]))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "s3vectors:PutVectors",
                    "s3vectors:GetVectors",
                    "s3vectors:DeleteVectors",
                    "s3vectors:QueryVectors",
                    "s3vectors:GetIndex",
                ],
                resources=[index.attr_index_arn],
            )
        )
        key.grant_encrypt_decrypt(role)
        knowledge_base = bedrock.CfnKnowledgeBase(
            self,
            "KnowledgeBase",
            name=f"{stack.stack_name}-content",
            description="labmesh: passages of the lab's files, for search by meaning and chat",
            role_arn=role.role_arn,
            knowledge_base_configuration=bedrock.CfnKnowledgeBase.KnowledgeBaseConfigurationProperty(
                type="VECTOR",
                vector_knowledge_base_configuration=bedrock.CfnKnowledgeBase.VectorKnowledgeBaseConfigurationProperty(
                    embedding_model_arn=embedding_model_arn
                ),
            ),
            storage_configuration=bedrock.CfnKnowledgeBase.StorageConfigurationProperty(
                type="S3_VECTORS",
                s3_vectors_configuration=bedrock.CfnKnowledgeBase.S3VectorsConfigurationProperty(
                    index_arn=index.attr_index_arn
                ),
            ),
        )
        # The role's ARN orders the role; its policy must exist too before Bedrock checks what the role may do.
        knowledge_base.node.add_dependency(role.node.find_child("DefaultPolicy"))
        source = bedrock.CfnDataSource(
            self,
            "Passages",
            knowledge_base_id=knowledge_base.attr_knowledge_base_id,
            name="labmesh-passages",
            description="labmesh: passages labmesh cuts and ingests itself",
            data_source_configuration=bedrock.CfnDataSource.DataSourceConfigurationProperty(type="CUSTOM"),
            server_side_encryption_configuration=bedrock.CfnDataSource.ServerSideEncryptionConfigurationProperty(
                kms_key_arn=key.key_arn
            ),
            vector_ingestion_configuration=bedrock.CfnDataSource.VectorIngestionConfigurationProperty(
                chunking_configuration=bedrock.CfnDataSource.ChunkingConfigurationProperty(chunking_strategy="NONE")
            ),
        )
        self.environment = {
            "LABMESH_BEDROCK_KNOWLEDGE_BASE_ID": knowledge_base.attr_knowledge_base_id,
            "LABMESH_BEDROCK_DATA_SOURCE_ID": source.attr_data_source_id,
        }
        self._resources = [knowledge_base.attr_knowledge_base_arn]
        self._actions = [
            "bedrock:IngestKnowledgeBaseDocuments",
            "bedrock:GetKnowledgeBaseDocuments",
            "bedrock:DeleteKnowledgeBaseDocuments",
            "bedrock:Retrieve",
        ]

    def _kendra(self, key: kms.IKey) -> None:
        stack = Stack.of(self)
        role = iam.Role(
            self,
            "KendraRole",
            description="labmesh: the Kendra index's service role (its CloudWatch metrics and logs)",
            assumed_by=iam.ServicePrincipal("kendra.amazonaws.com"),
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "AWS/Kendra"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws/kendra/*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        index = kendra.CfnIndex(
            self,
            "Index",
            name=f"{stack.stack_name}-content",
            edition="ENTERPRISE_EDITION",
            role_arn=role.role_arn,
            description="labmesh: passages of the lab's files",
            server_side_encryption_configuration=kendra.CfnIndex.ServerSideEncryptionConfigurationProperty(
                kms_key_id=key.key_id
            ),
        )
        key.grant_encrypt_decrypt(role)
        self.environment = {"LABMESH_KENDRA_INDEX_ID": index.attr_id}
        self._resources = [index.attr_arn]
        self._actions = ["kendra:BatchPutDocument", "kendra:BatchDeleteDocument", "kendra:Retrieve", "kendra:Query"]

    def grant_use(self, grantee: iam.IGrantable) -> None:
        """Index passages into it, remove them, and retrieve from it."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=self._actions, resources=self._resources)
        )
