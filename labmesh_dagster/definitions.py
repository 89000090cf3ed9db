"""The one entry point Dagster loads: every domain's definitions merged, resources picked by profile.

`defs` is a `@dg.definitions` function, so the environment is read when Dagster
loads the code location, not when this module is imported; tests call
`build_definitions` with settings of their own.
"""

import os
from typing import Any

import dagster as dg

from labmesh_dagster.connectors.store.s3_setup import queue_arn
from labmesh_dagster.defs.dataset_assets import final_dataset, processed_dataset, raw_dataset
from labmesh_dagster.defs.experiment_assets import experiment
from labmesh_dagster.defs.omics_assets import SequenceStoreResource, sequence_read_sets
from labmesh_dagster.defs.resources import (
    BenchlingElnResource,
    CatalogResource,
    ContentIndexResource,
    DataZoneCatalogResource,
    ElabFtwElnResource,
    ElnInboxResource,
    ElnResource,
    ExtractionPolicyResource,
    FolderElnResource,
    KendraContentIndexResource,
    LandingPolicyResource,
    LineageResource,
    LocalStoreResource,
    S3StoreResource,
    SqliteCatalogResource,
    SqliteContentIndexResource,
    StoreEventsResource,
    StoreResource,
)
from labmesh_dagster.defs.sensors import build_sensors
from labmesh_dagster.settings import Settings


def build_store_resource(settings: Settings) -> StoreResource:
    if settings.aws is None:
        return LocalStoreResource(root=str(settings.store_dir))
    buckets = settings.aws.buckets
    queues = {"landing": settings.aws.landing_queue_url, "final": settings.aws.final_queue_url}
    region = settings.aws.region or "us-east-1"
    return S3StoreResource(
        notification_queues={zone: queue_arn(url, region) for zone, url in queues.items() if url},
        landing_bucket=buckets["landing"],
        raw_bucket=buckets["raw"],
        processed_bucket=buckets["processed"],
        final_bucket=buckets["final"],
        endpoint_url=settings.aws.endpoint_url,
        region_name=settings.aws.region,
        multipart_threshold=settings.aws.multipart_threshold,
        part_size=settings.aws.part_size,
    )


def _secret(name: str, value: str) -> Any:
    """The variable, named rather than copied, where the secret comes from the environment: the UI shows config."""
    return dg.EnvVar(name) if os.environ.get(name) == value else value


def build_eln_resource(settings: Settings) -> ElnResource:
    """The folder of records (a LIMS export) unless LABMESH_ELN names an ELN."""
    if settings.benchling is not None:
        benchling = settings.benchling
        return BenchlingElnResource(
            base_url=benchling.url,
            api_key=_secret("LABMESH_BENCHLING_API_KEY", benchling.api_key),
            location_field=benchling.location_field,
            schema_id=benchling.schema_id,
            mapping_path=str(benchling.mapping_path) if benchling.mapping_path else None,
        )
    if settings.elabftw is None:
        return FolderElnResource(records_dir=str(settings.eln_dir), outbox_dir=str(settings.eln_outbox_dir))
    key = settings.elabftw.api_key
    return ElabFtwElnResource(
        base_url=settings.elabftw.url,
        api_key=_secret("LABMESH_ELABFTW_API_KEY", key),
        mapping_path=str(settings.elabftw.mapping_path) if settings.elabftw.mapping_path else None,
        scope=settings.elabftw.scope,
        verify_tls=settings.elabftw.verify_tls,
    )


def build_inbox_resource(settings: Settings) -> ElnInboxResource:
    """SQLite beside the catalog; an SQS queue in the aws profile when one is configured."""
    return ElnInboxResource(
        path=str(settings.inbox_path),
        queue_url=settings.aws.eln_queue_url if settings.aws else None,
        endpoint_url=settings.aws.endpoint_url if settings.aws else None,
        region_name=settings.aws.region if settings.aws else None,
    )


def build_catalog_resource(settings: Settings) -> CatalogResource:
    """SQLite locally; DataZone in the aws profile when a domain is configured (SQLite stays its registry)."""
    datazone = settings.aws.datazone if settings.aws else None
    if settings.aws is None or datazone is None:
        return SqliteCatalogResource(path=str(settings.catalog_path))
    return DataZoneCatalogResource(
        registry_path=str(settings.catalog_path),
        domain_id=datazone.domain_id,
        project_id=datazone.project_id,
        endpoint_url=datazone.endpoint_url,
        region_name=settings.aws.region,
        max_per_second=datazone.max_per_second,
        glossary_terms={category: list(terms) for category, terms in datazone.glossary_terms.items()},
    )


def build_lineage_resource(settings: Settings) -> LineageResource:
    datazone = settings.aws.datazone if settings.aws else None
    return LineageResource(
        log_path=str(settings.catalog_path),
        datazone_domain_id=datazone.domain_id if datazone else None,
        datazone_endpoint_url=datazone.endpoint_url if datazone else None,
        region_name=settings.aws.region if settings.aws else None,
        max_per_second=datazone.max_per_second if datazone else 10,
    )


def build_content_index_resource(settings: Settings) -> ContentIndexResource:
    kendra = settings.aws.kendra if settings.aws else None
    if settings.aws is None or kendra is None:
        return SqliteContentIndexResource(path=str(settings.catalog_path))
    return KendraContentIndexResource(
        index_id=kendra.index_id,
        endpoint_url=kendra.endpoint_url,
        region_name=settings.aws.region,
        max_per_second=kendra.max_per_second,
    )


def build_resources(settings: Settings) -> dict[str, object]:
    """The adapters of the settings' profile.

    ``aws`` so far swaps the object store for S3; the ELN folder and the SQLite
    catalog serve both profiles until their AWS adapters exist.
    """
    return {
        "store": build_store_resource(settings),
        "eln": build_eln_resource(settings),
        "catalog": build_catalog_resource(settings),
        "lineage": build_lineage_resource(settings),
        "eln_inbox": build_inbox_resource(settings),
        "content_index": build_content_index_resource(settings),
        "landing_policy": LandingPolicyResource(
            settle_seconds=settings.landing_settle_seconds,
            unknown_experiment_grace_seconds=settings.unknown_experiment_grace_seconds,
            retry_seconds=settings.landing_retry_seconds,
        ),
        "extraction": ExtractionPolicyResource(budget_seconds=settings.extract_budget_seconds),
        "store_events": StoreEventsResource(
            landing_queue_url=settings.aws.landing_queue_url if settings.aws else None,
            final_queue_url=settings.aws.final_queue_url if settings.aws else None,
            endpoint_url=settings.aws.endpoint_url if settings.aws else None,
            region_name=settings.aws.region if settings.aws else None,
        ),
        "pipes_subprocess_client": dg.PipesSubprocessClient(),
    }


def build_omics_definitions(settings: Settings) -> dg.Definitions:
    """HealthOmics import, only where a sequence store is configured (aws profile)."""
    omics = settings.aws.omics if settings.aws else None
    if omics is None:
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
                region_name=settings.aws.region if settings.aws else None,
            )
        },
    )


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions.merge(
        dg.Definitions(assets=[experiment]),
        dg.Definitions(assets=[raw_dataset, processed_dataset, final_dataset]),
        build_omics_definitions(settings),
        dg.Definitions(sensors=build_sensors(settings)),
        dg.Definitions(resources=build_resources(settings)),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_env())
