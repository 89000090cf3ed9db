"""The one entry point Dagster loads: every domain's definitions merged, resources picked by profile.

`defs` is a `@dg.definitions` function, so the environment is read when Dagster
loads the code location, not when this module is imported; tests call
`build_definitions` with settings of their own, and may hand in a client
factory (fakes for the AWS services moto lacks) and a clock.
"""

import os
import warnings
from typing import Any

import dagster as dg

from labmesh_dagster import ports
from labmesh_dagster.core.clock import Clock, utc_now
from labmesh_dagster.defs.dataset_assets import final_dataset, raw_dataset
from labmesh_dagster.defs.experiment_assets import experiment
from labmesh_dagster.defs.omics_assets import sequence_read_sets
from labmesh_dagster.defs.pipeline_engines import PipelineEnginesResource
from labmesh_dagster.defs.processed_assets import build_processed_dataset
from labmesh_dagster.defs.resources import (
    BedrockContentIndexResource,
    BenchlingElnResource,
    CatalogResource,
    ContentIndexResource,
    DataZoneCatalogResource,
    DataZoneLineageResource,
    ElabFtwElnResource,
    ElnInboxResource,
    ElnResource,
    ExtractionPolicyResource,
    FolderElnResource,
    KendraContentIndexResource,
    LandingPolicyResource,
    LineageResource,
    LocalLineageResource,
    LocalStoreResource,
    PostgresContentIndexResource,
    PostgresInboxResource,
    RegistryCatalogResource,
    S3StoreResource,
    SequenceStoreResource,
    SqliteContentIndexResource,
    SqliteInboxResource,
    SqsInboxResource,
    SqsStoreEventsResource,
    StoreEventsResource,
    StoreResource,
)
from labmesh_dagster.defs.sensors import build_sensors
from labmesh_dagster.pipelines.spec import Pipeline, builtin_pipelines_path, load_pipelines
from labmesh_dagster.settings import AwsConnection, Secret, Settings

# Dagster binds a sensor to the job it targets through its own internal constructor, which passes the beta
# `owners` parameter and so warns as if labmesh had used it, in every process that loads this module
# (labmesh uses no beta parameter: this one warning, by its text, is silenced, and nothing else).
warnings.filterwarnings(
    "ignore", message=r"Parameter `owners` of initializer `SensorDefinition.__init__`", category=dg.BetaWarning
)


def _secret(secret: Secret) -> Any:
    """A secret read from the environment is shown by its variable name (and read there again by each run)."""
    return dg.EnvVar(secret.variable) if secret.from_environment else secret.value


def _database_url(settings: Settings) -> Any:
    """The database of labmesh's own state, by its variable when it came from the environment: the URL may hold
    a password, and the Dagster UI shows a resource's configuration."""
    url = settings.database_url
    return (
        dg.EnvVar("LABMESH_DATABASE_URL") if url is not None and os.environ.get("LABMESH_DATABASE_URL") == url else url
    )


def _aws(connection: AwsConnection, clients: ports.ClientFactory) -> dict[str, Any]:
    """The fields of `AwsResource`, for a resource reaching AWS through ``connection``."""
    return {
        "endpoint_url": connection.endpoint_url,
        "region_name": connection.region_name,
        "max_attempts": connection.max_attempts,
        "client_factory": clients,
    }


def _store(settings: Settings, clients: ports.ClientFactory) -> StoreResource:
    config = ports.store_config(settings)
    if settings.aws is None:
        return LocalStoreResource(root=config["root"])
    buckets = config["buckets"]
    return S3StoreResource(
        landing_bucket=buckets["landing"],
        raw_bucket=buckets["raw"],
        processed_bucket=buckets["processed"],
        final_bucket=buckets["final"],
        multipart_threshold=config["multipart_threshold"],
        part_size=config["part_size"],
        notification_queues=config["notification_queues"],
        **_aws(settings.aws.connection("s3"), clients),
    )


def _eln(settings: Settings) -> ElnResource:
    """The folder of records (a LIMS export) unless LABMESH_ELN names an ELN."""
    if (elabftw := settings.elabftw) is not None:
        return ElabFtwElnResource(
            base_url=elabftw.url,
            api_key=_secret(elabftw.api_key),
            mapping_path=str(elabftw.mapping_path) if elabftw.mapping_path else None,
            scope=elabftw.scope,
            verify_tls=elabftw.verify_tls,
            timeout_seconds=elabftw.timeout_seconds,
        )
    if (benchling := settings.benchling) is not None:
        return BenchlingElnResource(
            base_url=benchling.url,
            api_key=_secret(benchling.api_key),
            location_field=benchling.location_field,
            schema_id=benchling.schema_id,
            mapping_path=str(benchling.mapping_path) if benchling.mapping_path else None,
            timeout_seconds=benchling.timeout_seconds,
        )
    return FolderElnResource(
        records_dir=str(settings.eln_dir),
        outbox_dir=str(settings.eln_outbox_dir),
        watch=settings.eln_watch,
        reconcile_seconds=settings.eln_reconcile_seconds,
    )


def _inbox(settings: Settings, clients: ports.ClientFactory, clock: Clock) -> ElnInboxResource:
    aws = settings.aws
    if aws is not None and aws.eln_queue_url:
        return SqsInboxResource(queue_url=aws.eln_queue_url, **_aws(aws.connection("sqs"), clients))
    if settings.database_url is not None:
        return PostgresInboxResource(database_url=_database_url(settings), clock=clock)
    return SqliteInboxResource(path=str(settings.inbox_path), clock=clock)


def _catalog(settings: Settings, clients: ports.ClientFactory) -> CatalogResource:
    datazone, aws = settings.datazone, settings.aws
    if datazone is None or aws is None:
        return RegistryCatalogResource(path=str(settings.catalog_path), database_url=_database_url(settings))
    return DataZoneCatalogResource(
        registry_path=str(settings.catalog_path),
        database_url=_database_url(settings),
        domain_id=datazone.domain_id,
        project_id=datazone.project_id,
        max_per_second=datazone.max_per_second,
        glossary_terms={category: list(terms) for category, terms in datazone.glossary_terms.items()},
        group_projects=datazone.group_projects,
        restricted_project_id=datazone.restricted_project_id,
        **_aws(aws.connection("datazone"), clients),
    )


def _lineage(settings: Settings, clients: ports.ClientFactory) -> LineageResource:
    datazone, aws = settings.datazone, settings.aws
    if datazone is None or aws is None:
        return LocalLineageResource(log_path=str(settings.catalog_path), database_url=_database_url(settings))
    return DataZoneLineageResource(
        log_path=str(settings.catalog_path),
        database_url=_database_url(settings),
        domain_id=datazone.domain_id,
        max_per_second=datazone.max_per_second,
        **_aws(aws.connection("datazone"), clients),
    )


def _content_index(settings: Settings, clients: ports.ClientFactory) -> ContentIndexResource:
    kendra, knowledge_base, aws = settings.kendra, settings.knowledge_base, settings.aws
    if knowledge_base is not None and aws is not None:
        return BedrockContentIndexResource(
            knowledge_base_id=knowledge_base.knowledge_base_id,
            data_source_id=knowledge_base.data_source_id,
            max_per_second=knowledge_base.max_per_second,
            **_aws(aws.connection("bedrock-agent"), clients),
        )
    if kendra is None or aws is None:
        if settings.database_url is not None:
            return PostgresContentIndexResource(database_url=_database_url(settings))
        return SqliteContentIndexResource(path=str(settings.catalog_path))
    return KendraContentIndexResource(
        index_id=kendra.index_id,
        max_per_second=kendra.max_per_second,
        **_aws(aws.connection("kendra"), clients),
    )


def _store_events(settings: Settings, clients: ports.ClientFactory) -> StoreEventsResource:
    aws = settings.aws
    if aws is None or not (aws.landing_queue_url or aws.final_queue_url):
        return StoreEventsResource()
    return SqsStoreEventsResource(
        landing_queue_url=aws.landing_queue_url,
        final_queue_url=aws.final_queue_url,
        **_aws(aws.connection("sqs"), clients),
    )


def build_resources(settings: Settings, clients: ports.ClientFactory, clock: Clock) -> dict[str, object]:
    """The adapters of the settings' profile, each configured from the settings alone."""
    return {
        "store": _store(settings, clients),
        "eln": _eln(settings),
        "catalog": _catalog(settings, clients),
        "lineage": _lineage(settings, clients),
        "eln_inbox": _inbox(settings, clients, clock),
        "content_index": _content_index(settings, clients),
        "landing_policy": LandingPolicyResource(
            settle_seconds=settings.landing_settle_seconds,
            unknown_experiment_grace_seconds=settings.unknown_experiment_grace_seconds,
            retry_seconds=settings.landing_retry_seconds,
        ),
        "extraction": ExtractionPolicyResource(budget_seconds=settings.extract_budget_seconds),
        "store_events": _store_events(settings, clients),
        "pipeline_engines": _pipeline_engines(settings, clients),
        "clock": clock,
    }


def _pipeline_engines(settings: Settings, clients: ports.ClientFactory) -> PipelineEnginesResource:
    """Local pipelines need nothing; ECS and HealthOmics ones reach AWS through the aws profile's connection."""
    tool_versions_cache = str(settings.home / "cache" / "tool-versions.json")
    if settings.aws is None:
        return PipelineEnginesResource(
            endpoint_url=None,
            region_name=None,
            max_attempts=1,
            aws_profile=False,
            tool_versions_cache=tool_versions_cache,
        )
    aws = settings.aws
    return PipelineEnginesResource(
        aws_profile=True,
        tool_versions_cache=tool_versions_cache,
        logs_endpoint_url=aws.connection("logs").endpoint_url,
        s3_endpoint_url=aws.connection("s3").endpoint_url,
        omics_endpoint_url=aws.connection("omics").endpoint_url,
        **_aws(aws.connection("ecs"), clients),
    )


def load_pipelines_of(settings: Settings) -> tuple[Pipeline, ...]:
    """The pipelines file processed datasets are made by: LABMESH_PIPELINES, else the built-in one."""
    return load_pipelines(settings.pipelines_path or builtin_pipelines_path())


def build_omics_definitions(settings: Settings, clients: ports.ClientFactory) -> dg.Definitions:
    """HealthOmics import, only where a sequence store is configured (aws profile)."""
    omics, aws = settings.omics, settings.aws
    if omics is None or aws is None:
        return dg.Definitions()
    return dg.Definitions(
        assets=[sequence_read_sets],
        resources={
            "sequence_store": SequenceStoreResource(
                sequence_store_id=omics.sequence_store_id,
                role_arn=omics.role_arn,
                reference_arn=omics.reference_arn,
                platforms=list(omics.platforms),
                timeout_seconds=omics.timeout_seconds,
                poll_seconds=omics.poll_seconds,
                s3_endpoint_url=aws.connection("s3").endpoint_url,
                **_aws(aws.connection("omics"), clients),
            )
        },
    )


RUN_EXECUTOR = dg.in_process_executor
"""Every run's steps execute in the run's own process.

labmesh's runs each materialize one asset of one experiment: one step. Under
Dagster's default (multiprocess) executor that step gets a second Python
process, which imports Dagster and these definitions again (about 1.5 s of
CPU) to do what the run's process could: on two cores that doubled the cost
of every run. A run started by hand with several assets runs them one after
another; a run that fails is retried from its failed step either way.
"""


def build_definitions(
    settings: Settings, *, clients: ports.ClientFactory = ports.boto3_clients, clock: Clock = utc_now
) -> dg.Definitions:
    return dg.Definitions.merge(
        dg.Definitions(executor=RUN_EXECUTOR),
        dg.Definitions(assets=[experiment]),
        dg.Definitions(assets=[raw_dataset, build_processed_dataset(load_pipelines_of(settings)), final_dataset]),
        build_omics_definitions(settings, clients),
        dg.Definitions(sensors=build_sensors(settings)),
        dg.Definitions(resources=build_resources(settings, clients, clock)),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_env())
