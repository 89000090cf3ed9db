"""Resources: typed, configurable handles on the ports, one abstract base per port.

Assets and sensors ask for ``store``, ``eln``, ``catalog``... by these base
types; `labmesh_dagster.definitions` binds the implementation the profile
picks, from `Settings`. A resource holds its configuration (shown in the
Dagster UI) and opens its port through `labmesh_dagster.ports`, the same
functions the CLI uses; no behaviour lives here. Defaults are stated once, in
`Settings`: every field is given when the resource is built.

Resources that reach AWS share one base, `AwsResource`: endpoint, region,
retries, and the factory that makes clients (boto3's, or a test's fakes).
"""

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from labmesh_dagster import ports
from labmesh_dagster.core.clock import Clock, utc_now
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.settings import AwsConnection

if TYPE_CHECKING:
    from labmesh_dagster.connectors.catalog.base import Catalog
    from labmesh_dagster.connectors.eln.base import ElnSource
    from labmesh_dagster.connectors.eln.inbox import EventInbox
    from labmesh_dagster.connectors.events.base import EventQueue
    from labmesh_dagster.connectors.lineage.base import LineageLog, LineageSink
    from labmesh_dagster.connectors.omics.base import SequenceStore
    from labmesh_dagster.connectors.rejections import RejectionStore
    from labmesh_dagster.connectors.search.base import ContentIndex
    from labmesh_dagster.connectors.store.base import ObjectStore

ClockResource = dg.ResourceParam[Clock]
"""What "now" is for sensors and assets: the system clock, or a test's."""


class AwsResource(dg.ConfigurableResource):
    """The connection every AWS-backed resource shares (dagster-aws's ``ResourceWithBoto3Configuration``)."""

    endpoint_url: str | None = Field(description="Endpoint of the service (moto, MinIO...); None for AWS itself.")
    region_name: str | None = Field(description="AWS region.")
    max_attempts: int = Field(description="Attempts per call before failing; throttling and 5xx back off between.")
    # Not configuration: how clients are made, boto3's unless a test (or a tool) hands in its own. Dagster
    # wraps a plain callable as a resource of its own; its descriptor type does not admit the None default.
    client_factory: dg.ResourceDependency[ports.ClientFactory | None] = None  # type: ignore[assignment]

    def connection(self) -> AwsConnection:
        return AwsConnection(self.endpoint_url, self.region_name, self.max_attempts)

    @property
    def clients(self) -> ports.ClientFactory:
        return self.client_factory or ports.boto3_clients


class StoreResource(dg.ConfigurableResource, ABC):
    """The object store holding the four zones."""

    @abstractmethod
    def store_config(self) -> ports.StoreConfig:
        """Plain configuration from which a subprocess (a Pipes pipeline) can open the same store."""

    def get_store(self) -> "ObjectStore":
        return ports.open_store(self.store_config())


class LocalStoreResource(StoreResource):
    root: str = Field(description="Directory holding one sub-directory per zone (landing, raw, processed, final).")

    def store_config(self) -> ports.StoreConfig:
        return {"kind": "local", "root": self.root}


class S3StoreResource(StoreResource, AwsResource):
    """The four zones as S3 buckets."""

    landing_bucket: str = Field(description="Bucket of the landing zone (instrument output arrives here).")
    raw_bucket: str = Field(description="Bucket of the raw zone (verified copies of landing objects).")
    processed_bucket: str = Field(description="Bucket of the processed zone (pipeline outputs).")
    final_bucket: str = Field(description="Bucket of the final zone (files people publish).")
    multipart_threshold: int = Field(description="Objects larger than this are copied in parts (S3: 5 GiB a copy).")
    part_size: int = Field(description="Size of each part of a multipart copy (UploadPartCopy).")
    notification_queues: dict[str, str] = Field(
        description="Zone -> ARN of the SQS queue that provisioning subscribes to the zone bucket's object events."
    )

    def store_config(self) -> ports.StoreConfig:
        return {
            "kind": "s3",
            "buckets": {
                Zone.LANDING.value: self.landing_bucket,
                Zone.RAW.value: self.raw_bucket,
                Zone.PROCESSED.value: self.processed_bucket,
                Zone.FINAL.value: self.final_bucket,
            },
            "endpoint_url": self.endpoint_url,
            "region_name": self.region_name,
            "max_attempts": self.max_attempts,
            "multipart_threshold": self.multipart_threshold,
            "part_size": self.part_size,
            "notification_queues": dict(self.notification_queues),
        }

    def get_store(self) -> "ObjectStore":
        return ports.open_store(self.store_config(), self.clients)


class ElnResource(dg.ConfigurableResource, ABC):
    """The electronic lab notebook or LIMS experiments come from."""

    @abstractmethod
    def get_eln(self) -> "ElnSource": ...


class FolderElnResource(ElnResource):
    records_dir: str = Field(
        description="Folder of experiment records (JSON or YAML, one experiment or a list per file)."
    )
    outbox_dir: str = Field(description="Folder where data locations are written back, one JSON file per experiment.")
    watch: str = Field(
        default="auto",
        description="Follow the kernel's change feed instead of listing the folder each tick: auto, on or off.",
    )
    reconcile_seconds: float = Field(
        default=600.0, description="How often a watched records folder is listed all the same."
    )

    def get_eln(self) -> "ElnSource":
        from labmesh_dagster.connectors.eln.folder import FolderEln

        return FolderEln(self.records_dir, self.outbox_dir, watch=self.watch, reconcile_seconds=self.reconcile_seconds)


class ElabFtwElnResource(ElnResource):
    """An eLabFTW instance, through its REST API v2."""

    base_url: str = Field(description="eLabFTW URL, e.g. https://elab.example.org")
    api_key: str = Field(description="API key with write access (for the write-back of data locations).")
    mapping_path: str | None = Field(description="YAML field mapping; labmesh's defaults if unset.")
    scope: int = Field(description="Entries read: 1 own, 2 the key owner's team, 3 all readable.")
    verify_tls: bool = Field(description="Check the server's TLS certificate.")
    timeout_seconds: float = Field(description="Time one request may take before it is retried.")

    def get_eln(self) -> "ElnSource":
        return ports.open_elabftw(
            self.base_url,
            self.api_key,
            mapping_path=self.mapping_path,
            scope=self.scope,
            verify_tls=self.verify_tls,
            timeout_seconds=self.timeout_seconds,
        )


class BenchlingElnResource(ElnResource):
    """A Benchling tenant, through its API v2 (events feed, entries)."""

    base_url: str = Field(description="The tenant, e.g. https://acme.benchling.com")
    api_key: str = Field(description="API key with write access to entries (for the write-back).")
    location_field: str = Field(description="Entry field the data locations are written to.")
    schema_id: str | None = Field(description="Only entries of this schema (ts_...).")
    mapping_path: str | None = Field(description="YAML field mapping; labmesh's defaults if unset.")
    timeout_seconds: float = Field(description="Time one request may take before it is retried.")

    def get_eln(self) -> "ElnSource":
        return ports.open_benchling(
            self.base_url,
            self.api_key,
            location_field=self.location_field,
            schema_id=self.schema_id,
            mapping_path=self.mapping_path,
            timeout_seconds=self.timeout_seconds,
        )


class ElnInboxResource(dg.ConfigurableResource, ABC):
    """Where `labmesh api` keeps pushed ELN events until `eln_sensor` takes them."""

    @abstractmethod
    def get_inbox(self) -> "EventInbox": ...


class SqliteInboxResource(ElnInboxResource):
    path: str = Field(description="SQLite file of the ELN event inbox (shared with `labmesh api`).")
    clock: dg.ResourceDependency[Clock | None] = None  # type: ignore[assignment]  # the system clock if None

    def get_inbox(self) -> "EventInbox":
        return ports.open_sqlite_inbox(self.path, self.clock or utc_now)


class PostgresInboxResource(ElnInboxResource):
    database_url: str = Field(description="PostgreSQL database of labmesh's own state (LABMESH_DATABASE_URL).")
    clock: dg.ResourceDependency[Clock | None] = None  # type: ignore[assignment]  # the system clock if None

    def get_inbox(self) -> "EventInbox":
        return ports.open_postgres_inbox(self.database_url, self.clock or utc_now)


class SqsInboxResource(ElnInboxResource, AwsResource):
    queue_url: str = Field(description="SQS queue `labmesh api` (or EventBridge) puts ELN events in.")

    def get_inbox(self) -> "EventInbox":
        return ports.open_sqs_inbox(self.queue_url, self.connection(), self.clients)


class CatalogResource(dg.ConfigurableResource, ABC):
    """The metadata catalog experiments and datasets are registered and searched in."""

    database_url: str | None = Field(
        default=None, description="PostgreSQL database of labmesh's own state (LABMESH_DATABASE_URL); None: SQLite."
    )

    @abstractmethod
    def get_catalog(self) -> "Catalog": ...

    @abstractmethod
    def get_eln_rejections(self) -> "RejectionStore":
        """ELN records the sensor could not read, kept beside the registry until they read fine."""


class RegistryCatalogResource(CatalogResource):
    """The catalog as labmesh's own registry: the SQLite file at ``path``, or PostgreSQL where ``database_url``
    names a database (the path then only says where the SQLite file would be)."""

    path: str = Field(description="Path of the SQLite catalog database (created on first use).")

    def get_catalog(self) -> "Catalog":
        return ports.open_registry(self.path, self.database_url)

    def get_eln_rejections(self) -> "RejectionStore":
        if self.database_url is not None:
            return ports.open_postgres_eln_rejections(self.database_url)
        return ports.open_eln_rejections(self.path)


class DataZoneCatalogResource(CatalogResource, AwsResource):
    """The catalog published into an Amazon DataZone domain; the registry (SQLite or PostgreSQL) keeps labmesh's
    own state."""

    registry_path: str = Field(description="SQLite registry of experiments and datasets (labmesh's own state).")
    domain_id: str = Field(description="DataZone domain id (dzd_...).")
    project_id: str = Field(description="DataZone project that owns labmesh's assets.")
    max_per_second: float = Field(description="Calls per second kept under DataZone's quota.")
    glossary_terms: dict[str, list[str]] = Field(description="Glossary terms to create per category (platform, assay).")
    group_projects: dict[str, str] | None = Field(
        default=None,
        description="Project owning each group's experiments' assets ('*': any other group); None: all in project_id.",
    )
    restricted_project_id: str | None = Field(
        default=None,
        description="Project owning, unpublished, the assets of experiments with no or an unmapped group (project_id).",
    )

    def get_catalog(self) -> "Catalog":
        return ports.open_datazone_catalog(
            registry=ports.open_registry(self.registry_path, self.database_url),
            domain_id=self.domain_id,
            project_id=self.project_id,
            max_per_second=self.max_per_second,
            glossary_terms=self.glossary_terms,
            connection=self.connection(),
            clients=self.clients,
            group_projects=self.group_projects,
            restricted_project_id=self.restricted_project_id,
        )

    def get_eln_rejections(self) -> "RejectionStore":
        if self.database_url is not None:
            return ports.open_postgres_eln_rejections(self.database_url)
        return ports.open_eln_rejections(self.registry_path)


class LineageResource(dg.ConfigurableResource, ABC):
    """Where OpenLineage run events go: the local lineage log always (for `labmesh lineage`), and DataZone."""

    log_path: str = Field(description="SQLite file of the local lineage log (the catalog's file by default).")
    database_url: str | None = Field(
        default=None, description="PostgreSQL database the lineage log is kept in instead (LABMESH_DATABASE_URL)."
    )

    def get_log(self) -> "LineageLog":
        if self.database_url is not None:
            return ports.open_postgres_lineage_log(self.database_url)
        return ports.open_lineage_log(self.log_path)

    @abstractmethod
    def get_sink(self) -> "LineageSink": ...


class LocalLineageResource(LineageResource):
    def get_sink(self) -> "LineageSink":
        return self.get_log()


class DataZoneLineageResource(LineageResource, AwsResource):
    domain_id: str = Field(description="Also post events to this DataZone domain (PostLineageEvent).")
    max_per_second: float = Field(description="Calls per second kept under DataZone's quota.")

    def get_sink(self) -> "LineageSink":
        return ports.open_datazone_lineage(
            self.log_path,
            domain_id=self.domain_id,
            max_per_second=self.max_per_second,
            connection=self.connection(),
            clients=self.clients,
            log=self.get_log(),
        )


class ContentIndexResource(dg.ConfigurableResource, ABC):
    """The index of file contents behind content search."""

    @abstractmethod
    def get_index(self) -> "ContentIndex": ...


class SqliteContentIndexResource(ContentIndexResource):
    path: str = Field(description="SQLite file of the local content index (FTS5; the catalog's file by default).")

    def get_index(self) -> "ContentIndex":
        return ports.open_sqlite_content_index(self.path)


class PostgresContentIndexResource(ContentIndexResource):
    """The local content index as tables in labmesh's PostgreSQL database, shared by every machine of the lab."""

    database_url: str = Field(description="PostgreSQL database of labmesh's own state (LABMESH_DATABASE_URL).")

    def get_index(self) -> "ContentIndex":
        return ports.open_postgres_content_index(self.database_url)


class KendraContentIndexResource(ContentIndexResource, AwsResource):
    index_id: str = Field(description="Amazon Kendra index id.")
    max_per_second: float = Field(description="Calls per second kept under Kendra's quota.")

    def get_index(self) -> "ContentIndex":
        return ports.open_kendra_index(
            self.index_id, max_per_second=self.max_per_second, connection=self.connection(), clients=self.clients
        )


class BedrockContentIndexResource(ContentIndexResource, AwsResource):
    """Kendra's successor: a Bedrock knowledge base's custom data source, one passage per document."""

    knowledge_base_id: str = Field(description="Amazon Bedrock knowledge base id.")
    data_source_id: str = Field(description="Its custom data source (chunking strategy NONE).")
    max_per_second: float = Field(description="Calls per second kept under the knowledge base APIs' quotas.")

    def get_index(self) -> "ContentIndex":
        return ports.open_bedrock_knowledge_base(
            self.knowledge_base_id,
            self.data_source_id,
            max_per_second=self.max_per_second,
            connection=self.connection(),
            clients=self.clients,
        )


class StoreEventsResource(dg.ConfigurableResource):
    """Where the object events of the landing and final zones arrive; without a queue a zone is listed instead."""

    def queue(self, zone: Zone) -> "EventQueue | None":
        return None


class SqsStoreEventsResource(StoreEventsResource, AwsResource):
    """S3 event notifications of the landing and final buckets, delivered to SQS."""

    landing_queue_url: str | None = Field(description="SQS queue receiving the landing bucket's events.")
    final_queue_url: str | None = Field(description="SQS queue receiving the final bucket's events.")

    def queue(self, zone: Zone) -> "EventQueue | None":
        url = {Zone.LANDING: self.landing_queue_url, Zone.FINAL: self.final_queue_url}.get(zone)
        return ports.open_event_queue(url, self.connection(), self.clients) if url else None


class SequenceStoreResource(AwsResource):
    """An AWS HealthOmics sequence store that raw sequencing files are imported into."""

    sequence_store_id: str = Field(description="HealthOmics sequence store id.")
    role_arn: str = Field(description="IAM role HealthOmics assumes to read the raw bucket.")
    reference_arn: str | None = Field(description="Reference for BAM/CRAM imports (else they are skipped).")
    platforms: list[str] = Field(description="Platforms whose experiments are imported (all if empty).")
    timeout_seconds: float = Field(description="How long to wait for an import job.")
    poll_seconds: float = Field(description="How often to ask for the import job's status.")
    s3_endpoint_url: str | None = Field(
        default=None, description="Endpoint of S3, for checking the raw bucket's Region and encryption; None for AWS."
    )

    def get_sequence_store(self) -> "SequenceStore":
        s3 = AwsConnection(self.s3_endpoint_url, self.region_name, self.max_attempts)
        return ports.open_sequence_store(
            self.sequence_store_id, self.role_arn, self.connection(), self.clients, s3_connection=s3
        )


class LandingPolicyResource(dg.ConfigurableResource):
    """How patient ingestion is: the lab's to tune, shared by the sensors and the promotion."""

    settle_seconds: float = Field(description="A landing or final file is taken once unchanged this many seconds.")
    unknown_experiment_grace_seconds: float = Field(
        description="Landing files of an experiment no ELN record announced wait this long, then go to quarantine."
    )
    retry_seconds: float = Field(
        description=(
            "Settled landing files still there this long after they were written (their run failed, or was "
            "lost) get one more `raw_dataset` run per period; with S3 events, landing is listed once per period "
            "to find them. 0 turns this off."
        ),
    )


class ExtractionPolicyResource(dg.ConfigurableResource):
    """How long metadata extraction may spend on one file before it records what it has, marked partial."""

    budget_seconds: float = Field(
        description=(
            "Seconds one file's extractor may take; then it stops at its next batch and the manifest entry is "
            "marked `partial: time_budget`. 0 means no limit."
        ),
    )

    @property
    def budget(self) -> float | None:
        return self.budget_seconds or None
